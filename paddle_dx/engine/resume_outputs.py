"""A run resumed into another output_dir still needs the interrupted run's best_model.pdparams:
its best epoch may be one the resumed run never trains again, and finish() evaluates it."""

import logging
import shutil
from pathlib import Path

from paddle_dx.engine.checkpoint import find_checkpoint
from paddle_dx.engine.run_folder import BEST_MODEL as BEST
from paddle_dx.utils.files import atomic_path

log = logging.getLogger(__name__)


def carry_best_model(checkpoint: Path | str, output_dir: Path | str) -> Path | None:
    """Copy ``best_model.pdparams`` from beside ``checkpoint`` into ``output_dir`` when missing there.

    Warns at start-up when neither place has it: the run can still finish if a resumed epoch
    beats the old best (it then writes a new file), otherwise the final test evaluation cannot.
    """
    target = Path(output_dir) / BEST
    if target.is_file():
        return target
    source = find_checkpoint(checkpoint).parent / BEST
    if not source.is_file():
        log.warning(
            "resuming from %s into %s: the checkpoint's best epoch needs %s, found neither at %s nor "
            "at %s; resume in the original Global.output_dir or copy that file there",
            checkpoint,
            output_dir,
            BEST,
            target,
            source,
        )
        return None
    with atomic_path(target) as tmp:  # a copy cut short must not pass for the best model
        shutil.copy2(source, tmp)
    log.info("copied %s from %s into the new output_dir", BEST, source.parent)
    return target
