"""Named feature sets and classifier pipelines with their hyper-parameter grids.

The names and grids are plain data in :mod:`catdog_sk.registry`; this module builds the
scikit-learn objects they name.
"""

from ..registry import FEATURE_SETS, MODELS, ModelSpec

__all__ = ["FEATURE_SETS", "MODELS", "ModelSpec", "make_pipeline", "param_grid", "grid_summary",
           "classifier_params"]


#: Coordinate-descent passes allowed to liblinear for a linear SVM (its default, 1,000, stops short on
#: standardised CNN embeddings at small C).
LINEAR_SVM_MAX_ITER = 20_000


def _classifier(model, *, C=1.0, kernel="rbf", gamma="scale", class_weight=None, calibrate=False,
                random_state=None, calibration_cv=5):
    from .._validation import check_choice

    check_choice(model, tuple(sorted(MODELS)), name="model", caller="make_pipeline")
    if model == "svm" and kernel == "linear":
        # The same hinge-loss SVM solved by liblinear instead of libsvm: on the shared split's VLAD
        # features (2,000 x 7,780) 1.7 s instead of 15.5 s a fit, test accuracy 82.05% vs 82.10%
        # uncalibrated (82.00% vs 81.95% in fit's calibrated row).
        from sklearn.svm import LinearSVC

        clf = LinearSVC(C=C, loss="hinge", dual=True, max_iter=LINEAR_SVM_MAX_ITER, class_weight=class_weight,
                        random_state=random_state)
    elif model == "svm":
        from sklearn.svm import SVC

        clf = SVC(C=C, kernel=kernel, gamma=gamma, class_weight=class_weight, random_state=random_state)
    else:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=C, class_weight=class_weight, max_iter=5000, random_state=random_state)
    if not calibrate:
        return clf
    # Platt scaling fitted on out-of-fold scores, then one classifier on all
    # data (ensemble=False). An SVM gives margins, not probabilities; a
    # regularised logistic regression gives probabilities that are too
    # cautious (ECE 0.022 on the shared test) until recalibrated (0.004).
    from sklearn.calibration import CalibratedClassifierCV

    return CalibratedClassifierCV(clf, method="sigmoid", cv=calibration_cv, ensemble=False)


def make_pipeline(model, *, C=1.0, kernel="rbf", gamma="scale", pca=None, class_weight=None,
                  calibrate=False, random_state=None, max_components=None, calibration_cv=5, scale="standard",
                  feature_set=None, memory=None):
    """Encoding, scaling, optional PCA and a classifier, as a scikit-learn Pipeline.

    Parameters
    ----------
    model : {'svm', 'logreg'}
    C : float, default=1.0
        Inverse regularisation strength.
    kernel : {'rbf', 'linear'}, default='rbf'
        SVM only. ``'linear'`` is solved by liblinear (``LinearSVC``, hinge loss): libsvm's
        linear-kernel model but for a regularised intercept, about nine times faster on long
        feature vectors.
    gamma : 'scale' or float, default='scale'
        RBF width, SVM only.
    pca : int or None, default=None
        Keep this many principal components (whitened off); None keeps all.
    class_weight : None or 'balanced', default=None
    calibrate : bool, default=False
        Wrap the classifier in Platt scaling fitted on out-of-fold scores, so
        an SVM has ``predict_proba`` and both give calibrated probabilities.
    random_state : int, default=None
    max_components : int, default=None
        Cap on ``pca`` (PCA needs no more components than samples or features).
    calibration_cv : int, default=5
        Folds for Platt scaling (at most the smallest class count).
    scale : {'standard', None}, default='standard'
        Standardise each feature first, or leave features as they are.
    feature_set : str, default=None
        The features the pipeline will see. For ``'vlad'`` and ``'fisher'``
        the first step encodes the descriptors (:class:`VLADEncoder`,
        :class:`FisherVectorEncoder`) and maps the histograms with an
        additive chi-squared kernel approximation; for the others it passes
        features through.

    memory : str or None, default=None
        Where the pipeline caches its fitted transformers (``Pipeline(memory=)``):
        a grid search over ``C`` then encodes and reduces each fold once.

    Returns
    -------
    pipeline : sklearn.pipeline.Pipeline
        Steps ``'encode'``, ``'scale'``, ``'pca'`` and ``'clf'``.
    """
    from sklearn.pipeline import Pipeline

    return Pipeline([
        ("encode", _encoder(feature_set, random_state)),
        ("scale", _scaler(scale)),
        ("pca", _pca(pca, random_state, max_components)),
        ("clf", _classifier(model, C=C, kernel=kernel, gamma=gamma, class_weight=class_weight,
                            calibrate=calibrate, random_state=random_state, calibration_cv=calibration_cv)),
    ], memory=memory)


