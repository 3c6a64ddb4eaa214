"""k-fold cross-validation of one config: fold lists, one training per fold, the summary.

A single split of a small medical set gives an accuracy that moves by several points with the
seed; k folds give k held-out scores and their spread. Folds are trained one after the other in
``<Global.output_dir>/fold_<k>/``, each a plain run folder. A fold with a metrics.json is done
and is read, not retrained, so rerunning the command after an interruption continues where it
stopped (a fold cut short resumes from its ``latest/`` checkpoint).
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from paddle_dx.config import load_config
from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import class_names
from paddle_dx.data.folds import make_folds, write_fold_lists
from paddle_dx.engine.resume_check import config_changes
from paddle_dx.engine.run_folder import CHECKPOINT_STATE, RunFolder
from paddle_dx.engine.trainer import Interrupted
from paddle_dx.errors import ConfigError
from paddle_dx.studies.cv_report import cv_results, write_cv_report
from paddle_dx.studies.plan import RunPlan, flow
from paddle_dx.studies.runner import train

log = logging.getLogger(__name__)


@dataclass
class CVSettings:
    """The command's fold options; recorded in cv_results.json."""

    folds: int = 5
    seed: int = 42
    group_regex: str | None = None
    near_duplicates: int | None = None
    include_test: bool = False


def fold_overrides(config: dict, lists: Path, run_dir: Path, names: list[str], include_test: bool) -> list[str]:
    """The ``-o`` items that turn ``config`` into fold training: its lists, run folder and classes
    (the Test list is cleared when it was pooled into the folds)."""
    root = config["DataLoader"]["Train"]["dataset"]["image_root"]
    out = [f"Global.output_dir={flow(str(run_dir))}", f"Global.class_names={flow(names)}"]
    for mode, name in (("Train", "train_list.txt"), ("Eval", "val_list.txt")):
        out += [
            f"DataLoader.{mode}.dataset.image_root={flow(root)}",
            f"DataLoader.{mode}.dataset.cls_label_path={flow(str(lists / name))}",
        ]
    if include_test:
        out.append(f"DataLoader.Test.dataset.cls_label_path={flow('')}")
    return out


def finished_metrics(plan: RunPlan, run_dir: Path) -> dict | None:
    """metrics.json of a fold trained before, or None; refused when it was trained with another
    config than the one the command now builds (its result would not belong to this CV)."""
    metrics = RunFolder(run_dir).metrics
    if not metrics.is_file():
        return None
    saved = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    changes = config_changes(saved, load_config(plan.config, plan.overrides))
    if changes:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes[:6])
        raise ConfigError(
            f"{run_dir} was trained with another config ({listed}); rerun with that config, or "
            f"cross-validate into a new folder (-o Global.output_dir=NEW)"
        )
    log.info("%s: done before (metrics.json), not retrained", run_dir)
    return json.loads(metrics.read_text(encoding="utf-8"))


def cross_validate(config_path: str, overrides: list[str], settings: CVSettings) -> Path:
    """Make the folds, train every fold not trained yet, write the summary; return cv_results.json."""
    config = load_config(config_path, overrides)
    root = Path(config["Global"]["output_dir"])
    names = class_names(DataSection.of(config, "Train"))
    plan = make_folds(
        config, settings.folds, settings.seed, settings.group_regex, settings.near_duplicates, settings.include_test
    )
    if plan.copies:
        log.info("kept %d group(s) of identical images each in one fold", len(plan.copies))
    results, commands = [], []
    for k, lists in enumerate(write_fold_lists(plan, root / "lists", names), 1):
        run_dir = root / f"fold_{k}"
        run = RunPlan(
            f"fold_{k}",
            str(config_path),
            list(overrides) + fold_overrides(config, lists, run_dir, names, settings.include_test),
        )
        commands.append(run.command())
        metrics = finished_metrics(run, run_dir)
        if metrics is None:
            folder = RunFolder(run_dir)
            if (folder.latest / CHECKPOINT_STATE).is_file():
                run.overrides.append(f"Global.checkpoints={flow(str(folder.latest))}")
            else:  # never checkpointed: whatever an earlier attempt left there is started over
                run.overrides.append("Global.overwrite_output_dir=true")
            log.info("fold %d/%d: training into %s", k, plan.folds, run_dir)
            try:
                train(run)  # the Trainer is dropped here: one fold's model in memory at a time
            except Interrupted as exc:  # its checkpoint is saved: a rerun of the command resumes the fold
                raise Interrupted(f"fold {k} ({str(exc).split(';')[0]})", exc.exit_code) from None
            metrics = json.loads(folder.metrics.read_text(encoding="utf-8"))
        results.append(metrics)
    summary = cv_results(results, plan, settings, names, commands)
    return write_cv_report(root, summary)
