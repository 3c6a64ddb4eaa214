"""A stopping rule from the lung-nodule paper: once at least ``Global.stop_after_iterations``
training iterations are done and the validation accuracy reaches ``Global.stop_val_accuracy``,
keep that epoch's model (best_model.pdparams, whatever Metric.best_metric says) and stop.

The rule is checked at each validation (every Global.eval_interval epochs), the only moments the
trainer knows the validation accuracy; the epoch it fires at is marked ``stopped_by_rule`` in
the history, so a resumed run stops there too."""

from dataclasses import dataclass
from typing import Self

from paddle_dx.errors import ConfigError


@dataclass(frozen=True)
class StopRule:
    after_iterations: int
    val_accuracy: float

    @classmethod
    def from_config(cls, g: dict) -> Self | None:
        """The rule of a Global section, or None when both keys are unset."""
        after, accuracy = g.get("stop_after_iterations"), g.get("stop_val_accuracy")
        if after is None and accuracy is None:
            return None
        if after is None or accuracy is None:
            raise ConfigError(
                "config keys 'Global.stop_after_iterations' and 'Global.stop_val_accuracy' go "
                f"together: got {after} and {accuracy}"
            )
        return cls(int(after), float(accuracy))

    def describe(self) -> str:
        return f"{self.after_iterations}+ iterations and validation accuracy >= {self.val_accuracy:g}"

    def reached(self, history: list[dict]) -> bool:
        """True when the last record (an evaluated epoch) meets the rule; iterations are counted
        over the whole history (one step loss per iteration)."""
        if not history or history[-1].get("val_accuracy") is None:
            return False
        iterations = sum(len(h.get("step_losses") or []) for h in history)
        return iterations >= self.after_iterations and history[-1]["val_accuracy"] >= self.val_accuracy
