"""The evaluation report of one model on a labelled set: results.json, report.md, index.html and figures.

:func:`write_report` gathers the metrics of :mod:`catdog_sk.metrics` and the figures of
:mod:`catdog_sk.evaluation.plots` into one folder a person opens in a browser.
"""

import json
from pathlib import Path

import numpy as np

from ..metrics import abstention_metrics, classification_metrics, negatives_metrics, unknown_tradeoff
from .plots import plot_accepted_gallery, plot_confusion, plot_curves, plot_top_losses, plot_unknown_gallery, plot_unknown_tradeoff

__all__ = ["negatives_decision", "abstention_markdown", "write_report"]


def negatives_decision(clf, negatives, *, note, cache=None, n_jobs=None, progress=False):
    """A fitted classifier's answers on photos of neither, in the form ``write_report(negatives=...)`` takes.

    Parameters
    ----------
    clf : CatDogClassifier
        A fitted classifier.
    negatives : catdog_sk.data.Negatives
        Photos of neither cats nor dogs, with their groups (animal names).
    note : str
        Which photos these are; ``{n}`` is replaced by the number decoded.
    cache : str, os.PathLike, FeatureCache or None, default=None
        Feature cache.
    n_jobs : int, default=None
        Decoding workers.
    progress : bool, default=False
        Show a progress bar.

    Returns
    -------
    negatives : dict
        ``{"paths", "groups", "labels", "presence", "source", "note"}``.
    errors : list of ImageDecodeError
        The photos that could not be decoded (left out).
    """
    res = clf.featurize(negatives.paths, on_error="skip", cache=cache, n_jobs=n_jobs, progress=progress,
                        desc="negatives")
    decision = clf.predict_features(res.features, sides=res.sides)
    return ({"paths": [negatives.paths[i] for i in res.ok], "groups": [negatives.groups[i] for i in res.ok],
             "labels": decision.labels,
             "presence": decision.presence, "source": negatives.root, "note": note.format(n=len(res.ok))},
            res.errors)


def abstention_markdown(metrics, out_dir, *, paths, y_true, labels, presence, threshold, negatives=None):
    """Coverage, accuracy on answered photos, the 'unknown' gallery and (with negatives) the trade-off.

    Parameters
    ----------
    metrics : dict
        The report's metrics, updated in place (``test_coverage``, ``test_answered_accuracy``, ...,
        ``unknown_photos``, and with negatives ``negatives`` and ``unknown_tradeoff``).
    out_dir : str or os.PathLike
        Report folder for ``unknown.png`` (and ``unknown_tradeoff.png``).
    paths : sequence of str
        The labelled photos.
    y_true : array-like of shape (n_samples,)
        Their true class labels.
    labels : array-like of shape (n_samples,)
        What the model answers, ``'unknown'`` included.
    presence : array-like of shape (n_samples,)
        Their presence scores.
    threshold : float
        The presence threshold below which the model answers 'unknown'.
    negatives : dict, default=None
        Answers on photos of neither, as :func:`negatives_decision` gives them.

    Returns
    -------
    markdown : str
        The report's "Photos of neither" section.
    """
    out_dir = Path(out_dir)
    ab = abstention_metrics(y_true, labels)
    metrics.update({f"test_{k}": v for k, v in ab.items()})
    unknown = np.flatnonzero(np.asarray(labels).astype(str) == "unknown")
    shown = plot_unknown_gallery([paths[i] for i in unknown], np.asarray(y_true)[unknown],
                                 np.asarray(presence)[unknown], out_dir / "unknown.png")
    every = np.argsort(np.asarray(presence)[unknown], kind="stable")  # all of them, least present first
    metrics["unknown_photos"] = [{"path": str(paths[unknown[i]]), "true": str(y_true[unknown[i]]),
                                  "presence": float(presence[unknown[i]])} for i in every]
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
        if "paths" in negatives:
            md += _accepted_negatives(metrics, out_dir, negatives)
    md += [f"Cat/dog photos answered 'unknown' ({len(shown)} of {len(unknown)} shown, least present first; "
           "all of them are listed in results.json):", "", "![unknown](unknown.png)", ""]
    return "\n".join(md)


