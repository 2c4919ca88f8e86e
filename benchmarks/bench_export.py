"""The exported ONNX file: its size, and single-image latency in ONNX Runtime vs the Python estimator.

Usage::

    python benchmarks/bench_export.py [--model artifacts/models] [--calls 100] [--json-out ...]

``--model`` is a saved CNN model (default: the one ``make demo`` promoted). Without one, a Lite0 +
Lite2 logistic-regression model with 'unknown' is fitted on 200 shared train photos and the offline
check set (the graph's size and speed do not depend on how many photos the head saw).

Both sides start from the same decoded RGB photo, one shared test photo per call, warm, no cache:
ONNX Runtime (CPU, default threads) runs crop + :class:`catdog_sk.deploy.OnnxModel`; the estimator
runs ``featurize`` (crop + OpenVINO) + ``predict_features``. p50/p99 over ``--calls`` calls, interleaved.
Also: agreement of the labels on those photos.
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from _report import BENCH_DIR, SHARED, write_report


def _model(path):
    from catdog_sk.models import load_model

    if path and Path(path).exists():
        return load_model(path), str(path)
    from catdog_sk import CatDogClassifier
    from catdog_sk.data import load_dataset

    train = load_dataset(SHARED)["train"]
    idx = np.r_[0:100, 1000:1100]
    clf = CatDogClassifier(backbone="efficientnet_lite0+efficientnet_lite2", scale=None, C=100, unknown="auto",
                           random_state=0)
    clf.fit([train.paths[i] for i in idx], train.labels[idx])
    return clf, "fitted here on 200 shared train photos"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="artifacts/models")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--json-out", default=str(BENCH_DIR / "export.json"))
    args = parser.parse_args(argv)

    from catdog_sk.data import load_dataset
    from catdog_sk.deploy import OnnxModel, write_onnx
    from catdog_sk.preprocess import read_image

    clf, source = _model(args.model)
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-"))
    t0 = time.perf_counter()
    onnx_path, _ = write_onnx(clf, tmp / "model.onnx")
    export_s = time.perf_counter() - t0
    size_mb = os.path.getsize(onnx_path) / 1e6
    ort_model = OnnxModel(onnx_path)

    test = load_dataset(SHARED)["test"]
    pick = np.linspace(0, len(test.paths) - 1, args.calls).astype(int)
    images = [read_image(test.paths[i]) for i in pick]
    for im in images[:3]:  # warm both
        ort_model.run([im])
        clf.predict_features(clf.featurize([im], cache=None).features)
    ort_ms, est_ms, same = [], [], 0
    for im in images:
        t = time.perf_counter()
        label_onnx = ort_model.run([im])[0][0]
        ort_ms.append(1000 * (time.perf_counter() - t))
        t = time.perf_counter()
        label_est = clf.predict_features(clf.featurize([im], cache=None).features).labels[0]
        est_ms.append(1000 * (time.perf_counter() - t))
        same += label_onnx == label_est
    rows = {"onnxruntime": ort_ms, "catdog_sk estimator (OpenVINO)": est_ms}
    print(f"model: {source}; backbone {clf.backbone}; ONNX file {size_mb:.1f} MB, exported in {export_s:.1f} s")
    print(f"{'single image, decoded, warm':34s} {'p50 ms':>8s} {'p99 ms':>8s} {'ratio':>7s}")
    base = np.median(est_ms)
    for name, ms in rows.items():
        print(f"{name:34s} {np.median(ms):8.1f} {np.percentile(ms, 99):8.1f} {base / np.median(ms):6.2f}x")
    print(f"labels identical on {same} of {len(images)} photos")
    write_report({"model": source, "backbone": clf.backbone, "onnx_mb": round(size_mb, 2),
                  "export_s": round(export_s, 1), "calls": len(images), "labels_identical": int(same),
                  **{name: {"p50_ms": round(float(np.median(ms)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}
                     for name, ms in rows.items()}}, args.json_out)


if __name__ == "__main__":
    main()
