"""Peak memory vs dataset size, and single-image predict latency, measured side by side.

Usage::

    python benchmarks/bench_memory_latency.py [--json-out artifacts/bench/memory_latency.json]

Memory: extraction of all features (HOG, colour, CNN; no cache) over 2,000 and over 4,000 shared
photos, each in a fresh subprocess, peak resident set size read from ``getrusage``. Streaming
extraction holds about two chunks of decoded images, so the peak should not grow with the number of
images (the output matrix, 11 KB per image here, is the only part that does).

Latency: a CatDogClassifier (Lite0 + logistic regression) fitted on 200 train photos predicts one
test photo at a time, warm, no cache; p50 and p99 over 200 calls, in-process and over HTTP (the
``serve`` command on 127.0.0.1, base64 JSON requests, sequential).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from _report import BENCH_DIR, PEAK_RSS_CODE, SHARED, write_report

_CHILD = PEAK_RSS_CODE + """
import sys
from catdog_sk.data import find_images
from catdog_sk.features import extract_features, make_extractor
paths = []
for split in sys.argv[2:]:
    paths += find_images(split).paths
paths = paths[: int(sys.argv[1])]
res = extract_features(paths, [make_extractor(n) for n in ("hog", "color", "cnn")])
print(len(paths), res.ok.sum(), peak_rss_kb())
"""


def peak_rss_mb(n, data):
    out = subprocess.run([sys.executable, "-c", _CHILD, str(n), str(data / "train"), str(data / "test")],
                         capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[2]) / 1024


def latency(data, n_calls=200):
    """p50/p99 ms of one-image predictions, in-process and over HTTP on 127.0.0.1."""
    import base64
    import json
    import socket
    import tempfile
    import urllib.request

    from catdog_sk import CatDogClassifier
    from catdog_sk.data import find_images
    from catdog_sk.models import save_model

    train = find_images(data / "train")
    idx = np.r_[0:100, 1000:1100]
    clf = CatDogClassifier().fit([train.paths[i] for i in idx], train.labels[idx])
    test = find_images(data / "test").paths[:n_calls]
    clf.predict(test[:5])  # warm
    in_process = []
    for p in test:
        t = time.perf_counter()
        clf.predict([p])
        in_process.append(1000 * (time.perf_counter() - t))

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        save_model(clf, Path(tmp) / "model")
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        server = subprocess.Popen([sys.executable, "-m", "catdog_sk.serve", "--model", str(Path(tmp) / "model"),
                                   "--port", str(port), "--quiet"], stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(120):  # wait up to 60 s for the server
                try:
                    urllib.request.urlopen(url + "/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.5)
            bodies = [json.dumps({"images": [base64.b64encode(open(p, "rb").read()).decode()]}).encode()
                      for p in test]
            over_http = []
            for body in bodies[:5] + bodies:  # the first five warm the server up
                req = urllib.request.Request(url + "/predict", data=body, headers={"content-type": "application/json"})
                t = time.perf_counter()
                urllib.request.urlopen(req, timeout=30).read()
                over_http.append(1000 * (time.perf_counter() - t))
            over_http = over_http[5:]
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"in_process": [float(np.percentile(in_process, q)) for q in (50, 99)],
            "http": [float(np.percentile(over_http, q)) for q in (50, 99)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--json-out", default=str(BENCH_DIR / "memory_latency.json"))
    args = parser.parse_args(argv)
    data = Path(args.data)
    mem = [peak_rss_mb(n, data) for n in (2000, 4000)]
    lat = latency(data)
    report = {"peak_rss_mb": {str(n): round(mb, 1) for n, mb in mem},
              "peak_ratio_4000_over_2000": round(mem[1][1] / mem[0][1], 3),
              "predict_one_image_ms": {where: {"p50": round(v[0], 2), "p99": round(v[1], 2)}
                                       for where, v in lat.items()}}
    print(f"peak RSS extracting 2,000 images: {mem[0][1]:.0f} MB; 4,000 images: {mem[1][1]:.0f} MB "
          f"(ratio {report['peak_ratio_4000_over_2000']})")
    for where, (p50, p99) in lat.items():
        print(f"single-image predict, {where.replace('_', '-')}, warm: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    write_report(report, args.json_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
