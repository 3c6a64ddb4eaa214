"""The one place that seeds every random number generator paddle_dx uses."""

import os
import random

import numpy as np
import paddle


def set_seed(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and Paddle; on GPU also ask cuDNN for deterministic kernels.

    paddle_dx's own augmentation draws from a generator seeded by (seed, epoch, sample index)
    inside the dataset, so it needs no worker seed; ``seed_worker`` covers any other code that
    uses the global ``random`` / ``numpy.random`` inside a DataLoader worker.
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    paddle.seed(seed)
    if deterministic:
        os.environ.setdefault("FLAGS_cudnn_deterministic", "1")
        if paddle.is_compiled_with_cuda():
            paddle.set_flags({"FLAGS_cudnn_deterministic": True})


def step_seed(seed: int, epoch: int, step: int) -> int:
    """A distinct, reproducible Paddle seed for one training step (dropout etc.)."""
    return (int(seed) * 1_000_003 + int(epoch) * 10_007 + int(step)) % (2**31 - 1)


def seed_worker(seed: int, worker_id: int) -> None:
    """DataLoader ``worker_init_fn`` (bind ``seed`` with functools.partial): each worker's global
    generators become a function of (seed, worker id) instead of whatever the fork inherited."""
    set_seed((int(seed) * 1_000_003 + 7919 * (int(worker_id) + 1)) % (2**31 - 1), deterministic=False)
