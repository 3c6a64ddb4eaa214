"""The studies of papers.yaml: settings, runs (table rows -> configs) and published numbers.

``STUDIES`` (name -> Study) is filled from papers.yaml when this module loads; it is the one
list of study names (``tools/reproduce.py --study`` takes its choices from it)."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import yaml

from paddle_dx.config.shipped import configs_dir
from paddle_dx.errors import DataError
from paddle_dx.utils.registry import Registry

PAPERS = Path(__file__).with_name("papers.yaml")
REPO_ROOT = Path(__file__).resolve().parents[2]
NOT_REPORTED = "n/r"


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    setting: str
    ratios: Tuple[float, float, float]
    classes: Tuple[Tuple[str, ...], ...]
    stand_in: str
    runs: Dict[str, str]
    published: Dict[str, Dict[str, float]]
    positive: Optional[int] = None
    group_regex: Optional[str] = None

    def config_path(self, run):
        """The run's shipped config (papers.yaml names it as ``configs/NAME.yaml`` of the repository)."""
        return configs_dir() / Path(self.runs[run]).name

    def paper_value(self, run, metric):
        """The published value in %, or None when the paper does not report it."""
        return (self.published.get(run) or {}).get(metric)

    def class_folders(self, data_dir):
        """The first candidate layout whose class folders all exist under ``data_dir``."""
        data_dir = Path(data_dir)
        for layout in self.classes:
            if all((data_dir / c).is_dir() for c in layout):
                return list(layout)
        found = sorted(p.name for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []
        raise DataError(f"--data {data_dir}: study '{self.name}' needs class folders "
                        f"{' or '.join(str(list(c)) for c in self.classes)} (or --classes); found {found}")


def load_studies(path=PAPERS):
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {name: Study(name=name, title=s["title"], setting=s["setting"], ratios=tuple(s["ratios"]),
                        classes=tuple(tuple(c) for c in s["classes"]), stand_in=s["stand_in"],
                        runs=dict(s["runs"]), published=dict(s.get("published") or {}),
                        positive=s.get("positive"), group_regex=s.get("group_regex"))
            for name, s in raw.items()}


STUDIES = Registry("study")
for _name, _study in load_studies().items():
    STUDIES.register(_study, name=_name)


def get_study(name):
    return STUDIES.get(name, where="--study")
