"""Extract image features into the cache: ``python -m catdog_sk.extract --help``."""

import csv
import os
import sys

from . import _cli
from .exceptions import DatasetError
from .registry import EXTRACTORS

FEATURES = tuple(EXTRACTORS)


def build_parser():
    """The ``extract`` command's argument parser (``--help`` shows every option).

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    parser = _cli.make_parser(
        "extract",
        "Find labelled cat/dog images, compute their features and store them in the feature cache, "
        "so that fitting and evaluation do no image work.",
        epilog=_cli.SKIPPED_EPILOG,
    )
    parser.add_argument("--data", metavar="PATH",
                        help="image folder, split root (train/, test/) or path,label CSV "
                             "(default: $CATDOG_DATA, else download PetImages once)")
    parser.add_argument("--features", default="hog,color,cnn", metavar="LIST",
                        help=f"comma-separated subset of {','.join(FEATURES)}")
    _cli.add_backbone_arg(parser)
    _cli.add_runtime_arg(parser)
    _cli.add_device_arg(parser)
    parser.add_argument("--batch-size", type=_cli.integer(1), default=4, metavar="N",
                        help="images per CNN forward pass (default 4: small batches are fastest on CPU)")
    parser.add_argument("--calibrate", metavar="DIR",
                        help="with --runtime openvino-int8: training photos to calibrate the int8 network on "
                             "(default: the train/ split of --data; never the test photos)")
    cache = parser.add_mutually_exclusive_group()
    cache.add_argument("--cache", metavar="DIR", default=None,
                       help="feature cache directory (default: $CATDOG_CACHE or artifacts/cache)")
    cache.add_argument("--no-cache", action="store_true", help="compute without reading or writing the cache")
    parser.add_argument("--jobs", type=_cli.jobs, default=None, metavar="N",
                        help="worker threads for decoding and per-image features (default: all CPUs)")
    parser.add_argument("--max-pixels", type=_cli.integer(1), default=None, metavar="N",
                        help="reject images declaring more pixels than this (default: 40,000,000)")
    parser.add_argument("--skipped-csv", metavar="FILE", help="also write skipped files as path,reason,detail")
    _cli.add_strict_arg(parser)
    _cli.add_backend_args(parser, "extraction partitions run")
    return parser


def _calibrate(parser, args, splits):
    """--runtime openvino-int8: quantise the network, calibrated on training photos (once per photo set)."""
    from .data import find_images
    from .features import INT8_CALIBRATION_SIZE, calibrate_int8

    if args.calibrate:
        paths = find_images(args.calibrate).paths
    elif "train" in splits:
        paths = splits["train"].paths
    else:
        parser.error("--runtime openvino-int8 calibrates on training photos: give --calibrate DIR, or a --data "
                     "split root with a train/ folder")
    _cli.log(args, f"int8 network: calibrated on {min(len(paths), INT8_CALIBRATION_SIZE)} of {len(paths)} "
                   "training photos (once per photo set)")
    calibrate_int8(paths, backbone=args.backbone)


def main(argv=None):
    """Run ``python -m catdog_sk.extract``: features of every photo into the cache, with a summary.

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
        from .data import default_data_dir, load_dataset
        from .cluster import extract_features_with
        from .features import make_extractor
        from .preprocess import DEFAULT_MAX_PIXELS

        names = _cli.parse_names(parser, "--features", args.features, FEATURES, split_plus=True)
        extractors = [make_extractor(n, backbone=args.backbone, batch_size=args.batch_size, runtime=args.runtime,
                                     device=args.device, caller="extract") for n in names]
        for ex in extractors:  # fail fast (e.g. offline backbone) before reading any image
            ex.config()
        if args.skipped_csv:  # outputs are checked before the work starts
            _cli.check_output_file(args.skipped_csv, "--skipped-csv")
        data = args.data or str(default_data_dir())
        splits = load_dataset(data)
        if args.runtime == "openvino-int8" and "cnn" in names:
            _calibrate(parser, args, splits)
        cache = _cli.open_cache(args)
        summary = {"data": os.fspath(data), "features": names, "backbone": args.backbone if "cnn" in names else None,
                   "cache": None if cache is None else os.fspath(cache), "splits": {}, "skipped": []}
        total = {"images": 0, "seconds": 0.0, "hits": 0, "misses": 0}
        with _cli.cluster(args) as client:
            for split, found in splits.items():
                _cli.log(args, f"{split}: {len(found)} images in {found.layout} layout {found.counts()}")
                result = extract_features_with(client, found.paths, extractors, n_jobs=args.jobs, cache=cache,
                                               on_error="skip", progress=_cli.show_progress(args),
                                               max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, desc=split)
                summarize_split(summary, total, split, found, result)
        total["images_per_second"] = round(total["images"] / total["seconds"], 1) if total["seconds"] else None
        total["seconds"] = round(total["seconds"], 3)
        summary["total"] = total
        if total["images"] - len([s for s in summary["skipped"] if s["reason"] != "ignored"]) == 0:
            raise DatasetError(f"No image under {data!r} could be decoded.")
        if args.skipped_csv:
            _write_skipped_csv(args.skipped_csv, summary["skipped"])
        if args.json:
            _cli.emit_json(summary)
        else:
            print_summary(summary)
        return _cli.skipped_status(args, sum(s["reason"] != "ignored" for s in summary["skipped"]))

    return _cli.run(body, parser, argv)


