"""The table of committed study results (``results/<study>/report.json``) that README.md,
docs/studies.md and results/README.md quote: read from the reports, never typed by hand."""

import json
from pathlib import Path

from paddle_dx.studies.catalog import REPO_ROOT, STUDIES, get_study
from paddle_dx.studies.markdown import table

RESULTS = REPO_ROOT / "results"
INIT = {"source": "source-pretrained", "random": "random", "imagenet": "ImageNet"}


def _pct(value):
    return "n/a" if value is None else f"{100 * value:.1f}"


def _ci(pair):
    return "" if not pair or None in pair else f" [{100 * pair[0]:.1f}, {100 * pair[1]:.1f}]"


def _minutes(seconds):
    return f"{seconds / 60:.0f} min"


def _status(run):
    """'ok', 'COLLAPSED: <cause>' (studies/collapse.py), or 'not checked' for a report made before the check."""
    if "collapsed" not in run:
        return "not checked (older report)"
    return "ok" if run["collapsed"] is None else f"COLLAPSED: {run['collapsed']}"


def _paper_accuracy(study, run):
    """The paper's accuracy for ``run`` (test split first), as '92.32 (validation)', or 'n/r'."""
    for split in ("test", "validation"):
        value = study.paper_value(run, "accuracy", split)
        if value is not None:
            return f"{value:.2f} ({split})"
    return "n/r"


def load_reports(results_dir=RESULTS):
    """{study name: report.json} for each study with a committed report, in papers.yaml order."""
    out = {}
    for name in STUDIES.names():
        path = Path(results_dir) / name / "report.json"
        if path.is_file():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def results_table(link_prefix="results/", results_dir=RESULTS):
    """One row per run of every committed report; links are ``link_prefix + <study>/report.md``."""
    rows = []
    for name, report in load_reports(results_dir).items():
        study = get_study(name)
        for run, r in report["runs"].items():
            setup = report["setups"][run]
            test, ci = r["test"], r.get("ci95", {})
            rows.append(
                [
                    f"[{name}]({link_prefix}{name}/report.md)",
                    run,
                    f"{setup['arch']}, {setup['input_size']} px",
                    INIT.get(setup["init"], setup["init"]),
                    _pct(test["accuracy"]) + _ci(ci.get("accuracy")),
                    _pct(test.get("auc")) + _ci(ci.get("auc")),
                    _paper_accuracy(study, run),
                    _minutes(report["wall_seconds"]["study"]),
                    _status(r),
                ]
            )
    if not rows:
        return "No study results are committed yet (`make reproduce` writes them to `results/`)."
    head = [
        "study",
        "run",
        "network, input",
        "init",
        "test accuracy % [95 % CI]",
        "test AUC % [95 % CI]",
        "paper accuracy % (split)",
        "study wall time",
        "status",
    ]
    return table(head, rows)