def _accepted_negatives(metrics, out_dir, negatives):
    """The photos of neither answered cat or dog: a gallery, most present first, all listed in results.json."""
    labels, presence = np.asarray(negatives["labels"]).astype(str), np.asarray(negatives["presence"], float)
    accepted = np.flatnonzero(labels != "unknown")
    accepted = accepted[np.argsort(-presence[accepted], kind="stable")]
    metrics["accepted_negatives"] = [{"path": str(negatives["paths"][i]), "group": str(negatives["groups"][i]),
                                      "label": labels[i], "presence": float(presence[i])} for i in accepted]
    if not len(accepted):
        return ["No photo of neither was answered cat or dog.", ""]
    shown = plot_accepted_gallery([negatives["paths"][i] for i in accepted], [negatives["groups"][i] for i in accepted],
                                  labels[accepted], presence[accepted], out_dir / "accepted_negatives.png")
    return [f"Photos of neither answered cat or dog ({len(shown)} of {len(accepted)} shown, most present first; "
            "all of them are listed in results.json):", "", "![accepted negatives](accepted_negatives.png)", ""]


def write_report(out_dir, *, paths, y_true, pred, proba, classes, title, short_title="model", metrics=None,
                 extra_md="", labels=None, presence=None, threshold=None, negatives=None):
    """Write report.md (and index.html, the same as a page), results.json and the PNG plots for one model.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Report folder, created if needed.
    paths : sequence of str
        The labelled test photos.
    y_true : array-like of shape (n_samples,)
        Their true class labels.
    pred : array-like of shape (n_samples,)
        The cat/dog classifier's own answers (the classic metrics use them).
    proba : ndarray of shape (n_samples, 2)
        Its class probabilities, in the order of ``classes``.
    classes : sequence of str
        The two classes.
    title : str
        Heads the Markdown report and the page.
    short_title : str, default="model"
        A few words that label the plots.
    metrics : dict, default=None
        Metrics already computed; None: :func:`catdog_sk.metrics.classification_metrics`.
    extra_md : str, default=""
        Markdown added after the metrics table.
    labels : array-like of shape (n_samples,), default=None
        What the model answers, ``'unknown'`` included; with ``presence`` and ``threshold`` the
        report adds coverage, accuracy on the answered photos and the gallery of photos answered
        'unknown'.
    presence, threshold : array-like of shape (n_samples,) and float, default=None
        Presence scores of the test photos, and the presence threshold.
    negatives : dict, default=None
        ``{"groups", "labels", "presence", "source", "note"}`` (see :func:`negatives_decision`):
        adds the share of photos of neither answered 'unknown' and the trade-off curve.

    Returns
    -------
    metrics : dict
        What ``results.json`` holds: the metrics, the top losses and the abstention figures.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = dict(metrics or classification_metrics(y_true, pred, proba, classes))
    plot_confusion(y_true, pred, classes, out_dir / "confusion.png", title=f"Confusion: {short_title}", answers=labels)
    plot_curves(y_true, proba, classes, out_dir, title=short_title)
    shown = plot_top_losses(paths, y_true, proba, classes, out_dir / "top_losses.png")
    true_idx = np.searchsorted(classes, np.asarray(y_true))
    metrics["top_losses"] = [{"path": str(paths[i]), "true": str(y_true[i]), "p_true": float(proba[i, true_idx[i]])}
                             for i in shown]
    if labels is not None:
        extra_md = abstention_markdown(metrics, out_dir, paths=paths, y_true=y_true, labels=labels,
                                       presence=presence, threshold=threshold, negatives=negatives) + "\n" + extra_md
    (out_dir / "results.json").write_text(json.dumps(metrics, indent=2, default=str))
    md = _report_markdown(title, metrics, extra_md)
    (out_dir / "report.md").write_text(md)
    from .._html import write_index

    write_index(out_dir, md, title=title)
    return metrics


def _report_markdown(title, metrics, extra_md):
    """report.md: the metrics table, ``extra_md``, the figures and the table of top losses."""
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
    return "\n".join(md) + "\n"
