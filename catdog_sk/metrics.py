"""Scores of predictions: accuracy with its interval, calibration, abstention and rejection of photos of neither.

Only numpy and scikit-learn: ``models`` scores its searches here without importing ``evaluation`` (plots,
galleries, reports), which re-exports these names.
"""

import numpy as np

__all__ = ["classification_metrics", "expected_calibration_error", "bootstrap_ci", "abstention_metrics",
           "negatives_metrics", "unknown_tradeoff", "answer_confidence", "mcnemar_test"]


def expected_calibration_error(y_true_positive, p_positive, *, n_bins=15):
    """Expected calibration error of binary probabilities (equal-width bins on confidence).

    Parameters
    ----------
    y_true_positive : ndarray of shape (n_samples,), dtype bool
    p_positive : ndarray of shape (n_samples,)

    Returns
    -------
    ece : float
        Weighted mean |accuracy - confidence| over bins of the predicted class's confidence.
    """
    p = np.asarray(p_positive, dtype=float)
    y = np.asarray(y_true_positive, dtype=bool)
    pred = p >= 0.5
    conf = np.where(pred, p, 1 - p)
    correct = pred == y
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def bootstrap_ci(y_true, pred, *, n_boot=1000, random_state=0, alpha=0.05):
    """Percentile bootstrap confidence interval of accuracy.

    Parameters
    ----------
    y_true, pred : array-like of shape (n_images,)
    n_boot : int, default=1000
    random_state : int, default=0
    alpha : float, default=0.05
        The interval covers 1 - alpha.

    Returns
    -------
    low, high : float
    """
    rng = np.random.RandomState(random_state)
    correct = (np.asarray(y_true) == np.asarray(pred)).astype(float)
    n = len(correct)
    stats = correct[rng.randint(0, n, size=(n_boot, n))].mean(axis=1)
    return float(np.quantile(stats, alpha / 2)), float(np.quantile(stats, 1 - alpha / 2))


def classification_metrics(y_true, pred, proba, classes):
    """Accuracy (with 95% CI), ROC AUC, log loss, Brier score, ECE and the confusion matrix.

    Parameters
    ----------
    y_true, pred : array-like of shape (n_samples,)
    proba : ndarray of shape (n_samples, 2)
        Columns in the order of ``classes``.
    classes : ndarray of shape (2,)

    Returns
    -------
    metrics : dict
        JSON-serialisable; keys prefixed ``test_``.
    """
    from sklearn.metrics import accuracy_score, brier_score_loss, confusion_matrix, log_loss, roc_auc_score

    y_true = np.asarray(y_true)
    positive = y_true == classes[1]
    p1 = np.clip(proba[:, 1], 1e-7, 1 - 1e-7)
    lo, hi = bootstrap_ci(y_true, pred)
    return {
        "test_accuracy": float(accuracy_score(y_true, pred)),
        "test_accuracy_ci95": [lo, hi],
        "test_errors": int((y_true != np.asarray(pred)).sum()),
        "test_n": int(len(y_true)),
        "test_roc_auc": float(roc_auc_score(positive, p1)),
        "test_log_loss": float(log_loss(positive, p1, labels=[False, True])),
        "test_brier": float(brier_score_loss(positive, p1)),
        "test_ece": expected_calibration_error(positive, p1),
        "test_confusion": confusion_matrix(y_true, pred, labels=classes).tolist(),
    }


def abstention_metrics(y_true, labels, *, unknown="unknown"):
    """Coverage and accuracy on the answered photos of a model that may say ``'unknown'``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True classes (all of them cats or dogs).
    labels : array-like of shape (n_samples,)
        What the model answered, ``'unknown'`` included.

    Returns
    -------
    metrics : dict
        ``coverage`` (share answered), ``n_unknown``, ``answered_accuracy``
        (accuracy on the answered photos) and ``answered_errors``.
    """
    y_true = np.asarray(y_true).astype(str)
    labels = np.asarray(labels).astype(str)
    answered = labels != unknown
    n_ans = int(answered.sum())
    return {"coverage": float(answered.mean()) if len(labels) else 0.0, "n_unknown": int((~answered).sum()),
            "answered_accuracy": float(np.mean(labels[answered] == y_true[answered])) if n_ans else float("nan"),
            "answered_errors": int(np.sum(labels[answered] != y_true[answered]))}


