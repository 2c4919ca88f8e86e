"""Predict cat or dog for image files: ``python -m catdog_sk.predict --help``."""

import csv
import json
import os
import sys

from . import _cli
from .data import IMAGE_EXTENSIONS


def build_parser():
    parser = _cli.make_parser(
        "predict",
        "Predict the class of each image (files, or folders searched recursively) with a saved model. "
        "Prints one JSON line (or CSV row) per image, in input order: path, label, the probability of "
        "each class and the model version; a file that cannot be read gets a line with the error "
        "instead, and the run goes on (exit status 3).",
        epilog=_cli.SKIPPED_EPILOG,
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="image files or folders")
    _cli.add_model_args(parser)
    _cli.add_device_arg(parser, default=None)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: none, features are computed)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without a cache (the default)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N", help="worker threads (default: all CPUs)")
    _cli.add_strict_arg(parser)
    return parser


def expand(inputs):
    """Files as given, folders replaced by their image files (sorted, recursive)."""
    out = []
    for item in inputs:
        if os.path.isdir(item):
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames.sort()
                out += [os.path.join(dirpath, f) for f in sorted(filenames)
                        if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS]
        else:
            out.append(item)
    return out


def predict_paths(clf, paths, *, cache=None, n_jobs=None, progress=False, chunk_size=256):
    """Yield one result dict per path, in order, computing features chunk by chunk.

    Parameters
    ----------
    clf : CatDogClassifier
        Fitted.
    paths : list of str

    Yields
    ------
    result : dict
        ``{'path', 'label', 'probabilities': {class: p}, 'presence', 'model_version'}``
        (label ``'unknown'`` when the model abstains, see ``CatDogClassifier(unknown=...)``;
        ``presence`` is its presence score, 1.0 for a model that never abstains), or
        ``{'path', 'error', 'detail', 'model_version'}`` for an unreadable file.
    """
    from .models.card import model_version

    version = model_version(clf)
    classes = [str(c) for c in clf.classes_]
    for start in range(0, len(paths), chunk_size):
        chunk = paths[start:start + chunk_size]
        F, ok, errs = clf.featurize(chunk, on_error="skip", cache=cache, n_jobs=n_jobs, progress=progress,
                                    desc="predict")
        errors = {e.path: e for e in errs}
        labels, proba, presence = clf.predict_features(F) if len(ok) else ([], [], [])
        row_of = {i: r for r, i in enumerate(ok)}
        for i, path in enumerate(chunk):
            if i in row_of:
                r = row_of[i]
                yield {"path": path, "label": str(labels[r]),
                       "probabilities": {c: round(float(v), 6) for c, v in zip(classes, proba[r])},
                       "presence": round(float(presence[r]), 6), "model_version": version}
            else:
                err = errors.get(os.fspath(path))
                yield {"path": path, "error": err.reason if err else "unreadable",
                       "detail": err.detail if err else "", "model_version": version}


def main(argv=None):
    parser = build_parser()

    def body(args):
        clf = _cli.load_model(args)
        paths = expand(args.images)
        if not paths:
            parser.error("no image files found in the given paths")
        classes = [str(c) for c in clf.classes_]
        writer = None
        if args.format == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(["path", "label", *[f"p_{c}" for c in classes], "model_version", "error"])
        failed = 0
        for result in predict_paths(clf, paths, cache=_cli.open_cache(args, default=False), n_jobs=args.jobs,
                                    progress=_cli.show_progress(args)):
            failed += "error" in result
            if writer is None:
                print(json.dumps(result), flush=True)
            elif "error" in result:
                writer.writerow([result["path"], "", *[""] * len(classes), result["model_version"],
                                 f"{result['error']}: {result['detail']}"])
            else:
                writer.writerow([result["path"], result["label"],
                                 *[result["probabilities"][c] for c in classes], result["model_version"], ""])
        if failed:
            _cli.log(args, f"{failed} of {len(paths)} image(s) could not be read")
        return _cli.skipped_status(args, failed)

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
