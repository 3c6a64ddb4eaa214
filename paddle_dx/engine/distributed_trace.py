"""A per-rank record of what data parallelism did, for tests and debugging.

Set ``PADDLE_DX_TRACE_DIR`` and every rank writes ``rank<k>.json`` there (never in
``output_dir``):

- ``keys``: the (epoch, index) sample keys its sampler handed out, by epoch — disjoint
  shards across ranks;
- ``digests``: the SHA-256 of its trainable weights after every step — equal on all ranks
  when the gradients were averaged;
- ``writes``: every file or folder it created, changed, renamed or removed under
  ``output_dir`` (seen through a Python audit hook, so nothing that writes through Python's
  ``open``/``os`` escapes it) — empty on every rank but 0.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import paddle

from paddle_dx.engine.callbacks import Callback

if TYPE_CHECKING:
    from paddle_dx.engine.trainer import Trainer

TRACE_ENV = "PADDLE_DX_TRACE_DIR"
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_CHANGE_EVENTS = {"os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "os.truncate"}


def weights_digest(model: paddle.nn.Layer) -> str:
    """SHA-256 of the trainable parameters (BatchNorm running statistics differ per rank by design)."""
    digest = hashlib.sha256()
    for p in model.parameters():
        if p.trainable:
            digest.update(p.numpy().tobytes())
    return digest.hexdigest()


class _RecordingSampler(paddle.io.Sampler):
    """Passes the batches of ``inner`` through and notes their keys."""

    def __init__(self, inner, record) -> None:
        self.inner, self.record = inner, record

    def __iter__(self):
        for batch in self.inner:
            self.record.setdefault(str(self.inner.epoch), []).extend([int(e), int(i)] for e, i in batch)
            yield batch

    def __len__(self) -> int:
        return len(self.inner)


class Trace(Callback):
    """Watches this process's writes under ``output_dir`` from creation; as the trainer's callback
    it records the sample keys and weight digests too."""

    def __init__(self, directory, output_dir, rank, world_size) -> None:
        self.path = Path(directory) / f"rank{rank}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.output_dir = os.path.abspath(output_dir)
        self.data = {"rank": rank, "world_size": world_size, "keys": {}, "digests": [], "writes": []}
        sys.addaudithook(self._audit)
        atexit.register(self.save)

    def _audit(self, event, args):
        if event == "open":
            changes = args[2] is not None and args[2] & _WRITE_FLAGS
        else:
            changes = event in _CHANGE_EVENTS
        if not changes:
            return
        for target in args[:2] if event == "os.rename" else args[:1]:  # a rename writes its destination
            if isinstance(target, (str, os.PathLike)):
                path = os.path.abspath(target)
                if path == self.output_dir or path.startswith(self.output_dir + os.sep):
                    self.data["writes"].append([event, os.path.relpath(path, self.output_dir)])

    def on_train_begin(self, trainer: Trainer) -> None:
        """Record the sample keys the trainer's sampler hands out."""
        trainer.train_loader.batch_sampler = _RecordingSampler(trainer.train_sampler, self.data["keys"])

    def on_train_batch_end(self, trainer: Trainer, epoch: int, step: int) -> None:
        """Record the weight digest after every training step."""
        self.data["digests"].append(weights_digest(trainer.model))
        self.save()

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data), encoding="utf-8")


def start_trace(config: dict, rank: int, world_size: int) -> Trace | None:
    """A Trace when PADDLE_DX_TRACE_DIR is set, else None. Start it before building the Trainer."""
    directory = os.environ.get(TRACE_ENV)
    return Trace(directory, config["Global"]["output_dir"], rank, world_size) if directory else None
