"""The image-list dataset: decode, preprocess, augment with a per-sample seed."""

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import paddle

from paddle_dx.data.duplicates import pixel_sha256
from paddle_dx.data.io import read_image
from paddle_dx.data.loader import failure_of
from paddle_dx.errors import DataError, ImageReadError
from paddle_dx.utils.hashing import file_sha256

log = logging.getLogger(__name__)


def scan_images(
    samples: Sequence[tuple[str, int]], skip_bad: bool, desc: str = "checking images"
) -> tuple[list[tuple[str, int]], list[tuple[str, str]], dict[str, str], dict[str, str]]:
    """Decode every image once before training; return (good samples, bad [(path, reason)],
    file hashes, pixel hashes), the hashes as {path: sha256}.

    A corrupt file should stop a run at start-up, not after an hour. With ``skip_bad`` the bad
    files are dropped and reported instead. File hashes feed manifests and caches; pixel hashes
    (of the decoded array) the split-leakage check, as one picture can be saved as two files.
    """
    from tqdm import tqdm

    def check(item):
        path = item[0]
        try:
            image = read_image(path)
            return None, (file_sha256(path), pixel_sha256(image))
        except ImageReadError as exc:
            return exc.problem, None

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            tqdm(pool.map(check, samples), total=len(samples), desc=desc, leave=False, disable=len(samples) < 200)
        )
    good, bad, hashes, pixels = [], [], {}, {}
    for item, (problem, digests) in zip(samples, results):
        if problem is None:
            good.append(item)
            hashes[item[0]], pixels[item[0]] = digests
        else:
            bad.append((item[0], problem))
    if bad and not skip_bad:
        listing = "\n  ".join(f"{p}: {why}" for p, why in bad[:20])
        raise DataError(f"{len(bad)} unreadable image(s) (set Global.skip_bad_images=true to skip them):\n  {listing}")
    for p, why in bad:
        log.warning("skipping unreadable image %s: %s", p, why)
    if not good:
        raise DataError("no readable images left after skipping bad files")
    return good, bad, hashes, pixels


class ImageListDataset(paddle.io.Dataset):
    """``dataset[(epoch, index)]`` -> (CHW float32 image, int64 label).

    The augmentation generator is seeded from (seed, epoch, index), so a sample looks the same
    whichever worker loads it and whether or not the run was interrupted and resumed.
    """

    def __init__(self, samples, transforms, seed=0) -> None:
        super().__init__()
        self.samples = list(samples)
        self.transforms = transforms
        self.seed = int(seed)
        self.prefix_cache = None  # a paddle_dx.data.preprocess_cache.PrefixCache, set by build_dataset

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    def rng(self, index: int, epoch: int = 0) -> np.random.Generator:
        """The generator sample ``index``'s random ops draw from in ``epoch``."""
        return np.random.default_rng([self.seed, int(epoch), int(index)])

    def load(self, index: int, epoch: int = 0) -> tuple[np.ndarray, np.int64]:
        path, label = self.samples[index]
        rng = self.rng(index, epoch)
        if self.prefix_cache is not None:  # Global.preprocess_cache: the deterministic ops come from disk
            return self.prefix_cache(path, rng), np.int64(label)
        return self.transforms(read_image(path), rng), np.int64(label)

    def __getitem__(self, key):
        """The sample, or a SampleFailure naming its file: an exception raised inside Paddle's
        DataLoader would hang the run (paddle_dx/data/loader.py)."""
        epoch, index = key if isinstance(key, tuple) else (0, key)
        try:
            return self.load(index, epoch)
        except Exception as exc:
            return failure_of(self.samples[index][0], exc)

    def __len__(self) -> int:
        return len(self.samples)
