"""The studies of papers.yaml: settings, runs (table rows -> configs), the papers' own setup and
every number they publish, each with the line of the paper it stands on.

``STUDIES`` (name -> Study) is filled from papers.yaml when this module loads; it is the one
list of study names (``tools/reproduce.py --study`` takes its choices from it)."""

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from paddle_dx.config.shipped import configs_dir
from paddle_dx.errors import DataError
from paddle_dx.utils.registry import Registry

PAPERS = Path(__file__).with_name("papers.yaml")
REPO_ROOT = Path(__file__).resolve().parents[2]
PAPERS_DIR = REPO_ROOT.parent / "shared" / "papers"
NOT_REPORTED = "n/r"
SPLITS = ("validation", "test", "training", "training+validation", "all")


@dataclass(frozen=True)
class Number:
    """One number a paper prints: ``value`` as printed, in ``unit``, measured on ``split``, on
    1-based ``line`` of the paper file (``text``: how it is printed there when not plain)."""

    name: str
    value: float
    unit: str
    split: str
    line: int
    text: str | None = None
    run: str | None = None
    metric: str | None = None
    row: str | None = None  # the table row it was read from (papers.yaml ``rows``)

    @property
    def percent(self) -> float | None:
        """The value in %, for a rate ("%" or "fraction"); None for counts and settings."""
        return {"%": self.value, "fraction": 100 * self.value}.get(self.unit)


def expand_row(row: dict) -> list[Number]:
    """The Numbers of one ``rows`` entry: column names are the product of ``columns``."""
    keys = ["/".join(k) for k in itertools.product(*row["columns"])]
    if len(keys) != len(row["values"]):
        raise DataError(f"{PAPERS}: row '{row['name']}' has {len(row['values'])} values for {len(keys)} columns")
    return [
        Number(f"{row['name']}/{k}", v, row["unit"], row["split"], row["line"], row=row["name"])
        for k, v in zip(keys, row["values"])
    ]


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    setting: str
    ratios: tuple[float, float, float]
    classes: tuple[tuple[str, ...], ...]
    stand_in: str
    runs: dict[str, str]
    paper: str = ""
    paper_setup: dict = field(default_factory=dict)
    numbers: list[Number] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    conflicts: list[dict] = field(default_factory=list)
    our_choices: list[dict] = field(default_factory=list)
    pair: dict = field(default_factory=dict)  # papers.yaml imagenet_pair: {config, seeds, folds}
    schedule: dict = field(default_factory=dict)
    stand_in_reason: str = "stand-in data"
    positive: int | None = None
    group_regex: str | None = None

    def config_path(self, run: str) -> Path:
        """The run's shipped config (papers.yaml names it as ``configs/NAME.yaml`` of the repository)."""
        return configs_dir() / Path(self.runs[run]).name

    def pair_config_path(self) -> Path:
        """The shipped config of the ImageNet-vs-scratch pair (papers.yaml ``imagenet_pair``)."""
        return configs_dir() / Path(self.pair["config"]).name

    def paper_numbers(
        self, run: str | None = None, metric: str | None = None, split: str | None = None
    ) -> list[Number]:
        """The published Numbers linked to ``run`` / ``metric`` / ``split`` (None: any)."""
        return [
            n
            for n in self.numbers
            if (run is None or n.run == run)
            and (metric is None or n.metric == metric)
            and (split is None or n.split == split)
        ]

    def paper_value(self, run: str, metric: str, split: str = "test") -> float | None:
        """The published value in % of ``run``'s ``metric`` on ``split``, or None when not reported."""
        found = self.paper_numbers(run, metric, split)
        return found[0].percent if found else None

    def table_value(self, name: str) -> float | None:
        """The number of a table cell, e.g. 'Table 1/VGG19/precision/pre-training/GC' (None if absent)."""
        return next((n.value for n in self.numbers if n.name == name), None)

    def paper_path(self, papers_dir: Path | str = PAPERS_DIR) -> Path:
        return Path(papers_dir) / self.paper

    def class_folders(self, data_dir: Path | str) -> list[str]:
        """The first candidate layout whose class folders all exist under ``data_dir``."""
        data_dir = Path(data_dir)
        for layout in self.classes:
            if all((data_dir / c).is_dir() for c in layout):
                return list(layout)
        found = sorted(p.name for p in data_dir.iterdir() if p.is_dir()) if data_dir.is_dir() else []
        raise DataError(
            f"--data {data_dir}: study '{self.name}' needs class folders "
            f"{' or '.join(str(list(c)) for c in self.classes)} (or --classes); found {found}"
        )


def _build_study(name, s):
    rows = list(s.get("rows") or [])
    numbers = [Number(**n) for n in s.get("numbers") or []] + [n for row in rows for n in expand_row(row)]
    for n in numbers:
        if n.split not in SPLITS:
            raise DataError(f"{PAPERS}: {name} number '{n.name}' has split '{n.split}', not one of {SPLITS}")
    return Study(
        name=name,
        title=s["title"],
        setting=s["setting"],
        ratios=tuple(s["ratios"]),
        classes=tuple(tuple(c) for c in s["classes"]),
        stand_in=s["stand_in"],
        runs=dict(s["runs"]),
        paper=s.get("paper", ""),
        paper_setup=dict(s.get("paper_setup") or {}),
        numbers=numbers,
        rows=rows,
        conflicts=list(s.get("conflicts") or []),
        our_choices=list(s.get("our_choices") or []),
        pair=dict(s.get("imagenet_pair") or {}),
        schedule=dict(s.get("schedule") or {}),
        stand_in_reason=s.get("stand_in_reason", "stand-in data"),
        positive=s.get("positive"),
        group_regex=s.get("group_regex"),
    )


def load_studies(path: Path | str = PAPERS) -> dict[str, Study]:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {name: _build_study(name, s) for name, s in raw.items()}


STUDIES = Registry("study")
for _name, _study in load_studies().items():
    STUDIES.register(_study, name=_name)


def get_study(name: str) -> Study:
    return STUDIES.get(name, where="--study")