def _write_skipped_csv(path, skipped):
    with open(path, "w", newline="", errors="surrogateescape") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "reason", "detail"])
        for s in skipped:
            writer.writerow([s["path"], s["reason"], s["detail"]])


def summarize_split(summary, total, split, found, result):
    """Add one split's extraction result to the summary and the running totals.

    Parameters
    ----------
    summary : dict
        The run's summary; ``summary['splits'][split]`` is written.
    total : dict
        Running totals over the splits, updated in place.
    split : str
        The split's name.
    found : LabeledImages
        The split's photos and labels.
    result : ExtractionResult
        What :func:`catdog_sk.features.extract_features` returned for them.
    """
    labels_ok = found.labels[result.ok]
    summary["splits"][split] = {
        "layout": found.layout, "found": found.counts(),
        "extracted": {c: int((labels_ok == c).sum()) for c in ("cat", "dog")},
        "skipped": len(result.errors) + len(found.ignored),
        "seconds": round(result.seconds, 3), "images_per_second": round(result.images_per_second, 1),
        "cache_hits": result.hits, "cache_misses": result.misses,
    }
    summary["skipped"] += [e.as_dict() for e in result.errors]
    summary["skipped"] += [{"path": p, "reason": "ignored", "detail": why} for p, why in found.ignored]
    total["images"] += result.n_images
    total["seconds"] += result.seconds
    total["hits"] += result.hits
    total["misses"] += result.misses


def print_summary(summary, file=None):
    """Print the extraction summary as a few lines a person reads: features, counts per split, cache, speed.

    Parameters
    ----------
    summary : dict
        The summary :func:`summarize_split` built (what ``--json`` prints).
    file : file object, default=None
        Where to print; None: stdout.
    """
    out = file or sys.stdout
    print(f"features: {', '.join(summary['features'])}"
          + (f" (backbone {summary['backbone']})" if summary["backbone"] else "")
          + f"; cache: {summary['cache'] or 'off'}", file=out)
    print(f"{'split':<8}{'cats':>7}{'dogs':>7}{'skipped':>9}{'seconds':>10}{'img/s':>9}{'hits':>8}{'misses':>8}",
          file=out)
    for split, s in summary["splits"].items():
        print(f"{split:<8}{s['extracted']['cat']:>7}{s['extracted']['dog']:>7}{s['skipped']:>9}"
              f"{s['seconds']:>10.2f}{s['images_per_second']:>9.1f}{s['cache_hits']:>8}{s['cache_misses']:>8}",
              file=out)
    t = summary["total"]
    print(f"total: {t['images']} images in {t['seconds']:.2f} s ({t['images_per_second']} img/s), "
          f"cache hits {t['hits']}, misses {t['misses']}", file=out)
    if summary["skipped"]:
        print(f"skipped {len(summary['skipped'])} file(s):", file=out)
        for s in summary["skipped"]:
            print(f"  {s['path']}: {s['reason']}" + (f" ({s['detail']})" if s["detail"] else ""), file=out)


if __name__ == "__main__":
    raise SystemExit(main())
