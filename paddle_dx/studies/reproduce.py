"""What tools/reproduce.py does: split the data as the paper did, run the paper's runs
(optionally after pretraining on a --source task), write the side-by-side report."""

import datetime
import logging
import re
import shlex
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

from paddle_dx.config.loader import read_yaml
from paddle_dx.studies.catalog import get_study
from paddle_dx.studies.comparable import data_reasons, find_source_md, run_setup
from paddle_dx.studies.paper_tables import size_points
from paddle_dx.studies.plan import QUICK, plan_run, plan_sizes, plan_source
from paddle_dx.studies.report import write_report
from paddle_dx.studies.runner import run_source, run_target
from paddle_dx.studies.splits import held_out_images, split_source_data, split_study_data, train_subset

log = logging.getLogger(__name__)


def _command(study, data, out, quick, source, seed, classes, overrides, per_class, options):
    parts = [
        "python",
        "tools/reproduce.py",
        "--study",
        study,
        "--data",
        str(data),
        "--out",
        str(out),
        "--seed",
        str(seed),
    ]
    parts += ["--quick"] if quick else []
    parts += ["--source", str(source)] if source else []
    parts += ["--source-epochs", str(options["source_epochs"])] if options.get("source_epochs") else []
    parts += ["--ignore-groups"] if options.get("ignore_groups") else []
    parts += (
        ["--near-duplicates", str(options["near_duplicates"])] if options.get("near_duplicates") is not None else []
    )
    parts += ["--sizes"] + [str(n) for n in options["sizes"]] if options.get("sizes") else []
    parts += ["--publish", str(options["publish"])] if options.get("publish") else []
    parts += ["--classes", ",".join(classes)] if classes else []
    parts += ["--per-class", str(per_class)] if per_class else []
    for item in overrides:
        parts += ["-o", item]
    return " ".join(shlex.quote(p) for p in parts)


def _source_weights(plans, split, root, seed, quick, source, overrides, per_class, epochs=None, near=None):
    """Pretrain one network per architecture used by a transfer row; {arch: weights path}."""
    transfer = [p for p in plans if read_yaml(p.config).get("Arch", {}).get("pretrained") is True]
    if not source or not transfer:
        return {}, [], None
    source_split = split_source_data(source, held_out_images(split, near), seed, root / "splits_source", per_class)
    weights, runs = {}, []
    for plan in transfer:
        if plan.arch not in weights:
            source_plan = plan_source(plan, source_split, root / "runs", seed, quick, overrides, epochs)
            weights[plan.arch], config, seconds = run_source(source_plan)
            runs.append(SimpleNamespace(plan=source_plan, config=config, wall_seconds=seconds))
    return weights, runs, source_split


def _size_runs(plans, split, sizes, seed):
    """The accuracy-vs-training-set-size runs: {model: [(n, test accuracy)]} (empty without sizes)."""
    if not sizes:
        return {}
    lists = {n: train_subset(split, n, seed) for n in sizes}
    results = {
        (plan.name, int(run.plan.name.rsplit("@", 1)[1])): run
        for plan in plans
        for run in map(run_target, plan_sizes(plan, sizes, lists))
    }
    return size_points(results)


# figures made of the data's own images (test-image grids, the brain paper's Figure 1): the data
# stays where its licence put it, so these are never published, only linked from the local report
SHOWS_DATA = re.compile(r"(_test_grid|_random_test_images)\.png$")
IMAGE_LINK = re.compile(r"!\[([^\]]*)\]\((figures/[^)\s]+)\)")


