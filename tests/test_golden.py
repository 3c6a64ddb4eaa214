"""Golden regression test: a small fixed training on real HyperKvasir images must give the
per-step losses and final metrics committed in tests/golden/.

A change that alters training numerics (preprocessing, sampler order, seeding, loss, optimizer)
fails here. If the change is intended, refresh the file deliberately and review the diff:

    python -m pytest tests/test_golden.py --update-golden
"""

import difflib
import json
from pathlib import Path

from conftest import tiny_config

GOLDEN = Path(__file__).parent / "golden" / "hyperkvasir_lenet5.json"
CLASSES = ("normal-cecum", "polyp")  # label 0, label 1
SPLITS = {"train": slice(0, 10), "val": slice(10, 13), "test": slice(13, 16)}  # of 16 per class
# Golden values are compared across machines, where BLAS kernels may round differently; on
# one machine a rerun is bit-identical (tests/test_repro_manifest.py checks that exactly).
ATOL = 1e-4


def write_lists(root, lists):
    """The first 16 files (sorted by name) of each class, split 10 / 3 / 3."""
    lists.mkdir(parents=True)
    (lists / "label_list.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(CLASSES)))
    for split, part in SPLITS.items():
        lines = [
            f"{c}/{f.name} {label}\n" for label, c in enumerate(CLASSES) for f in sorted((root / c).glob("*.jpg"))[part]
        ]
        (lists / f"{split}_list.txt").write_text("".join(lines))


def golden_run(shared_datasets, tmp_path):
    from paddle_dx.engine.trainer import Trainer

    root = shared_datasets / "hyperkvasir_lower_gi"
    write_lists(root, tmp_path / "lists")
    config = tiny_config(root, tmp_path / "lists", tmp_path / "out", **{"Global.num_threads": 1})
    result = Trainer(config).fit()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    images = {str(Path(p).relative_to(root)): h for p, h in sorted(manifest["image_sha256"].items())}
    return {
        "about": "tests/test_golden.py: LeNet5, 32 px, 2 epochs, batch 4, seed 7, 1 thread, on 16 "
        "normal-cecum + 16 polyp HyperKvasir images. Refresh: pytest tests/test_golden.py --update-golden",
        "images": images,
        "step_losses": [h["step_losses"] for h in result["history"]],
        "epochs": [
            {k: h[k] for k in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc")}
            for h in result["history"]
        ],
        "best_epoch": result["best_epoch"],
        "val": {k: result["val"][k] for k in ("accuracy", "auc", "loss", "confusion_matrix")},
        "test": {k: result["test"][k] for k in ("accuracy", "auc", "loss", "confusion_matrix")},
    }


def test_training_matches_golden_values(shared_datasets, tmp_path, update_golden, capsys):
    from paddle_dx.engine.verification import compare

    new = golden_run(shared_datasets, tmp_path)
    new_text = json.dumps(new, indent=1) + "\n"
    old_text = GOLDEN.read_text() if GOLDEN.is_file() else ""
    if update_golden:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(new_text)
        diff = "".join(
            difflib.unified_diff(
                old_text.splitlines(True), new_text.splitlines(True), str(GOLDEN), f"{GOLDEN} (this run)"
            )
        )
        with capsys.disabled():
            print(f"\nupdated {GOLDEN}:\n{diff or '(no change)'}")
        return
    assert old_text, f"{GOLDEN} is missing: create it with pytest tests/test_golden.py --update-golden"
    old = json.loads(old_text)
    assert new["images"] == old["images"], "the shared HyperKvasir images differ from the golden run's"
    rows = [r for r in compare(old, new, ATOL) if not r[0].startswith("images.")]
    bad = [f"{key}: golden {a} vs now {b} (|diff| {d:.3g})" for key, a, b, d, ok in rows if not ok]
    assert not bad, "training no longer reproduces the golden values:\n" + "\n".join(bad)
    assert len(new["step_losses"]) == 2 and all(len(e) == 5 for e in new["step_losses"])


def test_golden_comparison_catches_a_changed_loss(tmp_path):
    """The comparison used above does flag a drift larger than its tolerance."""
    from paddle_dx.engine.verification import compare

    old = {"step_losses": [[0.69, 0.70]], "val": {"accuracy": 0.5}}
    new = {"step_losses": [[0.69, 0.70 + 2 * ATOL]], "val": {"accuracy": 0.5}}
    assert [r[0] for r in compare(old, new, ATOL) if not r[4]] == ["step_losses[0]"]
    assert all(r[4] for r in compare(old, old, 0.0))
