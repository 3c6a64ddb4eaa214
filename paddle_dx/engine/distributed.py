"""Data parallelism under ``python -m paddle.distributed.launch``: what changes with N devices.

Each process (rank) trains on its own disjoint shard of every epoch (``EpochBatchSampler``
with ``rank``/``world_size``) and ``paddle.DataParallel`` averages the gradients, so all
ranks hold the same weights after every step. Batch size and learning rate are taken from
the config as they are: the global batch is ``batch_size x world_size`` and nothing is
rescaled behind the user's back.

Evaluation is sharded too: each rank predicts a contiguous block of the evaluation order and
the blocks are gathered, so the metrics are those of the whole set, computed once, exactly
as a single-device run would compute them (no per-rank averages, no padded duplicates).

With ``world_size == 1`` every method is a pass-through, so the Trainer has one code path.
"""

import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import paddle
import paddle.distributed as dist
from paddle.distributed.parallel import sync_params_buffers

from paddle_dx.data.sampler import EpochBatchSampler
from paddle_dx.engine.eval_loop import evaluate, predict
from paddle_dx.errors import WeightsError
from paddle_dx.metrics import classification_metrics
from paddle_dx.models import load_model_weights
from paddle_dx.models.sync_batchnorm import convert_sync_batchnorm
from paddle_dx.utils.device import gpu_available

log = logging.getLogger(__name__)


def launched_world() -> tuple[int, int]:
    """(rank, world_size) that paddle.distributed.launch gave this process; (0, 1) otherwise."""
    return int(os.environ.get("PADDLE_TRAINER_ID", 0)), int(os.environ.get("PADDLE_TRAINERS_NUM", 1))


def init_distributed(device: str = "auto") -> tuple[int, int]:
    """Join the process group when launched on several devices; return (rank, world_size).

    CPU processes talk over gloo (``Global.device: cpu``, or no GPU present); GPUs over NCCL.
    Ranks other than 0 log warnings and errors only: rank 0 speaks for the run.
    """
    rank, world_size = launched_world()
    if world_size <= 1:
        return 0, 1
    if device == "cpu" or not gpu_available():
        os.environ["PADDLE_DISTRI_BACKEND"] = "gloo"
    if not dist.is_initialized():
        dist.init_parallel_env()
    rank, world_size = dist.get_rank(), dist.get_world_size()
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    log.info(
        "data parallel on %d devices (backend %s); this is rank %d",
        world_size,
        os.environ.get("PADDLE_DISTRI_BACKEND", "auto"),
        rank,
    )
    return rank, world_size


