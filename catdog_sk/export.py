"""Export a saved model for other runtimes: ``python -m catdog_sk.export --help``."""

import os

from . import _cli

FORMATS = ("onnx", "web")


def build_parser():
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


def main(argv=None):
    parser = build_parser()

    def body(args):
        from ._io import check_new_dir
        from .deploy.onnx import write_onnx
        from .models import load_model
        from .models.card import model_version

        if args.out and args.out_option:
            parser.error("give the output once: OUT or --out")
        if args.onnx and args.format != "web":
            parser.error("--onnx reuses an exported ONNX file for --format web; it has no use with --format onnx")
        out = args.out or args.out_option
        clf = load_model(args.model, unsafe=args.unsafe)
        version = model_version(clf)
        default = _default_output(args.format, version)
        if out is None and version != "unversioned" and os.path.exists(default):
            # named by the model's version: this very model was exported there before (`make demo` run again)
            if args.json:
                _cli.emit_json({"existing": default, "model_version": version})
            else:
                print(f"{default} holds this model ({version}) already; nothing to do")
            return 0
        out = out or default
        if args.format == "onnx":
            meta = os.path.splitext(out)[0] + ".json"
            for path in (out, meta):
                check_new_dir(path, what="output file")
            os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
            paths = write_onnx(clf, out, version=version)
            result = {"onnx": paths[0], "json": paths[1], "bytes": os.path.getsize(paths[0]),
                      "model_version": version}
        else:
            from .deploy.web import write_web

            reuse = args.onnx
            if reuse is None and version != "unversioned" and os.path.exists(_default_output("onnx", version)):
                reuse = _default_output("onnx", version)  # `make demo`: this model's ONNX export, made just before
            folder = write_web(clf, out, ort_dir=args.ort_web, version=version, onnx_file=reuse)
            result = {"web": str(folder), "bytes": sum(f.stat().st_size for f in folder.iterdir()),
                      "model_version": version}
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
