"""Metrics, plots and reports for a fitted cat/dog classifier on a labelled set.

matplotlib is imported only when a plot is drawn (Agg backend, files only).
"""

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["classification_metrics", "expected_calibration_error", "bootstrap_ci", "write_report",
           "plot_confusion", "plot_curves", "plot_top_losses", "unknown_tradeoff", "plot_unknown_tradeoff"]


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
    """Percentile bootstrap confidence interval of accuracy."""
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


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(y_true, pred, classes, path, title=""):
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.2, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, pred, labels=classes, ax=ax, colorbar=False, cmap="Blues")
    ax.set_title(title or "Confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(y_true, proba, classes, out_dir, title=""):
    """ROC, precision-recall and calibration (reliability) curves as three PNGs."""
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    plt = _plt()
    y_true = np.asarray(y_true)
    p1 = proba[:, 1]
    pos = classes[1]
    paths = {}
    for name, draw in (
        ("roc", lambda ax: RocCurveDisplay.from_predictions(y_true, p1, pos_label=pos, ax=ax, name=title)),
        ("pr", lambda ax: PrecisionRecallDisplay.from_predictions(y_true, p1, pos_label=pos, ax=ax, name=title)),
        ("calibration", lambda ax: CalibrationDisplay.from_predictions(y_true, p1, pos_label=pos, n_bins=10,
                                                                       strategy="quantile", ax=ax, name=title)),
    ):
        fig, ax = plt.subplots(figsize=(4.6, 4.2))
        draw(ax)
        ax.set_title({"roc": "ROC curve", "pr": "Precision-recall", "calibration": "Reliability diagram"}[name])
        fig.tight_layout()
        paths[name] = Path(out_dir) / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    return paths


def plot_top_losses(paths, y_true, proba, classes, path, *, k=12):
    """Gallery of the most confidently wrong images, with file names and probabilities."""
    from .preprocess import read_image

    plt = _plt()
    y_true = np.asarray(y_true)
    true_idx = np.searchsorted(classes, y_true)
    p_true = proba[np.arange(len(y_true)), true_idx]
    wrong = np.flatnonzero(p_true < 0.5)
    order = wrong[np.argsort(p_true[wrong])][:k]
    if len(order) == 0:
        order = np.argsort(p_true)[: min(k, len(p_true))]  # no errors: show the least sure
    cols = min(4, max(1, len(order)))
    rows = max(1, int(np.ceil(len(order) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        try:
            ax.imshow(read_image(paths[i]))
        except Exception:  # noqa: BLE001 - a gallery must not fail on one unreadable file
            pass
        other = classes[1 - true_idx[i]]
        ax.set_title(f"{os.path.basename(str(paths[i]))}\ntrue {y_true[i]}, P({other})={1 - p_true[i]:.3f}",
                     fontsize=8)
    fig.suptitle("Most confident mistakes (top losses)" if len(wrong) else "Least confident (no mistakes)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [int(i) for i in order]


def unknown_tradeoff(novelty_in, novelty_out, threshold=0.0):
    """How an abstain threshold trades kept cat/dog photos for rejected other photos.

    Parameters
    ----------
    novelty_in : ndarray of shape (n_in,)
        Novelty scores of photos that do show a cat or a dog (e.g. the test set).
    novelty_out : ndarray of shape (n_out,)
        Novelty scores of photos that show neither (e.g. :func:`catdog_sk.checkset.non_animal_images`).
    threshold : float, default=0.0
        The operating point (``predict`` says ``'unknown'`` above it).

    Returns
    -------
    summary : dict
        ``kept`` and ``rejected`` fractions at ``threshold``, and the whole
        curve: ``curve_thresholds``, ``curve_kept``, ``curve_rejected``.
    """
    novelty_in, novelty_out = np.asarray(novelty_in, float), np.asarray(novelty_out, float)
    grid = np.unique(np.concatenate([novelty_in, novelty_out, [threshold]]))
    kept = np.searchsorted(np.sort(novelty_in), grid, side="right") / max(len(novelty_in), 1)
    rejected = 1 - np.searchsorted(np.sort(novelty_out), grid, side="right") / max(len(novelty_out), 1)
    return {"threshold": float(threshold), "kept": float(np.mean(novelty_in <= threshold)),
            "rejected": float(np.mean(novelty_out > threshold)), "n_in": int(len(novelty_in)),
            "n_out": int(len(novelty_out)), "curve_thresholds": grid.tolist(), "curve_kept": kept.tolist(),
            "curve_rejected": rejected.tolist()}


def plot_unknown_tradeoff(summary, path, title=""):
    """Kept cat/dog photos vs rejected non-animal photos as the abstain threshold moves."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot(summary["curve_rejected"], summary["curve_kept"], drawstyle="steps-post")
    ax.plot([summary["rejected"]], [summary["kept"]], "o", color="C3",
            label=f"operating point: keeps {summary['kept']:.2%}, rejects {summary['rejected']:.1%}")
    ax.set_xlabel(f"non-animal photos called unknown (of {summary['n_out']})")
    ax.set_ylabel(f"cat/dog photos kept (of {summary['n_in']})")
    ax.set_ylim(max(0.0, min(summary["kept"], 0.9) - 0.02), 1.001)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or "Abstaining: 'unknown' trade-off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out_dir, *, paths, y_true, pred, proba, classes, title, short_title="model", metrics=None,
                 extra_md=""):
    """Write report.md, results.json and the PNG plots for one model on one labelled set.

    ``title`` heads the Markdown report; ``short_title`` (a few words) labels the plots.

    Returns
    -------
    metrics : dict
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = dict(metrics or classification_metrics(y_true, pred, proba, classes))
    plot_confusion(y_true, pred, classes, out_dir / "confusion.png", title=f"Confusion: {short_title}")
    plot_curves(y_true, proba, classes, out_dir, title=short_title)
    shown = plot_top_losses(paths, y_true, proba, classes, out_dir / "top_losses.png")
    true_idx = np.searchsorted(classes, np.asarray(y_true))
    metrics["top_losses"] = [
        {"path": str(paths[i]), "true": str(y_true[i]),
         "p_true": float(proba[i, true_idx[i]])} for i in shown
    ]
    (out_dir / "results.json").write_text(json.dumps(metrics, indent=2, default=str))
    lo, hi = metrics["test_accuracy_ci95"]
    md = [
        f"# {title}", "",
        "| metric | value |", "|---|---|",
        f"| accuracy | {metrics['test_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}) |",
        f"| errors | {metrics['test_errors']} of {metrics['test_n']} |",
        f"| ROC AUC | {metrics['test_roc_auc']:.4f} |",
        f"| log loss | {metrics['test_log_loss']:.4f} |",
        f"| Brier score | {metrics['test_brier']:.4f} |",
        f"| expected calibration error | {metrics['test_ece']:.4f} |",
        "", extra_md, "",
        "![confusion](confusion.png) ![roc](roc.png) ![pr](pr.png) ![calibration](calibration.png)", "",
        "## Most confident mistakes", "", "![top losses](top_losses.png)", "",
        "| file | true | P(true) |", "|---|---|---|",
    ]
    md += [f"| {t['path']} | {t['true']} | {t['p_true']:.4f} |" for t in metrics["top_losses"]]
    (out_dir / "report.md").write_text("\n".join(md) + "\n")
    return metrics
