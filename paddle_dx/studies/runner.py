"""Train one planned run and collect what its report needs: in this process, or (inside
``runs_in_children()``, as ``tools/reproduce.py`` does) in a fresh process of its own, so a study
of many runs needs the memory of its largest run, not of all of them together."""

from __future__ import annotations

import contextlib
import csv
import ctypes
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import paddle

from paddle_dx.config import load_config
from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import build_dataset, build_loader
from paddle_dx.engine.eval_loop import predict
from paddle_dx.engine.run_folder import RunFolder
from paddle_dx.engine.trainer import Trainer
from paddle_dx.errors import PaddleDxError, TrainingDiverged
from paddle_dx.metrics import classification_metrics
from paddle_dx.models.weights import load_state
from paddle_dx.studies.collapse import BEFORE_EVALUATION, SOURCE_DIVERGED
from paddle_dx.utils.logger import setup_logging

if TYPE_CHECKING:
    from paddle_dx.studies.plan import RunPlan

log = logging.getLogger(__name__)

_IN_CHILDREN: ContextVar[bool] = ContextVar("runs_in_children", default=False)


@contextlib.contextmanager
def runs_in_children(enabled: bool = True) -> Iterator[None]:
    """Within this block ``run_target`` and ``run_source`` train each run in a new process
    (spawned, not forked: Paddle's threads do not survive a fork) that exits when the run is
    done, returning every byte it used: Paddle keeps compiled programs and allocator pools for
    the life of a process, and one process training a study's 16 runs grew past 15 GB."""
    token = _IN_CHILDREN.set(enabled)
    try:
        yield
    finally:
        _IN_CHILDREN.reset(token)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _child_setup(level: int, parent: int) -> None:
    """The run's process logs as its parent does and dies with it: a parent killed by a signal
    (``kill``, the OOM killer) runs no cleanup, and an orphaned run would train on for an hour
    holding its memory. Its checkpoints are written atomically, so nothing is left half-written."""
    setup_logging(level)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)


def _in_child(work: Callable[[RunPlan], object], plan: RunPlan) -> object:
    """``work(plan)`` here, or inside ``runs_in_children()`` in a process of its own; its
    errors come back as they were raised, a killed process as one line naming the run."""
    if not _IN_CHILDREN.get():
        return work(plan)
    context = multiprocessing.get_context("spawn")
    level = logging.getLogger().getEffectiveLevel()
    with ProcessPoolExecutor(1, mp_context=context, initializer=_child_setup, initargs=(level, os.getpid())) as pool:
        try:
            return pool.submit(work, plan).result()
        except BrokenProcessPool as exc:
            raise PaddleDxError(
                f"run '{plan.name}': its process died before finishing (killed, e.g. out of memory; "
                f"command: {plan.command()})"
            ) from exc


@dataclass
class RunResult:
    plan: RunPlan
    config: dict
    metrics: dict  # metrics.json
    probs: np.ndarray  # test-set probabilities of the best epoch's weights
    labels: np.ndarray
    paths: list[str]
    wall_seconds: float = 0.0  # training + test prediction of this run

    @property
    def output_dir(self) -> Path:
        return Path(self.config["Global"]["output_dir"])


def train(plan: RunPlan) -> tuple[Trainer, dict]:
    """Build the config exactly as ``plan.command()`` would and fit it; return (the Trainer, the config)."""
    config = load_config(plan.config, plan.overrides)
    log.info("run '%s': %s", plan.name, plan.command())
    trainer = Trainer(config)
    trainer.fit()
    return trainer, config


def run_target(plan: RunPlan) -> RunResult:
    """Train a table row, then predict the test set with the best epoch's weights."""
    return _in_child(_run_target, plan)


def run_source(plan: RunPlan) -> tuple[Path, dict, float, str]:
    """Pretrain on the source task; return (backbone weights path (head dropped), config, wall
    seconds, why the backbone is not a pretrained one: "" when it is)."""
    return _in_child(_run_source, plan)


def _run_target(plan):
    start = time.monotonic()
    try:
        trainer, config = train(plan)
        metrics = _read_metrics(config)
    except TrainingDiverged as exc:
        trainer, config, metrics = _untrained_start(plan, exc)
    test_set, _ = build_dataset(DataSection.of(config, "Test"), scan=False)
    loader, _ = build_loader(DataSection.of(config, "Test"), test_set)
    probs, labels, _ = predict(trainer.model, loader)  # fit() left the best epoch's weights loaded
    if "test" not in metrics:  # an untrained start's row: fit() tested nothing
        metrics["test"] = classification_metrics(labels, probs, trainer.class_names)
    if plan.source_failure:
        metrics[SOURCE_DIVERGED] = plan.source_failure
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    if abs(accuracy - metrics["test"]["accuracy"]) > 1e-9:
        raise PaddleDxError(
            f"run '{plan.name}': test predictions disagree with metrics.json "
            f"({accuracy} vs {metrics['test']['accuracy']})"
        )
    paths = [p for p, _ in test_set.samples]
    _write_predictions(Path(config["Global"]["output_dir"]) / "test_predictions.csv", paths, labels, probs)
    return RunResult(plan, config, metrics, probs, labels, paths, time.monotonic() - start)


def _untrained_start(plan: RunPlan, exc: TrainingDiverged) -> tuple[Trainer, dict, dict]:
    """A run whose loss diverged before its first evaluation has no model; the study goes on,
    and the run's row scores the weights it started from (same config and seed: the pretrained
    or random initialisation), flagged as collapsed (``BEFORE_EVALUATION`` in metrics) and never
    a result."""
    log.warning("run '%s': %s; its row scores the untrained start and is flagged as collapsed", plan.name, exc)
    trainer, config, metrics, why = _diverged_start(plan, exc)
    metrics.update(best_epoch=0, val=trainer.evaluate()[0])
    metrics[BEFORE_EVALUATION] = why
    return trainer, config, metrics


def _diverged_start(plan: RunPlan, exc: TrainingDiverged) -> tuple[Trainer, dict, dict, str]:
    """What a run that raised TrainingDiverged leaves: a Trainer built as the run was (same config
    and seed: the weights it started from), its config, its metrics.json (fit() writes it before
    raising) and why it diverged (the trainer's own account in the last epoch, else the error's)."""
    config = load_config(plan.config, plan.overrides)
    trainer = Trainer(config)
    metrics = _read_metrics(config)
    return trainer, config, metrics, metrics["history"][-1].get("stopped_diverged") or str(exc)


def _run_source(plan):
    start = time.monotonic()
    failure = ""
    try:
        _, config = train(plan)
        state = load_state(RunFolder(config["Global"]["output_dir"]).best_model)
    except TrainingDiverged as exc:  # no pretrained backbone: its rows go on from its start, flagged
        log.warning("run '%s': %s; the rows trained from it are flagged as collapsed", plan.name, exc)
        trainer, config, _, failure = _diverged_start(plan, exc)
        state = trainer.model.state_dict()
    out = Path(config["Global"]["output_dir"])
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    paddle.save(backbone, str(out / "backbone.pdparams"))
    return out / "backbone.pdparams", config, time.monotonic() - start, failure


def _read_metrics(config):
    return json.loads(RunFolder(config["Global"]["output_dir"]).metrics.read_text(encoding="utf-8"))


def _write_predictions(path, paths, labels, probs):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "predicted"] + [f"p{c}" for c in range(probs.shape[1])])
        for p, y, row in zip(paths, labels, probs):
            writer.writerow([p, int(y), int(row.argmax())] + [f"{v:.6f}" for v in row])
