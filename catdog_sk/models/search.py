"""Grid searches over feature sets x models on precomputed features, compared side by side."""

import contextlib
import os
import tempfile
import threading
import time

import numpy as np

from ._registry import FEATURE_SETS, classifier_params, make_pipeline, param_grid

__all__ = ["make_search", "run_search", "stack_features", "score_on_test"]


class _ProgressScorer:
    """Accuracy scorer that reports each scored fold, from any worker process.

    GridSearchCV has no progress callback (scikit-learn#7574), but it calls
    its scorer once per fitted (candidate, fold). Each call appends one byte
    to a tick file (``O_APPEND`` writes are atomic), and a thread in the
    parent turns the file's size into progress-bar updates.
    """

    def __init__(self, tick_path):
        self.tick_path = tick_path

    def __call__(self, estimator, X, y):
        score = float(np.mean(estimator.predict(X) == y))
        if self.tick_path is not None:
            fd = os.open(self.tick_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, b".")
            finally:
                os.close(fd)
        return score


class _TickWatcher:
    """Context manager: a tick file and a thread advancing ``bar`` as it grows."""

    def __init__(self, bar):
        self.bar = bar
        self.path = None

    def __enter__(self):
        if self.bar is None:
            return None
        fd, self.path = tempfile.mkstemp(prefix="catdog-ticks-")
        os.close(fd)
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self.path

    def _poll(self):
        size = os.path.getsize(self.path)
        if size > self._seen:
            self.bar.update(size - self._seen)
            self._seen = size

    def _run(self):
        while not self._stop.wait(0.25):
            self._poll()

    def __exit__(self, *exc):
        if self.bar is None:
            return False
        self._stop.set()
        self._thread.join()
        self._poll()
        os.unlink(self.path)
        return False


def make_search(model, feature_set, *, cv=5, n_jobs=None, random_state=0, scoring="accuracy",
                max_components=None, memory=None):
    """GridSearchCV of a model's pipeline over its grid, with seeded stratified k-fold CV.

    Parameters
    ----------
    model : {'svm', 'logreg'}
    feature_set : {'hog', 'color', 'hog+color', 'cnn', 'all'}
    cv : int, default=5
    n_jobs : int, default=None
    random_state : int, default=0
        Seeds the fold assignment, so the same seed gives the same CV scores
        whatever ``n_jobs`` is.
    scoring : str or callable, default='accuracy'
    max_components : int, default=None
        Cap on PCA sizes in the grid (the smallest training fold bounds it).
    memory : str or None, default=None
        A folder where each fold's fitted transformers (VLAD encoder, scaler,
        PCA) are cached, so candidates that differ only in the classifier's
        parameters share them (see :func:`make_pipeline`).

    Returns
    -------
    search : sklearn.model_selection.GridSearchCV
        Not fitted; ``refit=False`` (the caller refits the best with probabilities).
    """
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    folds = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    return GridSearchCV(make_pipeline(model, random_state=random_state, feature_set=feature_set, memory=memory),
                        param_grid(model, feature_set, random_state=random_state, max_components=max_components),
                        cv=folds, n_jobs=n_jobs, scoring=scoring, refit=False, error_score="raise")


def stack_features(base, feature_set):
    """Concatenate base feature matrices (dict name -> array) for a feature set.

    Parameters
    ----------
    base : dict of str to ndarray
        Base features by extractor name.
    feature_set : str
        A name of :data:`catdog_sk.registry.FEATURE_SETS`.

    Returns
    -------
    X : ndarray of shape (n_images, n_features)
    """
    parts = [base[name] for name in FEATURE_SETS[feature_set]]
    return np.hstack(parts) if len(parts) > 1 else parts[0]


