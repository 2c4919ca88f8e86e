"""Monitoring's pure functions: the 'unknown' share as a signal, windows, the report page."""

import json

import numpy as np

from catdog_sk.monitoring import find_alerts, monitor_html, previous_window, summarize, unknown_share_test


def _rows(labels, presence=None, t0=0.0):
    presence = presence if presence is not None else [0.9] * len(labels)
    return [{"time": t0 + k, "latency_ms": 5.0, "label": lab, "true_label": None, "presence": pres,
             "probabilities": json.dumps({"cat": 0.9, "dog": 0.1} if lab == "cat" else {"cat": 0.2, "dog": 0.8})}
            for k, (lab, pres) in enumerate(zip(labels, presence))]


def test_unknown_share_test_is_a_one_sided_binomial_rule():
    quiet = unknown_share_test(1, 100, 0.0095)
    assert not quiet["alert"] and quiet["p_value"] > 0.2
    loud = unknown_share_test(10, 100, 0.0095)
    assert loud["alert"] and loud["p_value"] < 1e-6 and loud["ci95"][0] < 0.1 < loud["ci95"][1]
    # fewer unknowns than the reference never alert (one-sided), a zero reference rate is handled
    assert not unknown_share_test(0, 500, 0.02)["alert"]
    assert unknown_share_test(3, 100, 0.0, reference_n=2000)["alert"]
    # the false-alarm rate is at most alpha when traffic is like the reference
    rng = np.random.default_rng(0)
    alarms = [unknown_share_test(int(k), 100, 0.01)["alert"] for k in rng.binomial(100, 0.01, 5000)]
    assert np.mean(alarms) <= 0.001


def test_summary_counts_unknown_in_the_class_share_and_alerts_on_it():
    rows = _rows(["cat"] * 40 + ["dog"] * 30 + ["unknown"] * 30, presence=[0.9] * 70 + [0.05] * 30)
    summary = summarize(rows, classes=["cat", "dog"], reference_scores=[0.1, 0.8] * 50,
                        reference_presence=[0.95] * 100, reference_unknown_rate=0.01)
    assert summary["class_share"] == {"cat": 0.4, "dog": 0.3, "unknown": 0.3}
    assert summary["unknown"]["alert"] and summary["presence_drift"]["ks_pvalue"] < 1e-6
    alerts = find_alerts(summary)
    assert alerts and alerts[0].startswith("'unknown' share: 30.0% of 100 photos")
    calm = summarize(_rows(["cat", "dog"] * 50), classes=["cat", "dog"], reference_scores=[0.1, 0.8] * 50,
                     reference_unknown_rate=0.01)
    assert not calm["unknown"]["alert"] and find_alerts(calm) == []


def test_an_unknown_answer_is_as_sure_as_the_photo_is_free_of_pets():
    """Its confidence is 1 - presence, not the classifier's P(cat) of 0.8-0.9 (issue 27)."""
    from catdog_sk.models import Decision

    decision = Decision(np.array(["cat", "unknown", "dog"], dtype=object), np.array([[0.9, 0.1], [0.99, 0.01],
                        [0.3, 0.7]]), np.array([0.95, 0.2, 0.6]))
    assert np.allclose(decision.confidence, [0.9, 0.8, 0.7])
    summary = summarize(_rows(["cat", "unknown"], presence=[0.9, 0.25]), classes=["cat", "dog"])
    assert np.isclose(summary["mean_confidence"], (0.9 + 0.75) / 2)  # the unknown row's P(cat) is 0.8: not used


def test_previous_window_shows_a_gradual_change():
    before = _rows(["cat", "dog"] * 50)
    now = _rows(["cat", "dog"] * 35 + ["unknown"] * 30, t0=1000)
    change = previous_window(before, now, classes=["cat", "dog"])
    assert change["unknown_share_change"]["previous"] == 0 and change["unknown_share_change"]["current"] == 0.3
    assert change["unknown_share_change"]["p_value"] < 1e-6
    assert previous_window([], now, classes=["cat", "dog"]) == {"n_predictions": 0}


def test_monitor_page_marks_the_alerts():
    page = monitor_html(["# Monitoring report", "- Predictions: 3", "![monitor](monitor.png)", "## Alerts", "",
                         "- <script>x</script>"],
                        "monitor.png")
    assert '<p id="status" class="alert">Alerts raised</p>' in page and '<ul id="alerts">' in page
    assert "<script>" not in page and "&lt;script&gt;" in page and 'src="monitor.png"' in page
    assert 'class="ok">No alert' in monitor_html(["# Monitoring report", "- Predictions: 0"], None)
