"""The training loop: epochs, evaluation, best/latest checkpoints, resume, logging.

Every source of randomness in a step is a function of (seed, epoch, step): the sampler's
order, each sample's augmentation and Paddle's own generator (dropout). A run interrupted
at any step and resumed from its checkpoint therefore ends with the same weights as an
uninterrupted one.
"""

import contextlib
import functools
import logging
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import paddle
from tqdm import tqdm

import paddle_dx.engine.components  # noqa: F401  (a config loaded beside a Trainer names any registry)
from paddle_dx.config import config_hash, dump_config
from paddle_dx.config.sections import data_sections
from paddle_dx.data.builder import build_dataset, build_loader, class_names
from paddle_dx.data.split import cross_split_duplicates, warn_duplicates
from paddle_dx.engine.callbacks import CallbackList, default_callbacks, stopped
from paddle_dx.engine.checkpoint import disk_bytes_needed, find_checkpoint, load_checkpoint, save_checkpoint
from paddle_dx.engine.distributed import Parallel, resume_step
from paddle_dx.engine.divergence import divergence, outputs_divergence, weights_divergence
from paddle_dx.engine.eval_backend import EvalBackend
from paddle_dx.engine.feature_cache import FeatureCache
from paddle_dx.engine.interrupts import Interrupted, before_training
from paddle_dx.engine.loss import build_loss
from paddle_dx.engine.optimizer import build_optimizer
from paddle_dx.engine.precision import resolve_precision
from paddle_dx.engine.recorder import RunRecorder
from paddle_dx.engine.resume_check import check_resume_config
from paddle_dx.engine.resume_outputs import carry_best_model
from paddle_dx.engine.run_folder import CHECKPOINT_STATE, CONFIG, RunFolder
from paddle_dx.engine.stage_schedule import is_stage_end, stage_at
from paddle_dx.engine.startup_checks import check_list_files, removed_if_empty_on_error
from paddle_dx.engine.steps import StageSpec, StepParts, choose_step, resolve_engine
from paddle_dx.errors import DiskFull, TrainingDiverged
from paddle_dx.metrics import history_entry, key_metric
from paddle_dx.models import apply_freeze, build_model, load_model_weights
from paddle_dx.models.transfer import check_state_fits
from paddle_dx.models.weights import save_weights
from paddle_dx.utils.device import select_device
from paddle_dx.utils.files import check_free_space, check_writable
from paddle_dx.utils.pause import pause_point
from paddle_dx.utils.run_lock import RunLock
from paddle_dx.utils.seed import set_seed, step_seed

log = logging.getLogger(__name__)


class _StopReached(Exception):
    """``fit(stop_at=...)`` reached its (epoch, step) and saved the checkpoint there."""


