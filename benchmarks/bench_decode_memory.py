"""Peak memory of the batched JPEG decoder on big photos, against Pillow's path, side by side.

Usage::

    python benchmarks/bench_decode_memory.py [--count 48] [--side 6000] [--unbounded]
                                            [--json-out artifacts/bench/decode_memory.json]

``--count`` valid ``--side`` x ``--side`` JPEGs (a smooth gradient, quality 90, written once to a
temporary folder) go through ``extract_features`` with one Lite0 ``EmbeddingExtractor(runtime='torch')``,
each decoder in a fresh subprocess, peak resident set size read from ``getrusage`` (issue 25 item 4: 48
x 36 MP were killed at a 6 GB cap through ``decoder='torch-cpu'``; the target is at most 2 GB).
``--unbounded`` adds ``torch-cpu`` with the pixel budget lifted, i.e. the whole batch decoded at once as
before (about 108 MB per 36 MP photo: mind the machine's memory).
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _report import BENCH_DIR, PEAK_RSS_CODE, write_report

_CHILD = PEAK_RSS_CODE + """
import sys
from catdog_sk.features import EmbeddingExtractor, extract_features
from catdog_sk.features import _device_decode
decoder, budget = sys.argv[1], int(sys.argv[2])
if budget:
    _device_decode.MAX_BATCH_PIXELS = budget
res = extract_features(sys.argv[3:], [EmbeddingExtractor(decoder=decoder, runtime="torch")], n_jobs=2)
print(int(res.ok.sum()), peak_rss_kb())
"""


def write_jpegs(folder, count, side):
    """``count`` copies of one smooth ``side`` x ``side`` gradient JPEG (quality 90) in ``folder``."""
    import cv2

    ramp = np.linspace(0, 255, side).astype(np.uint8)
    rgb = np.empty((side, side, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = ramp[None, :], ramp[:, None], 128
    data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    paths = []
    for i in range(count):
        paths.append(Path(folder) / f"big{i:03d}.jpg")
        paths[-1].write_bytes(data)
    return [str(p) for p in paths], len(data)


def peak(decoder, paths, budget=0):
    """(images embedded, peak RSS in MB, seconds) of one fresh subprocess."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", _CHILD, decoder, str(budget), *paths],
                         capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        return 0, float("nan"), seconds
    n_ok, kb = map(int, out.stdout.split()[-2:])
    return n_ok, kb / 1024, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--side", type=int, default=6000)
    parser.add_argument("--unbounded", action="store_true")
    parser.add_argument("--json-out", default=str(BENCH_DIR / "decode_memory.json"))
    args = parser.parse_args(argv)
    runs = [("pillow", "pillow", 0), ("torch-cpu", "torch-cpu", 0)]
    if args.unbounded:
        runs.append(("torch-cpu, no pixel budget", "torch-cpu", 10 ** 15))
    report = {"count": args.count, "side": args.side, "runs": []}
    with tempfile.TemporaryDirectory() as folder:
        paths, size = write_jpegs(folder, args.count, args.side)
        print(f"{args.count} x {args.side}x{args.side} JPEGs ({size / 1e6:.2f} MB each)")
        print(f"{'decoder':<28}{'embedded':>10}{'peak MB':>10}{'s':>8}")
        for label, decoder, budget in runs:
            n_ok, mb, seconds = peak(decoder, paths, budget)
            print(f"{label:<28}{n_ok:>10}{mb:>10.0f}{seconds:>8.1f}")
            report["runs"].append({"decoder": label, "embedded": n_ok, "peak_mb": mb, "seconds": seconds})
    write_report(report, args.json_out)


if __name__ == "__main__":
    main()
