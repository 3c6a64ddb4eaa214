"""Everything the training loop does besides training, as callbacks at fixed points of
``Trainer.fit`` (the shape of ``paddle.callbacks.Callback``): the loop knows no dashboard, no
stopping rule, no trace and no fault-test pause; each is a small object the trainer lists.

Hooks, in order: ``on_train_begin`` (the run folder is held and claimed), ``on_train_batch_end``
(after each step), ``on_eval_end`` (a validation or test evaluation, with its history record to
annotate), ``on_epoch_end`` (the epoch's record is in the history), ``on_train_end`` (the final
result and the best epoch's predictions).
"""

import logging
from typing import Any

import numpy as np

from paddle_dx.engine.run_folder import RunFolder
from paddle_dx.engine.stop_rule import StopRule
from paddle_dx.engine.visualdl_logger import VisualDLLogger
from paddle_dx.errors import ConfigError
from paddle_dx.utils.pause import pause_point

log = logging.getLogger(__name__)

# engine.trainer.Trainer: it imports this module, so importing it here (even for type checking) would be a cycle
TrainerLike = Any


class Callback:
    """Base: every hook does nothing."""

    def on_train_begin(self, trainer: TrainerLike) -> None:
        pass

    def on_train_batch_end(self, trainer: TrainerLike, epoch: int, step: int) -> None:
        pass

    def on_eval_end(
        self,
        trainer: TrainerLike,
        split: str,
        metrics: dict,
        epoch: int,
        probs: np.ndarray | None,
        labels: np.ndarray | None,
        record: dict | None,
    ) -> None:
        pass

    def on_epoch_end(self, trainer: TrainerLike, epoch: int, record: dict) -> None:
        pass

    def on_train_end(self, trainer: TrainerLike, result: dict, predictions: dict) -> None:
        pass


class CallbackList(Callback):
    """Calls each callback's hook in list order."""

    def __init__(self, callbacks) -> None:
        self.callbacks = list(callbacks)

    def _each(self, hook, *args):
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def on_train_begin(self, trainer: TrainerLike) -> None:
        self._each("on_train_begin", trainer)

    def on_train_batch_end(self, trainer: TrainerLike, epoch: int, step: int) -> None:
        self._each("on_train_batch_end", trainer, epoch, step)

    def on_eval_end(
        self,
        trainer: TrainerLike,
        split: str,
        metrics: dict,
        epoch: int,
        probs: np.ndarray | None,
        labels: np.ndarray | None,
        record: dict | None,
    ) -> None:
        self._each("on_eval_end", trainer, split, metrics, epoch, probs, labels, record)

    def on_epoch_end(self, trainer: TrainerLike, epoch: int, record: dict) -> None:
        self._each("on_epoch_end", trainer, epoch, record)

    def on_train_end(self, trainer: TrainerLike, result: dict, predictions: dict) -> None:
        self._each("on_train_end", trainer, result, predictions)


class PausePoints(Callback):
    """``pause_point("train_step")`` after each step, so fault tests stop a run at an exact step."""

    def on_train_batch_end(self, trainer: TrainerLike, epoch: int, step: int) -> None:
        pause_point("train_step", until=lambda: trainer.stop_signal is not None)


class VisualDLDashboard(Callback):
    """Train, validation and test curves, confusion matrices and ROC curves in ``logdir``, opened
    once training begins (after the run folder is claimed: a refused start leaves no record)."""

    def __init__(self, logdir, config) -> None:
        self.logdir, self.config, self.logger = logdir, config, None

    def on_train_begin(self, trainer: TrainerLike) -> None:
        self.logger = VisualDLLogger(self.logdir)
        self.logger.hparams(self.config)

    def on_eval_end(
        self,
        trainer: TrainerLike,
        split: str,
        metrics: dict,
        epoch: int,
        probs: np.ndarray | None,
        labels: np.ndarray | None,
        record: dict | None,
    ) -> None:
        tag = {"validation": "val"}.get(split, split)  # the dashboard's tags: train/, val/, test/
        self.logger.epoch(tag, metrics, epoch, probs, labels, self.config["Metric"])

    def on_epoch_end(self, trainer: TrainerLike, epoch: int, record: dict) -> None:
        values = {
            "train/loss": record["train_loss"],
            "train/accuracy": record["train_accuracy"],
            "train/lr": record["lr"],
        }
        if "stopped_early" in record:
            values["train/stopped_early"] = 1.0
        self.logger.scalars(values, epoch + 1)

    def on_train_end(self, trainer: TrainerLike, result: dict, predictions: dict) -> None:
        self.logger.close()


class StopRuleCallback(Callback):
    """The lung-nodule paper's rule (engine/stop_rule.py): marks the validated epoch that meets it,
    whose model the trainer then keeps as the best, and training stops after it."""

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule

    def on_eval_end(
        self,
        trainer: TrainerLike,
        split: str,
        metrics: dict,
        epoch: int,
        probs: np.ndarray | None,
        labels: np.ndarray | None,
        record: dict | None,
    ) -> None:
        if split == "validation" and record is not None and self.rule.reached(trainer.history + [record]):
            record["stopped_by_rule"] = self.rule.describe()


class EarlyStopping(Callback):
    """``Global.early_stop: {patience, min_delta}``: stop once ``patience`` validations in a row
    have not improved the monitored metric (``Metric.best_metric``) by more than ``min_delta``.
    Counted from the history, so a resumed run stops where the uninterrupted one would."""

    def __init__(self, patience: int, min_delta: float) -> None:
        if patience < 1:
            raise ConfigError(f"Global.early_stop.patience must be 1 or more, got {patience}")
        self.patience, self.min_delta = patience, min_delta

    def on_epoch_end(self, trainer: TrainerLike, epoch: int, record: dict) -> None:
        scores = [h["val_score"] for h in trainer.history if h.get("val_score") is not None]
        if not scores or record.get("val_score") is None:
            return
        best_at = 0
        for i, score in enumerate(scores):
            if score > scores[best_at] + self.min_delta:
                best_at = i
        waited = len(scores) - 1 - best_at
        if waited >= self.patience:
            record["stopped_early"] = (
                f"no validation gain above {self.min_delta:g} in {waited} evaluations (patience {self.patience})"
            )
            log.info("early stop after epoch %d: %s", epoch + 1, record["stopped_early"])


def stopped(history: list[dict]) -> bool:
    """True when a stopping callback, or a diverged loss, ended training at the last record (also
    after a resume)."""
    return bool(history) and any(k in history[-1] for k in ("stopped_by_rule", "stopped_early", "stopped_diverged"))


def default_callbacks(config: dict, run_folder: RunFolder, is_main: bool) -> list[Callback]:
    """The callbacks a config asks for, on this rank."""
    g = config["Global"]
    callbacks: list[Callback] = [PausePoints()]
    if is_main and g["use_visualdl"]:
        callbacks.append(VisualDLDashboard(run_folder.visualdl, config))
    rule = StopRule.from_config(g)
    if rule:
        callbacks.append(StopRuleCallback(rule))
    early = g.get("early_stop") or {}
    if early.get("patience"):
        callbacks.append(EarlyStopping(int(early["patience"]), float(early.get("min_delta") or 0.0)))
    return callbacks
