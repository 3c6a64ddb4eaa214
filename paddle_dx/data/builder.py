"""Datasets and loaders from one list's section of a config (``DataSection``: ``DataLoader.<mode>``
with the image shape, seed and class count it needs)."""

import logging
import math
from functools import partial

import paddle

from paddle_dx.config.sections import DataSection
from paddle_dx.data.classes import class_names, require_class_num
from paddle_dx.data.coverage import check_class_coverage
from paddle_dx.data.dataset import ImageListDataset, scan_images
from paddle_dx.data.list_file import outside_root, read_list_file
from paddle_dx.data.loader import SafeDataLoader
from paddle_dx.data.pipelines import transforms_for
from paddle_dx.data.preprocess_cache import PrefixCache, use_prefix_cache
from paddle_dx.data.sampler import SAMPLERS, EpochBatchSampler
from paddle_dx.errors import ConfigError
from paddle_dx.utils.device import usable_cores
from paddle_dx.utils.loader_workers import resolve_shared_memory, resolve_workers, shm_free_bytes
from paddle_dx.utils.seed import seed_worker

log = logging.getLogger(__name__)


__all__ = ["build_dataset", "build_loader", "class_names", "loader_settings", "transforms_for"]


def build_dataset(data: DataSection, scan: bool = True) -> tuple[ImageListDataset, dict]:
    """Read the list file of ``data``, check every image, return (dataset, report).

    ``report`` has ``skipped`` [(path, reason)], ``hashes`` {path: file sha256},
    ``content_hashes`` {path: sha256 of the decoded pixels} and ``outside_root``
    [path]: the list entries that point outside ``image_root`` (allowed, warned about once).
    """
    ds, mode = data.dataset, data.mode
    if not ds["cls_label_path"]:
        raise ConfigError(f"config key 'DataLoader.{mode}.dataset.cls_label_path' is empty")
    if ds["name"] != "ImageListDataset":
        raise ConfigError(
            f"DataLoader.{mode}.dataset.name: unknown dataset '{ds['name']}'; available: ['ImageListDataset']"
        )
    samples = read_list_file(ds["cls_label_path"], ds["image_root"], require_class_num(data))
    report = {
        "skipped": [],
        "hashes": {},
        "content_hashes": {},
        "outside_root": outside_root(samples, ds["image_root"]),
    }
    if report["outside_root"]:
        shown = ", ".join(report["outside_root"][:5]) + (" ..." if len(report["outside_root"]) > 5 else "")
        log.warning(
            "%s: %d image(s) outside image_root %s: %s",
            ds["cls_label_path"],
            len(report["outside_root"]),
            ds["image_root"],
            shown,
        )
    if scan:
        samples, report["skipped"], report["hashes"], report["content_hashes"] = scan_images(
            samples, data.skip_bad_images, desc=f"checking {mode} images"
        )
    check_class_coverage(samples, data.class_num, mode, ds["cls_label_path"])
    dataset = ImageListDataset(samples, transforms_for(data), seed=data.seed)
    if use_prefix_cache(data.preprocess_cache, dataset.transforms, data.where()):
        dataset.prefix_cache = PrefixCache(data.cache_dir / "preprocess", dataset.transforms, report["hashes"])
    return dataset, report


def build_loader(
    data: DataSection, dataset: ImageListDataset, rank: int = 0, world_size: int = 1
) -> tuple[SafeDataLoader, EpochBatchSampler]:
    """A paddle DataLoader over ``dataset`` driven by an EpochBatchSampler (the one
    ``sampler.name`` names for Train; Eval and Test read every image once, in order)."""
    sampler_cfg = data.sampler
    train = data.mode == "Train"
    make = SAMPLERS.get(sampler_cfg["name"], where=data.where("sampler.name")) if train else EpochBatchSampler
    sampler = make(
        dataset.labels,
        sampler_cfg["batch_size"],
        shuffle=train and sampler_cfg["shuffle"],
        drop_last=train and sampler_cfg["drop_last"],
        seed=data.seed,
        rank=rank,
        world_size=world_size,
    )
    workers, shared = loader_settings(data, world_size)
    loader = SafeDataLoader(
        dataset,
        where=data.where(),
        batch_sampler=sampler,
        num_workers=workers,
        use_shared_memory=shared,
        worker_init_fn=partial(seed_worker, data.seed),
    )
    return loader, sampler


def loader_settings(data: DataSection, world_size: int = 1) -> tuple[int, bool]:
    """(num_workers, use_shared_memory) of ``data``'s loader, ``auto`` resolved for the device
    Paddle runs on (select_device has set it) and this process's cores (utils/loader_workers.py)."""
    loader_cfg = data.loader
    device = paddle.device.get_device()
    workers = resolve_workers(loader_cfg["num_workers"], device, usable_cores(), world_size)
    batch_bytes = 4 * data.sampler["batch_size"] * math.prod(data.image_shape)
    shared = resolve_shared_memory(loader_cfg["use_shared_memory"], workers, batch_bytes, shm_free_bytes())
    if data.mode == "Train" and "auto" in (loader_cfg["num_workers"], loader_cfg["use_shared_memory"]):
        log.info("DataLoader: %d worker(s), shared memory %s (on %s)", workers, "on" if shared else "off", device)
    return workers, shared
