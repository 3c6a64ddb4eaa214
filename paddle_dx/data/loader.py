"""A paddle DataLoader whose batch errors reach the main process as data, not as a hang.

Why: Paddle 3.3's reader thread (``_DataLoaderIterSingleProcess._thread_loop``, and the
multi-process one re-raising a worker's ``_WorkerException``) dies on any exception from
``__getitem__`` or ``collate_fn`` without closing its blocking queue, so the main thread
waits in C++ ``read_next_list()`` forever, where no Python signal handler (SIGTERM) runs.
Here nothing raises inside the loader: a failed sample becomes a :class:`SampleFailure`,
the collate turns a failed batch into a message field, and :class:`SafeDataLoader` raises
it in the main process as a one-line DataError naming the image.
"""

from collections.abc import Sequence

import numpy as np
import paddle
from paddle.io.dataloader.collate import default_collate_fn

from paddle_dx.errors import DataError


class SampleFailure:
    """What ``dataset[key]`` returns instead of raising: the message naming the file and the error."""

    def __init__(self, message) -> None:
        self.message = message


def failure_of(path: object, exc: BaseException) -> SampleFailure:
    """A SampleFailure for ``exc`` raised while reading or preprocessing ``path``."""
    return SampleFailure(f"{path}: {type(exc).__name__}: {exc}".replace("\n", " "))


def collate_or_fail(samples: Sequence) -> list:
    """``[images, labels, ""]``, or placeholders and the first failure's message (never raises)."""
    failed = next((s for s in samples if isinstance(s, SampleFailure)), None)
    if failed is None:
        try:
            return [*default_collate_fn(samples), ""]
        except Exception as exc:  # e.g. a pipeline giving images of different sizes
            shapes = sorted({str(np.shape(image)) for image, _ in samples})
            failed = SampleFailure(f"cannot batch images of shapes {', '.join(shapes)}: {exc}".replace("\n", " "))
    return [np.zeros(1, np.float32), np.zeros(1, np.int64), failed.message]


class SafeDataLoader(paddle.io.DataLoader):
    """``paddle.io.DataLoader`` with :func:`collate_or_fail`; iterating yields (images, labels)
    and raises DataError("<where>: <image>: <error>") for a batch that failed."""

    def __init__(self, dataset, where="DataLoader", **kwargs) -> None:
        kwargs.setdefault("collate_fn", collate_or_fail)
        super().__init__(dataset, **kwargs)
        self.where = where

    def __iter__(self):
        batches = super().__iter__()
        for images, labels, problem in batches:
            if problem:
                shutdown = getattr(batches, "_try_shutdown_all", None)  # stop the reader thread and workers
                if shutdown is not None:
                    shutdown()
                raise DataError(f"{self.where}: {problem}")
            yield images, labels
