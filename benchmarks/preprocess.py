"""Preprocessing cost, ms per image: decode, resize/crop/normalise, fastNlMeans denoising
before vs after resizing, the on-disk prefix cache (Global.preprocess_cache), and the esophageal
recipe (configs/esophagus_resnet50.yaml's Train ops) uncached vs with the cache its default
``auto`` turns on.

Uses real endoscopy frames from ../shared/datasets/hyperkvasir_lower_gi when present
(about 720x576), else generated 720x576 JPEGs. One process, cases alternated, rounds.

    python benchmarks/preprocess.py [--rounds 3] [--images 6]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.harness import fmt, machine, write_results  # noqa: E402
from benchmarks.train import _eso_ops  # noqa: E402
from paddle_dx.data.io import read_image  # noqa: E402
from paddle_dx.data.preprocess_cache import PrefixCache, use_prefix_cache  # noqa: E402
from paddle_dx.data.transforms import build_transforms  # noqa: E402

SHAPE = [3, 224, 224]
BASE = [{"ResizeImage": {"resize_short": 256}}, {"CenterCrop": {}}, {"NormalizeImage": {}}]
DENOISE = {"Denoise": {"method": "fastNlMeans", "h": 3}}


def _images(n):
    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hyperkvasir_lower_gi"
    found = sorted(shared.rglob("*.jpg"))[:n] if shared.is_dir() else []
    if len(found) == n:
        return found, "HyperKvasir lower-GI frames"
    out = Path(tempfile.mkdtemp(prefix="bench_pre_"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 255, (576, 720, 3), dtype=np.uint8), (9, 9), 0)
        paths.append(out / f"{i}.jpg")
        cv2.imwrite(str(paths[-1]), img)
    return paths, "generated 720x576 JPEGs"


def cases(paths):
    base = build_transforms(BASE, SHAPE)
    before = build_transforms([{"Denoise": dict(DENOISE["Denoise"], after_resize=False)}] + BASE, SHAPE)
    after = build_transforms([DENOISE] + BASE, SHAPE)  # build_transforms moves it after ResizeImage
    cache = PrefixCache(Path(tempfile.mkdtemp(prefix="bench_prefix_")), after)
    eso = build_transforms(_eso_ops(), SHAPE)
    if not use_prefix_cache("auto", eso, "the esophageal recipe"):
        raise SystemExit("Global.preprocess_cache: auto no longer caches the esophageal recipe")
    eso_cache = PrefixCache(Path(tempfile.mkdtemp(prefix="bench_prefix_")), eso)
    rng = np.random.default_rng(0)
    for p in paths:  # warm the caches: what every epoch after the first reads
        cache(p, None)
        eso_cache(p, rng)
    return {
        "decode only (cv2.imread via read_image)": lambda p: read_image(p),
        "decode + resize 256 + crop 224 + normalise": lambda p: base(read_image(p)),
        "+ fastNlMeans BEFORE resize (full frame)": lambda p: before(read_image(p)),
        "+ fastNlMeans AFTER resize (paddle_dx default)": lambda p: after(read_image(p)),
        "same pipeline, prefix cache warm (Global.preprocess_cache)": lambda p: cache(p, None),
        "esophageal recipe (crop, resize, fastNlMeans, flips, normalise)": lambda p: eso(read_image(p), rng),
        "esophageal recipe, prefix cache warm (its default, auto)": lambda p: eso_cache(p, rng),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=6)
    args = parser.parse_args()
    started = machine()
    cv2.setNumThreads(1)
    paths, source = _images(args.images)
    fns = cases(paths)
    results = {name: [] for name in fns}
    for r in range(args.rounds):
        names = list(fns)[r % len(fns) :] + list(fns)[: r % len(fns)]
        for name in names:
            start = time.perf_counter()
            for p in paths:
                fns[name](p)
            results[name].append(1000 * (time.perf_counter() - start) / len(paths))
    base = statistics.median(results["decode + resize 256 + crop 224 + normalise"])
    rows = [[name, fmt(v, 1), f"{statistics.median(v) / base:.2f}"] for name, v in results.items()]
    shape = read_image(paths[0]).shape
    write_results(
        "preprocess",
        "Preprocessing, ms per image",
        "python benchmarks/preprocess.py " + " ".join(sys.argv[1:]),
        ["pipeline", "ms/image", "vs plain pipeline"],
        rows,
        [
            f"{len(paths)} {source} (first is {shape[1]}x{shape[0]}), OpenCV with 1 thread",
            "prefix cache = the deterministic ops (decode, resize, crop, denoise) loaded from a uint8 .npy; "
            "normalisation still runs",
        ],
        started,
        "Values: median (min-max) over rounds; one process, the cases in rotating order each round.",
    )


if __name__ == "__main__":
    main()
