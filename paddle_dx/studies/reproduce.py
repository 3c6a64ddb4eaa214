"""What tools/reproduce.py does: split the data as the paper did, run the paper's runs
(optionally after pretraining on a --source task), write the side-by-side report."""

import datetime
import logging
import re
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from paddle_dx.config.loader import read_yaml
from paddle_dx.studies.catalog import get_study
from paddle_dx.studies.comparable import data_reasons, find_source_md, run_setup
from paddle_dx.studies.pair_folds import cross_validated_pair
from paddle_dx.studies.pairs import compare_pair, pair_seeds, plan_pair
from paddle_dx.studies.paper_tables import size_points
from paddle_dx.studies.plan import QUICK, SOURCE_ROW, plan_run, plan_sizes, plan_source
from paddle_dx.studies.published_files import write_image_hashes, write_predictions
from paddle_dx.studies.report import write_report
from paddle_dx.studies.runner import run_source, run_target
from paddle_dx.studies.splits import split_source_data, split_study_data, target_images, train_subset

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
    parts += ["--seeds", str(options["seeds"])] if options.get("seeds") is not None else []
    parts += ["--pair-epochs", str(options["pair_epochs"])] if options.get("pair_epochs") else []
    parts += ["--folds", str(options["folds"])] if options.get("folds") is not None else []
    parts += ["--classes", ",".join(classes)] if classes else []
    parts += ["--per-class", str(per_class)] if per_class else []
    for item in overrides:
        parts += ["-o", item]
    return " ".join(shlex.quote(p) for p in parts)


def _source_rows(plans, split, root, seed, quick, source, overrides, per_class, epochs=None, near=None):
    """Source pretraining as rows of its own: one network per architecture of the ImageNet rows
    is pretrained on ``source`` (without any image the target holds, in train, val or test, by
    decoded content, near copies and MANIFEST.csv groups), then each ImageNet row is trained again
    from it as ``source-init_<row>``. Returns (row plans, pretraining runs, source split)."""
    transfer = [p for p in plans if read_yaml(p.config).get("Arch", {}).get("pretrained") is True]
    if not source or not transfer:
        return [], [], None
    source_split = split_source_data(source, target_images(split, near), seed, root / "splits_source", per_class)
    weights, failures, runs = {}, {}, []
    for plan in transfer:
        if plan.arch not in weights:
            source_plan = plan_source(plan, source_split, root / "runs", seed, quick, overrides, epochs)
            weights[plan.arch], config, seconds, failures[plan.arch] = run_source(source_plan)
            runs.append(SimpleNamespace(plan=source_plan, config=config, wall_seconds=seconds))
    rows = [
        plan_run(f"{SOURCE_ROW}{p.name}", p.config, split, root / "runs", seed, quick, weights[p.arch], overrides)
        for p in transfer
    ]
    for row in rows:
        if failures[row.arch]:
            row.source_failure = failures[row.arch]
            row.init = f"the random start of a source pretraining that diverged ({weights[row.arch]}), new head"
    return rows, runs, source_split


def pair_overrides(overrides: Sequence[str], epochs: int | None = None) -> list[str]:
    """The pair's overrides: every run's but a ``Stages=`` (the paper's staged schedule; the pair
    keeps its own config's recipe), then ``Global.epochs`` (--pair-epochs) when given."""
    kept = [o for o in overrides if not o.startswith("Stages=")]
    if len(kept) < len(overrides):
        log.info("the ImageNet-vs-scratch pair keeps its config's schedule: -o Stages=... is for the paper's runs")
    return kept + ([f"Global.epochs={int(epochs)}"] if epochs else [])


def _pair_results(study, split, root, seeds, quick, overrides, folds=0, grouping=(None, None)):
    """{arm: [RunResult per seed]} of the study's ImageNet-vs-scratch pair ({} without one); with
    ``folds``, {arm: [its pooled out-of-fold RunResult]} of a cross-validation with the first seed."""
    if not seeds or not study.pair:
        return {}
    if folds:
        return cross_validated_pair(study.pair_config_path(), split, root, seeds[0], folds, quick, overrides, grouping)
    plans = plan_pair(study.pair_config_path(), split, root / "runs", seeds, quick, overrides)
    return {arm: [run_target(p) for p in arm_plans] for arm, arm_plans in plans.items()}


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