class Parallel:
    """The collective operations a Trainer needs; no-ops with one device."""

    def __init__(self, rank=0, world_size=1) -> None:
        self.rank, self.world_size = int(rank), int(world_size)
        self._wrappers, self._shards = {}, {}

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: paddle.nn.Layer) -> paddle.nn.Layer:
        """``model`` for the training forward pass: itself on one device, else a DataParallel.

        DataParallel all-reduces only the gradients of parameters that were trainable when it
        was built, so a change of freeze (``Stages``) needs a new wrapper. Old wrappers are
        kept, not dropped: in Paddle 3.3.1 a garbage-collected DataParallel leaves gradient
        hooks behind that crash the next backward pass (SIGSEGV in EagerReducer::AddDistHook).
        """
        if not self.active:
            return model
        key = (id(model), tuple(p.trainable for p in model.parameters()))
        if key not in self._wrappers:
            self._wrappers[key] = paddle.DataParallel(model)
        return self._wrappers[key]

    def sync_batchnorm(self, model: paddle.nn.Layer, wanted: bool, device: str) -> None:
        """``Global.sync_bn``: BatchNorm statistics over the global batch, on several GPUs only
        (Paddle's SyncBatchNorm kernel is GPU-only; one device has nothing to synchronise)."""
        if not wanted:
            return
        if not self.active or device != "gpu":
            where = "CPU processes (SyncBatchNorm is GPU-only)" if self.active else f"one device ({device})"
            log.info("Global.sync_bn: ignored on %s; BatchNorm stays per device", where)
            return
        count = convert_sync_batchnorm(model)
        log.info("Global.sync_bn: %d BatchNorm layers normalise over all %d GPUs' batches", count, self.world_size)

    def sync_from_main(self, model: paddle.nn.Layer) -> None:
        """Give every rank rank 0's parameters and buffers (BatchNorm statistics drift apart
        between ranks during training: each rank normalises its own shard)."""
        if self.active:
            sync_params_buffers(model, fuse_params=False)

    def load_weights(self, model: paddle.nn.Layer, path: Path | str) -> None:
        """Rank 0 reads ``path`` (only rank 0 writes, maybe on its own node); the others receive it."""
        if self.rank == 0:
            load_model_weights(model, path)
        self.sync_from_main(model)

    def evaluate(
        self,
        model: Callable,
        loader: Iterable,
        class_names: Sequence[str],
        loss_fn: Callable | None = None,
        progress: Callable | None = None,
    ) -> tuple[dict, np.ndarray, np.ndarray]:
        """``eval_loop.evaluate`` over the whole of ``loader``, shared out between the ranks.

        Every rank evaluates rank 0's weights (the ones that are saved) on its block of the
        loader's order; the gathered probabilities and labels are in that original order.
        """
        if not self.active:
            return evaluate(model, loader, class_names, loss_fn, progress)
        self.sync_from_main(model)
        shard = self._shard(loader)
        if shard is None:
            probs, labels, loss_sum = np.zeros((0, len(class_names)), "float32"), np.zeros(0, "int64"), 0.0
        else:
            probs, labels, loss = predict(model, shard, loss_fn, progress)
            loss_sum = loss * len(labels) if loss_fn is not None else 0.0
        parts = []
        dist.all_gather_object(parts, (probs, labels, loss_sum))
        probs = np.concatenate([p for p, _, _ in parts])
        labels = np.concatenate([y for _, y, _ in parts])
        loss = sum(s for _, _, s in parts) / len(labels) if loss_fn is not None else None
        return classification_metrics(labels, probs, class_names, loss=loss), probs, labels

    def _shard(self, loader):
        """A loader over this rank's contiguous block of ``loader``'s sample keys (None if empty)."""
        if id(loader) not in self._shards:
            keys = [key for batch in loader.batch_sampler for key in batch]
            block = [keys[i] for i in np.array_split(np.arange(len(keys)), self.world_size)[self.rank]]
            shard = None
            if block:
                sampler = paddle.io.BatchSampler(sampler=block, batch_size=loader.batch_sampler.batch_size)
                shard = type(loader)(
                    loader.dataset,
                    batch_sampler=sampler,
                    num_workers=loader.num_workers,
                    use_shared_memory=loader.use_shared_memory,
                )
            self._shards[id(loader)] = (loader, shard)  # holding ``loader`` keeps its id unique
        return self._shards[id(loader)][1]

    def stop_signal(self, signum: int | None) -> int | None:
        """The stop signal that any rank has received, or None: all ranks must stop after the
        same step, or one would wait forever for the gradients of a rank that has left."""
        if not self.active:
            return signum
        flag = paddle.to_tensor([signum or 0], dtype="int64")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) or None

    def sum(self, counts: dict) -> dict:
        """Sum the numbers of a dict over the ranks (the epoch's training loss and accuracy over
        all shards); other values (e.g. a list of per-step losses) stay this rank's own."""
        if not self.active:
            return counts
        parts = []
        dist.all_gather_object(parts, counts)
        return {
            key: sum(p[key] for p in parts) if isinstance(value, (int, float)) else value
            for key, value in counts.items()
        }


def resume_step(state: dict, sampler: EpochBatchSampler, checkpoint: object = "the checkpoint") -> int:
    """The step of the checkpoint's epoch at which this run, with ``sampler``, carries on.

    Rank r's step s trains positions ``(s*b + j)*W + r`` of the epoch's order (b images per
    device, W devices), so after S steps on any number of devices exactly the first
    ``S*b*W`` positions have been trained, whatever W was. With another W or b the run
    continues at the last step that does not skip any of them: at most one global batch of
    samples is trained on twice, none is missed.
    """
    step = int(state["step"])
    old = (int(state.get("world_size", 1)), int(state.get("batch_size", sampler.batch_size)))
    new = (sampler.world_size, sampler.batch_size)
    steps = math.ceil(math.ceil(len(sampler.labels) / old[0]) / old[1])  # of an epoch of the saving run
    if step > steps:
        raise WeightsError(
            f"{checkpoint}: field 'step' = {step} is not valid: an epoch of this run has {steps} steps "
            f"({len(sampler.labels)} images, {old[0]} device(s) x {old[1]} per step)"
        )
    if step == 0 or old == new:
        return step
    seen = step * old[0] * old[1]
    per_step = new[0] * new[1]
    done = seen >= len(sampler.labels)
    mapped = len(sampler) if done else seen // per_step
    again = 0 if done else seen - mapped * per_step
    log.warning(
        "the checkpoint was written after %d steps of epoch %d on %d device(s) x %d images = %d samples "
        "of the epoch's order; this run takes %d device(s) x %d images per step, so it continues at "
        "step %d%s",
        step,
        int(state["epoch"]) + 1,
        old[0],
        old[1],
        seen,
        new[0],
        new[1],
        mapped,
        f" ({again} samples are trained on again)" if again else "",
    )
    return mapped
