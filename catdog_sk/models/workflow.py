"""The training workflow as library functions: compare feature sets x models, choose, card, promote.

What ``python -m catdog_sk.fit`` does, with plain arguments, so that a notebook can do it too::

    rows, fitted = compare(base_train, y_train, base_test, y_test, ["cnn", "hog"], ["logreg", "svm"])
    best = choose_best(rows)
    decision = champion_decision("artifacts/models", best["test_accuracy"], test_paths, test_labels)

``base_*`` are dicts of base-feature matrices (name -> array), as :func:`catdog_sk.features.extract_features`
returns them per extractor; :func:`catdog_sk.models.stack_features` concatenates them per feature set.
"""

import contextlib
from pathlib import Path

import numpy as np

__all__ = ["compare", "finetune_row", "choose_best", "grid_edges", "champion_decision", "model_card_fields", "unknown_card_fields",
           "save_reference_embeddings"]


def compare(base_train, y_train, base_test, y_test, feature_sets, models, *, cv=5, n_jobs=None, random_state=0,
            backbone="efficientnet_lite0", runtime="openvino", device="auto", unknown=None, base_negatives=None,
            progress=None, searching=contextlib.nullcontext, on_row=None, fold_cache=True):
    """Grid-search every feature set x model on train (stratified CV) and score each once on test.

    Parameters
    ----------
    base_train, base_test : dict of str to ndarray
        Base features (see :data:`catdog_sk.registry.EXTRACTORS`) of the training and test images.
    y_train, y_test : array-like
    feature_sets : list of str
        Names from :data:`catdog_sk.registry.FEATURE_SETS`.
    models : list of str
        Names from :data:`catdog_sk.registry.MODELS`.
    cv, n_jobs, random_state, backbone, runtime, device, unknown, fold_cache
        As for :func:`catdog_sk.models.run_search`.
    base_negatives : dict of str to ndarray, default=None
        Base features of photos of neither (needed with ``unknown``).
    progress : tqdm-like, default=None
        Advanced once per CV fit.
    searching : callable returning a context manager, default: none
        Entered around each search (e.g. joblib's Dask backend).
    on_row : callable(row), default=None
        Called after each search (to log it).

    Returns
    -------
    rows : list of dict
        One per (feature set, model), in that order: best params, CV and test metrics, timings.
    fitted : dict of (str, str) to CatDogClassifier
        The refitted best estimator of each search.
    """
    from .search import run_search

    rows, fitted = [], {}
    for fs in feature_sets:
        for m in models:
            with searching():
                if progress is not None:
                    progress.set_postfix_str(f"{fs} / {m}")
                row, clf = run_search(base_train, y_train, fs, m, cv=cv, n_jobs=n_jobs, random_state=random_state,
                                      progress=progress, base_test=base_test, y_test=y_test, backbone=backbone,
                                      runtime=runtime, unknown=unknown, base_negatives=base_negatives,
                                      device=device, fold_cache=fold_cache)
            rows.append(row)
            fitted[(fs, m)] = clf
            if on_row is not None:
                on_row(row)
    return rows, fitted


