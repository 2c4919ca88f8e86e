"""Monitoring a served model from its prediction log: volume, latency, class mix, drift, live accuracy.

Pure functions over plain arrays first (``psi``, ``wilson_interval``), then
``monitor_report`` that reads the log and writes Markdown + PNG plots.
"""

import json
from pathlib import Path

import numpy as np

# The file beside a saved model with a sample of CNN embeddings of its held-out test set (re-exported).
from .._filenames import REFERENCE_EMBEDDINGS  # not models.card: that would import scikit-learn
from .log import PredictionLog

__all__ = ["PredictionLog", "load_reference", "psi", "wilson_interval", "unknown_share_test", "domain_classifier_auc",
           "mmd_rbf", "load_log", "summarize", "find_alerts", "previous_window", "write_monitor_report", "plot_monitor",
           "summary_markdown", "monitor_html", "REFERENCE_EMBEDDINGS", "DEFAULT_UNKNOWN_ALPHA", "DEFAULT_MAX_PSI",
           "DEFAULT_MAX_DOMAIN_AUC"]

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

    if not Path(db_path).is_file():
        from ..exceptions import DatasetError

        raise DatasetError(f"No prediction log at {db_path}.")
    rows = PredictionLog(db_path, create=False).rows()
    if since is not None:
        rows = [r for r in rows if _number(r["time"]) is not None and r["time"] >= since]
    return rows


def _number(value):
    """``value`` as a finite float, or None (NULL, text, NaN in a log row or a card field)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return float(value)


def _numbers(value):
    """A list of finite numbers as an array, or None when ``value`` is anything else."""
    if not isinstance(value, (list, tuple)) or not value or any(_number(v) is None for v in value):
        return None
    return np.asarray(value, dtype=float)


def _probabilities(text):
    """A logged probabilities field as {class: p}, or None when it is not a JSON object of numbers."""
    try:
        value = json.loads(text) if isinstance(text, (str, bytes)) else None
    except ValueError:
        return None
    if not isinstance(value, dict) or not value or any(_number(v) is None for v in value.values()):
        return None
    return {str(k): float(v) for k, v in value.items()}


def clean_rows(rows):
    """Log rows made safe to summarise, and what was wrong with them, in words.

    Real logs are messy: probabilities that are ``{}``, null or not JSON, NULL times or latencies.
    Rows without a time are left out (they cannot be placed in a window); a row whose probabilities
    are unreadable still counts in the class shares, but not in the score signals; a NULL latency is
    left out of the latency percentiles. Cleaning clean rows changes nothing.

    Parameters
    ----------
    rows : list of dict
        From :func:`load_log` (or :meth:`PredictionLog.rows`).

    Returns
    -------
    rows : list of dict
        Copies with ``time`` a float, ``latency_ms`` a float or None, ``label`` a str, ``presence`` a
        float or None and ``proba`` the parsed probabilities (None when unreadable).
    notes : list of str
    """
    out, no_time, bad_proba, no_latency = [], 0, 0, 0
    for row in rows:
        row = dict(row)
        if _number(row.get("time")) is None:
            no_time += 1
            continue
        row["proba"] = row["proba"] if "proba" in row else _probabilities(row.get("probabilities"))
        row["latency_ms"], row["presence"] = _number(row.get("latency_ms")), _number(row.get("presence"))
        row["label"] = str(row.get("label"))
        bad_proba += row["proba"] is None
        no_latency += row["latency_ms"] is None
        out.append(row)
    notes = [f"{k} of {len(rows)} logged rows {what}" for k, what in (
        (no_time, "have no time: left out"),
        (bad_proba, "have probabilities that are not a JSON object of numbers: left out of the score signals"),
        (no_latency, "have no latency: left out of the latency percentiles")) if k]
    return out, notes


def _positive(rows, cls):
    """P(``cls``) of the rows whose probabilities could be read."""
    values = np.array([r["proba"].get(str(cls), np.nan) for r in rows if r["proba"] is not None], dtype=float)
    return values[np.isfinite(values)]


def load_reference(model_dir, card):
    """What live traffic is compared with: the card's test-set distributions and the saved embeddings.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The model folder (``reference_embeddings.npy`` is read from it when present).
    card : ModelCard or None
        The model's card; None (a model saved without one) gives no reference distributions.

    Returns
    -------
    reference : dict
        ``classes``, ``reference_scores``, ``reference_presence``, ``reference_unknown_rate`` and
        ``reference_embeddings``: keyword arguments of :func:`summarize`.
    """
    fields = card.to_dict() if card is not None else {}
    ref = fields.get("reference") if isinstance(fields.get("reference"), dict) else {}
    notes = [] if isinstance(fields.get("reference", {}), dict) else ["the card's reference is not an object"]
    classes = fields.get("classes")
    if not (isinstance(classes, list) and len(classes) == 2 and all(isinstance(c, str) for c in classes)):
        if card is not None:
            notes.append(f"the card's classes are {classes!r}, not two names: assumed ['cat', 'dog']")
        classes = ["cat", "dog"]
    out = {"classes": classes, "reference_notes": notes}
    for key, name, parse in (("p_positive", "reference_scores", _numbers), ("presence", "reference_presence", _numbers),
                             ("unknown_rate", "reference_unknown_rate", _number)):
        value = parse(ref.get(key))
        if key == "unknown_rate" and value is not None and not 0 <= value <= 1:
            value = None
        if value is None and ref.get(key) is not None:
            notes.append(f"the card's reference.{key} is {ref[key]!r:.60}, not "
                         f"{'a share in [0, 1]' if key == 'unknown_rate' else 'a list of numbers'}: not used")
        out[name] = value
    emb = Path(model_dir) / REFERENCE_EMBEDDINGS
    out["reference_embeddings"] = np.load(emb, allow_pickle=False) if emb.is_file() else None
    return out


def summarize(rows, *, classes, reference_scores=None, reference_embeddings=None, live_embeddings=None,
              min_live=20, reference_presence=None, reference_unknown_rate=None, unknown_alpha=DEFAULT_UNKNOWN_ALPHA,
              reference_notes=None, embedding_widths=None):
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
    reference_presence : array-like, default=None
        Presence scores on the held-out test set (model card), for the drift of the "neither" score.
    reference_unknown_rate : float, default=None
        Share of the held-out test set answered 'unknown' (model card), for :func:`unknown_share_test`.
    unknown_alpha : float, default=DEFAULT_UNKNOWN_ALPHA
    reference_notes : list of str, default=None
        What :func:`load_reference` could not use from the card.
    embedding_widths : dict, default=None
        :meth:`PredictionLog.embedding_sample`'s widths of the log, so that a mix of widths is reported.

    Returns
    -------
    summary : dict
        Each signal that could be computed; ``notes`` says, in words, what could not and why.
    """
    rows, notes = clean_rows(rows)
    n = len(rows)
    out = {"n_predictions": n, "notes": list(reference_notes or []) + notes}
    if n == 0:
        return out
    out.update(_traffic(rows, classes))
    positive = _positive(rows, classes[1])
    if reference_scores is not None and len(reference_scores) and len(positive):
        out["drift"] = _drift(reference_scores, positive)
    labels = np.array([r["label"] for r in rows])
    if reference_unknown_rate is not None:
        out["unknown"] = unknown_share_test(int(np.sum(labels == "unknown")), n, reference_unknown_rate,
                                            alpha=unknown_alpha, reference_n=len(reference_scores)
                                            if reference_scores is not None else None)
    presence = np.array([r["presence"] for r in rows if r["presence"] is not None], dtype=float)
    if reference_presence is not None and len(reference_presence) and len(presence):
        out["presence_drift"] = dict(_drift(reference_presence, presence), live_median=float(np.median(presence)),
                                     reference_median=float(np.median(reference_presence)))
        del out["presence_drift"]["reference_n"]
    if reference_embeddings is not None and live_embeddings is not None:
        out["embedding_drift"] = _embedding_drift(reference_embeddings, live_embeddings, min_live, embedding_widths)
    feedback = [(r["label"], r["true_label"]) for r in rows if r.get("true_label") is not None]
    if feedback:
        out["live_accuracy"] = _live_accuracy(feedback)
    return out


