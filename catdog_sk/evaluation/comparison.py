"""The side-by-side comparison of a training run: feature sets x models, as a table and a bar chart."""

import numpy as np

__all__ = ["format_table", "markdown_table", "plot_comparison"]


def _params(row):
    return ", ".join(f"{k}={v}" for k, v in row["best_params"].items())


def format_table(rows):
    """The comparison as fixed-width text, one line per searched model (what ``fit`` prints).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`catdog_sk.models.workflow.compare` (and ``finetune_row``), scored on test.

    Returns
    -------
    table : str
    """
    head = (f"{'features':<10} {'model':<8} {'best params':<52} {'CV acc':>15} {'test acc':>9} "
            f"{'ROC AUC':>8} {'log loss':>9} {'fit s':>7} {'ms/img':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['features']:<10} {r['model']:<8} {_params(r):<52} "
            f"{r['cv_accuracy']:>8.4f}±{r['cv_std']:.4f} {r.get('test_accuracy', float('nan')):>9.4f} "
            f"{r.get('test_roc_auc', float('nan')):>8.4f} {r.get('test_log_loss', float('nan')):>9.4f} "
            f"{r['search_seconds'] + r['fit_seconds']:>7.1f} {r.get('predict_ms_per_image', float('nan')):>7.1f}")
    return "\n".join(lines)


def markdown_table(rows):
    """The comparison as a Markdown table (the report's "All feature sets x models" section).

    Parameters
    ----------
    rows : list of dict
        As for :func:`format_table`, with test metrics and ``predict_ms_per_image``.

    Returns
    -------
    table : str
    """
    lines = ["| features | model | best params | CV accuracy | test accuracy | ROC AUC | log loss | fit s "
             "| predict ms/img |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['features']} | {r['model']} | {_params(r)} | {r['cv_accuracy']:.4f} ± {r['cv_std']:.4f} "
                     f"| {r['test_accuracy']:.4f} | {r['test_roc_auc']:.4f} | {r['test_log_loss']:.4f} "
                     f"| {r['search_seconds'] + r['fit_seconds']:.1f} | {r['predict_ms_per_image']:.1f} |")
    return "\n".join(lines)


def plot_comparison(rows, path):
    """CV accuracy (with its fold spread) beside test accuracy, and the error rates on a log scale.

    The accuracy panel's axis starts just below the weakest model, not at 0.5; the error-rate panel
    (log scale) shows the differences that decide between the best models (0.50% vs 0.55% error), which
    any accuracy axis flattens.

    Parameters
    ----------
    rows : list of dict
        As for :func:`format_table`.
    path : str or os.PathLike
        Where the PNG is written.
    """
    from ..plotting import pyplot

    plt = pyplot()
    labels = [f"{r['features']}\n{r['model']}" for r in rows]
    cv = np.array([r["cv_accuracy"] for r in rows])
    std = np.array([r["cv_std"] for r in rows])
    test = np.array([r["test_accuracy"] for r in rows])
    fig, (ax, err) = plt.subplots(1, 2, figsize=(2 * max(5, 0.9 * len(rows)), 3.8))
    x = np.arange(len(rows))
    ax.bar(x - 0.2, cv, 0.4, yerr=std, label="CV (train)")
    ax.bar(x + 0.2, test, 0.4, label="test")
    ax.set_ylim(max(0.0, np.floor((min(cv.min(), test.min()) - 0.03) * 20) / 20), 1.0)
    ax.set(ylabel="accuracy", title="Feature set x model: accuracy")
    floor = 0.5 / max(1, max(r.get("test_n", 2000) for r in rows))  # half an error: 0 errors stay visible
    err.bar(x - 0.2, np.maximum(1 - cv, floor), 0.4, label="CV (train)")
    err.bar(x + 0.2, np.maximum(1 - test, floor), 0.4, label="test")
    err.set_yscale("log")
    err.set(ylabel="error rate (log scale)", title="Error rate: the differences that decide")
    for axis in (ax, err):
        axis.set_xticks(x, labels, fontsize=8)
        axis.legend(loc="upper left" if axis is ax else "upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
