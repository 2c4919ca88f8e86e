"""Monitoring a served model from its prediction log: volume, latency, class mix, drift, live accuracy.

- :mod:`~catdog_sk.monitoring.log`: :class:`PredictionLog`, the SQLite log the server writes;
- :mod:`~catdog_sk.monitoring.drift`: pure statistics over plain arrays (``psi``, ``wilson_interval``,
  ``unknown_share_test``, ``domain_classifier_auc``, ``mmd_rbf``) and the default alert thresholds;
- :mod:`~catdog_sk.monitoring.summary`: log rows to the summary's numbers and alerts;
- :mod:`~catdog_sk.monitoring.report`: the summary as Markdown, JSON, an HTML page and a plot.
"""

# The file beside a saved model with a sample of CNN embeddings of its held-out test set (re-exported).
from .._filenames import REFERENCE_EMBEDDINGS  # not models.card: that would import scikit-learn
from .drift import (DEFAULT_MAX_DOMAIN_AUC, DEFAULT_MAX_PSI, DEFAULT_UNKNOWN_ALPHA, SCORE_BINS, domain_classifier_auc,
                    mmd_rbf, psi, unknown_share_test, wilson_interval)
from .log import PredictionLog
from .report import monitor_html, plot_monitor, summary_markdown, write_monitor_report
from .summary import clean_rows, find_alerts, load_log, load_reference, previous_window, summarize

__all__ = ["PredictionLog", "load_reference", "psi", "wilson_interval", "unknown_share_test", "domain_classifier_auc",
           "mmd_rbf", "load_log", "clean_rows", "summarize", "find_alerts", "previous_window", "write_monitor_report",
           "plot_monitor", "summary_markdown", "monitor_html", "REFERENCE_EMBEDDINGS", "DEFAULT_UNKNOWN_ALPHA",
           "DEFAULT_MAX_PSI", "DEFAULT_MAX_DOMAIN_AUC"]
