"""Identical and near-identical images, found from decoded pixels.

File hashes miss the same picture saved twice as different JPEG files (other metadata, other
encoder run, same pixels); such copies on both sides of a split inflate accuracy. A SHA-256
of the decoded array catches them; a perceptual hash (imagehash's pHash) with a Hamming
threshold catches re-encoded or slightly altered copies, on request.
"""

import hashlib
import logging
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt

from paddle_dx.data.io import read_image
from paddle_dx.errors import DataError, ImageReadError
from paddle_dx.utils.hashing import file_sha256

log = logging.getLogger(__name__)
PHASH_BITS = 64  # imagehash.phash's default 8 x 8 hash


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 of a decoded image's shape and bytes: equal for equal pixels, whatever the file."""
    image = np.ascontiguousarray(image)
    digest = hashlib.sha256(repr((image.shape, str(image.dtype))).encode())
    digest.update(image.tobytes())
    return digest.hexdigest()


def phash_bits(image: np.ndarray) -> np.ndarray:
    """The 64-bit perceptual hash of an RGB uint8 image as a bool array."""
    import imagehash
    from PIL import Image

    return imagehash.phash(Image.fromarray(image)).hash.ravel()


def check_hamming(bits: int | None, flag: str = "--near-duplicates") -> None:
    """Refuse a pHash distance outside 0..PHASH_BITS-1 (None = near-duplicate check off)."""
    if bits is not None and not 0 <= bits < PHASH_BITS:
        raise DataError(f"{flag} must be between 0 and {PHASH_BITS - 1} bits, got {bits}")


def image_fingerprints(
    paths: Sequence[Path | str], near: bool = False
) -> tuple[list[str], np.ndarray | None, np.ndarray]:
    """Decode each image once; return (pixel hashes, pHash bits (n, 64) or None, readable mask).

    An unreadable file gets its file hash instead (it cannot equal a decoded image's hash) and
    no pHash; training's start-up scan reports it properly.
    """

    def one(path):
        try:
            image = read_image(path)
        except ImageReadError as exc:
            log.warning("cannot decode %s (%s): compared by file bytes only", path, exc.problem)
            return "file:" + file_sha256(path), np.zeros(PHASH_BITS, bool), False
        return pixel_sha256(image), (phash_bits(image) if near else None), True

    with ThreadPoolExecutor(max_workers=2) as pool:
        found = list(pool.map(one, paths))
    readable = np.asarray([ok for _, _, ok in found], dtype=bool)
    bits = np.asarray([b for _, b, _ in found], dtype=bool).reshape(len(found), PHASH_BITS) if near else None
    return [h for h, _, _ in found], bits, readable


def near_duplicate_pairs(
    bits: npt.ArrayLike, max_distance: int, readable: np.ndarray | None = None, block: int = 1024
) -> np.ndarray:
    """Index pairs (i < j) whose hashes differ in at most ``max_distance`` bits.

    For 0/1 vectors the Hamming distance is |a| + |b| - 2 a.b, so one matrix product gives a
    block of rows against the later ones; ``block`` rows at a time keep 10k images at ~40 MB, not
    the full n x n matrix.
    """
    x = np.asarray(bits, dtype=np.float32).reshape(len(bits), -1)
    ones = x.sum(axis=1)
    found = [np.empty((0, 2), dtype=int)]
    for start in range(0, len(x), block):  # rows start.. against columns start.. (pairs i < j only)
        rows, cols = x[start : start + block], x[start:]
        distance = ones[start : start + block, None] + ones[None, start:] - 2 * (rows @ cols.T)
        i, j = np.nonzero(distance <= max_distance)  # small integers: exact in float32
        found.append(np.stack([i[i < j], j[i < j]], axis=1) + start)
    pairs = np.concatenate(found)
    if readable is not None:
        pairs = pairs[readable[pairs[:, 0]] & readable[pairs[:, 1]]]
    return pairs


def merge_groups(n: int, keys: Iterable[Sequence] = (), pairs: npt.ArrayLike = ()) -> np.ndarray:
    """Component id per item: items sharing a value in any of ``keys`` (arrays of length n) or
    joined by an index pair end up in one group (e.g. a patient's images plus their copies)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = [np.asarray(pairs, dtype=int).reshape(-1, 2)]
    for values in keys:
        first = {}
        edges.append(np.asarray([(i, first.setdefault(v, i)) for i, v in enumerate(values)], dtype=int).reshape(-1, 2))
    edges = np.concatenate(edges)
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def multi_member_groups(groups: Iterable) -> list[list[int]]:
    """Index lists of the groups with two or more members, in first-member order."""
    members = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return [idx for idx in members.values() if len(idx) > 1]
