"""Compare like with like: a report prints a difference to a paper's number only where this run's
data, network, input size, initialisation and split all match what the paper measured on; any
other cell reads ``not comparable: <reasons>``. The data's provenance comes from its SOURCE.md."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paddle_dx.studies.catalog import NOT_REPORTED, Study

if TYPE_CHECKING:
    from paddle_dx.studies.plan import RunPlan

INIT_LABELS = {
    "imagenet": "ImageNet",
    "random": "random init",
    "source": "source-task pretraining",
    "other": "other weights",
}
# RunPlan.init's opening words -> kind (plan.py writes them)
INIT_PREFIXES = (
    ("ImageNet", "imagenet"),
    ("source-pretrained", "source"),
    ("random", "random"),
    ("**random**", "random"),
    ("weights from", "other"),
)


def init_kind(init_text: str) -> str:
    return next((kind for prefix, kind in INIT_PREFIXES if init_text.startswith(prefix)), "other")


def find_source_md(data_dir: Path | str) -> Path | None:
    """The SOURCE.md describing ``data_dir`` (in it or a parent folder), or None."""
    for folder in [Path(data_dir).resolve()] + list(Path(data_dir).resolve().parents):
        if (folder / "SOURCE.md").is_file():
            return folder / "SOURCE.md"
    return None


def provenance(source_md: Path | str) -> tuple[str, str]:
    """(title, origin) of a dataset's SOURCE.md: its heading and its 'Original dataset' line."""
    lines = Path(source_md).read_text(encoding="utf-8").splitlines()
    title = next((l.lstrip("# ").strip() for l in lines if l.startswith("# ")), Path(source_md).parent.name)
    origin = ""
    for i, line in enumerate(lines):
        if line.strip().startswith("- Original dataset:"):
            more = [
                l.strip()
                for l in lines[i + 1 : i + 4]
                if l.startswith("  ") and l.strip() and not l.strip().startswith("`")
            ]
            origin = " ".join([line.strip()[2:]] + more)
            break
    return title, origin


def data_reasons(study: Study, data_dir: Path | str, folders: Iterable[str], n_images: int) -> list[str]:
    """Why the data under ``data_dir`` is not the paper's ([] when it may be): a SOURCE.md marks
    it as a stand-in, its class folders are not the paper's class names, or it holds fewer
    images than the paper used (a subset, or a few scans instead of the paper's cohort)."""
    out = []
    if find_source_md(data_dir) is not None or list(folders) != list(study.classes[0]):
        out.append(study.stand_in_reason)
    wanted = study.paper_setup.get("images")
    if wanted and n_images < 0.9 * wanted:
        out.append(f"{n_images} images, the paper used {wanted}")
    return out


def run_setup(plan: RunPlan, config: dict, data_why: Iterable[str]) -> dict:
    """What a run really trained on, in the terms of papers.yaml's ``paper_setup``."""
    shape = config["Global"]["image_shape"]
    return {
        "data_reasons": list(data_why),
        "arch": plan.arch,
        "init": init_kind(plan.init),
        "input_size": shape[1] if shape[1] == shape[2] else f"{shape[1]} x {shape[2]}",
    }


def reasons(study: Study, run: str, ours: dict, our_split: str, paper_split: str) -> list[str]:
    """Why this run's number cannot be set against the paper's ([] when it can)."""
    paper = study.paper_setup
    paper_run = (paper.get("runs") or {}).get(run, {})
    out = list(ours["data_reasons"])
    arch = paper_run.get("arch")
    if arch is None:
        out.append("the paper does not state its network exactly")
    elif arch != ours["arch"]:
        out.append(f"{ours['arch']}, not {arch}")
    size = paper.get("input_size")
    if size is None:
        out.append("the paper does not state its input size")
    elif size != ours["input_size"]:
        out.append(f"{ours['input_size']} px input, not {size}")
    init = paper_run.get("init")
    if init is None:
        out.append("the paper does not state its initialisation")
    elif init != ours["init"]:
        out.append(f"{INIT_LABELS[ours['init']]}, not {INIT_LABELS[init]}")
    if our_split != paper_split:
        out.append(f"{our_split} split, paper reports {paper_split}")
    return out


def difference_cell(ours_pct: float | None, paper_pct: float | None, why: Sequence[str]) -> str:
    """This run minus the paper in points, or 'not comparable: ...' (n/r: no paper number)."""
    if paper_pct is None:
        return NOT_REPORTED
    if why:
        return "not comparable: " + "; ".join(why)
    if ours_pct is None:
        return "n/a"
    return f"{ours_pct - paper_pct:+.2f}"
