"""The run folder's layout: every file a training run writes into ``Global.output_dir``, named
here once (the trainer, checkpoints, the recorder, resumes and the study runner ask this module)."""

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from paddle_dx.errors import ConfigError
from paddle_dx.utils.files import remove_temp_files

log = logging.getLogger(__name__)

BEST_MODEL = "best_model.pdparams"
LATEST = "latest"  # the resumable checkpoint (engine/checkpoint.py), LATEST + ".prev" the one before
CHECKPOINT_STATE = "state.json"
METRICS = "metrics.json"
MANIFEST = "manifest.json"
CONFIG = "config.yaml"
FIGURES = "figures"
VISUALDL = "vdl"
SKIPPED = "skipped_images.txt"
# what a finished or interrupted run leaves: a new run here would mix its outputs with these
# (config.yaml alone, from a run stopped before its first checkpoint, is simply rewritten)
RUN_OUTPUTS = (BEST_MODEL, LATEST, LATEST + ".prev", METRICS, MANIFEST, FIGURES, VISUALDL, SKIPPED)
LEGACY_TEMP = ".latest.tmp*"  # a checkpoint save killed mid-way, before temporary names had TEMP_PREFIX


@dataclass(frozen=True)
class RunFolder:
    """Paths of one run's outputs under ``root``."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    best_model = property(lambda self: self.root / BEST_MODEL)
    latest = property(lambda self: self.root / LATEST)
    metrics = property(lambda self: self.root / METRICS)
    manifest = property(lambda self: self.root / MANIFEST)
    config = property(lambda self: self.root / CONFIG)
    figures = property(lambda self: self.root / FIGURES)
    visualdl = property(lambda self: self.root / VISUALDL)
    skipped = property(lambda self: self.root / SKIPPED)

    def earlier_outputs(self) -> list[str]:
        """Names of an earlier run's outputs present here."""
        return [name for name in RUN_OUTPUTS if (self.root / name).exists()]

    def claim_for_new_run(self, overwrite: bool) -> None:
        """Before a new (not resumed) training: refuse a folder holding an earlier run's outputs,
        unless ``overwrite`` (``Global.overwrite_output_dir``), which removes those outputs (and
        only those) so the new run's figures and VisualDL records do not mix with the old ones."""
        found = self.earlier_outputs()
        if not found:
            return
        if not overwrite:
            raise ConfigError(
                f"{self.root} holds an earlier run ({', '.join(found)}): resume it with "
                f"-o Global.checkpoints={self.latest}, choose another Global.output_dir, or replace it with "
                f"-o Global.overwrite_output_dir=true"
            )
        for name in found:
            path = self.root / name
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        log.warning("Global.overwrite_output_dir: removed the earlier run's %s from %s", ", ".join(found), self.root)

    def bytes_held(self) -> int:
        """Bytes of the checkpoints and best model here: room a resume (which overwrites them) or
        an overwrite (which removes them) gets back."""
        files = [self.best_model, *(p for d in (self.latest, self.root / f"{LATEST}.prev") for p in _files(d))]
        return sum(p.stat().st_size for p in files if p.is_file())

    def remove_temp_files(self) -> None:
        """Remove what a run killed mid-write left here: temporary files of the run's own outputs
        (a half-written best model is as large as the model). Only while holding the run lock."""
        removed = remove_temp_files(self.root, RUN_OUTPUTS)
        for path in self.root.glob(LEGACY_TEMP):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted write in %s", len(removed), self.root)


def _files(folder):
    return list(folder.iterdir()) if folder.is_dir() else []
