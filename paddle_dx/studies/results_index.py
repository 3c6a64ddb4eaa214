"""The table of committed study results (``results/<study>/report.json``) that README.md,
docs/studies.md and results/README.md quote: read from the reports, never typed by hand."""

import json
from pathlib import Path

from paddle_dx.config.loader import read_yaml
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


def load_reports(results_dir: Path | str = RESULTS) -> dict[str, dict]:
    """{study name: report.json} for each study with a committed report, in papers.yaml order."""
    out = {}
    for name in STUDIES.names():
        path = Path(results_dir) / name / "report.json"
        if path.is_file():
            out[name] = json.loads(path.read_text(encoding="utf-8"))
    return out


def results_table(link_prefix: str = "results/", results_dir: Path | str = RESULTS) -> str:
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


VERDICTS = (
    ("Transfer beats scratch", "**transfer better**"),
    ("Scratch beats transfer", "**scratch better**"),
    ("No evidence", "no evidence either way"),
    ("No transfer comparison", "no comparison: no ImageNet weights"),
    ("No comparison", "no comparison: every seed collapsed"),
)


def _mean_sd(summary):
    if summary.get("accuracy") is None:
        return "n/a"
    sd = summary.get("accuracy_sd")
    return f"{100 * summary['accuracy']:.1f}" + ("" if sd is None else f" ± {100 * sd:.1f}") + f" (n={summary['n']})"


def _pair_network(study, pair):
    """'EfficientNetLite0, 224 px': from the report, else from the pair's config (older reports)."""
    if pair.get("arch"):
        return f"{pair['arch']}, {pair['input_size']} px"
    raw = read_yaml(study.pair_config_path())
    return f"{raw['Arch']['name']}, {raw['Global']['image_shape'][-1]} px"


def _pair_row(name, link_prefix, report):
    study = get_study(name)
    link = f"[{name}]({link_prefix}{name}/report.md)"
    pair = report.get("imagenet_vs_scratch")
    if not pair:
        return [link, "-", "not run yet (older report)"] + ["-"] * 5 + [_minutes(report["wall_seconds"]["study"])]
    folds = pair.get("folds")
    design = (
        f"{folds['k']}-fold CV, {pair['n_images']} images out of fold"
        if folds
        else f"{len(pair['seeds'])} seeds, {pair['n_images']} test images"
    )
    vote = pair.get("vote")
    verdict = next((short for start, short in VERDICTS if start in pair["verdict"]), pair["verdict"])
    return [
        link,
        _pair_network(study, pair),
        design,
        _mean_sd(pair["summary"]["imagenet"]),
        _mean_sd(pair["summary"]["scratch"]),
        "-" if vote is None else f"{100 * vote['difference']:+.1f}{_ci(vote['ci'])}",
        "-" if vote is None else f"{vote['p_value']:.2g}",
        verdict,
        _minutes(report["wall_seconds"]["study"]),
    ]


def transfer_table(link_prefix: str = "results/", results_dir: Path | str = RESULTS) -> str:
    """One row per committed study: its ImageNet-vs-random-init pair (studies/pairs.py), accuracy
    mean ± sd per arm, the paired difference of the seeds' vote (or of the out-of-fold
    predictions) with its 95 % interval and exact McNemar p, and the verdict."""
    rows = [_pair_row(name, link_prefix, report) for name, report in load_reports(results_dir).items()]
    if not rows:
        return "No study results are committed yet (`make reproduce` writes them to `results/`)."
    head = [
        "study",
        "network, input",
        "comparison",
        "ImageNet init accuracy % (mean ± sd)",
        "random init accuracy % (mean ± sd)",
        "difference, points [95 % CI]",
        "McNemar p",
        "verdict",
        "study wall time",
    ]
    return table(head, rows)
