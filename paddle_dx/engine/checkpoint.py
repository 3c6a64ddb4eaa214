"""Resumable checkpoints that a crash can never leave half-written.

A checkpoint is a folder (``model.pdparams``, ``model.pdopt``, ``state.json``) built under a
temporary name, fsynced, then renamed into place; the previous one is kept as ``latest.prev``
until the new one is in place, so there is always one complete checkpoint on disk (also when
the disk fills up during a save: that is one line, DiskFull, and the previous one stays).
``state.json`` records the SHA-256 of the other two files and of its own content, all checked
on load with each of its fields (engine/checkpoint_state.py).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import paddle

from paddle_dx.engine.checkpoint_state import check_digest, check_fields, signed
from paddle_dx.engine.run_folder import CHECKPOINT_STATE, LATEST
from paddle_dx.errors import WeightsError
from paddle_dx.models.weights import load_state
from paddle_dx.utils.files import disk_full_reported, remove_temp_files, temp_prefix
from paddle_dx.utils.hashing import file_sha256
from paddle_dx.utils.pause import pause_point
from paddle_dx.utils.state_names import rename_optimizer_state

FILES = ("model.pdparams", "model.pdopt")


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(
    directory: Path | str, model: paddle.nn.Layer, optimizer: paddle.optimizer.Optimizer, state: dict
) -> None:
    """Write ``directory`` atomically with model, optimizer and the JSON-able ``state``."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_temp_files(directory.parent, [directory.name])  # left by a run killed mid-save
    kept = f"the previous checkpoint {directory} is intact" if directory.exists() else "nothing was saved there"
    tmp = None
    try:
        with disk_full_reported(directory, kept):
            tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=temp_prefix(directory.name)))
            paddle.save(model.state_dict(), str(tmp / FILES[0]))
            pause_point("checkpoint_write")  # fault tests kill the run here
            names = {p.name: n for n, p in model.named_parameters()}
            paddle.save(rename_optimizer_state(optimizer.state_dict(), names), str(tmp / FILES[1]))
            write_state(tmp, dict(state, sha256={f: file_sha256(tmp / f) for f in FILES}))
            for f in FILES:
                with open(tmp / f, "rb") as fh:
                    os.fsync(fh.fileno())
            _fsync_dir(tmp)
        previous = directory.with_name(directory.name + ".prev")
        if directory.exists():
            shutil.rmtree(previous, ignore_errors=True)
            os.replace(directory, previous)
        pause_point("checkpoint_swap")  # ... and here, between the two renames
        os.replace(tmp, directory)
        _fsync_dir(directory.parent)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def write_state(directory: Path | str, state: dict) -> None:
    """Write ``state.json`` into the checkpoint folder ``directory`` with its digest (fsynced)."""
    plain = json.loads(json.dumps(state))  # as a reader will see it: tuples are lists, keys strings
    path = Path(directory) / CHECKPOINT_STATE
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(signed(plain), indent=2))
        fh.flush()
        os.fsync(fh.fileno())


def find_checkpoint(path: Path | str) -> Path:
    """Accept a checkpoint folder, or an output_dir containing ``latest``; fall back to
    ``latest.prev`` when a crash happened between the two renames of a save."""
    path = Path(path)
    for candidate in (path, path / LATEST, path.with_name(path.name + ".prev"), path / f"{LATEST}.prev"):
        if (candidate / CHECKPOINT_STATE).is_file():
            return candidate
    raise WeightsError(
        f"no checkpoint found at {path} (expected a folder with state.json, model.pdparams, model.pdopt)"
    )


def load_checkpoint(
    path: Path | str, model: paddle.nn.Layer | None = None, epochs: int | None = None, stages: int = 0
) -> tuple[dict, dict, dict]:
    """Return (model state, optimizer state, state dict) after verifying the state's fields and
    digest and the file hashes.

    Give ``model`` to get the optimizer state keyed by that model's live parameter names, and
    the resuming config's ``epochs`` and number of ``stages`` to bound the state's fields.
    """
    directory = find_checkpoint(path)
    file = directory / CHECKPOINT_STATE
    try:
        state = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WeightsError(f"{file}: unreadable checkpoint state ({exc})") from None
    hashes = state.get("sha256") if isinstance(state, dict) else None
    if not isinstance(hashes, dict) or sorted(hashes) != sorted(FILES):
        raise WeightsError(
            f"{directory / CHECKPOINT_STATE}: no SHA-256 for {', '.join(FILES)}; a checkpoint is resumed "
            f"only when its files are the ones it wrote"
        )
    check_fields(state, file, epochs, stages)
    check_digest(state, file)
    for f, digest in hashes.items():
        if not (directory / f).is_file() or file_sha256(directory / f) != digest:
            raise WeightsError(f"{directory / f}: checkpoint file is incomplete or changed (hash mismatch)")
    opt_state = load_state(directory / FILES[1])
    if model is not None:
        opt_state = rename_optimizer_state(opt_state, {n: p.name for n, p in model.named_parameters()})
    return load_state(directory / FILES[0]), opt_state, state


def disk_bytes_needed(model: paddle.nn.Layer, held: int = 0, margin: int = 64 << 20) -> int:
    """Bytes a run still needs at its peak: during a save, the new checkpoint (weights + two Adam
    moments) and the previous one coexist, plus best_model and a margin for logs. ``held``: bytes
    of those files the run folder already holds (a resume overwrites them, an overwrite removes
    them), so a resume needs room for one more checkpoint only."""
    weights = sum(int(p.size) * p.element_size() for p in model.parameters())
    return max(weights * 3 * 2 + weights - held, weights * 3) + margin