PUBLISHED_TEXT = ("predictions.csv", "image_sha256.txt", "source_image_sha256.txt")


def publish(root: Path | str, dest: Path | str) -> Path:
    """Copy what people read and check (report.md, report.json, figures/*.png, the per-image
    predictions, the split lists and each listed image's sha256: small text files) to ``dest``,
    replacing an older copy; weights, run folders, images and figures showing the data's images
    stay behind (the published report says where they are)."""
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
    for name in PUBLISHED_TEXT:
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    for lists in ("splits", "splits_source"):
        for txt in sorted((root / lists).glob("*.txt")):
            (dest / lists).mkdir(exist_ok=True)
            shutil.copy2(txt, dest / lists / txt.name)
    return dest / "report.md"


def reproduce(
    study_name: str,
    data: Path | str,
    out: Path | str = "reports",
    quick: bool = False,
    source: Path | str | None = None,
    seed: int = 42,
    classes: Sequence[str] | None = None,
    overrides: Sequence[str] = (),
    n_resamples: int = 1000,
    per_class: int | None = None,
    sizes: Sequence[int] = (),
    source_epochs: int | None = None,
    ignore_groups: bool = False,
    publish_dir: Path | str | None = None,
    near_duplicates: int | None = None,
    seeds: int | None = None,
    pair_epochs: int | None = None,
    folds: int | None = None,
) -> Path:
    """Run a whole study; return the path of its report.md. ``per_class``: use at most that many
    images of each class (default with ``quick``: QUICK["per_class"]); ``sizes``: also train each
    run on that many training images (a curve of accuracy vs data size, as the lung-nodule paper);
    ``source_epochs``: epochs of the --source pretraining; ``ignore_groups``: split images, not
    patients (a one-patient sample); ``near_duplicates``: keep images whose pHashes differ in at
    most that many bits on one side (and out of the source task); ``publish_dir``: also copy the
    report, its figures and text files to ``publish_dir/<study>/`` (the committed results);
    ``seeds``: how many seeds train the ImageNet-vs-scratch pair (default: papers.yaml's, 0: none);
    ``pair_epochs``: the pair's epochs (default: its config's); ``folds``: compare the pair by
    k-fold cross-validation over the whole split instead of seeds on its test list (default:
    papers.yaml's ``folds``, 0: seeds)."""
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
    results = [run_target(plan) for plan in plans]
    source_plans, source_runs, source_split = _source_rows(
        plans, split, root, seed, quick, source, overrides, subset, source_epochs, near_duplicates
    )
    source_rows = [run_target(plan) for plan in source_plans]
    n_seeds = study.pair.get("seeds", 0) if seeds is None else seeds
    n_folds = study.pair.get("folds", 0) if folds is None else folds
    pair = _pair_results(
        study,
        split,
        root,
        pair_seeds(seed, n_seeds),
        quick,
        pair_overrides(overrides, pair_epochs),
        n_folds,
        (group_regex, near_duplicates),
    )
    data_why = data_reasons(study, data, folders, sum(sum(c.values()) for c in split.counts.values()))
    ctx = {
        "split": split,
        "source_split": source_split,
        "results": results,
        "sources": source_runs,
        "source_rows": source_rows,
        "pair_results": pair,
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
                "seeds": seeds,
                "pair_epochs": pair_epochs,
                "folds": folds,
            },
        ),
    }
    class_names = ctx["class_names"]
    if pair:
        ctx["pair"] = compare_pair(pair, class_names, study.positive, n_resamples, seed)
    every = results + source_rows + [r for arm in pair.values() for r in arm]
    write_predictions(root / "predictions.csv", every, split.image_root, class_names)
    write_image_hashes(root / "image_sha256.txt", split)
    if source_split:
        write_image_hashes(root / "source_image_sha256.txt", source_split)
    path = write_report(study, ctx, root)
    log.info("wrote %s", path)
    if publish_dir:
        log.info("published %s", publish(root, Path(publish_dir) / study.name))
    return path