def run_search(base_train, y_train, feature_set, model, *, cv=5, n_jobs=None, random_state=0,
               progress=None, base_test=None, y_test=None, backbone="efficientnet_lite0", runtime="openvino",
               unknown=None, base_negatives=None, device="auto", fold_cache=True):
    """Tune one (feature set, model) pair, refit the best on all training data, score on test.

    Parameters
    ----------
    base_train : dict of str to ndarray of shape (n_train, n_features_k)
        Base features ('hog', 'color', 'cnn') of the training images.
    y_train : ndarray of shape (n_train,)
    feature_set, model : str
    cv, n_jobs, random_state
        See :func:`make_search`.
    progress : tqdm bar or None
        Advanced once per fitted fold.
    base_test, y_test : optional
        Held-out features and labels; scored once, never used for selection.
    backbone, runtime : str
        Recorded in the returned classifier (they made the CNN features).
    unknown : None, 'auto' or float, default=None
        Passed to the classifier for feature sets with CNN features.
    base_negatives : dict of str to ndarray, default=None
        Base features of photos of neither (the check set and user negatives),
        for the presence model; needed with ``unknown``.
    fold_cache : bool, default=True
        Cache each CV fold's fitted transformers in a temporary folder, shared
        by the candidates that differ only in the classifier (same scores,
        fewer fits). The search's workers must see this machine's disk: pass
        False when they run elsewhere (a remote Dask cluster).

    Returns
    -------
    row : dict
        Best parameters, CV mean/std, every candidate's CV scores, fit seconds,
        and (with a test set) test accuracy, ROC AUC, log loss, predict ms/image.
    classifier : CatDogClassifier
        Fitted on all training data with the best parameters.
    """
    from .classifier import CatDogClassifier

    has_cnn = "cnn" in FEATURE_SETS[feature_set]
    X = stack_features(base_train, feature_set)
    probe = CatDogClassifier(features=feature_set, backbone=backbone)
    Xc = probe.split_features(X)[0]  # the cat/dog classifier never sees the ImageNet head columns
    start = time.perf_counter()
    search = _fit_search(Xc, y_train, model, feature_set, cv=cv, n_jobs=n_jobs, random_state=random_state,
                         progress=progress, fold_cache=fold_cache)
    search_s = time.perf_counter() - start
    best = classifier_params(search.best_params_)
    clf = CatDogClassifier(features=feature_set, backbone=backbone, runtime=runtime, device=device, model=model,
                           random_state=random_state, unknown=unknown if has_cnn else None, **best)
    start = time.perf_counter()
    negatives = stack_features(base_negatives, feature_set) if clf.unknown is not None else None
    clf.fit_features(X, y_train, negatives=negatives)
    fit_s = time.perf_counter() - start
    row = {"features": feature_set, "model": model, "best_params": best, **_cv_summary(search),
           "n_features": int(Xc.shape[1]), "search_seconds": round(search_s, 2), "fit_seconds": round(fit_s, 2)}
    if base_test is not None:
        row.update(score_on_test(clf, stack_features(base_test, feature_set), y_test))
    return row, clf


def _fit_search(Xc, y, model, feature_set, *, cv, n_jobs, random_state, progress, fold_cache):
    """The fitted GridSearchCV of one (feature set, model), ticking ``progress`` once per fold."""
    folder = tempfile.TemporaryDirectory(prefix="catdog-search-") if fold_cache else contextlib.nullcontext()
    with _TickWatcher(progress) as ticks, folder as memory:
        smallest_fold = len(Xc) - -(-len(Xc) // cv)  # training rows in the smallest CV split
        search = make_search(model, feature_set, cv=cv, n_jobs=n_jobs, random_state=random_state,
                             scoring=_ProgressScorer(ticks), max_components=min(smallest_fold, Xc.shape[1]),
                             memory=memory)
        search.fit(Xc, y)
    return search


def _cv_summary(search):
    """The best candidate's CV mean and std, and every candidate's scores, for the row."""
    i, res = search.best_index_, search.cv_results_
    return {"cv_accuracy": float(res["mean_test_score"][i]), "cv_std": float(res["std_test_score"][i]),
            "cv_results": [{"params": classifier_params(p), "mean": float(m), "std": float(s)}
                           for p, m, s in zip(res["params"], res["mean_test_score"], res["std_test_score"])]}


def score_on_test(clf, X_test, y_test):
    """A fitted classifier scored once on test features: the row's ``test_*`` metrics and classifier ms/image.

    Parameters
    ----------
    clf : CatDogClassifier
        Fitted.
    X_test : ndarray of shape (n_test, n_features)
    y_test : array-like of shape (n_test,)

    Returns
    -------
    scores : dict
    """
    from ..metrics import abstention_metrics, classification_metrics

    start = time.perf_counter()
    decision = clf.predict_features(X_test)
    pred = clf.classes_[np.argmax(decision.proba, axis=1)]
    predict_s = time.perf_counter() - start
    out = classification_metrics(y_test, pred, decision.proba, clf.classes_)
    out.update({f"test_{k}": v for k, v in abstention_metrics(y_test, decision.labels).items()})
    out["classifier_ms_per_image"] = round(1000 * predict_s / max(1, len(X_test)), 4)
    return out
