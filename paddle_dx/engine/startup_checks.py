"""What a training checks before it creates anything, so a run that cannot start stops within
seconds, says what to do, and leaves no empty run folder behind.

* every list file the config names (Train, Eval and Test) exists and parses, with the split
  command that writes them when they are missing (the Test list used to be read only after
  the last epoch);
* a start-up that fails removes the run folders it created while they are still empty.
"""

import contextlib
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

from paddle_dx.config.sections import DataSection
from paddle_dx.data.classes import found_class_names, require_class_num
from paddle_dx.data.list_file import read_list_file
from paddle_dx.data.split import SPLIT_NAMES
from paddle_dx.errors import DataError

SPLIT_LISTS = {f"{name}_list.txt" for name in SPLIT_NAMES}


def check_list_files(data: dict[str, DataSection]) -> None:
    """Refuse missing list files (all named in one line, with how to make them); parse the Test list.

    ``data``: the run's lists by mode (config/sections.py)."""
    missing = [
        section
        for section in data.values()
        if section.dataset["cls_label_path"] and not Path(section.dataset["cls_label_path"]).is_file()
    ]
    if missing:
        raise DataError(missing_lists_message(missing, data["Train"]))
    test = data["Test"].dataset
    if test["cls_label_path"]:
        read_list_file(test["cls_label_path"], test["image_root"], require_class_num(data["Test"]))


def _class_folders(root):
    root = Path(root)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) if root.is_dir() else []


def missing_lists_message(missing: list[DataSection], train: DataSection) -> str:
    """``<key>: <path> not found (also ...). Put the images in ... and run: python tools/split_dataset.py ...``"""
    ds = missing[0].dataset
    head = f"{missing[0].where('dataset.cls_label_path')}: {ds['cls_label_path']} not found"
    others = [f"{m.where()}: {m.dataset['cls_label_path']}" for m in missing[1:]]
    if others:
        head += f" (nor {', '.join(others)})"
    root, lists = ds["image_root"] or ".", str(Path(ds["cls_label_path"]).parent)
    if Path(ds["cls_label_path"]).name not in SPLIT_LISTS:
        return (
            f"{head}. Write it (`relative/path label` per line, paths relative to {root}) or point the key "
            f"at an existing list"
        )
    classes = found_class_names(train) or _class_folders(root)
    where = f"{root}/<class>/ (classes: {', '.join(classes)})" if classes else f"{root}/<class>/ (one folder per class)"
    command = ["python", "tools/split_dataset.py", "--image-root", root, "--out", lists]
    if classes:
        command += ["--classes", ",".join(classes)]
    return f"{head}. Put the images in {where} and run: {shlex.join(command)}"


@contextlib.contextmanager
def removed_if_empty_on_error(directory: Path | str) -> Iterator[None]:
    """Run the block; if it raises, remove ``directory`` and the parents it created, if still empty."""
    directory = Path(directory).absolute()
    created = [p for p in [directory, *directory.parents] if not p.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                for sub, _, _ in sorted(os.walk(path), key=lambda w: -len(w[0])):
                    os.rmdir(sub)  # fails (and stops) at the first folder that holds a file
        raise
