"""
The "unknown" trade-off
=======================

With ``unknown="auto"`` and photos of other animals as ``negatives``, :class:`catdog_sk.CatDogClassifier`
answers ``'unknown'`` for photos that show neither a cat nor a dog. Its ``presence_score`` says how surely
a pet is there; below ``presence_threshold_`` the answer is ``'unknown'``. This example fits it on 40
Asirra photos with half of the ``animals10`` other animals (4 of each of the 8), and plots the scores of
photos used for neither: held-out Asirra pets, ``animals10``'s web photos of cats and dogs, and the
other half of its other animals. (The README's figures come from the full sets and Lite0 + Lite2.)
"""

import os
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
X_pets, _ = first(find_images(catsdogs / "test"), 20)
animals = catsdogs.parent / "animals10"
others = sorted(p.name for p in animals.iterdir() if p.is_dir() and p.name not in ("cat", "dog"))
photos = {kind: sorted(str(p) for p in (animals / kind).iterdir()) for kind in others + ["cat", "dog"]}
negatives = [p for kind in others for p in photos[kind][:4]]  # fitted on
held_out = {kind: photos[kind][4:8] for kind in others}       # reported on
web_pets = photos["cat"][:8] + photos["dog"][:8]

# %%
# Fit with negatives
# ------------------
# The offline check set (:mod:`catdog_sk.checkset`: sample photos, crops, synthetic images) is always
# added to the negatives.
clf = CatDogClassifier(features="cnn", unknown="auto", cache=cache, random_state=0)
clf.fit(X_train, y_train, negatives=negatives)
print(f"presence threshold: {clf.presence_threshold_:.3f}")

# %%
# Answers on photos of neither
# ----------------------------
other_photos = [p for kind in others for p in held_out[kind]]
labels = clf.predict(other_photos)
for kind in others:
    answered = labels[[p in held_out[kind] for p in other_photos]]
    print(f"{kind:>9}: {np.mean(answered == 'unknown'):.0%} answered 'unknown' ({len(answered)} photos)")

# %%
# The presence scores, and where the threshold cuts
# -------------------------------------------------
groups = {"Asirra test pets (40)": X_pets, "animals10 cats and dogs (16)": web_pets,
          f"animals10 other animals ({len(other_photos)})": other_photos}
scores = {name: clf.presence_score(paths) for name, paths in groups.items()}
fig, ax = plt.subplots(figsize=(7, 4))
bins = np.linspace(0, 1, 26)
for (name, s), color in zip(scores.items(), ["#3182bd", "#6baed6", "#e6550d"]):
    ax.hist(s, bins=bins, alpha=0.6, label=f"{name}: {np.mean(s < clf.presence_threshold_):.0%} unknown",
            color=color)
ax.axvline(clf.presence_threshold_, color="k", ls="--", label="presence_threshold_")
ax.set_xlabel("presence score")
ax.set_ylabel("photos")
ax.set_title("Photos used neither for fitting nor for the threshold")
ax.legend(fontsize=8, loc="upper center")
fig.tight_layout()
plt.show()

# %%
# Moving the threshold
# --------------------
# A float ``unknown`` (e.g. ``unknown=0.8``) abstains more; the curve shows what each threshold costs:
# the share of pets answered ``unknown`` against the share of other animals let through.
thresholds = np.linspace(0, 1, 101)
pets = np.concatenate([scores["Asirra test pets (40)"], scores["animals10 cats and dogs (16)"]])
neither = scores[f"animals10 other animals ({len(other_photos)})"]
fig, ax = plt.subplots(figsize=(5, 4))
ax.plot([np.mean(pets < t) for t in thresholds], [np.mean(neither >= t) for t in thresholds], "-")
ax.plot(np.mean(pets < clf.presence_threshold_), np.mean(neither >= clf.presence_threshold_), "ko",
        label="the fitted threshold")
ax.set_xlabel("pets answered 'unknown'")
ax.set_ylabel("other animals accepted as pets")
ax.legend()
fig.tight_layout()
plt.show()
