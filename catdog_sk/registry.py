"""The names users choose from, in one place: extractors, feature sets and classifier families.

Plain data that imports nothing heavy, so that every command's ``--help`` and ``choices``, the
estimators' parameter checks and the tests' parametrisation all read the same dicts. Adding a name
here (and its factory in :func:`catdog_sk.features.make_extractor` or
:func:`catdog_sk.models.make_pipeline`) adds it everywhere.
"""

from dataclasses import dataclass

__all__ = ["EXTRACTORS", "FEATURE_SETS", "OPT_IN_FEATURE_SETS", "MODELS", "FINETUNE", "ModelSpec"]

#: Base extractor name -> what it computes (see :func:`catdog_sk.features.make_extractor`).
EXTRACTORS = {
    "hog": "histogram of oriented gradients of the photo, resized and in grey",
    "color": "joint HSV colour histogram (8 x 8 x 8 bins)",
    "dense": "dense DAISY descriptors (encoded by VLAD in 'vlad', by Fisher vectors in 'fisher')",
    "texture": "LBP and colour histogram pyramids",
    "cnn": "frozen CNN embedding (unit norm per backbone) + the ImageNet head's dog/cat/other log-probabilities",
}

#: Feature-set name -> the base extractors it concatenates, in order.
FEATURE_SETS = {
    "hog": ("hog",),
    "color": ("color",),
    "hog+color": ("hog", "color"),
    # No neural network: VLAD of dense DAISY descriptors + LBP/colour pyramids (chi-squared map).
    "vlad": ("dense", "texture"),
    # The same features with Fisher vectors over a 1 + 4-cell spatial pyramid instead of VLAD:
    # 86.70% on the shared test where 'vlad' gives 82.85% (README), for ~4x its tuning time.
    "fisher": ("dense", "texture"),
    "cnn": ("cnn",),
    "all": ("hog", "color", "cnn"),
}

#: Feature sets that ``fit`` tunes only when ``--features`` names them: the rest are its default list.
#: ``fisher`` is left out so that ``fit --model all`` (run once by the test suite) keeps its time.
OPT_IN_FEATURE_SETS = ("fisher",)


@dataclass(frozen=True)
class ModelSpec:
    """A classifier family: how to build it and what to search over.

    Attributes
    ----------
    name : str
    description : str
    grid : dict
        Grid over the classifier's own parameters, ``pca`` and ``scale``, per
        feature kind: ``'classic'`` (HOG/colour), ``'local'`` (VLAD + texture),
        ``'cnn'`` (CNN only) and ``'mixed'`` (HOG, colour and CNN); see
        :func:`feature_kind`.
    """

    name: str
    description: str
    grid: dict


MODELS = {
    "svm": ModelSpec(
        name="svm",
        description="support vector machine (RBF and linear kernels)",
        grid={
            # HOG/colour vectors are long (8,100 + 512) and noisy: 256 principal
            # components keep the CV accuracy and make each RBF fit ~8x faster.
            "classic": [
                {"pca": [256], "kernel": ["rbf"], "C": [1.0, 10.0], "gamma": ["scale"]},
                {"pca": [256], "kernel": ["linear"], "C": [0.001]},
            ],
            # VLAD + chi-squared-mapped histograms are built for linear models.
            # (one C: CV chose 0.3 over 3 when libsvm took ~15 s a fit on ~7,800 dims; liblinear takes 1.7 s)
            "local": [{"scale": [None], "kernel": ["linear"], "C": [0.3]}],
            "cnn": [
                {"kernel": ["rbf"], "C": [1.0, 10.0], "gamma": ["scale"]},
                {"kernel": ["linear"], "C": [0.001, 0.01]},
            ],
            # CNN + HOG + colour (~9,900 dims): an RBF SVM on all of it takes
            # minutes per fit; 512 components bring it to seconds.
            "mixed": [
                {"pca": [512], "kernel": ["rbf"], "C": [1.0, 10.0], "gamma": ["scale"]},
            ],
        },
    ),
    "logreg": ModelSpec(
        name="logreg",
        description="L2-regularised logistic regression",
        grid={
            "classic": [{"pca": [256], "C": [0.001, 0.01, 0.1]}],
            "local": [{"scale": [None], "C": [3.0, 30.0]}],
            # CNN embeddings are unit vectors per backbone: unscaled, a weakly
            # regularised fit keeps their geometry (99.50% on the shared test with
            # Lite0+Lite2, vs 99.40% standardised); CV chooses between the two.
            "cnn": [{"scale": [None], "C": [10.0, 30.0, 100.0]}, {"C": [0.003, 0.03]}],
            "mixed": [{"C": [0.001, 0.003, 0.03]}],
        },
    ),
}

#: The model that trains the network itself instead of a classifier on cached frozen features:
#: ``CatDogClassifier(model='finetune')`` / ``fit --model finetune``. Not in ``MODELS`` (it has no grid
#: over cached features, and ``fit --model all`` stays the frozen-feature comparison).
FINETUNE = {
    "finetune": "linear probe, then fine-tuning of a bundled backbone (BatchNorm frozen, early stopping on a "
                "held-out 10%); calibrated logistic regression on its embeddings",
}
