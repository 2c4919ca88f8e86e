"""Evaluate a saved model on any labelled images: ``python -m catdog_sk.evaluate --help``."""

from pathlib import Path

import numpy as np

from . import _cli
from .exceptions import DatasetError


def build_parser():
    """The ``evaluate`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "evaluate",
        "Score a saved model on a labelled image folder (or CSV): accuracy with a bootstrap CI, ROC AUC, "
        "log loss, Brier score, calibration error, and PNG plots (confusion matrix, ROC, precision-recall, "
        "reliability diagram, most confident mistakes).",
        epilog=_cli.SKIPPED_EPILOG + " Failures include an unreadable model and no decodable image.",
    )
    _cli.add_model_args(parser)
    _cli.add_device_arg(parser, default=None)
    parser.add_argument("--data", required=True, metavar="PATH", help="labelled images to evaluate on")
    parser.add_argument("--negatives", metavar="DIR",
                        help="also report the share of photos of neither (every image under DIR, sub-folders "
                             "cat/ and dog/ skipped) answered 'unknown', per sub-folder; photos the model's "
                             "presence model was fitted on are left out and counted")
    parser.add_argument("--out", metavar="DIR", help="report directory (default: artifacts/reports/eval-<time>)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: $CATDOG_CACHE or artifacts/cache)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without the cache")
    parser.add_argument("--jobs", type=_cli.jobs, default=None, metavar="N", help="worker threads (default: all CPUs)")
    _cli.add_strict_arg(parser)
    _cli.add_backend_args(parser, "partitions of the test photos run")
    return parser


def _negatives_decision(clf, args, cache, errors):
    """The model's answers on --negatives, leaving out the photos its presence model was fitted on."""
    from .data import find_negatives
    from .evaluation import negatives_decision

    if getattr(clf, "presence_", None) is None:
        raise DatasetError(f"--negatives: the model at {args.model} never answers 'unknown' (it was fitted "
                           f"without it); refit with fit --unknown auto.")
    found = find_negatives(args.negatives)
    for path, why in found.ignored:
        _cli.log(args, f"skipped negative {path}: {why}")
    used = set(getattr(clf, "negatives_sha256_", ()))
    fresh = found.subset([h not in used for h in found.sha256])
    left_out = len(found) - len(fresh)
    note = f"{left_out} photo(s) the model was fitted on left out" if left_out else "none of them was used for fitting"
    decision, skipped = negatives_decision(clf, fresh, cache=cache, n_jobs=args.jobs,
                                           progress=_cli.show_progress(args), note=note)
    for err in skipped:
        _cli.log(args, f"skipped {err}")
    errors.extend(skipped)
    return decision


def _print_summary(metrics, abstains, out, errors):
    lo, hi = metrics["test_accuracy_ci95"]
    print(f"accuracy {metrics['test_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}), "
          f"{metrics['test_errors']} errors of {metrics['test_n']}; ROC AUC {metrics['test_roc_auc']:.4f}; "
          f"log loss {metrics['test_log_loss']:.4f}; ECE {metrics['test_ece']:.4f}")
    if abstains:
        print(f"answers {metrics['test_coverage']:.2%} of the photos ({metrics['unknown']} 'unknown'), "
              f"accuracy on those {metrics['test_answered_accuracy']:.4f}")
    if "negatives" in metrics:
        neg = metrics["negatives"]
        groups = ", ".join(f"{g} {v['rejected']:.0%}" for g, v in neg["by_group"].items())
        print(f"photos of neither answered 'unknown': {neg['rejected']:.1%} of {neg['n']} ({groups}); "
              f"{neg['note']}")
    print(f"report: {out / 'report.md'}")
    if errors:
        print(f"skipped {len(errors)} unreadable file(s)")


def main(argv=None):
    """Run ``python -m catdog_sk.evaluate``: score a saved model on labelled photos and write its report.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        The exit status: 0 done, 1 failure, 2 usage error, 3 done with skipped files (see ``--help``).
    """
    parser = build_parser()

    def body(args):
        from ._io import atomic_dir, check_new_dir
        from .data import find_images, special_files
        from .evaluation import write_report

        out = Path(args.out or Path("artifacts") / "reports" / _cli.unique_name("eval-"))
        check_new_dir(out, "report folder (--out)")  # before any work: an existing folder is never replaced
        clf = _cli.load_model(args)
        found = find_images(args.data)
        for path, why in special_files(found.ignored):
            _cli.log(args, f"skipped {path}: {why}")
        cache = _cli.open_cache(args)
        with _cli.cluster(args) as client:  # --backend dask: the features of the photos on the cluster
            F, keep, errors, sides = clf.featurize(found.paths, on_error="skip", cache=cache, n_jobs=args.jobs,
                                                   progress=_cli.show_progress(args), desc="evaluate",
                                                   client=client)
        for err in errors:
            _cli.log(args, f"skipped {err}")
        if len(keep) == 0:
            raise DatasetError(f"None of the {len(found)} images under {args.data!r} could be decoded.")
        found = found.subset(keep)
        decision = clf.predict_features(F, sides=sides)  # the same decision path as predict and the server
        proba = decision.proba
        pred = clf.classes_[np.argmax(proba, axis=1)]
        abstains = getattr(clf, "presence_", None) is not None
        negatives = _negatives_decision(clf, args, cache, errors) if args.negatives else None
        known = np.isin(found.labels, clf.classes_)
        with atomic_dir(out) as work:
            metrics = write_report(work, paths=[found.paths[i] for i in np.flatnonzero(known)],
                                   y_true=found.labels[known], pred=pred[known], proba=proba[known],
                                   classes=clf.classes_, title=f"{args.model} on {args.data}",
                                   short_title=f"{clf.features} + {clf.model}",
                                   labels=decision.labels[known] if abstains else None,
                                   presence=decision.presence[known],
                                   threshold=getattr(clf, "presence_threshold_", None), negatives=negatives)
        metrics.update({"model": str(args.model), "data": str(args.data), "report": str(out),
                        "unknown": int(np.sum(decision.labels.astype(str) == "unknown")),
                        "skipped": [e.as_dict() for e in errors]})
        if args.json:
            _cli.emit_json(metrics)
        else:
            _print_summary(metrics, abstains, out, errors)
        return _cli.skipped_status(args, len(errors))

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