def publish(root, dest):
    """Copy what people read (report.md, report.json, figures/*.png) to ``dest``, replacing an
    older copy; weights, lists, run folders and figures showing the data's images stay behind
    (the published report says where they are)."""
    root, dest = Path(root), Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "figures").mkdir(parents=True)
    shutil.copy2(root / "report.json", dest / "report.json")

    def link(match):
        if not SHOWS_DATA.search(match.group(2)):
            return match.group(0)
        return (
            f"*({match.group(1)}: not committed, it shows the data's own images; "
            f"`{root / match.group(2)}` after a rerun)*"
        )

    report = (root / "report.md").read_text(encoding="utf-8")
    (dest / "report.md").write_text(IMAGE_LINK.sub(link, report), encoding="utf-8")
    for png in sorted((root / "figures").glob("*.png")):
        if not SHOWS_DATA.search(png.name):
            shutil.copy2(png, dest / "figures" / png.name)
    return dest / "report.md"


def reproduce(
    study_name,
    data,
    out="reports",
    quick=False,
    source=None,
    seed=42,
    classes=None,
    overrides=(),
    n_resamples=1000,
    per_class=None,
    sizes=(),
    source_epochs=None,
    ignore_groups=False,
    publish_dir=None,
    near_duplicates=None,
):
    """Run a whole study; return the path of its report.md. ``per_class``: use at most that many
    images of each class (default with ``quick``: QUICK["per_class"]); ``sizes``: also train each
    run on that many training images (a curve of accuracy vs data size, as the lung-nodule paper);
    ``source_epochs``: epochs of the --source pretraining; ``ignore_groups``: split images, not
    patients (a one-patient sample); ``near_duplicates``: keep images whose pHashes differ in at
    most that many bits on one side (and out of the source task); ``publish_dir``: also copy the report and its figures to
    ``publish_dir/<study>/`` (the committed results)."""
    started, clock = datetime.datetime.now(datetime.UTC), time.monotonic()
    study = get_study(study_name)
    root = Path(out) / study.name
    root.mkdir(parents=True, exist_ok=True)
    folders = list(classes) if classes else study.class_folders(data)
    subset = per_class or (QUICK["per_class"] if quick else None)
    group_regex = None if ignore_groups else study.group_regex
    split = split_study_data(data, folders, study.ratios, seed, root / "splits", subset, group_regex, near_duplicates)
    runs_dir = root / "runs"
    plans = [
        plan_run(name, study.config_path(name), split, runs_dir, seed, quick, extra=overrides) for name in study.runs
    ]
    weights, source_runs, source_split = _source_weights(
        plans, split, root, seed, quick, source, overrides, subset, source_epochs, near_duplicates
    )
    if weights:
        plans = [
            plan_run(name, study.config_path(name), split, runs_dir, seed, quick, weights.get(plan.arch), overrides)
            for name, plan in zip(study.runs, plans)
        ]
    results = [run_target(plan) for plan in plans]
    data_why = data_reasons(study, data, folders, sum(sum(c.values()) for c in split.counts.values()))
    ctx = {
        "split": split,
        "source_split": source_split,
        "results": results,
        "sources": source_runs,
        "data_reasons": data_why,
        "source_md": find_source_md(data),
        "setups": {r.plan.name: run_setup(r.plan, r.config, data_why) for r in results},
        "sizes": _size_runs(plans, split, sizes, seed),
        "quick": quick,
        "seed": seed,
        "n_resamples": n_resamples,
        "per_class": subset,
        "overrides": list(overrides),
        "class_names": results[0].metrics["test"]["class_names"],
        "groups_ignored": study.group_regex if ignore_groups else None,
        "started": started,
        "wall_seconds": time.monotonic() - clock,
        "command": _command(
            study.name,
            data,
            out,
            quick,
            source,
            seed,
            classes,
            overrides,
            per_class,
            {
                "source_epochs": source_epochs,
                "ignore_groups": ignore_groups,
                "sizes": sizes,
                "near_duplicates": near_duplicates,
                "publish": publish_dir,
            },
        ),
    }
    path = write_report(study, ctx, root)
    log.info("wrote %s", path)
    if publish_dir:
        log.info("published %s", publish(root, Path(publish_dir) / study.name))
    return path
