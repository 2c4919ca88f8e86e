"""Evaluate a saved model on any labelled images: ``python -m catdog_sk.evaluate --help``."""

import datetime as _dt
from pathlib import Path

import numpy as np

from . import _cli
from .exceptions import DatasetError


def build_parser():
    parser = _cli.make_parser(
        "evaluate",
        "Score a saved model on a labelled image folder (or CSV): accuracy with a bootstrap CI, ROC AUC, "
        "log loss, Brier score, calibration error, and PNG plots (confusion matrix, ROC, precision-recall, "
        "reliability diagram, most confident mistakes).",
        epilog=_cli.SKIPPED_EPILOG + " Failures include an unreadable model and no decodable image.",
    )
    _cli.add_model_args(parser)
    parser.add_argument("--data", required=True, metavar="PATH", help="labelled images to evaluate on")
    parser.add_argument("--out", metavar="DIR", help="report directory (default: artifacts/reports/eval-<time>)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: $CATDOG_CACHE or artifacts/cache)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without the cache")
    parser.add_argument("--jobs", type=int, default=None, metavar="N", help="worker threads (default: all CPUs)")
    _cli.add_strict_arg(parser)
    return parser


def main(argv=None):
    parser = build_parser()

    def body(args):
        from ._io import atomic_dir
        from .data import find_images
        from .evaluation import write_report
        from .features import default_cache_dir
        from .models import load_model

        clf = load_model(args.model, unsafe=args.unsafe)
        found = find_images(args.data)
        cache = None if args.no_cache else (args.cache or default_cache_dir())
        F, keep, errors = clf._features_skipping(found.paths, cache=cache, n_jobs=args.jobs,
                                                 progress=_cli.show_progress(args), desc="evaluate")
        for err in errors:
            _cli.log(args, f"skipped {err}")
        if len(keep) == 0:
            raise DatasetError(f"None of the {len(found)} images under {args.data!r} could be decoded.")
        found = found.subset(keep)
        proba = clf.pipeline_.predict_proba(F)
        pred = clf.pipeline_.predict(F)
        novelty = clf._novelty_from_features(F)
        known = np.isin(found.labels, clf.classes_)
        out = Path(args.out or Path("artifacts") / "reports" /
                   f"eval-{_dt.datetime.now(_dt.timezone.utc).strftime('%Y%m%d-%H%M%S')}")
        with atomic_dir(out) as work:
            metrics = write_report(work, paths=[found.paths[i] for i in np.flatnonzero(known)],
                                   y_true=found.labels[known], pred=pred[known], proba=proba[known],
                                   classes=clf.classes_, title=f"{args.model} on {args.data}",
                                   short_title=f"{clf.features} + {clf.model}")
        metrics.update({"model": str(args.model), "data": str(args.data), "report": str(out),
                        "unknown": int(np.sum(novelty > 0)),
                        "skipped": [e.as_dict() for e in errors]})
        if args.json:
            _cli.emit_json(metrics)
        else:
            lo, hi = metrics["test_accuracy_ci95"]
            print(f"accuracy {metrics['test_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}), "
                  f"{metrics['test_errors']} errors of {metrics['test_n']}; ROC AUC {metrics['test_roc_auc']:.4f}; "
                  f"log loss {metrics['test_log_loss']:.4f}; ECE {metrics['test_ece']:.4f}")
            print(f"report: {out / 'report.md'}")
            if metrics["unknown"]:
                print(f"{metrics['unknown']} image(s) would be answered 'unknown' (unlike the training photos)")
            if errors:
                print(f"skipped {len(errors)} unreadable file(s)")
        return _cli.skipped_status(args, len(errors))

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
