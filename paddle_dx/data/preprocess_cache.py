"""Decode, crop, denoise and resize each image once: an on-disk cache of the deterministic
part of a preprocessing pipeline.

``Compose.deterministic_prefix()`` (the ops before the first random one) gives the same output
for an image every epoch, so it is stored as a uint8 ``.npy`` keyed by (image SHA-256, the
prefix ops' resolved spec); later epochs and later runs load it and apply only the rest
(random augmentation, normalisation). Normalisation and layout ops stay out of the cache:
they are cheap and would make the entries 4x larger (float32).

``Global.preprocess_cache: auto`` (the default) turns the cache on only when the cached prefix
holds an op marked ``expensive`` (fastNlMeans denoising, ~0.25 s per image even at 224 px):
decoding and resizing alone are cheaper to redo than the disk entries are to keep.
"""

import json
import logging
from pathlib import Path

import numpy as np

from paddle_dx.data.io import read_image
from paddle_dx.data.transforms import Compose, NormalizeImage, Op, ToCHWImage
from paddle_dx.utils.files import atomic_path
from paddle_dx.utils.hashing import file_sha256, text_sha256

_CHEAP = (NormalizeImage, ToCHWImage)
log = logging.getLogger(__name__)


def cached_prefix(transforms: Compose) -> list[Op]:
    """The ops worth caching: the deterministic prefix, up to the first normalisation/layout op."""
    prefix = []
    for op in transforms.deterministic_prefix():
        if isinstance(op, _CHEAP):
            break
        prefix.append(op)
    return prefix


def use_prefix_cache(setting: str | bool, transforms: Compose, where: str) -> bool:
    """Whether ``Global.preprocess_cache`` (auto | on | off, or a boolean) caches ``where``'s
    pipeline; ``auto`` decides from the prefix's ``expensive`` ops and logs the decision."""
    setting = {True: "on", False: "off"}.get(setting, setting)
    if setting != "auto":
        return setting == "on"
    expensive = [type(op).__name__ for op in cached_prefix(transforms) if op.expensive]
    if expensive:
        log.info(
            "preprocess cache: on for %s (Global.preprocess_cache: auto; its deterministic prefix has expensive %s)",
            where,
            ", ".join(expensive),
        )
    else:
        log.info(
            "preprocess cache: off for %s (Global.preprocess_cache: auto; no expensive op before the first random one)",
            where,
        )
    return bool(expensive)


class PrefixCache:
    """``cache(path, rng)`` == ``transforms(read_image(path), rng)``, with the prefix read from disk."""

    def __init__(self, root, transforms, hashes=None) -> None:
        self.root = Path(root)
        self.transforms = transforms
        self.prefix = cached_prefix(transforms)
        self.rest = transforms.ops[len(self.prefix) :]
        self.spec_key = json.dumps(transforms.spec()[: len(self.prefix)], sort_keys=True)
        self.hashes = dict(hashes or {})

    def _file(self, path):
        digest = self.hashes.get(str(path)) or file_sha256(path)
        key = text_sha256(f"{digest}|{self.spec_key}")
        return self.root / key[:2] / f"{key}.npy"

    def prefix_output(self, path: Path | str) -> np.ndarray:
        """The cached prefix output for ``path``, computing and storing it on a miss."""
        entry = self._file(path)
        if entry.is_file():
            return np.load(entry)
        img = read_image(path)
        for op in self.prefix:
            img = op(img, None)
        with atomic_path(entry) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(img))
        return img

    def __call__(self, path, rng):
        img = self.prefix_output(path)
        for op in self.rest:
            img = op(img, rng)
        return img