def finetune_row(train_paths, y_train, test_paths, y_test, *, backbone="efficientnet_lite0", epochs=3,
                 learning_rate=5e-5, C=30.0, negatives=None, unknown=None, cache=None, n_jobs=None, random_state=0,
                 runtime="openvino", device="auto", verbose=False):
    """Fit ``CatDogClassifier(model='finetune')`` on the training photos and score it once on test: one row.

    The row has the columns of :func:`compare`'s rows. There is no grid search: the network is tuned
    once, and its ``cv_accuracy`` is the accuracy on the held-out 10% of the training photos that early
    stopping watched (``cv_std`` 0, ``selection`` says so). The head is an unscaled, calibrated
    logistic regression with ``C`` (the frozen CNN grid's middle value).

    Parameters
    ----------
    train_paths, y_train : sequence
        Training photos and their labels.
    test_paths, y_test : sequence
        Held-out photos and their labels, scored once.
    backbone, epochs, learning_rate : str, int and float
        The network to tune, most epochs (early stopping keeps the best), peak AdamW learning rate.
    C : float, default=30.0
        Inverse regularisation of the logistic-regression head.
    negatives, unknown : sequence of str and 'auto', float or None
        Photos of neither for the presence model, and the classifier's ``unknown`` parameter.
    cache, n_jobs, random_state, runtime, device
        As in :class:`~catdog_sk.CatDogClassifier`.
    verbose : bool, default=False
        Print each epoch's loss and validation accuracy.

    Returns
    -------
    row : dict
    classifier : CatDogClassifier
    test_features : ndarray
        Features of the test photos from the tuned network (rows of the decodable ones, in order).
    """
    import time

    from .classifier import CatDogClassifier
    from .search import score_on_test

    clf = CatDogClassifier(model="finetune", features="cnn", backbone=backbone, epochs=epochs,
                           learning_rate=learning_rate, C=C, scale=None, unknown=unknown, cache=cache, n_jobs=n_jobs,
                           runtime=runtime, device=device, random_state=random_state, verbose=verbose)
    start = time.perf_counter()
    clf.fit(train_paths, y_train, negatives=negatives if unknown is not None else None)
    fit_s = time.perf_counter() - start
    F, ok, _, _ = clf.featurize(test_paths, on_error="skip")
    scores = score_on_test(clf, F, np.asarray(y_test)[ok])
    start = time.perf_counter()
    clf.featurize(list(test_paths[:32]), cache=None, progress=False)  # end to end, uncached
    ms = 1000 * (time.perf_counter() - start) / min(32, len(test_paths)) + scores["classifier_ms_per_image"]
    ft = clf.finetune_
    row = {"features": "cnn", "model": "finetune",
           "best_params": {"backbone": backbone, "epochs": f"{ft['best_epoch']}/{epochs}", "lr": learning_rate,
                           "C": C},
           "cv_accuracy": float(ft["val_accuracy"]), "cv_std": 0.0, "cv_results": [],
           "selection": f"validation accuracy on {ft['n_val']} held-out training photos (early stopping)",
           "finetune": ft, "n_features": int(clf.split_features(F)[0].shape[1]), "search_seconds": 0.0,
           "fit_seconds": round(fit_s, 2), **scores, "predict_ms_per_image": round(ms, 2)}
    return row, clf, F


def choose_best(rows):
    """The row with the highest mean CV accuracy (training data only, never the test set); fewer features on ties.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare` (and :func:`finetune_row`).

    Returns
    -------
    row : dict
    """
    return max(rows, key=lambda r: (round(r["cv_accuracy"], 6), -r["n_features"]))


def grid_edges(model, feature_set, best_params):
    """Which chosen values sit at the edge of their grid: a larger (or smaller) one was never tried.

    Parameters
    ----------
    model : str
        A key of ``MODELS`` (other rows, such as fine-tuning, have no grid: no note).
    feature_set : str
        A key of ``FEATURE_SETS``.
    best_params : dict
        The row's chosen parameters.

    Returns
    -------
    notes : list of str
        One per numeric parameter at its grid's smallest or largest value, e.g. "C=100 is the largest
        value searched (10, 30, 100): a larger one might do better".
    """
    from ._registry import MODELS, grid_summary

    if model not in MODELS:
        return []
    for sub in grid_summary(model, feature_set):
        if set(sub) != set(best_params) or any(best_params[k] not in v for k, v in sub.items()):
            continue  # not the sub-grid the chosen parameters come from
        notes = []
        for name, values in sub.items():
            if len(values) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                continue
            side = {max(values): "largest", min(values): "smallest"}.get(best_params[name])
            if side:
                notes.append(f"{name}={best_params[name]:g} is the {side} value searched "
                             f"({', '.join(f'{v:g}' for v in values)}): a {side[:-3]}er one might do better")
        return notes
    return []


def champion_decision(models_root, challenger_accuracy, paths, labels, *, cache=None, n_jobs=None, enabled=True):
    """Champion/challenger: should the new model replace the one promoted in ``models_root``?

    The promoted model is scored on the same test images; the challenger is promoted when it is at
    least as accurate. A promoted model that cannot be loaded or scored is replaced, and the
    decision says why.

    Parameters
    ----------
    models_root : str or os.PathLike
        The root holding the run folders and ``PROMOTED``.
    challenger_accuracy : float
        The new model's test accuracy.
    paths, labels : sequence
        The test photos and their labels, on which the champion is scored.
    cache : str, os.PathLike, FeatureCache or None, default=None
        Feature cache for the champion's features.
    n_jobs : int, default=None
        Decoding workers.
    enabled : bool, default=True
        False (``fit --no-promote``): never promote, and say so.

    Returns
    -------
    decision : dict
        ``promoted`` (bool), ``reason`` and, when there was a champion, its path and both accuracies.
    """
    from .persistence import PROMOTED_FILE, load_model, promoted_model_dir

    if not enabled:
        return {"promoted": False, "reason": "--no-promote"}
    if not (Path(models_root) / PROMOTED_FILE).is_file():
        return {"promoted": True, "reason": "no model was promoted before",
                "challenger_test_accuracy": challenger_accuracy}
    champion_dir = promoted_model_dir(models_root)
    try:
        champion = load_model(champion_dir)
        F, keep, _, _ = champion.featurize(paths, on_error="skip", cache=cache, n_jobs=n_jobs)
        proba = champion.predict_features(F).proba
    except Exception as exc:  # noqa: BLE001 - any champion we cannot score is replaced, and the card says why
        return {"promoted": True, "champion": str(champion_dir), "challenger_test_accuracy": challenger_accuracy,
                "reason": f"the promoted model could not be scored ({type(exc).__name__}: {exc})"}
    champion_acc = float(np.mean(champion.classes_[np.argmax(proba, axis=1)] == np.asarray(labels)[keep]))
    promoted = challenger_accuracy >= champion_acc
    return {"promoted": promoted, "champion": str(champion_dir), "champion_test_accuracy": champion_acc,
            "challenger_test_accuracy": challenger_accuracy,
            "reason": "challenger is at least as accurate on the held-out test set" if promoted
                      else "challenger is less accurate than the promoted model on the held-out test set"}


