"""
Comparing feature sets
======================

``fit --model all`` compares every feature set and model side by side. Here the same comparison in
miniature: HOG, colour histograms and CNN embeddings, each through :class:`catdog_sk.CatDogClassifier`
with a logistic regression, scored by 2-fold cross-validation on 200 training photos of the shared
Asirra set. On the full 2,000 training photos the README's table ranks them the same way
(``cnn`` far ahead, then ``hog``, then ``color``).
"""

import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import StratifiedKFold, cross_val_score

from catdog_sk import CatDogClassifier
from catdog_sk.data import find_images

catsdogs = Path(os.environ.get("CATDOG_SHARED_DATA", "../../../shared/data/catsdogs"))  # train/, test/
cache = os.environ.get("CATDOG_DOCS_CACHE", "../_build/feature-cache")

train = find_images(catsdogs / "train")
keep = np.concatenate([np.flatnonzero(train.labels == c)[:100] for c in ("cat", "dog")])
X, y = [train.paths[i] for i in keep], train.labels[keep]

# %%
# The feature sets
# ----------------
# ``hog`` and ``color`` are classic descriptors computed with NumPy; ``cnn`` is the frozen
# EfficientNet-Lite0 embedding. ``catdog_sk.registry.FEATURE_SETS`` lists every choice.
from catdog_sk.registry import FEATURE_SETS

print(sorted(FEATURE_SETS))

# %%
# Cross-validate each one
# -----------------------
cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
scores, seconds = {}, {}
for features, C in [("hog", 0.001), ("color", 0.01), ("cnn", 1.0)]:
    start = time.perf_counter()
    clf = CatDogClassifier(features=features, model="logreg", C=C, cache=cache, random_state=0)
    scores[features] = cross_val_score(clf, X, y, cv=cv)
    seconds[features] = time.perf_counter() - start
    print(f"{features:>6}: CV accuracy {scores[features].mean():.3f} ({seconds[features]:.1f} s)")

# %%
# The comparison bar chart
# ------------------------
names = list(scores)
fig, ax = plt.subplots(figsize=(6, 3.5))
means = [scores[n].mean() for n in names]
ax.bar(names, means, color=["#8c6d31", "#bd9e39", "#3182bd"])
for i, n in enumerate(names):
    ax.plot([i] * len(scores[n]), scores[n], "k.", label="fold" if i == 0 else None)
    ax.text(i + 0.25, means[i] + 0.02, f"{means[i]:.2f}", ha="center")
ax.set_ylim(0, 1.1)
ax.axhline(0.5, color="grey", lw=0.8, ls="--")
ax.set_ylabel("2-fold CV accuracy")
ax.set_title("200 Asirra training photos, logistic regression")
ax.legend(loc="lower right")
fig.tight_layout()
plt.show()
