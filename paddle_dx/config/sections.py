"""Typed views of a validated config, built once where the config is read, so each builder below
receives the section it needs rather than the whole config.

A data list needs more than its ``DataLoader.<mode>`` section (the image shape, the seed, the
class count...): ``DataSection`` gathers exactly that, so the data layer never climbs back up
into Global or Arch. The config dict itself stays the run's record (config.yaml, checkpoints,
the config hash).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any


def cache_root(g: dict) -> Path:
    """``Global.cache_dir``, default ``output_dir/cache`` (preprocess/ and features/ live there)."""
    return Path(g["cache_dir"] or Path(g["output_dir"]) / "cache")


def label_list_path(dataset: dict) -> str | None:
    """A list's ``dataset.label_list``, else label_list.txt beside its list file (or None)."""
    if dataset["label_list"]:
        return dataset["label_list"]
    return str(Path(dataset["cls_label_path"]).parent / "label_list.txt") if dataset["cls_label_path"] else None


@dataclass(frozen=True)
class DataSection:
    """One list of a run (``DataLoader.<mode>``) with the Global and Arch values its dataset,
    transforms, sampler and loader are built from."""

    mode: str  # Train, Eval or Test
    dataset: dict[str, Any]  # DataLoader.<mode>.dataset: cls_label_path, image_root, label_list, transform_ops
    sampler: dict[str, Any]  # DataLoader.<mode>.sampler
    loader: dict[str, Any]  # DataLoader.<mode>.loader
    image_shape: list[int]  # Global.image_shape: [3, H, W]
    seed: int  # Global.seed
    class_num: int | None  # Arch.class_num (None until resolved from the class names)
    class_names: list[str] | None  # Global.class_names (None: the label list's)
    skip_bad_images: bool  # Global.skip_bad_images
    preprocess_cache: str | bool  # Global.preprocess_cache
    cache_dir: Path  # Global.cache_dir, default output_dir/cache
    class_list: str | None  # the Train list's label list, where a null Arch.class_num is resolved from

    @classmethod
    def of(cls, config: dict, mode: str) -> "DataSection":
        """The section of ``DataLoader.<mode>`` in a validated config."""
        g, section = config["Global"], config["DataLoader"][mode]
        return cls(
            mode=mode,
            dataset=section["dataset"],
            sampler=section["sampler"],
            loader=section["loader"],
            image_shape=list(g["image_shape"]),
            seed=g["seed"],
            class_num=config["Arch"]["class_num"],
            class_names=g["class_names"],
            skip_bad_images=g["skip_bad_images"],
            preprocess_cache=g["preprocess_cache"],
            cache_dir=cache_root(g),
            class_list=label_list_path(config["DataLoader"]["Train"]["dataset"]),
        )

    def where(self, key: str = "") -> str:
        """The config key of this section, or of ``key`` inside it: ``DataLoader.Eval.sampler``."""
        return f"DataLoader.{self.mode}" + (f".{key}" if key else "")


def data_sections(config: dict) -> dict[str, DataSection]:
    """``{mode: DataSection}`` of every list of a validated config."""
    return {mode: DataSection.of(config, mode) for mode in config["DataLoader"]}
