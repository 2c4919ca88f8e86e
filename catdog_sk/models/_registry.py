"""Named feature sets and classifier pipelines with their hyper-parameter grids.

Plain data behind two dicts, so the CLI's ``choices`` and the tests'
parametrisation come from one place.
"""

from dataclasses import dataclass

__all__ = ["FEATURE_SETS", "MODELS", "ModelSpec", "make_pipeline", "param_grid", "grid_summary",
           "classifier_params"]

#: Feature-set name -> the base extractors it concatenates, in order.
FEATURE_SETS = {
    "hog": ("hog",),
    "color": ("color",),
    "hog+color": ("hog", "color"),
    "cnn": ("cnn",),
    "all": ("hog", "color", "cnn"),
}


@dataclass(frozen=True)
class ModelSpec:
    """A classifier family: how to build it and what to search over.

    Attributes
    ----------
    name : str
    description : str
    grid : dict
        Grid over the classifier's own parameters and ``pca``, per feature
        kind: ``'classic'`` (HOG/colour only), ``'cnn'`` (CNN only) and
        ``'mixed'`` (both); see :func:`feature_kind`.
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
            "cnn": [{"C": [0.003, 0.03, 0.3]}],
            "mixed": [{"C": [0.001, 0.003, 0.03]}],
        },
    ),
}


def _classifier(model, *, C=1.0, kernel="rbf", gamma="scale", class_weight=None, calibrate=False,
                random_state=None, calibration_cv=5):
    if model == "svm":
        from sklearn.svm import SVC

        svc = SVC(C=C, kernel=kernel, gamma=gamma, class_weight=class_weight, random_state=random_state)
        if not calibrate:
            return svc
        # An SVM gives margins, not probabilities: Platt scaling fitted on
        # out-of-fold margins, then one SVC on all data (ensemble=False).
        from sklearn.calibration import CalibratedClassifierCV

        return CalibratedClassifierCV(svc, method="sigmoid", cv=calibration_cv, ensemble=False)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, random_state=random_state)


def make_pipeline(model, *, C=1.0, kernel="rbf", gamma="scale", pca=None, class_weight=None,
                  calibrate=False, random_state=None, max_components=None, calibration_cv=5):
    """Scaling, optional PCA and a classifier, as a scikit-learn Pipeline.

    Parameters
    ----------
    model : {'svm', 'logreg'}
    C : float, default=1.0
        Inverse regularisation strength.
    kernel : {'rbf', 'linear'}, default='rbf'
        SVM only.
    gamma : 'scale' or float, default='scale'
        RBF width, SVM only.
    pca : int or None, default=None
        Keep this many principal components (whitened off); None keeps all.
    class_weight : None or 'balanced', default=None
    calibrate : bool, default=False
        SVM only: wrap it in Platt scaling so ``predict_proba`` exists (about 2x slower fit).
    random_state : int, default=None
    max_components : int, default=None
        Cap on ``pca`` (PCA needs no more components than samples or features).
    calibration_cv : int, default=5
        Folds for the SVM's Platt scaling (at most the smallest class count).

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``'scale'``, ``'pca'`` and ``'clf'``.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        ("scale", StandardScaler()),
        ("pca", _pca(pca, random_state, max_components)),
        ("clf", _classifier(model, C=C, kernel=kernel, gamma=gamma, class_weight=class_weight,
                            calibrate=calibrate, random_state=random_state, calibration_cv=calibration_cv)),
    ])


def _pca(n_components, random_state, max_components=None):
    if not n_components:
        return "passthrough"
    from sklearn.decomposition import PCA

    if max_components is not None:
        n_components = max(1, min(n_components, max_components))
    return PCA(n_components=n_components, random_state=random_state)


def feature_kind(feature_set):
    """'classic', 'cnn' or 'mixed': which grid a feature set is searched with."""
    names = FEATURE_SETS[feature_set]
    if "cnn" not in names:
        return "classic"
    return "cnn" if len(names) == 1 else "mixed"


def param_grid(model, feature_set, *, random_state=None, max_components=None):
    """GridSearchCV grid for a model's pipeline on a feature set.

    Classifier parameters become ``clf__<name>``; ``pca`` becomes a choice of
    the ``pca`` step (a PCA or ``'passthrough'``), capped at ``max_components``.
    """
    grids = []
    for sub in MODELS[model].grid[feature_kind(feature_set)]:
        grid = {}
        for key, values in sub.items():
            if key == "pca":
                grid["pca"] = [_pca(v, random_state, max_components) for v in values]
            else:
                grid[f"clf__{key}"] = list(values)
        grids.append(grid)
    return grids


def grid_summary(model, feature_set):
    """The grid as plain, JSON-friendly data (for model cards)."""
    return [dict(sub) for sub in MODELS[model].grid[feature_kind(feature_set)]]


def classifier_params(search_params):
    """Map GridSearchCV ``best_params_`` back to CatDogClassifier parameters."""
    out = {}
    for key, value in search_params.items():
        if key == "pca":
            out["pca"] = None if value == "passthrough" else int(value.n_components)
        else:
            out[key.removeprefix("clf__")] = value
    return out
