"""``Metric.Eval``: which registered metrics each epoch logs (history record and VisualDL).

Items are ``name``, ``{name: {params}}`` (PaddleClas list syntax) or the PaddleClas-era names
paddle_dx configs have always used (``Accuracy``, ``PerClass``, ``AUC``, ``ConfusionMatrix``).
``Metric.Eval: null`` logs every registered metric. The loss and ``Metric.best_metric`` are
always logged: the epoch log line and the choice of the best epoch need them.
"""

from collections.abc import Iterable, Sequence

from paddle_dx.metrics.registry import METRICS, ClassMetric, Metric, all_metrics, scalar_metric
from paddle_dx.utils.registry import LiveNames

PADDLECLAS_NAMES = {
    "Accuracy": lambda: ["accuracy"],
    "AUC": lambda: ["auc"],
    "ConfusionMatrix": lambda: ["confusion_matrix"],
    "PerClass": lambda: [m.name for m in all_metrics() if isinstance(m, ClassMetric)],
}


def _build(item, where):
    """[Metric] for one Eval item; ConfigError naming ``where`` and the registered metrics."""
    name = item if isinstance(item, str) else next(iter(item), None) if isinstance(item, dict) else None
    if name in PADDLECLAS_NAMES and (isinstance(item, str) or not item[name]):
        return [METRICS.get(n)() for n in PADDLECLAS_NAMES[name]()]
    cls, params = METRICS.resolve(item, where)
    return [cls(**params)]


def eval_metrics(items: Sequence[str | dict] | None) -> list[Metric]:
    """The metrics a ``Metric.Eval`` list names (every registered one for None)."""
    if items is None:
        return all_metrics()
    chosen = {}
    for i, item in enumerate(items):
        for metric in _build(item, f"Metric.Eval[{i}]"):
            chosen.setdefault(metric.name, metric)
    return list(chosen.values())


def selected(metric_config: dict | None = None) -> list[Metric]:
    """Metric.Eval's metrics plus the loss and the best_metric's metric (every metric for None)."""
    if metric_config is None:
        return all_metrics()
    chosen = {m.name: m for m in eval_metrics(metric_config.get("Eval"))}
    for extra in (METRICS.get("loss")(), scalar_metric(metric_config["best_metric"])):
        chosen.setdefault(extra.name, extra)
    return list(chosen.values())


def logged_values(report: dict, metrics: Iterable[Metric]) -> tuple[dict, dict]:
    """({scalar name: value}, {class: {metric: value}}) of one evaluation for ``metrics``."""
    scalars, per_class = {}, {}
    for metric in metrics:
        more, classes = metric.logged(report)
        scalars.update(more)
        for cls, values in classes.items():
            per_class.setdefault(cls, {}).update(values)
    return scalars, per_class


def history_entry(report: dict, metric_config: dict | None, prefix: str = "val") -> dict:
    """The keys one evaluation adds to an epoch's history record: ``{prefix}_{scalar}`` for each
    selected scalar (val_loss, val_accuracy, val_auc, val_macro_f1, ...) and
    ``{prefix}_per_class`` {class: {metric: value}} when a per-class metric is selected."""
    scalars, per_class = logged_values(report, selected(metric_config))
    entry = {f"{prefix}_{name}": value for name, value in scalars.items()}
    if per_class:
        entry[f"{prefix}_per_class"] = per_class
    return entry


class EvalChoices(LiveNames):
    """``Metric.Eval``'s item names for the schema, read from the registry when asked.

    The config loader asks ``value in choices`` of the whole list: every item is built here, so
    an unknown name raises the registry's error naming the item and listing the metrics.
    """

    def __init__(self) -> None:
        super().__init__(lambda: METRICS.names() + list(PADDLECLAS_NAMES))

    def __contains__(self, items) -> bool:
        if not isinstance(items, list):
            return False
        eval_metrics(items)
        return True