def _encoder(feature_set, random_state):
    """'passthrough', or for local features: VLAD or Fisher vectors of the descriptors + chi-squared map of the histograms."""
    if feature_set is None or feature_kind(feature_set) != "local":
        return "passthrough"
    from sklearn.compose import ColumnTransformer
    from sklearn.kernel_approximation import AdditiveChi2Sampler

    from ..features import make_extractor

    if feature_set == "fisher":
        from ._fisher import FisherVectorEncoder as Encoder
    else:
        from ._vlad import VLADEncoder as Encoder

    parts, start = [], 0
    for name in FEATURE_SETS[feature_set]:
        width = make_extractor(name).n_features_out
        if name == "dense":
            parts.append((feature_set, Encoder(random_state=random_state), slice(start, start + width)))
        else:
            parts.append(("chi2", AdditiveChi2Sampler(sample_steps=2), slice(start, start + width)))
        start += width
    # The histograms' chi-squared features are weighed by 0.5 against the unit-norm VLAD or Fisher vector:
    # the weight of the run behind the README's 82.85% for 'vlad', not tuned further (nor for 'fisher').
    return ColumnTransformer(parts, transformer_weights={"chi2": 0.5})


def _pca(n_components, random_state, max_components=None):
    if not n_components:
        return "passthrough"
    from sklearn.decomposition import PCA

    if max_components is not None:
        n_components = max(1, min(n_components, max_components))
    return PCA(n_components=n_components, random_state=random_state)


def _scaler(scale):
    from sklearn.preprocessing import StandardScaler

    return StandardScaler() if scale == "standard" else "passthrough"


def feature_kind(feature_set):
    """'classic', 'local', 'cnn' or 'mixed': which grid (and encoder) a feature set is searched with.

    Parameters
    ----------
    feature_set : str
        A key of ``FEATURE_SETS``.

    Returns
    -------
    kind : {'classic', 'local', 'cnn', 'mixed'}
        ``'local'`` when it holds dense or texture features, ``'classic'``
        without a CNN, ``'cnn'`` for the CNN alone, else ``'mixed'``.
    """
    names = FEATURE_SETS[feature_set]
    if "dense" in names or "texture" in names:
        return "local"
    if "cnn" not in names:
        return "classic"
    return "cnn" if len(names) == 1 else "mixed"


def param_grid(model, feature_set, *, random_state=None, max_components=None):
    """GridSearchCV grid for a model's pipeline on a feature set.

    Classifier parameters become ``clf__<name>``; ``pca`` becomes a choice of
    the ``pca`` step (a PCA or ``'passthrough'``), capped at ``max_components``;
    a linear-SVM sub-grid becomes a choice of the ``clf`` step (one ``LinearSVC``
    per ``C``).

    Parameters
    ----------
    model : str
        A key of ``MODELS``.
    feature_set : str
        A key of ``FEATURE_SETS``; its :func:`feature_kind` picks the grid.
    random_state : int, default=None
        Seed of the PCA steps and of the swapped-in linear SVMs.
    max_components : int, default=None
        Upper bound on PCA components (e.g. the number of training samples);
        None leaves the grid's values as they are.

    Returns
    -------
    grids : list of dict
        One ``param_grid`` dict per sub-grid, as :class:`~sklearn.model_selection.GridSearchCV` takes it.
    """
    grids = []
    for sub in MODELS[model].grid[feature_kind(feature_set)]:
        sub, grid = dict(sub), {}
        if model == "svm" and sub.get("kernel") == ["linear"]:
            # a linear SVM is another estimator (LinearSVC, see _classifier): the grid swaps the step
            del sub["kernel"]
            grid["clf"] = [_classifier(model, C=c, kernel="linear", random_state=random_state) for c in sub.pop("C")]
        for key, values in sub.items():
            if key == "pca":
                grid["pca"] = [_pca(v, random_state, max_components) for v in values]
            elif key == "scale":
                grid["scale"] = [_scaler(v) for v in values]
            else:
                grid[f"clf__{key}"] = list(values)
        grids.append(grid)
    return grids


def grid_summary(model, feature_set):
    """The grid as plain, JSON-friendly data (for model cards).

    Parameters
    ----------
    model : str
        A key of ``MODELS``.
    feature_set : str
        A key of ``FEATURE_SETS``.

    Returns
    -------
    grids : list of dict
        The sub-grids as declared (CatDogClassifier parameter names, plain values).
    """
    return [dict(sub) for sub in MODELS[model].grid[feature_kind(feature_set)]]


def classifier_params(search_params):
    """Map GridSearchCV ``best_params_`` back to CatDogClassifier parameters.

    The inverse of :func:`param_grid`'s naming, so the best pipeline can be
    refitted (and recorded) as a plain CatDogClassifier.

    Parameters
    ----------
    search_params : dict
        ``best_params_`` (or one ``cv_results_['params']`` entry) of a search
        over :func:`param_grid`.

    Returns
    -------
    params : dict
        ``pca`` (int or None), ``scale`` ('standard' or None), ``kernel`` and
        ``C`` for a linear-SVM step, and the ``clf__`` parameters without
        their prefix.
    """
    out = {}
    for key, value in search_params.items():
        if key == "pca":
            out["pca"] = None if value == "passthrough" else int(value.n_components)
        elif key == "scale":
            out["scale"] = None if value == "passthrough" else "standard"
        elif key == "clf":  # a linear SVM step swapped in by param_grid
            out.update(kernel="linear", C=float(value.C))
        else:
            out[key.removeprefix("clf__")] = value
    return out