def negatives_metrics(groups, labels, *, unknown="unknown"):
    """Share of photos of neither that were answered ``'unknown'``, overall and per group.

    Parameters
    ----------
    groups : sequence of str
        Each photo's group (the animal).
    labels : sequence of str
        What the model answered for each.
    unknown : str, default='unknown'
        The abstaining answer.

    Returns
    -------
    metrics : dict
        ``rejected`` (overall share), ``n``, ``by_group`` ``{group: {"n", "rejected"}}``
        and ``min_group_rejected``.
    """
    groups = np.asarray(groups).astype(str)
    rejected = np.asarray(labels).astype(str) == unknown
    by_group = {g: {"n": int(np.sum(groups == g)), "rejected": float(rejected[groups == g].mean())}
                for g in sorted(set(groups.tolist()))}
    return {"rejected": float(rejected.mean()) if len(rejected) else float("nan"), "n": int(len(rejected)),
            "by_group": by_group,
            "min_group_rejected": min((v["rejected"] for v in by_group.values()), default=float("nan"))}


def unknown_tradeoff(presence_in, presence_out, threshold=0.5):
    """How the presence threshold trades answered cat/dog photos for rejected photos of neither.

    Parameters
    ----------
    presence_in : ndarray of shape (n_in,)
        Presence scores of photos that do show a cat or a dog (e.g. the test set).
    presence_out : ndarray of shape (n_out,)
        Presence scores of photos that show neither (e.g. held-out animals10 photos).
    threshold : float, default=0.5
        The operating point (``predict`` says ``'unknown'`` below it).

    Returns
    -------
    summary : dict
        ``kept`` and ``rejected`` fractions at ``threshold``, and the whole
        curve: ``curve_thresholds``, ``curve_kept``, ``curve_rejected``.
    """
    presence_in, presence_out = np.asarray(presence_in, float), np.asarray(presence_out, float)
    grid = np.unique(np.concatenate([presence_in, presence_out, [threshold]]))
    kept = 1 - np.searchsorted(np.sort(presence_in), grid, side="left") / max(len(presence_in), 1)
    rejected = np.searchsorted(np.sort(presence_out), grid, side="left") / max(len(presence_out), 1)
    return {"threshold": float(threshold), "kept": float(np.mean(presence_in >= threshold)),
            "rejected": float(np.mean(presence_out < threshold)), "n_in": int(len(presence_in)),
            "n_out": int(len(presence_out)), "curve_thresholds": grid.tolist(), "curve_kept": kept.tolist(),
            "curve_rejected": rejected.tolist()}


def answer_confidence(labels, proba, presence):
    """The confidence of each answer (what :attr:`catdog_sk.models.Decision.confidence` gives).

    P(the answered class) for a cat or a dog, ``1 - presence`` for 'unknown': the classifier's
    probabilities say nothing about an abstention, so its confidence is how surely no cat or dog is
    in the photo. The server, its ``/metrics`` histogram and ``monitor`` all use this.

    Parameters
    ----------
    labels : array-like of shape (n_images,)
        The answers, ``'unknown'`` included.
    proba : array-like of shape (n_images, 2)
        The cat/dog classifier's probabilities.
    presence : array-like of shape (n_images,)
        Presence scores.

    Returns
    -------
    confidence : ndarray of shape (n_images,)
    """
    labels = np.asarray(labels).astype(str)
    proba, presence = np.asarray(proba, dtype=float), np.asarray(presence, dtype=float)
    return np.where(labels == "unknown", 1.0 - presence, proba.max(axis=1))


def mcnemar_test(y_true, pred_a, pred_b):
    """Exact McNemar test: do two classifiers' error rates on the same photos differ?

    Only the photos one model gets right and the other wrong count; under the hypothesis that both
    err equally often, each such photo goes either way with probability 1/2, so the two-sided p-value
    is a binomial test on those discordant photos. Two models "one photo apart" get p = 1: their
    difference on this test set says nothing.

    Parameters
    ----------
    y_true : array-like of shape (n_images,)
        The true labels.
    pred_a, pred_b : array-like of shape (n_images,)
        The two models' answers on the same photos.

    Returns
    -------
    result : dict
        ``only_a_right`` and ``only_b_right`` (the discordant counts), ``errors_a``, ``errors_b``,
        ``n`` and ``p_value``.
    """
    from scipy.stats import binomtest

    y_true, pred_a, pred_b = (np.asarray(a) for a in (y_true, pred_a, pred_b))
    right_a, right_b = pred_a == y_true, pred_b == y_true
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(right_b & ~right_a))
    p = 1.0 if a_only + b_only == 0 else float(binomtest(a_only, a_only + b_only, 0.5).pvalue)
    return {"only_a_right": a_only, "only_b_right": b_only, "errors_a": int(np.sum(~right_a)),
            "errors_b": int(np.sum(~right_b)), "n": int(y_true.size), "p_value": min(p, 1.0)}
