"""
Exporting to ONNX and running the file
======================================

``export --format onnx`` writes a fitted ``features="cnn"`` model as one ONNX graph: uint8 RGB crops
in; class probabilities, the presence score and the label (``-1`` for ``unknown``) out, with the
normalisation, the backbone, the ImageNet head, the presence model, the scikit-learn pipeline and the
abstain rule inside. A JSON file beside it says how to crop the images. In Python,
:func:`catdog_sk.deploy.write_onnx` writes both and :class:`catdog_sk.deploy.OnnxModel` runs them with
ONNX Runtime, the reference for any other runtime (the browser page of ``export --format web`` included).

The model here is fitted on 40 Asirra photos with 16 ``animals10`` other animals as negatives; the
export itself takes about ten seconds.
"""

import json
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from catdog_sk import CatDogClassifier
from catdog_sk.data import find_images

catsdogs = Path(os.environ.get("CATDOG_SHARED_DATA", "../../../shared/data/catsdogs"))  # train/, test/
cache = os.environ.get("CATDOG_DOCS_CACHE", "../_build/feature-cache")


def first(images, n):
    keep = np.concatenate([np.flatnonzero(images.labels == c)[:n] for c in ("cat", "dog")])
    return [images.paths[i] for i in keep], images.labels[keep]


X_train, y_train = first(find_images(catsdogs / "train"), 20)
X_test, _ = first(find_images(catsdogs / "test"), 20)
animals = catsdogs.parent / "animals10"
kinds = sorted(d.name for d in animals.iterdir() if d.is_dir() and d.name not in ("cat", "dog"))
negatives = [str(p) for k in kinds for p in sorted((animals / k).iterdir())[:2]]
elsewhere = [str(p) for k in kinds for p in sorted((animals / k).iterdir())[2:3]]  # not fitted on

clf = CatDogClassifier(features="cnn", unknown="auto", cache=cache, random_state=0)
clf.fit(X_train, y_train, negatives=negatives)

# %%
# Write the file
# --------------
from catdog_sk.deploy import OnnxModel, write_onnx

out = Path(tempfile.mkdtemp(prefix="catdog-onnx-")) / "catdog.onnx"  # never inside the repository
start = time.perf_counter()
write_onnx(clf, out)
print(f"exported in {time.perf_counter() - start:.1f} s: {out.name}, {out.stat().st_size / 1e6:.1f} MB")
meta = json.loads(out.with_suffix(".json").read_text())
print(json.dumps({k: meta[k] for k in ("classes", "inputs", "threshold")}, indent=1))

# %%
# Run it with ONNX Runtime
# ------------------------
# :meth:`OnnxModel.run <catdog_sk.deploy.OnnxModel.run>` takes decoded RGB images and crops them as the
# JSON says; :func:`catdog_sk.preprocess.read_image` decodes any file the way the estimator does.
from catdog_sk.preprocess import read_image

photos = X_test + elsewhere
model = OnnxModel(out)
labels, proba, presence = model.run([read_image(p) for p in photos])
expected = clf.predict(photos)
print(f"same label as CatDogClassifier.predict: {np.mean(labels == expected.astype(object)):.0%} "
      f"of {len(photos)} photos ({np.sum(labels == 'unknown')} answered 'unknown')")
print(f"largest difference in P(dog): {np.abs(proba[:, 1] - clf.predict_proba(photos)[:, 1]).max():.1e}")

# %%
# The same answers, from two runtimes
# -----------------------------------
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
axes[0].plot([0, 1], [0, 1], color="grey", lw=0.8)
axes[0].scatter(clf.predict_proba(photos)[:, 1], proba[:, 1], s=14)
axes[0].set_xlabel("P(dog), CatDogClassifier (OpenVINO)")
axes[0].set_ylabel("P(dog), the ONNX file (ONNX Runtime)")
axes[1].plot([0, 1], [0, 1], color="grey", lw=0.8)
axes[1].scatter(clf.presence_score(photos), presence, s=14, c=["#3182bd"] * len(X_test) + ["#e6550d"] * len(elsewhere))
axes[1].axhline(meta["threshold"], color="k", ls="--", lw=1)
axes[1].set_xlabel("presence score, CatDogClassifier")
axes[1].set_ylabel("presence score, ONNX file (orange: other animals)")
fig.tight_layout()
plt.show()
