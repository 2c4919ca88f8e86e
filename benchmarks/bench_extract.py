"""Images per second of each extractor on the shared train set, cold and warm cache.

Usage::

    python benchmarks/bench_extract.py [--data ../shared/data/catsdogs/train] [--limit N]
        [--features hog,color,cnn] [--json-out artifacts/bench/extract.json]

Cold = empty cache (every image decoded and computed); warm = the same run again,
served from the cache. All numbers come from one process run, side by side.
"""

import argparse
import os
import tempfile
import time

from _report import BENCH_DIR, SHARED, write_report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED / "train"))
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--features", default="hog,color,cnn")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "extract.json"))
    args = parser.parse_args(argv)

    from catdog_sk.data import find_images
    from catdog_sk.features import extract_features, make_extractor

    paths = find_images(args.data).paths[: args.limit]
    rows = []
    for name in args.features.split(","):
        ex = make_extractor(name)
        ex.config()
        if name == "cnn":  # load the network before timing: a one-off cost, reported apart
            from catdog_sk.features import load_backbone

            t = time.perf_counter()
            load_backbone(ex.backbone)
            load_s = time.perf_counter() - t
        else:
            load_s = 0.0
        with tempfile.TemporaryDirectory() as cache:
            cold = extract_features(paths, [ex], cache=cache)
            warm = extract_features(paths, [ex], cache=cache)
        assert (cold.features[0] == warm.features[0]).all()
        rows.append({
            "extractor": name, "images": len(paths), "model_load_s": round(load_s, 2),
            "cold_s": round(cold.seconds, 2), "cold_img_s": round(cold.images_per_second, 1),
            "warm_s": round(warm.seconds, 3), "warm_img_s": round(warm.images_per_second, 1),
            "warm_over_cold": round(cold.seconds / warm.seconds, 1),
        })
    report = {"cpus": os.cpu_count(), "data": args.data, "rows": rows}
    print(f"{'extractor':<10}{'images':>7}{'cold img/s':>12}{'warm img/s':>12}{'warm/cold':>11}")
    for r in rows:
        print(f"{r['extractor']:<10}{r['images']:>7}{r['cold_img_s']:>12}{r['warm_img_s']:>12}{r['warm_over_cold']:>10}x")
    write_report(report, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
