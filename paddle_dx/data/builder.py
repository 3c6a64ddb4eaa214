"""Datasets and loaders from the ``DataLoader`` section of a config."""

import logging
import math
from functools import partial

import paddle

from paddle_dx.data.classes import found_class_names, require_class_num
from paddle_dx.data.coverage import check_class_coverage
from paddle_dx.data.dataset import ImageListDataset, scan_images
from paddle_dx.data.list_file import outside_root, read_list_file
from paddle_dx.data.loader import SafeDataLoader
from paddle_dx.data.pipelines import transforms_for
from paddle_dx.data.preprocess_cache import PrefixCache, cache_root, use_prefix_cache
from paddle_dx.data.sampler import SAMPLERS, EpochBatchSampler
from paddle_dx.errors import ConfigError
from paddle_dx.utils.device import usable_cores
from paddle_dx.utils.loader_workers import resolve_shared_memory, resolve_workers, shm_free_bytes
from paddle_dx.utils.seed import seed_worker

log = logging.getLogger(__name__)


def class_names(config, mode="Train"):
    """Class names by label id: Global.class_names, else the label list, else '0', '1', ..."""
    class_num = require_class_num(config)
    names = found_class_names(config, mode) or [str(i) for i in range(class_num)]
    if len(names) != class_num:
        raise ConfigError(f"Arch.class_num is {class_num} but {len(names)} class names were found ({names})")
    return names


def build_dataset(config, mode, scan=True):
    """Read the list file of ``DataLoader.<mode>``, check every image, return (dataset, report).

    ``report`` has ``skipped`` [(path, reason)], ``hashes`` {path: file sha256},
    ``content_hashes`` {path: sha256 of the decoded pixels} and ``outside_root``
    [path]: the list entries that point outside ``image_root`` (allowed, warned about once).
    """
    ds = config["DataLoader"][mode]["dataset"]
    if not ds["cls_label_path"]:
        raise ConfigError(f"config key 'DataLoader.{mode}.dataset.cls_label_path' is empty")
    if ds["name"] != "ImageListDataset":
        raise ConfigError(
            f"DataLoader.{mode}.dataset.name: unknown dataset '{ds['name']}'; available: ['ImageListDataset']"
        )
    samples = read_list_file(ds["cls_label_path"], ds["image_root"], require_class_num(config))
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
            samples, config["Global"]["skip_bad_images"], desc=f"checking {mode} images"
        )
    check_class_coverage(samples, config["Arch"]["class_num"], mode, ds["cls_label_path"])
    dataset = ImageListDataset(samples, transforms_for(config, mode), seed=config["Global"]["seed"])
    if use_prefix_cache(config["Global"]["preprocess_cache"], dataset.transforms, f"DataLoader.{mode}"):
        dataset.prefix_cache = PrefixCache(cache_root(config) / "preprocess", dataset.transforms, report["hashes"])
    return dataset, report


def build_loader(config, mode, dataset, rank=0, world_size=1):
    """A paddle DataLoader over ``dataset`` driven by an EpochBatchSampler (the one
    ``sampler.name`` names for Train; Eval and Test read every image once, in order)."""
    section = config["DataLoader"][mode]
    sampler_cfg = section["sampler"]
    train = mode == "Train"
    make = SAMPLERS.get(sampler_cfg["name"], where=f"DataLoader.{mode}.sampler.name") if train else EpochBatchSampler
    sampler = make(
        dataset.labels,
        sampler_cfg["batch_size"],
        shuffle=train and sampler_cfg["shuffle"],
        drop_last=train and sampler_cfg["drop_last"],
        seed=config["Global"]["seed"],
        rank=rank,
        world_size=world_size,
    )
    workers, shared = loader_settings(config, mode, world_size)
    loader = SafeDataLoader(
        dataset,
        where=f"DataLoader.{mode}",
        batch_sampler=sampler,
        num_workers=workers,
        use_shared_memory=shared,
        worker_init_fn=partial(seed_worker, config["Global"]["seed"]),
    )
    return loader, sampler


def loader_settings(config, mode, world_size=1):
    """(num_workers, use_shared_memory) of ``DataLoader.<mode>``, ``auto`` resolved for the device
    Paddle runs on (select_device has set it) and this process's cores (utils/loader_workers.py)."""
    loader_cfg = config["DataLoader"][mode]["loader"]
    device = paddle.device.get_device()
    workers = resolve_workers(loader_cfg["num_workers"], device, usable_cores(), world_size)
    batch_bytes = 4 * config["DataLoader"][mode]["sampler"]["batch_size"] * math.prod(config["Global"]["image_shape"])
    shared = resolve_shared_memory(loader_cfg["use_shared_memory"], workers, batch_bytes, shm_free_bytes())
    if mode == "Train" and "auto" in (loader_cfg["num_workers"], loader_cfg["use_shared_memory"]):
        log.info("DataLoader: %d worker(s), shared memory %s (on %s)", workers, "on" if shared else "off", device)
    return workers, shared