def _live_accuracy(feedback):
    correct = sum(a == b for a, b in feedback)
    lo, hi = wilson_interval(correct, len(feedback))
    return {"n_feedback": len(feedback), "accuracy": correct / len(feedback), "ci95": [lo, hi],
            "note": "from user feedback only: users mostly report mistakes, so this is a lower bound on "
                    "accuracy, not an unbiased estimate"}


def _traffic(rows, classes):
    """Time span, latency percentiles, class shares and confidence of the cleaned rows."""
    times = np.array([r["time"] for r in rows])
    latency = np.array([r["latency_ms"] for r in rows if r["latency_ms"] is not None])
    labels = np.array([r["label"] for r in rows])
    confidence = np.array([max(r["proba"].values()) for r in rows if r["proba"] is not None])
    out = {"first": float(times.min()), "last": float(times.max()),
           "class_share": {str(c): float(np.mean(labels == c)) for c in [*classes, "unknown"]}}
    if len(latency):
        out["latency_ms"] = {f"p{q}": float(np.percentile(latency, q)) for q in (50, 95, 99)}
    if len(confidence):
        out.update(mean_confidence=float(confidence.mean()), low_confidence_share=float(np.mean(confidence < 0.8)))
    return out


def _drift(reference, live):
    """PSI and the two-sample KS test of live values against the test set's."""
    from scipy.stats import ks_2samp

    ref = np.asarray(reference, dtype=float)
    ks = ks_2samp(ref, live)
    return {"psi": psi(ref, live), "ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue),
            "reference_n": int(len(ref))}


