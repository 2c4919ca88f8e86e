"""Monitoring a served model from its prediction log: volume, latency, class mix, drift, live accuracy.

Pure functions over plain arrays first (``psi``, ``wilson_interval``), then
``monitor_report`` that reads the log and writes Markdown + PNG plots.
"""

import json
from pathlib import Path

import numpy as np

__all__ = ["psi", "wilson_interval", "domain_classifier_auc", "mmd_rbf", "load_log", "summarize",
           "write_monitor_report", "REFERENCE_EMBEDDINGS"]

#: File beside a saved model: a sample of CNN embeddings of its held-out test set.
REFERENCE_EMBEDDINGS = "reference_embeddings.npy"

#: Bins of P(positive class) shared by the reference and the live distributions.
SCORE_BINS = np.linspace(0.0, 1.0, 11)


def psi(reference, live, *, bins=SCORE_BINS, eps=1e-4):
    """Population stability index between two samples of scores in [0, 1].

    ``sum((live% - ref%) * ln(live% / ref%))`` over fixed bins; rule of thumb:
    < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
    """
    ref = np.histogram(np.clip(reference, 0, 1), bins=bins)[0] / max(len(reference), 1)
    cur = np.histogram(np.clip(live, 0, 1), bins=bins)[0] / max(len(live), 1)
    ref = np.clip(ref, eps, None)
    cur = np.clip(cur, eps, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def wilson_interval(successes, n, *, z=1.96):
    """95% Wilson score interval of a proportion (well behaved for small n and p near 0 or 1)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(max(0.0, center - half)), float(min(1.0, center + half)))


def domain_classifier_auc(reference, live, *, random_state=0):
    """Cross-validated ROC AUC of a classifier telling live embeddings from reference ones.

    About 0.5 when live traffic looks like the reference; towards 1.0 as it
    drifts (Evidently's default "model" method for embedding drift).
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
    """Squared maximum mean discrepancy with an RBF kernel (median-distance bandwidth)."""
    from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel

    X = np.vstack([reference, live])
    d = euclidean_distances(X, squared=True)
    gamma = 1.0 / max(np.median(d[d > 0]), 1e-12)
    k_rr = rbf_kernel(reference, gamma=gamma)
    k_ll = rbf_kernel(live, gamma=gamma)
    k_rl = rbf_kernel(reference, live, gamma=gamma)
    return float(k_rr.mean() + k_ll.mean() - 2 * k_rl.mean())


def load_log(db_path, *, since=None):
    """Rows of the prediction log (joined with feedback), optionally only those after ``since`` (epoch s)."""
    from .serving import PredictionLog

    if not Path(db_path).is_file():
        from .exceptions import DatasetError

        raise DatasetError(f"No prediction log at {db_path}.")
    rows = PredictionLog(db_path).rows()
    if since is not None:
        rows = [r for r in rows if r["time"] >= since]
    return rows


def summarize(rows, *, classes, reference_scores=None, reference_embeddings=None, live_embeddings=None,
              min_live=20):
    """Numbers of the monitoring report (JSON-serialisable).

    Parameters
    ----------
    rows : list of dict
        From :func:`load_log`.
    classes : sequence of str
        The model's classes; the second is the positive class for score drift.
    reference_scores : array-like, default=None
        P(positive) on the model's held-out test set (from its model card).
    reference_embeddings, live_embeddings : ndarray, default=None
        CNN embeddings of the reference sample and of logged traffic; embedding
        drift is measured when both exist and there are at least ``min_live``
        live ones.
    """
    from scipy.stats import ks_2samp

    n = len(rows)
    out = {"n_predictions": n}
    if n == 0:
        return out
    times = np.array([r["time"] for r in rows])
    latency = np.array([r["latency_ms"] for r in rows])
    labels = np.array([r["label"] for r in rows])
    probs = [json.loads(r["probabilities"]) for r in rows]
    positive = np.array([p.get(str(classes[1]), np.nan) for p in probs])
    confidence = np.array([max(p.values()) for p in probs])
    out.update({
        "first": float(times.min()), "last": float(times.max()),
        "latency_ms": {f"p{q}": float(np.percentile(latency, q)) for q in (50, 95, 99)},
        "class_share": {str(c): float(np.mean(labels == c)) for c in classes},
        "mean_confidence": float(confidence.mean()),
        "low_confidence_share": float(np.mean(confidence < 0.8)),
    })
    if reference_scores is not None and len(reference_scores):
        ref = np.asarray(reference_scores, dtype=float)
        ks = ks_2samp(ref, positive)
        out["drift"] = {"psi": psi(ref, positive), "ks_statistic": float(ks.statistic),
                        "ks_pvalue": float(ks.pvalue), "reference_n": int(len(ref))}
    if reference_embeddings is not None and live_embeddings is not None:
        if len(live_embeddings) >= min_live and live_embeddings.shape[1] == reference_embeddings.shape[1]:
            live = live_embeddings[-2000:]
            out["embedding_drift"] = {"domain_classifier_auc": domain_classifier_auc(reference_embeddings, live),
                                      "mmd2": mmd_rbf(reference_embeddings[:500], live[-500:]),
                                      "live_n": int(len(live)), "reference_n": int(len(reference_embeddings))}
        else:
            out["embedding_drift"] = {"note": f"needs at least {min_live} logged embeddings of the same size; "
                                              f"have {len(live_embeddings)}"}
    feedback = [(r["label"], r["true_label"]) for r in rows if r["true_label"] is not None]
    if feedback:
        correct = sum(a == b for a, b in feedback)
        lo, hi = wilson_interval(correct, len(feedback))
        out["live_accuracy"] = {"n_feedback": len(feedback), "accuracy": correct / len(feedback),
                                "ci95": [lo, hi],
                                "note": "from user feedback only: users mostly report mistakes, so this is "
                                        "a lower bound on accuracy, not an unbiased estimate"}
    return out


def write_monitor_report(out_dir, rows, summary, *, classes, reference_scores=None):
    """Write monitor.md, monitor.json and PNG plots (volume and latency over time, confidence, scores)."""
    from .evaluation import _plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "monitor.json").write_text(json.dumps(summary, indent=2))
    md = ["# Monitoring report", "", f"- Predictions: {summary['n_predictions']}"]
    if rows:
        plt = _plt()
        times = np.array([r["time"] for r in rows])
        latency = np.array([r["latency_ms"] for r in rows])
        probs = [json.loads(r["probabilities"]) for r in rows]
        positive = np.array([p.get(str(classes[1]), np.nan) for p in probs])
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        t0 = times.min()
        edges = np.linspace(t0, max(times.max(), t0 + 1), 25)
        axes[0].hist((times - t0) / 60, bins=(edges - t0) / 60)
        axes[0].set(title="Volume", xlabel="minutes since first prediction", ylabel="predictions")
        axes[1].plot((times - t0) / 60, latency, ".", alpha=0.5)
        axes[1].set(title="Latency", xlabel="minutes since first prediction", ylabel="ms")
        axes[2].hist(positive, bins=SCORE_BINS, alpha=0.6, density=True, label="live")
        if reference_scores is not None and len(reference_scores):
            axes[2].hist(reference_scores, bins=SCORE_BINS, alpha=0.6, density=True, label="reference (test set)")
        axes[2].set(title=f"P({classes[1]})", xlabel="probability")
        axes[2].legend()
        fig.tight_layout()
        fig.savefig(out_dir / "monitor.png", dpi=100)
        plt.close(fig)
        lat = summary["latency_ms"]
        md += [f"- Latency: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms",
               f"- Class share: {', '.join(f'{k} {v:.1%}' for k, v in summary['class_share'].items())}",
               f"- Mean confidence {summary['mean_confidence']:.3f}; below 0.8: {summary['low_confidence_share']:.1%}"]
        if "drift" in summary:
            d = summary["drift"]
            md.append(f"- Score drift vs the test set: PSI {d['psi']:.3f}, KS {d['ks_statistic']:.3f} "
                      f"(p = {d['ks_pvalue']:.3g})")
        e = summary.get("embedding_drift", {})
        if "domain_classifier_auc" in e:
            md.append(f"- Embedding drift vs the test set: domain-classifier AUC {e['domain_classifier_auc']:.3f} "
                      f"(0.5 = no drift), MMD² {e['mmd2']:.4f}, {e['live_n']} live vs {e['reference_n']} reference")
        elif e:
            md.append(f"- Embedding drift: {e['note']}")
        if "live_accuracy" in summary:
            a = summary["live_accuracy"]
            md.append(f"- Live accuracy from {a['n_feedback']} feedback: {a['accuracy']:.3f} "
                      f"(95% CI {a['ci95'][0]:.3f}-{a['ci95'][1]:.3f}); {a['note']}")
        md += ["", "![monitor](monitor.png)"]
    if summary.get("alerts"):
        md += ["", "## Alerts", ""] + [f"- {a}" for a in summary["alerts"]]
    (out_dir / "monitor.md").write_text("\n".join(md) + "\n")
