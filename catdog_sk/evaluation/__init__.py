"""Evaluating a fitted cat/dog classifier on a labelled set: metrics, figures and the report folder.

- :mod:`catdog_sk.metrics` (re-exported here): accuracy, calibration, bootstrap intervals, abstention;
- :mod:`~catdog_sk.evaluation.plots`: the figures, one PNG each (matplotlib imported when one is drawn);
- :mod:`~catdog_sk.evaluation.report`: :func:`write_report`, the folder a person reads;
- :mod:`~catdog_sk.evaluation.comparison`: the side-by-side table and plot of ``fit``'s models.
"""

from ..metrics import (abstention_metrics, bootstrap_ci, classification_metrics, expected_calibration_error,
                       negatives_metrics, unknown_tradeoff)
from .plots import plot_accepted_gallery, plot_confusion, plot_curves, plot_top_losses, plot_unknown_gallery, plot_unknown_tradeoff
from .report import abstention_markdown, negatives_decision, write_report

__all__ = ["classification_metrics", "expected_calibration_error", "bootstrap_ci", "write_report",
           "plot_confusion", "plot_curves", "plot_top_losses", "unknown_tradeoff", "plot_unknown_tradeoff",
           "abstention_metrics", "negatives_metrics", "negatives_decision", "plot_unknown_gallery",
           "plot_accepted_gallery", "abstention_markdown"]