class Trainer:
    """Builds everything a config describes and trains it. ``fit()`` returns metrics.json's dict."""

    def __init__(self, config, rank=0, world_size=1, callbacks=()) -> None:
        """``callbacks``: more engine/callbacks.py Callbacks beside the ones the config asks for."""
        self.data = data_sections(config)  # each list's section, what the data builders get
        check_list_files(self.data)  # before anything is created: a fresh checkout gets the split command
        with removed_if_empty_on_error(config["Global"]["output_dir"]):
            self._build(config, rank, world_size, callbacks)

    def _build(self, config, rank, world_size, callbacks):
        self.config = config
        g = config["Global"]
        self.rank, self.world_size = rank, world_size
        self.parallel = Parallel(rank, world_size)  # pass-through on one device
        self.is_main = rank == 0
        self.run_folder = RunFolder(g["output_dir"])
        self.output_dir = self.run_folder.root
        if self.is_main:
            check_writable(self.output_dir)
        self.device = select_device(g["device"], g["num_threads"])
        self.engine = resolve_engine(g["engine"], self.device, world_size)
        self.precision = resolve_precision(g, self.device, self.engine)
        self.use_amp = self.precision.gpu_amp
        set_seed(g["seed"])
        self.class_names = class_names(self.data["Train"])
        self.train_set, train_report = build_dataset(self.data["Train"])
        self.eval_set, eval_report = build_dataset(self.data["Eval"])
        self.skipped = train_report["skipped"] + eval_report["skipped"]
        self.hashes = {**train_report["hashes"], **eval_report["hashes"]}
        self.duplicates = cross_split_duplicates(
            {"train": [p for p, _ in self.train_set.samples], "val": [p for p, _ in self.eval_set.samples]},
            {**train_report["content_hashes"], **eval_report["content_hashes"]},
        )  # decoded pixels, not bytes
        warn_duplicates(self.duplicates)
        self.train_loader, self.train_sampler = build_loader(self.data["Train"], self.train_set, rank, world_size)
        self.eval_loader, _ = build_loader(self.data["Eval"], self.eval_set)
        self.feature_cache = FeatureCache(g, self.train_set, self.eval_set, self.hashes, world_size)
        self.eval_backend = EvalBackend(g["eval_engine"], self.device, world_size, g["image_shape"], g["num_threads"])
        self.model = build_model(config["Arch"], g["image_shape"])
        if g["pretrained_model"]:
            load_model_weights(self.model, g["pretrained_model"])
        self.parallel.sync_batchnorm(self.model, g["sync_bn"], self.device)
        pause_point("start_up")  # fault tests signal a run here, while it is being built
        if self.is_main:
            check_free_space(self.output_dir, disk_bytes_needed(self.model, self.run_folder.bytes_held()))
        self.loss_fn = build_loss(
            config["Loss"]["Train"], "Loss.Train", self.train_set.labels, config["Arch"]["class_num"]
        )
        self.eval_loss_fn = build_loss(
            config["Loss"]["Eval"], "Loss.Eval", self.train_set.labels, config["Arch"]["class_num"]
        )
        self.optimizer, self.scheduler = build_optimizer(config["Optimizer"], self.model, g["epochs"])
        self.scaler = (
            paddle.amp.GradScaler(
                init_loss_scaling=g["amp_loss_scale"], use_dynamic_loss_scaling=g["amp_dynamic_loss_scaling"]
            )
            if self.use_amp
            else None
        )
        self.best_predictions = None  # (labels, probs) of the best epoch on the Eval list, for its ROC figure
        self.config_changes, self._changed_keys = [], None  # resumes with Global.allow_config_change
        self._stop_at = None  # (epoch, step) where fit() saves and stops (verify_run's replay)
        self.recorder = RunRecorder(
            self.run_folder, config, self.device, write=self.is_main, class_names=self.class_names
        )
        self.callbacks = CallbackList(
            [self.recorder, *default_callbacks(config, self.run_folder, self.is_main), *callbacks]
        )
        self.history, self.best, self.start_epoch, self.start_step = [], None, 0, 0
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        self.stop_signal = None  # SIGINT / SIGTERM received: save and stop after this step
        self.stages, self.stage_index, self.stage_results = config.get("Stages") or [], None, []
        self._test = None  # (loader, scan report), built on first use
        self.freeze = config["Arch"]["freeze"]
        self.strategy = None  # the stage's step strategy (engine/steps.py), chosen on first use

    def _stage_step(self):
        """This stage's step strategy: how a batch trains under Global.engine and what it trains on."""
        if self.strategy is None:
            parts = StepParts(
                self.model,
                self.optimizer,
                self.scheduler,
                self.loss_fn,
                self.feature_cache,
                self.train_sampler,
                self.train_loader,
                self.parallel,
                self.scaler,
                {"level": self.config["Global"]["amp_level"], "dtype": self.config["Global"]["amp_dtype"]},
            )
            spec = StageSpec(
                self.config["Arch"],
                self.config["Global"]["image_shape"],
                self.config["Loss"]["Train"],
                self.config["Optimizer"],
                self.freeze,
                self.train_set.labels,
                self.precision.cpu_bf16,
            )
            self.strategy = choose_step(self.engine, parts, spec)
        return self.strategy

    # ---- checkpoints -------------------------------------------------------------------
    def _state(self, epoch, step):
        return {
            "epoch": epoch,
            "step": step,
            "history": self.history,
            "best": self.best,
            "partial": self.partial,
            "config_hash": config_hash(self.config),
            "config": self.config,
            "config_changes": self.config_changes,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "stage": self.stage_index,
            "stage_results": self.stage_results,
            "world_size": self.world_size,
            "batch_size": self.train_sampler.batch_size,
        }

    def save_latest(self, epoch: int, step: int) -> None:
        if self.is_main:
            save_checkpoint(
                self.run_folder.latest,
                self.model,
                self._stage_step().optimizer_state_owner,
                self._state(epoch, step),
            )

    def resume(self, path: Path | str) -> None:
        g = self.config["Global"]
        model_state, opt_state, state = load_checkpoint(path, self.model, g["epochs"], len(self.stages))
        self.config_changes = list(state.get("config_changes") or [])
        if state.get("config") is not None:
            changes = check_resume_config(state["config"], self.config, path)
            if changes:
                log.warning(
                    "resuming with a changed config (Global.allow_config_change): %s",
                    "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes),
                )
                self.config_changes.append(
                    {
                        "epoch": state["epoch"],
                        "step": state["step"],
                        "config": state["config"],
                        "changes": [list(c) for c in changes],
                    }
                )
                self._changed_keys = [k for k, _, _ in changes]
        else:
            log.warning(
                "%s was written by an older paddle_dx without its config: cannot check that this resume "
                "uses the run's own config",
                path,
            )
        check_state_fits(self.model, model_state, path)
        self.model.set_state_dict(model_state)
        self._enter_stage(state.get("stage"))  # the optimizer must hold that stage's parameters
        self.stage_results = state.get("stage_results") or []
        self._stage_step().optimizer_state_owner.set_state_dict(opt_state)
        if self.scheduler and state.get("scheduler"):
            self.scheduler.set_state_dict(state["scheduler"])
        self.history, self.best = state["history"], state["best"]
        if self.best and self.is_main:
            carry_best_model(path, self.output_dir)
        self.start_epoch, self.start_step = (
            state["epoch"],
            resume_step(state, self.train_sampler, find_checkpoint(path) / CHECKPOINT_STATE),
        )
        self.partial = (state.get("partial") if self.is_main else None) or {"loss_sum": 0.0, "correct": 0, "seen": 0}
        log.info("resumed from %s at epoch %d, step %d", path, self.start_epoch + 1, self.start_step)

    # ---- signals -------------------------------------------------------------------------
    @contextlib.contextmanager
    def _stop_signals(self):
        """SIGINT/SIGTERM during fit(): noted, and acted on where nothing is half-written (before
        the first step, after each step, with a checkpoint). A second signal, or one while the
        finished run writes its outputs (atomic files), stops at once: the last checkpoint resumes."""

        def handler(signum, _frame):
            if self.stop_signal is not None or self._finishing:
                when = "while writing the run's outputs" if self._finishing else "again before the step ended"
                raise Interrupted(f"stopped by {signal.Signals(signum).name} {when}; {self._resume_hint()}")
            self.stop_signal = signum
            log.warning(
                "received %s: finishing this step, then saving a resumable checkpoint", signal.Signals(signum).name
            )

        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _resume_hint(self):
        latest = self.run_folder.latest
        if (latest / CHECKPOINT_STATE).is_file():
            return f"resume with -o Global.checkpoints={latest}"
        return "start the run again with -o Global.overwrite_output_dir=true (no checkpoint was saved)"

    def _stop_before_training(self, wrote):
        """Stop here, before the first step, if a stop signal came during start-up (``wrote``: the
        run folder was claimed, so a new run's second start must replace what it wrote)."""
        stop = self.parallel.stop_signal(self.stop_signal)
        if stop is not None:
            again = "run the same command again"
            if wrote and not self.config["Global"]["checkpoints"]:
                again += f" with -o Global.overwrite_output_dir=true (this start wrote its {CONFIG} there)"
            raise before_training(stop, f"before the first step; nothing was trained: {again}")

    # ---- training ------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict:
        g = self.config["Global"]
        self.model.train()
        self.train_sampler.set_epoch(epoch, self.start_step)
        steps = len(self.train_sampler)
        batches = self._stage_step().begin_epoch(epoch)
        bar_visible = self.is_main and sys.stderr.isatty()  # in log files: print_batch_step lines
        bar = tqdm(
            batches,
            total=steps - self.start_step,
            initial=0,
            leave=False,
            desc=f"epoch {epoch + 1}/{g['epochs']}",
            disable=not bar_visible,
            mininterval=2,
        )
        step = self.start_step
        for images, labels in bar:
            paddle.seed(step_seed(g["seed"] + self.rank, epoch, step))  # dropout differs per rank
            loss, logits = self.strategy.step(images, labels)
            n = int(labels.shape[0])
            self.partial["loss_sum"] += float(loss) * n
            self.partial["correct"] += int((logits.argmax(axis=1) == labels.reshape([-1])).sum())
            self.partial["seen"] += n
            self.partial.setdefault("step_losses", []).append(float(loss))
            step += 1
            self.callbacks.on_train_batch_end(self, epoch, step)
            bar.set_postfix(loss=f"{self.partial['loss_sum'] / self.partial['seen']:.4f}")
            if self.is_main and not bar_visible and g["print_batch_step"] and step % g["print_batch_step"] == 0:
                log.info(
                    "epoch %d/%d step %d/%d: loss %.4f",
                    epoch + 1,
                    g["epochs"],
                    step,
                    steps,
                    self.partial["loss_sum"] / self.partial["seen"],
                )
            if self._stop_at == (epoch, step):
                self.strategy.end_epoch()
                self.save_latest(epoch, step)
                raise _StopReached()
            stop = self.parallel.stop_signal(self.stop_signal)  # all ranks stop after the same step
            if stop is not None:
                self.strategy.end_epoch()
                self.save_latest(epoch, step)
                raise Interrupted(
                    f"stopped by {signal.Signals(stop).name} at epoch {epoch + 1}, "
                    f"step {step}; resume with -o Global.checkpoints={self.run_folder.latest}"
                )
        bar.close()
        self.strategy.end_epoch()
        self.partial = self.parallel.sum(self.partial)  # all ranks' shards
        seen = max(self.partial["seen"], 1)
        result = {
            "loss": self.partial["loss_sum"] / seen,
            "accuracy": self.partial["correct"] / seen,
            "step_losses": self.partial.get("step_losses", []),
        }
        self.partial = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        self.start_step = 0
        return result

    def evaluate(
        self, loader: Iterable | None = None, split: str = "validation"
    ) -> tuple[dict, np.ndarray, np.ndarray]:
        model, loader = (
            (self.model, loader)
            if loader
            else self.feature_cache.eval_pair(self.model, self.eval_loader, self.data["Eval"].sampler["batch_size"])
        )
        model, engine = self.eval_backend.forward(model, loader)
        on_terminal = self.is_main and sys.stderr.isatty()  # a bar on a terminal; nothing in log files
        progress = (
            functools.partial(tqdm, desc=split, leave=False, mininterval=1, unit="batch") if on_terminal else None
        )
        metrics, probs, labels = self.parallel.evaluate(model, loader, self.class_names, self.eval_loss_fn, progress)
        metrics["eval_engine"] = engine  # metrics.json says what computed each evaluation
        return metrics, probs, labels

    def fit(self, stop_at: Sequence[int] | None = None) -> dict | None:
        """Train (resuming from Global.checkpoints if set) while holding the run folder: a second
        training into the same Global.output_dir is refused, naming this one.

        ``stop_at=(epoch, step)``: save the checkpoint a resume started from and stop there,
        returning None (tools/verify_run.py replays a run resumed with a changed config so)."""
        self._stop_at = tuple(stop_at) if stop_at is not None else None
        self._finishing = False
        with RunLock(self.output_dir) if self.is_main else contextlib.nullcontext(), self._stop_signals():
            try:
                return self._fit()
            except _StopReached:
                return None
            except DiskFull as exc:
                raise DiskFull(f"{exc}; free some space, then {self._resume_hint()}") from None

    def _fit(self):
        g = self.config["Global"]
        if self.is_main:
            self.run_folder.remove_temp_files()  # a write killed mid-way; the run lock is held
        self._stop_before_training(wrote=False)
        if g["checkpoints"]:
            self.resume(g["checkpoints"])
        elif self.is_main:
            self.run_folder.claim_for_new_run(g["overwrite_output_dir"])
        if self.is_main:
            dump_config(self.config, self.run_folder.config)
        self.callbacks.on_train_begin(self)
        self._stop_before_training(wrote=True)
        for epoch in range(self.start_epoch, g["epochs"]):
            if stopped(self.history):
                break
            if self._stop_at == (epoch, 0) and epoch > self.start_epoch:
                self.save_latest(epoch, 0)
                raise _StopReached()
            self._run_epoch(epoch)
        self._finishing = True
        result = self.finish()
        if self.best is None and self.history and "stopped_diverged" in self.history[-1]:
            raise TrainingDiverged(
                f"{self.history[-1]['stopped_diverged']} before any evaluation: no model to keep "
                f"(metrics.json in {self.output_dir} has the losses); lower Optimizer.lr and train again"
            )
        return result

    def _run_epoch(self, epoch):
        self._enter_stage(stage_at(self.stages, epoch))
        g = self.config["Global"]
        start = time.time()
        lr = self.optimizer.get_lr()
        train = self.train_epoch(epoch)
        if self.scheduler:
            self.scheduler.step()
        record = {
            "epoch": epoch + 1,
            "lr": lr,
            "train_loss": train["loss"],
            "train_accuracy": train["accuracy"],
            "seconds": round(time.time() - start, 2),
            "step_losses": train["step_losses"],
            "train_step": self._stage_step().describe(),
        }
        if self._changed_keys:  # the first epoch after a resume with Global.allow_config_change
            record["config_changed"], self._changed_keys = self._changed_keys, None
        cause = divergence(train, epoch, lr) or weights_divergence(self.model, epoch, lr)
        if cause:
            self._stop_diverged(epoch, record, cause)
            return
        last = epoch + 1 == g["epochs"]
        metrics = None
        if (epoch + 1) % g["eval_interval"] == 0 or last:
            metrics, probs, labels = self.evaluate()
            cause = outputs_divergence(probs, epoch, lr)
            if cause:
                self._stop_diverged(epoch, record, cause)
                return
            record.update(history_entry(metrics, self.config["Metric"], prefix="val"))
            score = key_metric(metrics, self.config["Metric"]["best_metric"])
            record["val_score"] = score  # the monitored metric, higher is better (early stopping reads it)
            self.callbacks.on_eval_end(self, "validation", metrics, epoch + 1, probs, labels, record)
            if self.best is None or score > self.best["score"] or "stopped_by_rule" in record:
                self.best = {"epoch": epoch + 1, "score": score, "metrics": metrics}
                self.best_predictions = (labels, probs)
                if self.is_main:
                    save_weights(self.run_folder.best_model, self.model)
        self.history.append(record)
        self.callbacks.on_epoch_end(self, epoch, record)
        if self.is_main:
            val = (
                f", val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f}" if "val_loss" in record else ""
            )
            log.info(
                "epoch %d/%d: train loss %.4f acc %.4f%s (%.1fs)",
                epoch + 1,
                g["epochs"],
                train["loss"],
                train["accuracy"],
                val,
                record["seconds"],
            )
        if is_stage_end(self.stages, epoch):
            self._end_stage(epoch, metrics)
        if (epoch + 1) % g["save_interval"] == 0 or last or stopped(self.history):
            self.save_latest(epoch + 1, 0)

    def _stop_diverged(self, epoch, record, cause):
        """End training at an epoch whose loss is no longer finite: its weights are not evaluated
        or saved (latest/ stays the last finite epoch's, to resume from at a lower rate), and the
        best model so far is the run's result. The history keeps the epoch, marked, so a study
        flags the run as diverged (studies/collapse.py)."""
        record["stopped_diverged"] = cause
        self.history.append(record)
        self.callbacks.on_epoch_end(self, epoch, record)
        if self.is_main:
            kept = f"the best model (epoch {self.best['epoch']}) is kept" if self.best else "no epoch was evaluated"
            log.error(
                "training stopped: %s; %s; latest/ is the last finite epoch's. Lower Optimizer.lr (or a "
                "stage's lr) and train again, or resume from latest/ with Global.allow_config_change=true",
                cause,
                kept,
            )

    # ---- stages (Stages: e.g. pre-training with the backbone frozen, then fine-tuning) ----
    def _enter_stage(self, index):
        """Apply the stage's freeze and build a fresh optimizer at its lr (as a second compile would)."""
        if index is None or index == self.stage_index:
            return
        stage = self.stages[index]
        apply_freeze(self.model, stage["freeze"])
        self.freeze, self.strategy = stage["freeze"], None
        self.optimizer, self.scheduler = build_optimizer(
            self.config["Optimizer"], self.model, stage["epochs"], lr=stage["lr"]
        )
        self.stage_index = index
        log.info(
            "stage %d/%d '%s': %d epochs, freeze %s, lr %g",
            index + 1,
            len(self.stages),
            stage["name"],
            stage["epochs"],
            stage["freeze"],
            stage["lr"],
        )

    def _end_stage(self, epoch, val_metrics=None):
        """Record the model's validation (and test) metrics as they are at the end of the stage
        (``val_metrics``: this epoch's evaluation, when it had one, so it is not run twice)."""
        entry = dict(self.stages[self.stage_index], end_epoch=epoch + 1, val=val_metrics or self.evaluate()[0])
        if self._has_test():
            entry["test"] = self.evaluate(self._test_data()[0], "test")[0]
        self.stage_results.append(entry)

    def _has_test(self):
        return bool(self.data["Test"].dataset["cls_label_path"])

    def _test_data(self):
        """(loader, scan report) of DataLoader.Test, read and checked once per run."""
        if self._test is None:
            test_set, report = build_dataset(self.data["Test"])
            self._test = build_loader(self.data["Test"], test_set)[0], report
        return self._test

    def finish(self) -> dict:
        """Evaluate the best epoch on the test set, when there is one; write the run's outputs
        (metrics.json, manifest, figures of the best epoch's validation and test predictions)."""
        result = self.recorder.result(
            self.history,
            self.best,
            self.skipped,
            self.duplicates,
            self.stage_results if self.stages else None,
            self.config_changes,
        )
        predictions = {}
        if self.best:
            if self._has_test() or self.best_predictions is None:
                self.parallel.load_weights(self.model, self.run_folder.best_model)
            if self.best_predictions is None:  # resumed after its best epoch: evaluate that epoch again
                _, probs, labels = self.evaluate()
                self.best_predictions = (labels, probs)
            predictions["val"] = self.best_predictions
            if self._has_test():
                loader, report = self._test_data()
                self.hashes.update(report["hashes"])
                metrics, probs, labels = self.evaluate(loader, "test")
                self.recorder.add_test(result, metrics, report["skipped"])
                predictions["test"] = (labels, probs)
                self.callbacks.on_eval_end(self, "test", metrics, self.best["epoch"], probs, labels, None)
        self.callbacks.on_train_end(self, result, predictions)  # the recorder writes metrics.json, figures
        return result
