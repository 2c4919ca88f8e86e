"""
Replaying shifted traffic through the monitor
=============================================

``monitor`` compares live traffic with the test set a model was scored on. Three of its statistics
are plain functions of :mod:`catdog_sk.monitoring`: the PSI of the P(dog) distribution
(:func:`~catdog_sk.monitoring.psi`), and two measures of drift of the CNN embeddings, the
cross-validated AUC of a classifier telling live embeddings from the reference ones
(:func:`~catdog_sk.monitoring.domain_classifier_auc`, 0.5 = no drift) and the RBF-kernel MMD²
(:func:`~catdog_sk.monitoring.mmd_rbf`).

Here the reference is 200 photos of the shared Asirra ``test/`` split. Three "live" windows of 100
photos each are replayed against it: more Asirra test photos (no shift), breed photos of cats and dogs
from ``breeds/`` (still pets, but studio and show photos), and Asirra photos with 30% of ``animals10``'s
other animals mixed in. The alert rates of the user guide (:doc:`/user_guide/monitoring`) come from
``benchmarks/bench_monitor.py`` on the full sets; these small windows only show the mechanics.
"""

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from catdog_sk import CatDogClassifier
from catdog_sk.data import find_images
from catdog_sk.features import HEAD_COLUMNS, extract_features, make_extractor
from catdog_sk.monitoring import DEFAULT_MAX_DOMAIN_AUC, DEFAULT_MAX_PSI, domain_classifier_auc, mmd_rbf, psi

catsdogs = Path(os.environ.get("CATDOG_SHARED_DATA", "../../../shared/data/catsdogs"))  # train/, test/
cache = os.environ.get("CATDOG_DOCS_CACHE", "../_build/feature-cache")

rng = np.random.default_rng(0)
test = find_images(catsdogs / "test")
asirra = list(rng.permutation(test.paths)[:400])
breeds = find_images(catsdogs.parent / "breeds")
animals = catsdogs.parent / "animals10"
other_animals = sorted(str(p) for d in animals.iterdir() if d.name not in ("cat", "dog") for p in d.iterdir())

reference = asirra[:200]
windows = {
    "Asirra (no shift)": asirra[200:300],
    "breed photos": list(rng.permutation(breeds.paths)[:100]),
    "30% other animals": asirra[300:370] + list(rng.permutation(other_animals)[:30]),
}

# %%
# Embeddings of each window
# -------------------------
# :func:`catdog_sk.features.extract_features` runs any extractor plans over a list of photos, decoding
# each photo once and reading what it can from the cache. The ``cnn`` plan appends the ImageNet head's
# log-probabilities (one column per name in ``HEAD_COLUMNS``) after the embedding: the drift statistics use the embedding.
cnn = make_extractor("cnn")


def embed(paths):
    F = extract_features(paths, [cnn], cache=cache).features[0]
    return F[:, :-len(HEAD_COLUMNS)]


E_ref = embed(reference)
E_live = {name: embed(paths) for name, paths in windows.items()}
print("embedding size:", E_ref.shape[1])

# %%
# P(dog) from a model fitted on other photos
# ------------------------------------------
train = find_images(catsdogs / "train")
keep = np.concatenate([np.flatnonzero(train.labels == c)[:20] for c in ("cat", "dog")])
clf = CatDogClassifier(features="cnn", cache=cache, random_state=0)
clf.fit([train.paths[i] for i in keep], train.labels[keep])
p_ref = clf.predict_proba(reference)[:, 1]
p_live = {name: clf.predict_proba(paths)[:, 1] for name, paths in windows.items()}

# %%
# The monitor's statistics, window by window
# ------------------------------------------
rows = {}
for name in windows:
    rows[name] = (psi(p_ref, p_live[name]), domain_classifier_auc(E_ref, E_live[name]),
                  mmd_rbf(E_ref, E_live[name]))
    print(f"{name:>18}: PSI {rows[name][0]:.3f}  embedding AUC {rows[name][1]:.3f}  MMD² {rows[name][2]:.4f}")

fig, axes = plt.subplots(1, 3, figsize=(10, 3.5))
limits = [DEFAULT_MAX_PSI, DEFAULT_MAX_DOMAIN_AUC, None]
for k, (ax, title) in enumerate(zip(axes, ["PSI of P(dog)", "embedding AUC", "MMD²"])):
    ax.bar(range(len(rows)), [r[k] for r in rows.values()], color=["#74c476", "#6baed6", "#e6550d"])
    ax.set_xticks(range(len(rows)), ["Asirra\n(no shift)", "breed\nphotos", "30% other\nanimals"], fontsize=8)
    if limits[k] is not None:
        ax.axhline(limits[k], color="k", ls="--", lw=1, label="default alert")
        ax.legend(fontsize=8)
    ax.set_title(title)
fig.suptitle("100 live photos against 200 Asirra test photos")
fig.tight_layout()
plt.show()

# %%
# What PSI looks at
# -----------------
# PSI compares the histograms of P(dog) in ten fixed bins (``SCORE_BINS``); other animals move the
# histogram. This model, fitted on 40 photos, is less sure of itself than the README's, so its P(dog)
# moves more easily: in the user guide's replays (the Lite0 + Lite2 model, a reference of 2,000 test photos,
# ``benchmarks/bench_monitor.py``) PSI of P(dog) alerted in 3% of 100-photo windows with 30% other
# animals, where the share answered ``unknown`` alerted in all of them. That share is the monitor's first
# signal (see the "unknown" example).
fig, ax = plt.subplots(figsize=(6, 3.5))
bins = np.linspace(0, 1, 11)
ax.hist(p_ref, bins=bins, histtype="step", lw=2, color="k", label="reference (Asirra)")
for (name, p), color in zip(p_live.items(), ["#74c476", "#6baed6", "#e6550d"]):
    ax.hist(p, bins=bins, histtype="step", lw=1.5, color=color, label=name)
ax.set_xlabel("P(dog)")
ax.set_ylabel("photos")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