def _embedding_drift(reference, live, min_live, widths):
    """Domain-classifier AUC and MMD² of live embeddings of the reference's width, or why not computed."""
    width = reference.shape[1]
    mixed = sorted(k for k in (widths or {}) if k != width)
    why = []
    if mixed:
        why.append(f"the log mixes {' and '.join(f'{k}-wide' if k != 'damaged' else 'damaged' for k in [*mixed, width])}"
                   f" embeddings; compared {len(live)} rows of the current model's width ({width})")
    if len(live) < min_live or (len(live) and live.shape[1] != width):
        return {"note": "; ".join(why + [f"not computed: needs at least {min_live} logged embeddings of the "
                                         f"reference's width ({width}); have {len(live)}"])}
    live = live[-2000:]
    out = {"domain_classifier_auc": domain_classifier_auc(reference, live), "mmd2": mmd_rbf(reference[:500], live[-500:]),
           "live_n": int(len(live)), "reference_n": int(len(reference))}
    if why:
        out["note"] = why[0]
    return out


def find_alerts(summary, *, max_psi=DEFAULT_MAX_PSI, max_domain_auc=DEFAULT_MAX_DOMAIN_AUC,
                min_live_accuracy=None, max_p99_ms=None):
    """The alert lines a summary raises under the given thresholds (empty: no alert)."""
    alerts = []
    unknown = summary.get("unknown")
    if unknown and unknown["alert"]:
        alerts.append(f"'unknown' share: {unknown['share']:.1%} of {unknown['n']} photos answered 'unknown' "
                      f"vs {unknown['reference_rate']:.1%} on the test set (binomial test p = "
                      f"{unknown['p_value']:.2g} < {unknown['alpha']:g})")
    drift = summary.get("drift")
    if drift and drift["psi"] > max_psi:
        alerts.append(f"score drift: PSI {drift['psi']:.3f} > {max_psi}")
    live = summary.get("live_accuracy")
    if live and min_live_accuracy is not None and live["ci95"][1] < min_live_accuracy:
        alerts.append(f"live accuracy CI {live['ci95'][0]:.3f}-{live['ci95'][1]:.3f} is below {min_live_accuracy}")
    emb = summary.get("embedding_drift", {})
    if emb.get("domain_classifier_auc", 0) > max_domain_auc:
        alerts.append(f"embedding drift: domain-classifier AUC {emb['domain_classifier_auc']:.3f} > {max_domain_auc}")
    if "latency_ms" in summary and max_p99_ms is not None and summary["latency_ms"]["p99"] > max_p99_ms:
        alerts.append(f"p99 latency {summary['latency_ms']['p99']:.1f} ms > {max_p99_ms} ms")
    return alerts


def previous_window(earlier, current, *, classes):
    """The window before the current one, and how the current one differs from it.

    ``unknown_share_change`` is a two-sided exact test (Fisher) of the 'unknown' share between
    the two windows; ``psi`` compares their P(positive) distributions.
    """
    from scipy.stats import fisher_exact

    out = {"n_predictions": len(earlier)}
    (earlier, _), (current, _) = clean_rows(earlier), clean_rows(current)
    if not earlier or not current:
        return out
    lab_e = np.array([r["label"] for r in earlier])
    lab_c = np.array([r["label"] for r in current])
    pos_e, pos_c = _positive(earlier, classes[1]), _positive(current, classes[1])
    k_e, k_c = int(np.sum(lab_e == "unknown")), int(np.sum(lab_c == "unknown"))
    table = [[k_c, len(lab_c) - k_c], [k_e, len(lab_e) - k_e]]
    out.update({"class_share": {str(c): float(np.mean(lab_e == c)) for c in [*classes, "unknown"]},
                "unknown_share_change": {"current": k_c / len(lab_c), "previous": k_e / len(lab_e),
                                         "p_value": float(fisher_exact(table).pvalue)},
                "psi": psi(pos_e, pos_c) if len(pos_e) and len(pos_c) else float("nan")})
    return out


def write_monitor_report(out_dir, rows, summary, *, classes, reference_scores=None, reference_presence=None):
    """Write monitor.md, monitor.json, index.html and PNG plots (volume and latency over time, confidence, scores)."""
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
    """One PNG of five panels: volume and latency over time, P(positive), the 'unknown' share, presence."""
    from ..plotting import pyplot

    plt = pyplot()
    rows, _ = clean_rows(rows)
    if not rows:
        return
    times = np.array([r["time"] for r in rows])
    latency = np.array([np.nan if r["latency_ms"] is None else r["latency_ms"] for r in rows])
    positive = _positive(rows, classes[1])
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
    if "presence_drift" in summary:
        d = summary["presence_drift"]
        md.append(f"- Presence score vs the test set: median {d['live_median']:.3f} vs {d['reference_median']:.3f}, "
                  f"PSI {d['psi']:.3f}, KS {d['ks_statistic']:.3f} (p = {d['ks_pvalue']:.3g})")
    if "drift" in summary:
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

    ``md_lines`` are the report's Markdown lines (headings, ``- `` items, the plot); the list under
    "## Alerts" gets ``id="alerts"`` and the page opens with ``#status``: "No alert" or "Alerts raised".
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
