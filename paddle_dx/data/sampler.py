"""Batch samplers whose order is a pure function of (seed, epoch): resumable and shardable."""

import math
from collections.abc import Sequence

import numpy as np
import paddle

from paddle_dx.utils.registry import Registry

SAMPLERS = Registry("batch sampler")  # DataLoader.Train.sampler.name -> EpochBatchSampler builder


class EpochBatchSampler(paddle.io.Sampler):
    """Yields batches of ``(epoch, index)`` keys.

    The permutation of epoch ``e`` is drawn from ``seed + e`` alone, so a run resumed in the
    middle of an epoch (``start_step``) sees exactly the batches an uninterrupted run would.
    With ``world_size > 1`` each rank takes a disjoint, equally sized shard (padded by
    wrapping around, as ``paddle.io.DistributedBatchSampler`` does).
    ``balanced=True`` draws each epoch's indices with probability inversely proportional to
    their class frequency (a class-balanced sampler for imbalanced sets).
    """

    def __init__(
        self, labels, batch_size, shuffle=True, drop_last=False, seed=0, balanced=False, rank=0, world_size=1
    ) -> None:
        self.labels = np.asarray(labels)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.seed, self.balanced = int(seed), balanced
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = int(epoch), int(start_step)

    def _indices(self):
        n = len(self.labels)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.balanced:
            counts = np.bincount(self.labels)
            weights = 1.0 / counts[self.labels]
            order = rng.choice(n, size=n, replace=True, p=weights / weights.sum())
        elif self.shuffle:
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        if self.world_size > 1:
            per_rank = math.ceil(n / self.world_size)
            order = np.resize(order, per_rank * self.world_size)[self.rank :: self.world_size]
        return order

    def __iter__(self):
        order = self._indices()
        for step in range(self.start_step, len(self)):
            batch = order[step * self.batch_size : (step + 1) * self.batch_size]
            yield [(self.epoch, int(i)) for i in batch]

    def __len__(self) -> int:
        n = math.ceil(len(self.labels) / self.world_size)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)


# PaddleClas's sampler names. Every EpochBatchSampler shards by rank, so the plain and the
# distributed name are the same sampler here.
SAMPLERS.register(EpochBatchSampler, name="BatchSampler")
SAMPLERS.register(EpochBatchSampler, name="DistributedBatchSampler")


@SAMPLERS.register(name="BalancedBatchSampler")
def balanced_batch_sampler(labels: Sequence[int], batch_size: int, **kwargs: object) -> EpochBatchSampler:
    """Classes drawn equally often (see ``EpochBatchSampler(balanced=True)``)."""
    return EpochBatchSampler(labels, batch_size, balanced=True, **kwargs)
