"""The report's figures: confusion matrix, ROC / PR / reliability curves, galleries, the 'unknown' trade-off.

Each function draws one figure into a PNG file. matplotlib is imported only when a plot is drawn (Agg
backend, files only), and a gallery never fails on one unreadable image.
"""

import os
from pathlib import Path

import numpy as np

from ..plotting import pyplot

__all__ = ["plot_confusion", "plot_curves", "plot_top_losses", "plot_unknown_tradeoff", "plot_unknown_gallery"]


def plot_confusion(y_true, pred, classes, path, title="", *, answers=None):
    """Confusion matrix of the answers as a PNG: a column for 'unknown' when the model abstains.

    Parameters
    ----------
    y_true, pred : array-like of shape (n_samples,)
        True and predicted class labels (the cat/dog classifier's own answers).
    classes : sequence of str
        Row and column order.
    path : str or os.PathLike
        PNG file to write.
    title : str, default=""
        Figure title; empty: "Confusion matrix".
    answers : array-like of shape (n_samples,), default=None
        What the model answers, ``'unknown'`` included: the matrix then has a third column, so the
        photos it abstained on are counted, not hidden in a cat/dog cell.
    """
    from sklearn.metrics import confusion_matrix

    plt = pyplot()
    columns = [str(c) for c in classes] + (["unknown"] if answers is not None else [])
    given = np.asarray(pred if answers is None else answers).astype(str)
    counts = confusion_matrix(np.asarray(y_true).astype(str), given, labels=columns)[:len(classes)]
    fig, ax = plt.subplots(figsize=(4.2 + 1.2 * (answers is not None), 4))
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, f"{n:,}", ha="center", va="center", color="white" if n > counts.max() / 2 else "black")
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(classes)), [str(c) for c in classes])
    ax.set(xlabel="answer", ylabel="true label")
    ax.set_title(title or "Confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(y_true, proba, classes, out_dir, title=""):
    """ROC, precision-recall and calibration (reliability) curves as three PNGs.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True class labels.
    proba : ndarray of shape (n_samples, 2)
        Class probabilities in the order of ``classes``; column 1 is the positive class.
    classes : sequence of str
        The two classes.
    out_dir : str or os.PathLike
        Folder for ``roc.png``, ``pr.png`` and ``calibration.png``.
    title : str, default=""
        Legend name of the curves (the model).

    Returns
    -------
    paths : dict
        ``{"roc", "pr", "calibration"}`` to the written files.
    """
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
        display = draw(ax)
        ax.set_title({"roc": "ROC curve", "pr": "Precision-recall", "calibration": "Reliability diagram"}[name])
        _zoom(ax, name, display, y_true, pos)
        fig.tight_layout()
        paths[name] = Path(out_dir) / f"{name}.png"
        fig.savefig(paths[name], dpi=110)
        plt.close(fig)
    return paths


def _zoom(ax, name, display, y_true, pos):
    """Show where good models differ: ROC on a log false-positive axis, PR from its lowest precision.

    At AUC 0.999 both curves hug the corner on linear axes, so nothing can be read from them.
    """
    ax.set_aspect("auto")  # scikit-learn draws these square; zoomed axes are not
    if name == "roc":
        n_negative = max(1, int(np.sum(y_true != pos)))
        ax.set_xscale("log", nonpositive="clip")
        ax.set_xlim(0.5 / n_negative, 1.0)  # half a false positive: a curve starting at 0 stays in view
        ax.set_xlabel(ax.get_xlabel() + " (log scale)")
        seen = display.fpr >= 1.0 / n_negative
        low = float(np.min(display.tpr[seen])) if seen.any() else 0.0
        ax.set_ylim(max(0.0, low - 0.01), 1.005)
    elif name == "pr":
        kept = display.recall <= 0.99  # the last 1% of recall falls to the base rate and says nothing
        low = float(np.min(display.precision[kept])) if kept.any() else 0.0
        ax.set_ylim(max(0.0, low - 0.02), 1.005)
    elif name == "calibration":
        counts, edges = np.histogram(display.y_prob, bins=10, range=(0, 1))
        shown = [f"{n}" for n in counts]
        ax.text(0.02, 0.98, "photos per tenth of P: " + " ".join(shown), transform=ax.transAxes, va="top",
                fontsize=6)


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
        except Exception:  # noqa: BLE001 - a gallery must not fail on one unreadable file
            pass
        ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_top_losses(paths, y_true, proba, classes, path, *, k=12):
    """Gallery of the most confidently wrong images, with file names and probabilities.

    Parameters
    ----------
    paths : sequence of str
        The images, in the order of ``y_true``.
    y_true : array-like of shape (n_samples,)
        True class labels.
    proba : ndarray of shape (n_samples, 2)
        Class probabilities in the order of ``classes``.
    classes : sequence of str
        The two classes.
    path : str or os.PathLike
        PNG file to write.
    k : int, default=12
        Most images shown.

    Returns
    -------
    shown : list of int
        Indices of the images shown, most confident mistake first; with no mistake, the least sure.
    """
    y_true = np.asarray(y_true)
    true_idx = np.searchsorted(classes, y_true)
    p_true = proba[np.arange(len(y_true)), true_idx]
    wrong = np.flatnonzero(p_true < 0.5)
    order = wrong[np.argsort(p_true[wrong])][:k]
    if len(order) == 0:
        order = np.argsort(p_true)[: min(k, len(p_true))]  # no errors: show the least sure
    captions = [f"{os.path.basename(str(paths[i]))}\ntrue {y_true[i]}, P({classes[1 - true_idx[i]]})="
                f"{1 - p_true[i]:.3f}" for i in order]
    _gallery([paths[i] for i in order], captions, path,
             "Most confident mistakes (top losses)" if len(wrong) else "Least confident (no mistakes)", k=k)
    return [int(i) for i in order]


def plot_unknown_tradeoff(summary, path, title=""):
    """Answered cat/dog photos vs rejected photos of neither as the presence threshold moves.

    Parameters
    ----------
    summary : dict
        What :func:`catdog_sk.metrics.unknown_tradeoff` returns (the curve and the operating point).
    path : str or os.PathLike
        PNG file to write.
    title : str, default=""
        Figure title; empty: "Abstaining: 'unknown' trade-off".
    """
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


def plot_unknown_gallery(paths, y_true, presence, path, *, k=12):
    """The cat/dog photos answered 'unknown', least present first, with their presence scores.

    Parameters
    ----------
    paths : sequence of str
        The photos answered 'unknown'.
    y_true : array-like of shape (n_samples,)
        Their true class labels.
    presence : array-like of shape (n_samples,)
        Their presence scores.
    path : str or os.PathLike
        PNG file to write.
    k : int, default=12
        Most photos shown.

    Returns
    -------
    shown : list of int
        Indices of the photos shown, least present first.
    """
    order = np.argsort(np.asarray(presence), kind="stable")[:k]
    _gallery([paths[i] for i in order],
             [f"{os.path.basename(str(paths[i]))}\ntrue {y_true[i]}, presence {presence[i]:.3f}" for i in order],
             path, f"Cat/dog photos answered 'unknown': {len(order)} of {len(paths)} shown, least present first"
             if len(order) else "No photo answered 'unknown'", k=k)
    return [int(i) for i in order]


def plot_accepted_gallery(paths, groups, labels, presence, path, *, k=12):
    """Photos of neither that the model answered cat or dog, most present first: its worst "unknown" misses.

    Parameters
    ----------
    paths : sequence of str
        The photos of neither answered cat or dog.
    groups : sequence of str
        What each shows (its folder: ``'cow'``, ``'sheep'`` ...).
    labels : array-like of shape (n_samples,)
        The answer given to each (``'cat'`` or ``'dog'``).
    presence : array-like of shape (n_samples,)
        Their presence scores.
    path : str or os.PathLike
        PNG file to write.
    k : int, default=12
        Most photos shown.

    Returns
    -------
    shown : list of int
        Indices of the photos shown, most present first.
    """
    order = np.argsort(-np.asarray(presence, dtype=float), kind="stable")[:k]
    _gallery([paths[i] for i in order],
             [f"{os.path.basename(str(paths[i]))}\n{groups[i]} answered {labels[i]}, presence {presence[i]:.3f}"
              for i in order],
             path, f"Photos of neither answered cat or dog: {len(order)} of {len(paths)} shown, most present first",
             k=k)
    return [int(i) for i in order]
