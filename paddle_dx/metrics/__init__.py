"""Diagnostic metrics: a registry of named metrics (``registry.METRICS``, built-ins in
``definitions``), the report dict of one evaluation and its tables and figures."""

from paddle_dx.metrics import definitions  # noqa: F401  (registers the built-in metrics)
from paddle_dx.metrics.classification import classification_metrics, key_metric
from paddle_dx.metrics.registry import METRICS, ClassMetric, CountRatio, Metric, register
from paddle_dx.metrics.report import format_table
from paddle_dx.metrics.selection import history_entry

__all__ = [
    "METRICS",
    "ClassMetric",
    "CountRatio",
    "Metric",
    "classification_metrics",
    "format_table",
    "history_entry",
    "key_metric",
    "register",
]
