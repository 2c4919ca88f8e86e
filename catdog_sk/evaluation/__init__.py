"""Metrics, plots and reports for a fitted cat/dog classifier on a labelled set.

matplotlib is imported only when a plot is drawn (Agg backend, files only).
"""

import json
import os
from pathlib import Path

import numpy as np

from ..metrics import (abstention_metrics, bootstrap_ci, classification_metrics, expected_calibration_error,
                       negatives_metrics, unknown_tradeoff)
from ..plotting import pyplot

__all__ = ["classification_metrics", "expected_calibration_error", "bootstrap_ci", "write_report",
           "plot_confusion", "plot_curves", "plot_top_losses", "unknown_tradeoff", "plot_unknown_tradeoff",
           "abstention_metrics", "negatives_metrics", "negatives_decision", "plot_unknown_gallery",
           "abstention_markdown"]


def plot_confusion(y_true, pred, classes, path, title=""):
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = pyplot()
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

    plt = pyplot()
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
    from ..preprocess import read_image

    plt = pyplot()
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


def negatives_decision(clf, negatives, *, note, cache=None, n_jobs=None, progress=False):
    """A fitted classifier's answers on photos of neither, in the form ``write_report(negatives=...)`` takes.

    Parameters
    ----------
    clf : CatDogClassifier
    negatives : catdog_sk.data.Negatives
    note : str
        Which photos these are; ``{n}`` is replaced by the number decoded.

    Returns
    -------
    negatives : dict
        ``{"groups", "labels", "presence", "source", "note"}``.
    errors : list of ImageDecodeError
        The photos that could not be decoded (left out).
    """
    res = clf.featurize(negatives.paths, on_error="skip", cache=cache, n_jobs=n_jobs, progress=progress,
                        desc="negatives")
    decision = clf.predict_features(res.features)
    return ({"groups": [negatives.groups[i] for i in res.ok], "labels": decision.labels,
             "presence": decision.presence, "source": negatives.root, "note": note.format(n=len(res.ok))},
            res.errors)


def plot_unknown_tradeoff(summary, path, title=""):
    """Answered cat/dog photos vs rejected photos of neither as the presence threshold moves."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    ax.plot(summary["curve_rejected"], summary["curve_kept"], drawstyle="steps-post")
    ax.plot([summary["rejected"]], [summary["kept"]], "o", color="C3",
            label=f"operating point: answers {summary['kept']:.2%}, rejects {summary['rejected']:.1%}")
    ax.set_xlabel(f"photos of neither answered 'unknown' (of {summary['n_out']})")
    ax.set_ylabel(f"cat/dog photos answered (of {summary['n_in']})")
    ax.set_ylim(max(0.0, min(summary["kept"], 0.9) - 0.02), 1.001)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(title or "Abstaining: 'unknown' trade-off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _gallery(paths, captions, path, title, *, k=12):
    """Up to ``k`` images in a grid with captions (a gallery never fails on one unreadable file)."""
    from ..preprocess import read_image

    plt = pyplot()
    n = min(k, len(paths))
    cols = min(4, max(1, n))
    rows = max(1, int(np.ceil(n / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(3.1 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, p, caption in zip(axes.ravel(), paths[:n], captions[:n]):
        try:
            ax.imshow(read_image(p))
        except Exception:  # noqa: BLE001
            pass
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_unknown_gallery(paths, y_true, presence, path, *, k=12):
    """The cat/dog photos answered 'unknown', least present first, with their presence scores."""
    order = np.argsort(np.asarray(presence))[:k]
    _gallery([paths[i] for i in order],
             [f"{os.path.basename(str(paths[i]))}\ntrue {y_true[i]}, presence {presence[i]:.3f}" for i in order],
             path, "Cat/dog photos answered 'unknown'" if len(order) else "No photo answered 'unknown'", k=k)
    return [int(i) for i in order]


def abstention_markdown(metrics, out_dir, *, paths, y_true, labels, presence, threshold, negatives=None):
    """Coverage, accuracy on answered photos, the 'unknown' gallery and (with negatives) the trade-off.

    Updates ``metrics`` in place (``coverage``, ``answered_accuracy``, ``unknown_photos``, ``negatives``,
    ``unknown_tradeoff``) and returns the report's Markdown section.
    """
    out_dir = Path(out_dir)
    ab = abstention_metrics(y_true, labels)
    metrics.update({f"test_{k}": v for k, v in ab.items()})
    unknown = np.flatnonzero(np.asarray(labels).astype(str) == "unknown")
    shown = plot_unknown_gallery([paths[i] for i in unknown], np.asarray(y_true)[unknown],
                                 np.asarray(presence)[unknown], out_dir / "unknown.png")
    metrics["unknown_photos"] = [{"path": str(paths[unknown[i]]), "true": str(y_true[unknown[i]]),
                                  "presence": float(presence[unknown[i]])} for i in shown]
    md = ["## Photos of neither: 'unknown'", "",
          f"The model answers 'unknown' where the presence score is below {threshold:g}.", "",
          "| metric | value |", "|---|---|",
          f"| coverage (cat/dog photos answered) | {ab['coverage']:.2%} ({ab['n_unknown']} answered 'unknown') |",
          f"| accuracy on the answered photos | {ab['answered_accuracy']:.4f} ({ab['answered_errors']} errors) |", ""]
    if negatives is not None:
        neg = negatives_metrics(negatives["groups"], negatives["labels"])
        tradeoff = unknown_tradeoff(presence, negatives["presence"], threshold)
        plot_unknown_tradeoff(tradeoff, out_dir / "unknown_tradeoff.png")
        metrics["negatives"] = dict(neg, source=negatives.get("source", ""), note=negatives.get("note", ""))
        metrics["unknown_tradeoff"] = {k: v for k, v in tradeoff.items() if not k.startswith("curve_")}
        md += [f"Photos of neither ({negatives.get('source', '')}; {negatives.get('note', '')}): "
               f"**{neg['rejected']:.1%}** of {neg['n']} answered 'unknown'.", "",
               "| group | photos | answered 'unknown' |", "|---|---|---|"]
        md += [f"| {g} | {v['n']} | {v['rejected']:.1%} |" for g, v in neg["by_group"].items()]
        md += ["", "![unknown trade-off](unknown_tradeoff.png)", ""]
    md += ["Cat/dog photos answered 'unknown' (least present first):", "", "![unknown](unknown.png)", ""]
    return "\n".join(md)


def write_report(out_dir, *, paths, y_true, pred, proba, classes, title, short_title="model", metrics=None,
                 extra_md="", labels=None, presence=None, threshold=None, negatives=None):
    """Write report.md (and index.html, the same as a page), results.json and the PNG plots for one model.

    ``title`` heads the Markdown report; ``short_title`` (a few words) labels the plots.
    ``pred``/``proba`` are the cat/dog classifier's own answers (the classic metrics);
    with ``labels`` (what the model answers, ``'unknown'`` included), ``presence`` and
    ``threshold`` the report adds coverage, accuracy on the answered photos and the gallery
    of photos answered 'unknown'; ``negatives`` (``{"groups", "labels", "presence",
    "source", "note"}``) adds the share of photos of neither answered 'unknown' and the
    trade-off curve.

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
    if labels is not None:
        extra_md = abstention_markdown(metrics, out_dir, paths=paths, y_true=y_true, labels=labels,
                                       presence=presence, threshold=threshold, negatives=negatives) + "\n" + extra_md
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
    from .._html import write_index

    write_index(out_dir, "\n".join(md) + "\n", title=title)
    return metrics
