"""The metric registry: every metric paddle_dx computes, logs, picks the best epoch by and
bootstraps is one named class here (first-class metric objects, as in MONAI).

A metric is defined once, on a batch of prediction sets (``Predictions``), and knows how to
write itself into the report dict, read itself back from it and what to log per epoch. Adding a
metric is one decorated class in ``definitions.py`` (or anywhere, with ``@register``).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from paddle_dx.errors import ConfigError
from paddle_dx.metrics.predictions import Predictions, ratio
from paddle_dx.utils.registry import Registry

METRICS = Registry("metric")
M = TypeVar("M", bound="Metric")


def register(cls: type[M]) -> type[M]:
    """Class decorator: add a Metric subclass to METRICS under its ``name``."""
    return METRICS.register(cls, name=cls.name)


def number(value: float) -> float | None:
    """A plain float, or None where the metric is undefined (NaN)."""
    value = float(value)
    return None if math.isnan(value) else value


class Metric:
    """A scalar metric: one number per prediction set.

    ``name`` is the config and report key, ``label`` its name in tables; ``headline`` (a
    position) puts it in the study tables and their bootstrap intervals.
    """

    name = ""
    label = ""
    higher_is_better = True
    headline = None

    def __init__(self) -> None:
        """No parameters; a subclass that takes some makes them settable in ``Metric.Eval``."""

    def values(self, pred: Predictions) -> np.ndarray:
        """[B] values of the B sets in ``pred``, NaN where undefined."""
        raise NotImplementedError

    def summary(self, pred: Predictions, positive: int | None = None) -> np.ndarray:
        """One number per set; ``positive`` (a class id) matters for per-class metrics."""
        return self.values(pred)

    def __call__(self, labels, probs, positive=None):
        """The value on one prediction set: labels [N], probs [N, K]."""
        return number(self.summary(Predictions(labels, probs), positive)[0])

    def scalar_names(self) -> list[str]:
        """Names under which this metric can be chosen as ``Metric.best_metric``."""
        return [self.name]

    def record(self, pred: Predictions, report: dict) -> None:
        """Write the value of the single set ``pred`` into a classification_metrics dict."""
        report[self.name] = number(self.values(pred)[0])

    def read(self, report: dict, positive: int | None = None) -> float | None:
        """The value back from a report dict (None if absent or undefined)."""
        return report.get(self.name)

    def logged(self, report: dict) -> tuple[dict, dict]:
        """What an epoch logs: ({scalar name: value}, {class: {metric: value}})."""
        return {self.name: report.get(self.name)}, {}


class ClassMetric(Metric):
    """A one-vs-rest metric per class ([B, K]); its scalar is the macro mean, ``macro_<name>``."""

    def summary(self, pred: Predictions, positive: int | None = None) -> np.ndarray:
        values = self.values(pred)
        return values[:, positive] if positive is not None else values.mean(axis=1)

    def scalar_names(self) -> list[str]:
        return [f"macro_{self.name}"]

    def record(self, pred: Predictions, report: dict) -> None:
        values = self.values(pred)[0]
        for cls, value in zip(report["class_names"], values):
            report["per_class"][cls][self.name] = float(value)
        report["macro"][self.name] = float(values.mean())

    def read(self, report: dict, positive: int | None = None) -> float | None:
        if positive is None:
            return report["macro"].get(self.name)
        return report["per_class"][report["class_names"][positive]].get(self.name)

    def logged(self, report: dict) -> tuple[dict, dict]:
        return (
            {f"macro_{self.name}": report["macro"][self.name]},
            {cls: {self.name: m[self.name]} for cls, m in report["per_class"].items()},
        )


class CountRatio(ClassMetric):
    """A per-class ratio of weighted one-vs-rest counts, 0 where the denominator is 0
    (scikit-learn's zero_division=0): ``numerator`` / ``denominator`` as {count: weight}."""

    numerator, denominator = {}, {}

    def values(self, pred: Predictions) -> np.ndarray:
        counts = pred.one_vs_rest
        num = sum(weight * counts[name] for name, weight in self.numerator.items())
        den = sum(weight * counts[name] for name, weight in self.denominator.items())
        return ratio(num, den)


def all_metrics() -> list[Metric]:
    """One instance of every registered metric (default parameters)."""
    return [METRICS.get(name)() for name in METRICS.names()]


def scalar_names() -> list[str]:
    return [s for metric in all_metrics() for s in metric.scalar_names()]


def scalar_metric(name: str) -> Metric:
    """The metric behind a scalar name (``macro_f1`` -> the f1 metric)."""
    for metric in all_metrics():
        if name in metric.scalar_names():
            return metric
    raise ConfigError(
        f"unknown metric '{name}'{METRICS.suggest(name, scalar_names())}; scalar metrics: {scalar_names()}"
    )


def headline_metrics() -> list[Metric]:
    """The metrics of the study tables and bootstrap intervals, in table order."""
    return sorted((m for m in all_metrics() if m.headline is not None), key=lambda m: m.headline)
