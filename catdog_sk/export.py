"""Export a saved model for other runtimes: ``python -m catdog_sk.export --help``."""

import os

from . import _cli

FORMATS = ("onnx", "web")


def build_parser():
    """The ``export`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "export",
        "Write a saved CNN model (features 'cnn') as one portable file or a static web page. 'onnx': one "
        "ONNX graph (uint8 RGB crops in; class probabilities, the presence score and the label, -1 for "
        "'unknown', out), with a JSON beside it that says how to crop images, the class names, threshold and "
        "model version. 'web': a folder with index.html, the ONNX file and ONNX Runtime Web that classifies "
        "photos in the browser with no server; serve it with any static server, e.g. "
        "python -m http.server -d FOLDER.",
        epilog="Exit status: 0 done, 1 failure (e.g. a model whose features cannot run inside an ONNX graph, "
               "or an output that exists already: nothing is ever overwritten), 2 usage error.",
    )
    _cli.add_model_args(parser)
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="what to write")
    parser.add_argument("out", nargs="?", metavar="OUT",
                        help="the .onnx file, or the web folder (default: artifacts/export/<model version>.onnx "
                             "or artifacts/export/web-<model version>; when that exists, this model was exported "
                             "already and nothing is done)")
    parser.add_argument("--out", dest="out_option", metavar="OUT", help="the same as OUT")
    parser.add_argument("--onnx", metavar="FILE",
                        help="--format web: reuse this ONNX file exported from the same model instead of exporting "
                             "again (default: artifacts/export/<model version>.onnx when it exists)")
    parser.add_argument("--ort-web", metavar="DIR",
                        help="ONNX Runtime Web's dist files for --format web (default: $CATDOG_ORT_WEB, else "
                             "artifacts/vendor/onnxruntime-web, filled by `make web-runtime`)")
    return parser


def _default_output(fmt, version):
    """``artifacts/export/<version>.onnx`` or ``artifacts/export/web-<version>``."""
    return os.path.join("artifacts", "export", f"{version}.onnx" if fmt == "onnx" else f"web-{version}")


def _output(parser, args):
    """The output path as given (None: the default), after every usage check (exit 2 before any work)."""
    if args.out and args.out_option:
        parser.error("give the output once: OUT or --out")
    if args.onnx and args.format != "web":
        parser.error("--onnx reuses an exported ONNX file for --format web; it has no use with --format onnx")
    out = args.out or args.out_option
    if args.format == "onnx" and out is not None and not out.endswith(".onnx"):
        parser.error(f"OUT must be a file name ending in .onnx (its description is written beside it as "
                     f"<name>.json, so the two never share a path); got {out!r}")
    if args.onnx is not None and not args.onnx.endswith(".onnx"):
        parser.error(f"--onnx must name an .onnx file written by this command; got {args.onnx!r}")
    return out


def _valid_cached_export(path, version, args):
    """Whether ``path`` (a default export) is a valid ONNX file of this model; a damaged one is removed."""
    from .deploy.onnx import check_onnx_file
    from .exceptions import ExportError

    if not os.path.exists(path):
        return False
    try:
        check_onnx_file(path, version)
        return True
    except ExportError as exc:
        _cli.log(args, f"{exc} It is a damaged cached export: exporting again.")
        for damaged in (path, os.path.splitext(path)[0] + ".json"):
            if os.path.isfile(damaged):
                os.remove(damaged)
        return False


def _export_onnx(clf, out, version):
    from ._io import check_new_dir
    from .deploy.onnx import write_onnx

    for path in (out, os.path.splitext(out)[0] + ".json"):
        check_new_dir(path, what="output file")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    paths = write_onnx(clf, out, version=version)
    return {"onnx": paths[0], "json": paths[1], "bytes": os.path.getsize(paths[0]), "model_version": version}


def _export_web(clf, out, version, args):
    from .deploy.web import write_web

    reuse = args.onnx
    cached = _default_output("onnx", version)
    if reuse is None and version != "unversioned" and _valid_cached_export(cached, version, args):
        reuse = cached  # `make demo`: this model's ONNX export, made just before
    folder = write_web(clf, out, ort_dir=args.ort_web, version=version, onnx_file=reuse)
    return {"web": str(folder), "bytes": sum(f.stat().st_size for f in folder.iterdir()), "model_version": version}


def main(argv=None):
    """Run ``python -m catdog_sk.export``: a saved model as an ONNX file or a web folder.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        The exit status: 0 done (or this model was exported there already), 1 failure, 2 usage error.
    """
    parser = build_parser()

    def body(args):
        from .models import load_model
        from .models.card import model_version

        out = _output(parser, args)
        clf = load_model(args.model, unsafe=args.unsafe)
        version = model_version(clf)
        default = _default_output(args.format, version)
        if out is None and version != "unversioned" and (
                _valid_cached_export(default, version, args) if args.format == "onnx" else os.path.exists(default)):
            # named by the model's version: this very model was exported there before (`make demo` run again)
            if args.json:
                _cli.emit_json({"existing": default, "model_version": version})
            else:
                print(f"{default} holds this model ({version}) already; nothing to do")
            return 0
        out = out or default
        result = _export_onnx(clf, out, version) if args.format == "onnx" else _export_web(clf, out, version, args)
        if args.json:
            _cli.emit_json(result)
        else:
            where = result.get("onnx") or result["web"]
            print(f"wrote {where} ({result['bytes'] / 1e6:.1f} MB, model {version})")
            if args.format == "web":
                print(f"serve it with: python -m http.server -d {where} 8000, then open http://127.0.0.1:8000/")
        return 0

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
