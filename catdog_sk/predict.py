"""Predict cat or dog for image files: ``python -m catdog_sk.predict --help``."""

import csv
import json
import sys

from . import _cli


def build_parser():
    """The ``predict`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "predict",
        "Predict the class of each image (files, or folders searched recursively) with a saved model. "
        "Prints one JSON line (or CSV row) per image, in input order: path, label, the probability of "
        "each class, the presence score (how sure the model is that the photo shows a cat or a dog; "
        "below the model's threshold the label is 'unknown'), the reason of an 'unknown' (too_small: the photo's "
        "shorter side is below the model's min_side pixels; not_cat_or_dog: the presence score is below the "
        "threshold; empty otherwise) and the model version; a file that cannot be read gets a line with the error "
        "instead, and the run goes on (exit status 3).",
        epilog=_cli.SKIPPED_EPILOG, json_results=False,  # JSON lines are already its output
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE|DIR", help="image files or folders")
    _cli.add_model_args(parser)
    _cli.add_device_arg(parser, default=None)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="output format")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", help="feature cache (default: none, features are computed)")
    cache.add_argument("--no-cache", action="store_true", help="compute features without a cache (the default)")
    parser.add_argument("--jobs", type=_cli.jobs, default=None, metavar="N", help="worker threads (default: all CPUs)")
    _cli.add_strict_arg(parser)
    _cli.add_backend_args(parser)
    return parser


def main(argv=None):
    """Run ``python -m catdog_sk.predict``: one line per image, in input order.

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
        from .cluster import predict_paths_with
        from .data import expand_inputs

        paths, _ = expand_inputs(args.images)  # special files stay: each gets its error line, unopened
        if not paths:
            parser.error("no image files found in the given paths")
        clf = _cli.load_model(args)
        classes = [str(c) for c in clf.classes_]
        writer = None
        if args.format == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(["path", "label", *[f"p_{c}" for c in classes], "presence", "reason", "model_version",
                             "error"])
        failed = 0
        with _cli.cluster(args) as client:  # --backend dask: partitions on the cluster, lines still in order
            for result in predict_paths_with(client, clf, paths, cache=_cli.open_cache(args, default=False),
                                             n_jobs=args.jobs, progress=_cli.show_progress(args)):
                failed += "error" in result
                if writer is None:
                    print(json.dumps(result), flush=True)
                elif "error" in result:
                    writer.writerow([result["path"], "", *[""] * len(classes), "", "", result["model_version"],
                                     f"{result['error']}: {result['detail']}"])
                else:
                    writer.writerow([result["path"], result["label"],
                                     *[result["probabilities"][c] for c in classes], result["presence"],
                                     result["reason"] or "", result["model_version"], ""])
        if failed:
            _cli.log(args, f"{failed} of {len(paths)} image(s) could not be read")
        return _cli.skipped_status(args, failed)

    return _cli.run(body, parser, argv)


if __name__ == "__main__":
    raise SystemExit(main())
