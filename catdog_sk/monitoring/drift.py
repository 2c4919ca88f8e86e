"""Drift statistics over plain arrays: PSI, Wilson intervals, the 'unknown' share test, embedding drift.

Pure functions of a reference sample (the model's held-out test set) and a live one; the thresholds the
alerts use by default are defined here, with the measurements behind them.
"""

import numpy as np

__all__ = ["DEFAULT_UNKNOWN_ALPHA", "DEFAULT_MAX_PSI", "DEFAULT_MAX_DOMAIN_AUC", "SCORE_BINS", "psi",
           "wilson_interval", "unknown_share_test", "domain_classifier_auc", "mmd_rbf"]


#: Significance level of the "unknown share rose" alert (one-sided exact binomial test).
DEFAULT_UNKNOWN_ALPHA = 0.001
#: Alert above this PSI of P(positive) against the test set.
DEFAULT_MAX_PSI = 0.25
#: Alert when a classifier tells live CNN embeddings from the test set's with a higher AUC. Chosen from
#: benchmarks/bench_monitor.py: without a shift the AUC stayed below 0.53 (40 bootstrap samples of 100 and
#: of 500 test photos); 0.60 raised no false alarm and caught more shifts than the earlier 0.75.
DEFAULT_MAX_DOMAIN_AUC = 0.60
#: Bins of P(positive class) shared by the reference and the live distributions.
SCORE_BINS = np.linspace(0.0, 1.0, 11)


def psi(reference, live, *, bins=SCORE_BINS, eps=1e-4):
    """Population stability index between two samples of scores in [0, 1].

    ``sum((live% - ref%) * ln(live% / ref%))`` over fixed bins; rule of thumb:
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.

    Parameters
    ----------
    reference, live : array-like of shape (n,)
        The two samples (values outside [0, 1] are clipped).
    bins : array-like, default=SCORE_BINS
        Bin edges shared by both samples.
    eps : float, default=1e-4
        Floor of a bin's share, so an empty bin does not give an infinite index.

    Returns
    -------
    psi : float
    """
    ref = np.histogram(np.clip(reference, 0, 1), bins=bins)[0] / max(len(reference), 1)
    cur = np.histogram(np.clip(live, 0, 1), bins=bins)[0] / max(len(live), 1)
    ref = np.clip(ref, eps, None)
    cur = np.clip(cur, eps, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def wilson_interval(successes, n, *, z=1.96):
    """95% Wilson score interval of a proportion (well behaved for small n and p near 0 or 1).

    Parameters
    ----------
    successes, n : int
        Successes, and trials.
    z : float, default=1.96
        Normal quantile of the interval (1.96: 95%).

    Returns
    -------
    (low, high) : tuple of float
        NaN, NaN when ``n`` is 0.
    """
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(max(0.0, center - half)), float(min(1.0, center + half)))


def unknown_share_test(n_unknown, n, reference_rate, *, alpha=DEFAULT_UNKNOWN_ALPHA, reference_n=None):
    """Has the share of photos answered 'unknown' risen above the reference rate? A stated rule, not a percentage.

    One-sided exact binomial test of H0 "the live share is at most the reference rate" (the rate on the
    model card's held-out test set). Its false-alarm rate is at most ``alpha`` when live cats and dogs
    look like the test set; ``benchmarks/bench_monitor.py`` measures it and the detection rate.

    Parameters
    ----------
    n_unknown, n : int
        Photos answered 'unknown', and all photos, in the window.
    reference_rate : float
        Share answered 'unknown' on the reference (held-out test) set.
    reference_n : int, default=None
        Size of the reference set: a rate of 0 is taken as half a photo in it.

    Returns
    -------
    result : dict
        ``share``, ``ci95`` (Wilson), ``reference_rate``, ``p_value`` and ``alert`` (p < alpha).
    """
    from scipy.stats import binomtest

    p0 = float(reference_rate)
    if p0 <= 0:
        p0 = 0.5 / reference_n if reference_n else 1e-3
    pvalue = float(binomtest(int(n_unknown), int(n), min(p0, 1.0), alternative="greater").pvalue) if n else 1.0
    return {"n_unknown": int(n_unknown), "n": int(n), "share": n_unknown / n if n else float("nan"),
            "ci95": list(wilson_interval(n_unknown, n)), "reference_rate": float(reference_rate),
            "p_value": pvalue, "alpha": alpha, "alert": bool(pvalue < alpha)}


def domain_classifier_auc(reference, live, *, random_state=0):
    """Cross-validated ROC AUC of a classifier telling live embeddings from reference ones.

    About 0.5 when live traffic looks like the reference; towards 1.0 as it
    drifts (Evidently's default "model" method for embedding drift).

    Parameters
    ----------
    reference, live : ndarray of shape (n, n_features)
        The two samples of embeddings, at least 2 rows each.
    random_state : int, default=0
        Seed of the cross-validation folds.

    Returns
    -------
    auc : float
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.vstack([reference, live])
    y = np.r_[np.zeros(len(reference)), np.ones(len(live))]
    folds = StratifiedKFold(n_splits=min(5, int(min(len(reference), len(live)))), shuffle=True,
                            random_state=random_state)
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=2000))
    scores = cross_val_predict(clf, X, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def mmd_rbf(reference, live):
    """Squared maximum mean discrepancy with an RBF kernel (median-distance bandwidth).

    Parameters
    ----------
    reference, live : ndarray of shape (n, n_features)
        The two samples; cost is quadratic in their sizes, so pass a few hundred rows.

    Returns
    -------
    mmd2 : float
        About 0 when the samples come from one distribution.
    """
    from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel

    X = np.vstack([reference, live])
    d = euclidean_distances(X, squared=True)
    gamma = 1.0 / max(np.median(d[d > 0]), 1e-12)
    k_rr = rbf_kernel(reference, gamma=gamma)
    k_ll = rbf_kernel(live, gamma=gamma)
    k_rl = rbf_kernel(reference, live, gamma=gamma)
    return float(k_rr.mean() + k_ll.mean() - 2 * k_rl.mean())
