"""Train one planned run in this process and collect what its report needs."""

from __future__ import annotations

import csv
import json
import logging
import time
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
from paddle_dx.errors import PaddleDxError
from paddle_dx.models.weights import load_state

if TYPE_CHECKING:
    from paddle_dx.studies.plan import RunPlan

log = logging.getLogger(__name__)


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
    start = time.monotonic()
    trainer, config = train(plan)
    metrics = _read_metrics(config)
    test_set, _ = build_dataset(DataSection.of(config, "Test"), scan=False)
    loader, _ = build_loader(DataSection.of(config, "Test"), test_set)
    probs, labels, _ = predict(trainer.model, loader)  # fit() left the best epoch's weights loaded
    accuracy = float((probs.argmax(axis=1) == labels).mean())
    if abs(accuracy - metrics["test"]["accuracy"]) > 1e-9:
        raise PaddleDxError(
            f"run '{plan.name}': test predictions disagree with metrics.json "
            f"({accuracy} vs {metrics['test']['accuracy']})"
        )
    paths = [p for p, _ in test_set.samples]
    _write_predictions(Path(config["Global"]["output_dir"]) / "test_predictions.csv", paths, labels, probs)
    return RunResult(plan, config, metrics, probs, labels, paths, time.monotonic() - start)


def run_source(plan: RunPlan) -> tuple[Path, dict, float]:
    """Pretrain on the source task; return (backbone weights path (head dropped), config, wall seconds)."""
    start = time.monotonic()
    _, config = train(plan)
    out = Path(config["Global"]["output_dir"])
    state = load_state(RunFolder(out).best_model)
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    paddle.save(backbone, str(out / "backbone.pdparams"))
    return out / "backbone.pdparams", config, time.monotonic() - start


def _read_metrics(config):
    return json.loads(RunFolder(config["Global"]["output_dir"]).metrics.read_text(encoding="utf-8"))


def _write_predictions(path, paths, labels, probs):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "predicted"] + [f"p{c}" for c in range(probs.shape[1])])
        for p, y, row in zip(paths, labels, probs):
            writer.writerow([p, int(y), int(row.argmax())] + [f"{v:.6f}" for v in row])
