"""What a finished run leaves behind: metrics.json, the manifest, skipped_images.txt, figures/
and the final metric tables in the log. The trainer hands over its result; formats live here only."""

import logging

from paddle_dx.engine.callbacks import Callback, TrainerLike
from paddle_dx.engine.manifest import write_manifest
from paddle_dx.engine.run_folder import BEST_MODEL, RunFolder
from paddle_dx.metrics import format_table
from paddle_dx.metrics.figures import write_run_figures
from paddle_dx.utils.files import write_json

log = logging.getLogger(__name__)


def _skipped(pairs):
    return [{"path": p, "reason": r} for p, r in pairs]


class RunRecorder(Callback):
    """Builds metrics.json's dict and, as the trainer's callback at the end of training, writes
    the run's output files (on the main rank only)."""

    def __init__(self, run_folder, config, device, write=True, class_names=None) -> None:
        """``run_folder``: a RunFolder or its path; ``config``: the run's resolved config,
        recorded whole in the manifest."""
        self.run_folder = run_folder if isinstance(run_folder, RunFolder) else RunFolder(run_folder)
        self.output_dir, self.config, self.device, self.write = self.run_folder.root, config, device, write
        self.class_names = class_names
        self.best_metric = config["Metric"]["best_metric"]

    def result(
        self,
        history: list[dict],
        best: dict | None,
        skipped: list[tuple[str, str]],
        duplicates: list[tuple[str, list]],
        stage_results: list[dict] | None = None,
        config_changes: list[dict] | None = None,
    ) -> dict:
        """metrics.json's dict: history, best epoch and its validation metrics, data problems, and
        the resumes that changed the config (each: epoch, step, the config before, the changes)."""
        result = {
            "history": history,
            "best_epoch": best["epoch"] if best else None,
            "best_metric": self.best_metric,
            "val": best["metrics"] if best else None,
            "skipped_images": _skipped(skipped),
            "duplicates_across_splits": [{"sha256": h, "files": f} for h, f in duplicates],
        }
        if stage_results is not None:
            result["stages"] = stage_results
        if config_changes:
            result["config_changes"] = config_changes
        return result

    def add_test(self, result: dict, metrics: dict, skipped: list[tuple[str, str]]) -> None:
        """The best epoch's test-set metrics (and the test list's skipped images) into ``result``."""
        result["skipped_images"] += _skipped(skipped)
        result["test"] = metrics
        log.info("test (best epoch %d, %s):\n%s", result["best_epoch"], BEST_MODEL, format_table(metrics))

    def save(self, result: dict, hashes: dict[str, str], predictions: dict | None = None) -> dict:
        """Write metrics.json, the manifest (``hashes``: image path -> SHA-256), skipped_images.txt
        and figures/ (``predictions``: {"val"|"test": (labels, probs)} of the best epoch)."""
        if not self.write:
            return result
        write_json(self.run_folder.metrics, result)
        write_manifest(self.output_dir, self.config, self.device, hashes, result)
        if result["skipped_images"]:
            self.run_folder.skipped.write_text(
                "".join(f"{s['path']}\t{s['reason']}\n" for s in result["skipped_images"]), encoding="utf-8"
            )
        predictions = predictions or {}
        write_run_figures(
            self.output_dir,
            result,
            self.class_names,
            BEST_MODEL,
            predictions.get("val"),
            predictions.get("test"),
        )
        if result["val"] is not None:
            log.info(
                "validation (best epoch %d by %s):\n%s",
                result["best_epoch"],
                self.best_metric,
                format_table(result["val"]),
            )
        return result

    def on_train_end(self, trainer: TrainerLike, result: dict, predictions: dict) -> None:
        self.save(result, trainer.hashes, predictions)
