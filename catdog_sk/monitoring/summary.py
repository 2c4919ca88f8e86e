"""From prediction-log rows to the monitoring summary: cleaning, the reference, the signals and the alerts.

Real logs are messy, so rows are cleaned first (:func:`clean_rows`) and every signal that cannot be
computed says why in the summary's ``notes``.
"""

import json
from pathlib import Path

import numpy as np

from .._filenames import REFERENCE_EMBEDDINGS
from .drift import (DEFAULT_MAX_DOMAIN_AUC, DEFAULT_MAX_PSI, DEFAULT_UNKNOWN_ALPHA, domain_classifier_auc, mmd_rbf,
                    psi, unknown_share_test, wilson_interval)
from .log import PredictionLog

__all__ = ["load_log", "clean_rows", "positive_scores", "load_reference", "summarize", "find_alerts",
           "previous_window"]


def load_log(db_path, *, since=None):
    """Rows of the prediction log (joined with feedback), optionally only those after ``since``.

    Parameters
    ----------
    db_path : str or os.PathLike
        The servers' prediction log: a SQLite file path, ``sqlite:///path`` or ``postgresql://...``.
    since : float, default=None
        Keep rows logged at or after this time (seconds since the epoch).

    Returns
    -------
    rows : list of dict
        One per logged prediction, oldest first.

    Raises
    ------
    DatasetError
        There is no log at ``db_path``, or it cannot be read.
    """
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


def positive_scores(rows, cls):
    """P(``cls``) of the cleaned rows whose probabilities could be read.

    Parameters
    ----------
    rows : list of dict
        From :func:`clean_rows`.
    cls : str
        A class of the model (the positive one for score drift).

    Returns
    -------
    scores : ndarray of shape (n_readable,)
        Finite probabilities only.
    """
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
    min_live : int, default=20
        Fewest live values a drift signal (scores, presence, embeddings) is computed from; with fewer,
        the signal is a note saying so, not a number.
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
    positive = positive_scores(rows, classes[1])
    if reference_scores is not None and len(reference_scores) and len(positive):
        out["drift"] = _drift(reference_scores, positive) if len(positive) >= min_live else \
            _too_few(len(positive), min_live, "predictions with readable probabilities")
    labels = np.array([r["label"] for r in rows])
    if reference_unknown_rate is not None:
        out["unknown"] = unknown_share_test(int(np.sum(labels == "unknown")), n, reference_unknown_rate,
                                            alpha=unknown_alpha, reference_n=len(reference_scores)
                                            if reference_scores is not None else None)
    presence = np.array([r["presence"] for r in rows if r["presence"] is not None], dtype=float)
    if reference_presence is not None and len(reference_presence) and len(presence) < min_live:
        out["presence_drift"] = _too_few(len(presence), min_live, "presence scores")
    elif reference_presence is not None and len(reference_presence) and len(presence):
        out["presence_drift"] = dict(_drift(reference_presence, presence), live_median=float(np.median(presence)),
                                     reference_median=float(np.median(reference_presence)))
        del out["presence_drift"]["reference_n"]
    if reference_embeddings is not None and live_embeddings is not None:
        out["embedding_drift"] = _embedding_drift(reference_embeddings, live_embeddings, min_live, embedding_widths)
    feedback = [(r["label"], r["true_label"]) for r in rows if r.get("true_label") is not None]
    if feedback:
        out["live_accuracy"] = _live_accuracy(feedback)
    return out


def _too_few(n, needed, what):
    """A signal left out for lack of data, saying so (a PSI of 3.3 from 8 predictions means nothing)."""
    return {"note": f"not computed: needs at least {needed} {what}; have {n}"}


def _live_accuracy(feedback):
    correct = sum(a == b for a, b in feedback)
    lo, hi = wilson_interval(correct, len(feedback))
    return {"n_feedback": len(feedback), "accuracy": correct / len(feedback), "ci95": [lo, hi],
            "note": "from user feedback only: users mostly report mistakes, so this is a lower bound on "
                    "accuracy, not an unbiased estimate"}


def _confidence(row):
    """The answer's confidence, as :func:`catdog_sk.metrics.answer_confidence` gives it; None when unreadable."""
    if row["label"] == "unknown":
        return None if row["presence"] is None else 1.0 - row["presence"]
    return None if row["proba"] is None else max(row["proba"].values())


def _traffic(rows, classes):
    """Time span, latency percentiles, class shares and confidence of the cleaned rows."""
    times = np.array([r["time"] for r in rows])
    latency = np.array([r["latency_ms"] for r in rows if r["latency_ms"] is not None])
    labels = np.array([r["label"] for r in rows])
    confidence = np.array([c for c in map(_confidence, rows) if c is not None])
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
    """The alert lines a summary raises under the given thresholds (empty: no alert).

    Parameters
    ----------
    summary : dict
        From :func:`summarize`.
    max_psi : float, default=DEFAULT_MAX_PSI
        Alert above this PSI of P(positive).
    max_domain_auc : float, default=DEFAULT_MAX_DOMAIN_AUC
        Alert above this embedding domain-classifier AUC.
    min_live_accuracy : float, default=None
        Alert when the upper end of the feedback accuracy's interval is below it.
    max_p99_ms : float, default=None
        Alert when the p99 latency is above it.

    Returns
    -------
    alerts : list of str
        The 'unknown' share alert comes from the summary's own binomial test.
    """
    alerts = []
    unknown = summary.get("unknown")
    if unknown and unknown["alert"]:
        alerts.append(f"'unknown' share: {unknown['share']:.1%} of {unknown['n']} photos answered 'unknown' "
                      f"vs {unknown['reference_rate']:.1%} on the test set (binomial test p = "
                      f"{unknown['p_value']:.2g} < {unknown['alpha']:g})")
    drift = summary.get("drift")
    if drift and "psi" in drift and drift["psi"] > max_psi:
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

    Parameters
    ----------
    earlier, current : list of dict
        Log rows of the window before, and of the current window.
    classes : sequence of str
        The model's classes; the second is the positive class.

    Returns
    -------
    previous : dict
        ``n_predictions`` of the earlier window, and with rows in both ``class_share``,
        ``unknown_share_change`` and ``psi``.
    """
    from scipy.stats import fisher_exact

    out = {"n_predictions": len(earlier)}
    (earlier, _), (current, _) = clean_rows(earlier), clean_rows(current)
    if not earlier or not current:
        return out
    lab_e = np.array([r["label"] for r in earlier])
    lab_c = np.array([r["label"] for r in current])
    pos_e, pos_c = positive_scores(earlier, classes[1]), positive_scores(current, classes[1])
    k_e, k_c = int(np.sum(lab_e == "unknown")), int(np.sum(lab_c == "unknown"))
    table = [[k_c, len(lab_c) - k_c], [k_e, len(lab_e) - k_e]]
    out.update({"class_share": {str(c): float(np.mean(lab_e == c)) for c in [*classes, "unknown"]},
                "unknown_share_change": {"current": k_c / len(lab_c), "previous": k_e / len(lab_e),
                                         "p_value": float(fisher_exact(table).pvalue)},
                "psi": psi(pos_e, pos_c) if len(pos_e) and len(pos_c) else float("nan")})
    return out