def model_card_fields(row, clf, decision, *, run, seed, data, cv, is_best):
    """The training run's model-card fields for one searched model (see :class:`ModelCard`).

    ``decision`` is the model's :class:`~catdog_sk.models.Decision` on the held-out test set: its
    probabilities (and presence scores) become the reference distributions that monitoring compares
    live traffic with.

    Parameters
    ----------
    row : dict
        The model's row of :func:`compare`.
    clf : CatDogClassifier
    decision : Decision
    run : str
    seed, cv : int
    data : dict
        Where the training and test photos came from, their counts and content hashes.
    is_best : bool

    Returns
    -------
    fields : dict
    """
    from ._registry import MODELS, grid_summary

    card = {"run": run, "seed": seed, "data": data,
            "metrics": {k: v for k, v in row.items() if k.startswith("test_") or k in ("cv_accuracy", "cv_std")},
            "feature_set": row["features"], "model": row["model"], "best_params": row["best_params"],
            "cv_folds": cv, "cv_results": row["cv_results"],
            "grid": grid_summary(row["model"], row["features"]) if row["model"] in MODELS else [],
            "grid_edges": grid_edges(row["model"], row["features"], row["best_params"]),
            "selected_by": "highest mean CV accuracy on the training set", "is_best": is_best,
            **({"validation": row["selection"]} if "selection" in row else {}),
            "reference": {"p_positive": [round(float(v), 5) for v in decision.proba[:, 1]],
                          "source": "held-out test set"}}
    if clf.presence_ is not None:  # what `monitor` compares the "unknown" share with
        card["reference"]["presence"] = [round(float(v), 5) for v in decision.presence]
        card["reference"]["unknown_rate"] = float(np.mean(decision.labels.astype(str) == "unknown"))
    return card


def unknown_card_fields(clf, row, *, setting, negatives_used, held_out=None):
    """The card's ``unknown`` section: threshold, test coverage and (``held_out``, already measured,
    e.g. by :func:`catdog_sk.evaluation.negatives_metrics`) the rejection of held-out photos of neither.

    Parameters
    ----------
    clf : CatDogClassifier
        Fitted with ``unknown``.
    row : dict
    setting : str
        How "unknown" was asked for (``'auto'``, a threshold).
    negatives_used : dict
        Which photos of neither the presence model was fitted on.
    held_out : dict, default=None

    Returns
    -------
    fields : dict
    """
    fields = {"threshold": clf.presence_threshold_, "setting": setting, "test_coverage": row["test_coverage"],
              "test_answered_accuracy": row["test_answered_accuracy"], "negatives_used": negatives_used}
    if held_out is not None:
        fields["negatives"] = dict(held_out)
    return fields


def save_reference_embeddings(folder, clf, cnn_features, *, seed, n=500):
    """Save a seeded sample of test-set CNN embeddings (no head columns) beside the model, for drift monitoring.

    Parameters
    ----------
    folder : str or os.PathLike
        The saved model's folder.
    clf : CatDogClassifier
    cnn_features : ndarray of shape (n_images, n_cnn_columns)
        The test photos' 'cnn' base features (embeddings, then head columns).
    seed : int
    n : int, default=500
        Largest sample kept.
    """
    from .card import REFERENCE_EMBEDDINGS

    rng = np.random.RandomState(seed)
    pick = np.sort(rng.choice(len(cnn_features), size=min(n, len(cnn_features)), replace=False))
    from ..features import FeatureLayout

    cnn = [ex for ex in clf.extractors() if ex.name == "cnn"]
    embeddings = FeatureLayout.from_extractors(cnn).split(cnn_features[pick])[1]
    np.save(Path(folder) / REFERENCE_EMBEDDINGS, embeddings, allow_pickle=False)
