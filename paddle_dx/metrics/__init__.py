"""Diagnostic metrics (scikit-learn) and their tables and figures."""
from paddle_dx.metrics.classification import classification_metrics, key_metric
from paddle_dx.metrics.report import format_table

__all__ = ["classification_metrics", "format_table", "key_metric"]
