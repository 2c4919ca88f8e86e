"""The monitoring report: monitor.json, monitor.md, index.html and the five-panel plot.

What ``python -m catdog_sk.monitor`` writes and ``GET /monitor`` serves; matplotlib is imported only
when the plot is drawn.
"""

import json
from pathlib import Path

import numpy as np

from .drift import SCORE_BINS
from .summary import clean_rows, positive_scores

__all__ = ["write_monitor_report", "plot_monitor", "summary_markdown", "monitor_html"]


def write_monitor_report(out_dir, rows, summary, *, classes, reference_scores=None, reference_presence=None):
    """Write monitor.md, monitor.json, index.html and PNG plots (volume and latency over time, confidence, scores).

    Parameters
    ----------
    out_dir : str or os.PathLike
        Report folder, created if needed.
    rows : list of dict
        The window's log rows (for the plot).
    summary : dict
        From :func:`~catdog_sk.monitoring.summarize`, with ``alerts`` and ``previous_window`` when known.
    classes : sequence of str
        The model's classes.
    reference_scores, reference_presence : array-like, default=None
        The test set's P(positive) and presence scores, drawn beside the live ones.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "monitor.json").write_text(json.dumps(summary, indent=2))
    md = ["# Monitoring report", "", f"- Predictions: {summary['n_predictions']}"]
    if rows:
        plot_monitor(rows, summary, out_dir / "monitor.png", classes=classes, reference_scores=reference_scores,
                     reference_presence=reference_presence)
        md += summary_markdown(summary) + (["", "![monitor](monitor.png)"] if (out_dir / "monitor.png").is_file()
                                           else [])
    prev = summary.get("previous_window")
    if prev and "unknown_share_change" in prev:
        ch = prev["unknown_share_change"]
        md.append(f"- Against the window before ({prev['n_predictions']} predictions): 'unknown' "
                  f"{ch['current']:.1%} now vs {ch['previous']:.1%} (Fisher p = {ch['p_value']:.2g}); "
                  f"PSI of P({classes[1]}) {prev['psi']:.3f}")
    if summary.get("alerts"):
        md += ["", "## Alerts", ""] + [f"- {a}" for a in summary["alerts"]]
    (out_dir / "monitor.md").write_text("\n".join(md) + "\n")
    (out_dir / "index.html").write_text(monitor_html(md, "monitor.png" if (out_dir / "monitor.png").is_file()
                                                     else None))


def plot_monitor(rows, summary, path, *, classes, reference_scores=None, reference_presence=None):
    """One PNG of five panels: volume and latency over time, P(positive), the 'unknown' share, presence.

    Parameters
    ----------
    rows : list of dict
        Log rows (cleaned here; nothing is drawn when none has a time).
    summary : dict
        From :func:`~catdog_sk.monitoring.summarize` (the reference 'unknown' rate is drawn from it).
    path : str or os.PathLike
        PNG file to write.
    classes : sequence of str
        The model's classes; the second is the positive class.
    reference_scores, reference_presence : array-like, default=None
        The test set's P(positive) and presence scores.
    """
    from ..plotting import pyplot

    plt = pyplot()
    rows, _ = clean_rows(rows)
    if not rows:
        return
    times = np.array([r["time"] for r in rows])
    latency = np.array([np.nan if r["latency_ms"] is None else r["latency_ms"] for r in rows])
    positive = positive_scores(rows, classes[1])
    presence = np.array([np.nan if r["presence"] is None else r["presence"] for r in rows], dtype=float)
    labels = np.array([r["label"] for r in rows])
    fig, axes = plt.subplots(1, 5, figsize=(21, 3.6))
    t0 = times.min()
    edges = np.linspace(t0, max(times.max(), t0 + 1), 25)
    axes[0].hist((times - t0) / 60, bins=(edges - t0) / 60)
    axes[0].set(title="Volume", xlabel="minutes since first prediction", ylabel="predictions")
    axes[1].plot((times - t0) / 60, latency, ".", alpha=0.5)
    axes[1].set(title="Latency", xlabel="minutes since first prediction", ylabel="ms")
    _live_vs_reference(axes[2], positive, reference_scores)
    axes[2].set(title=f"P({classes[1]})", xlabel="probability")
    # the share answered 'unknown' over time: the clearest sign that users send something else
    which = np.clip(np.digitize(times, edges[1:-1]), 0, len(edges) - 2)
    counts = np.bincount(which, minlength=len(edges) - 1)
    unknown = np.bincount(which, weights=(labels == "unknown").astype(float), minlength=len(edges) - 1)
    mids = (edges[:-1] + edges[1:]) / 2
    axes[3].plot((mids - t0) / 60, np.where(counts > 0, unknown / np.maximum(counts, 1), np.nan), "o-")
    if "unknown" in summary:
        axes[3].axhline(summary["unknown"]["reference_rate"], color="C3", ls="--", label="reference (test set)")
        axes[3].legend()
    axes[3].set(title="Answered 'unknown'", xlabel="minutes since first prediction", ylabel="share",
                ylim=(-0.02, 1.02))
    _live_vs_reference(axes[4], presence[np.isfinite(presence)], reference_presence)  # none when it never abstains
    axes[4].set(title="Presence score (cat or dog in the photo)", xlabel="score")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _live_vs_reference(ax, live, reference):
    """Density histograms of live values and of the test-set reference on SCORE_BINS, with a legend."""
    if len(live) and np.isfinite(live).any():
        ax.hist(live, bins=SCORE_BINS, alpha=0.6, density=True, label="live")
    if reference is not None and len(reference):
        ax.hist(reference, bins=SCORE_BINS, alpha=0.6, density=True, label="reference (test set)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def summary_markdown(summary):
    """The summary's measurements as Markdown list items (latency, class share, 'unknown', drift, accuracy).

    Parameters
    ----------
    summary : dict
        From :func:`summarize`.

    Returns
    -------
    lines : list of str
        Signals that could not be computed say why (the summary's ``notes``).
    """
    md = [f"- Note: {note}" for note in summary.get("notes", [])]
    if "latency_ms" in summary:
        lat = summary["latency_ms"]
        md.append(f"- Latency: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, p99 {lat['p99']:.1f} ms")
    if "class_share" in summary:
        md.append(f"- Class share: {', '.join(f'{k} {v:.1%}' for k, v in summary['class_share'].items())}")
    if "mean_confidence" in summary:
        md.append(f"- Mean confidence {summary['mean_confidence']:.3f}; below 0.8: "
                  f"{summary['low_confidence_share']:.1%}")
    if "unknown" in summary:
        u = summary["unknown"]
        md.append(f"- Answered 'unknown': {u['share']:.1%} ({u['n_unknown']} of {u['n']}, 95% CI "
                  f"{u['ci95'][0]:.1%}-{u['ci95'][1]:.1%}) vs {u['reference_rate']:.1%} on the test set; "
                  f"one-sided binomial test p = {u['p_value']:.2g} (alert below {u['alpha']:g})")
    for key, name in (("presence_drift", "Presence score"), ("drift", "Score")):
        if "note" in summary.get(key, {}) and "psi" not in summary[key]:
            md.append(f"- {name} drift: {summary[key]['note']}")
    if "psi" in summary.get("presence_drift", {}):
        d = summary["presence_drift"]
        md.append(f"- Presence score vs the test set: median {d['live_median']:.3f} vs {d['reference_median']:.3f}, "
                  f"PSI {d['psi']:.3f}, KS {d['ks_statistic']:.3f} (p = {d['ks_pvalue']:.3g})")
    if "psi" in summary.get("drift", {}):
        d = summary["drift"]
        md.append(f"- Score drift vs the test set: PSI {d['psi']:.3f}, KS {d['ks_statistic']:.3f} "
                  f"(p = {d['ks_pvalue']:.3g})")
    e = summary.get("embedding_drift", {})
    if "domain_classifier_auc" in e:
        md.append(f"- Embedding drift vs the test set: domain-classifier AUC {e['domain_classifier_auc']:.3f} "
                  f"(0.5 = no drift), MMD² {e['mmd2']:.4f}, {e['live_n']} live vs {e['reference_n']} reference"
                  + (f" ({e['note']})" if "note" in e else ""))
    elif e:
        md.append(f"- Embedding drift: {e['note']}")
    if "live_accuracy" in summary:
        a = summary["live_accuracy"]
        md.append(f"- Live accuracy from {a['n_feedback']} feedback: {a['accuracy']:.3f} "
                  f"(95% CI {a['ci95'][0]:.3f}-{a['ci95'][1]:.3f}); {a['note']}")
    return md


def monitor_html(md_lines, image_src):
    """The monitoring report as one HTML page (what ``monitor`` writes as index.html and ``GET /monitor`` serves).

    Parameters
    ----------
    md_lines : list of str
        The report's Markdown lines (headings, list items, the plot).
    image_src : str or None
        The plot's URL relative to the page; None: no image.

    Returns
    -------
    html : str
        The list under "## Alerts" gets ``id="alerts"``, and the page opens with ``#status``: "No alert"
        or "Alerts raised". Every text is escaped.
    """
    import html

    body, open_list, heading = [], False, ""
    for line in md_lines:
        if line.startswith("- "):
            if not open_list:
                body.append('<ul id="alerts">' if heading == "Alerts" else "<ul>")
                open_list = True
            body.append(f"<li>{html.escape(line[2:])}</li>")
            continue
        if open_list:
            body.append("</ul>")
            open_list = False
        if line.startswith("## "):
            heading = line[3:]
            body.append(f"<h2>{html.escape(heading)}</h2>")
        elif line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("![") and image_src:
            body.append(f'<img alt="monitoring plots" src="{html.escape(image_src)}" style="max-width:100%">')
    if open_list:
        body.append("</ul>")
    alerts = "## Alerts" in md_lines
    status = ('<p id="status" class="alert">Alerts raised</p>' if alerts else
              '<p id="status" class="ok">No alert</p>')
    return ("<!doctype html><html><head><meta charset='utf-8'><title>catdog_sk monitor</title>"
            "<style>body{font-family:sans-serif;margin:2em} .alert{color:#b00;font-weight:bold} "
            ".ok{color:#070}</style></head><body>" + status + "\n".join(body) +
            "<p><a href='/'>Back to the classifier</a></p></body></html>")
