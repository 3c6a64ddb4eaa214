"""Data-parallel training through ``python -m paddle.distributed.launch`` (2 CPU processes, gloo).

One real 2-rank launch of tools/train.py feeds the tests below; the single-device comparisons
and resumes run in-process. The model is ResNet18 at 32 px, so BatchNorm is part of what is
checked: its running statistics drift apart between ranks (each normalises its own shard)
and must never be taken for trainable parameters. Two stages (backbone frozen, then not)
check that gradients stay averaged when the set of trainable parameters changes. The
BatchNorm statistics are first calibrated on the training images and the learning rate is
small, so evaluation is not saturated (probabilities of exactly 0 or 1 would hide which
weights were used).
"""

import json
import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, make_tiny_dataset, tiny_config

# 10 train images (5 per rank, batch 4: 2 steps per rank and epoch), 5 val and 5 test
# (evaluated in blocks of 3 and 2).
STAGES = "[{name: head, epochs: 1, freeze: backbone, lr: 0.0003}, {name: all, epochs: 1, freeze: none, lr: 0.0003}]"
SETTINGS = {"Arch.name": "ResNet18", "Global.epochs": 2, "Stages": STAGES, "Global.use_visualdl": True}


def _worker_logs(log_dir):
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(log_dir.glob("workerlog.*"))
    )


def _calibrated_weights(config, path):
    """Random ResNet18 weights whose BatchNorm statistics match the training images."""
    import paddle

    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import build_dataset
    from paddle_dx.models import build_model

    model = build_model(config["Arch"], config["Global"]["image_shape"])
    dataset, _ = build_dataset(DataSection.of(config, "Train"))
    images = paddle.to_tensor(np.stack([dataset[(0, i)][0] for i in range(len(dataset))]))
    model.train()
    with paddle.no_grad():
        for _ in range(30):
            model(images)
    paddle.save(model.state_dict(), str(path))
    return str(path)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """Run tools/train.py on 2 ranks; return (root, settings, [trace of rank 0, trace of rank 1])."""
    from paddle_dx.config import dump_config

    root = tmp_path_factory.mktemp("distributed")
    images, lists = make_tiny_dataset(root / "data", per_class=10)
    settings = dict(
        SETTINGS,
        **{
            "Global.pretrained_model": _calibrated_weights(
                tiny_config(images, lists, root / "out", **SETTINGS), root / "calibrated.pdparams"
            )
        },
    )
    dump_config(tiny_config(images, lists, root / "out", **settings), root / "config.yaml")
    env = dict(os.environ, PADDLE_DX_TRACE_DIR=str(root / "trace"))
    for key in ("PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ID"):
        env.pop(key, None)
    cmd = [
        sys.executable,
        "-m",
        "paddle.distributed.launch",
        "--nproc_per_node",
        "2",
        "--log_dir",
        str(root / "launch"),
        str(ROOT / "tools" / "train.py"),
        "-c",
        str(root / "config.yaml"),
    ]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + _worker_logs(root / "launch")
    traces = [json.loads((root / "trace" / f"rank{r}.json").read_text()) for r in (0, 1)]
    return root, settings, traces


def test_ranks_train_disjoint_shards_that_cover_each_epoch(launched):
    root, _, traces = launched
    n = len((root / "data" / "lists" / "train_list.txt").read_text().splitlines())
    for epoch in ("0", "1"):
        shards = [traces[r]["keys"][epoch] for r in (0, 1)]
        assert all(e == int(epoch) for shard in shards for e, _ in shard)
        indices = [{i for _, i in shard} for shard in shards]
        assert [len(s) for s in shards] == [n // 2, n // 2]
        assert not indices[0] & indices[1]
        assert indices[0] | indices[1] == set(range(n))


def test_weights_are_identical_on_both_ranks_after_every_step(launched):
    """Including after the backbone is unfrozen (stage 2), when DataParallel must be rebuilt."""
    _, _, traces = launched
    digests = [t["digests"] for t in traces]
    assert len(digests[0]) == 4  # 2 epochs x 2 steps
    assert digests[0] == digests[1]
    assert len(set(digests[0])) == 4  # and every step did change the weights


def test_only_rank_0_writes_in_output_dir(launched):
    root, _, traces = launched
    assert traces[1]["writes"] == []
    written = {path.split(os.sep)[0] for _, path in traces[0]["writes"]}
    assert {"best_model.pdparams", "config.yaml", "metrics.json", "vdl", "latest"} <= written
    assert len(list((root / "out" / "vdl").iterdir())) == 1


def _assert_same_metrics(gathered, single):
    assert gathered["confusion_matrix"] == single["confusion_matrix"]
    assert sum(c["support"] for c in gathered["per_class"].values()) == 5
    for key in ("accuracy", "auc", "loss"):
        assert gathered[key] == pytest.approx(single[key], rel=1e-4, abs=1e-6), key
    for name, values in single["per_class"].items():
        for key, value in values.items():
            assert gathered["per_class"][name][key] == pytest.approx(value, rel=1e-4, abs=1e-6), (name, key)


def test_gathered_metrics_equal_a_single_process_evaluation_of_the_saved_weights(launched, tmp_path):
    """Validation and test metrics gathered from 2 ranks are those of tools/eval.py on the saved
    weights (loaded strictly: the files are plain single-device state dicts): the best epoch's
    on best_model.pdparams, the last stage's on latest/model.pdparams."""
    from paddle_dx.config import load_config
    from paddle_dx.engine.eval_job import run_evaluation

    root, _, _ = launched
    metrics = json.loads((root / "out" / "metrics.json").read_text())
    cases = [("best_model.pdparams", metrics), ("latest/model.pdparams", metrics["stages"][-1])]
    for weights, gathered in cases:
        for mode, key in (("Eval", "val"), ("Test", "test")):
            config = load_config(
                root / "config.yaml",
                [f"Global.pretrained_model={root / 'out' / weights}", f"Global.output_dir={tmp_path / mode}"],
            )
            single = run_evaluation(config, mode)
            # A probability at Paddle's floor (cross-entropy 64) would alone make the mean loss of
            # 5 images >= 12.8; unsaturated, every probability depends on the exact weights used.
            assert single["loss"] < 12.8, "saturated predictions: this comparison could not tell weights apart"
            _assert_same_metrics(gathered[key], single)


def test_one_device_resumes_a_two_device_checkpoint(launched, tmp_path, caplog):
    """At an epoch boundary the run simply goes on; mid-epoch, the step is mapped so that the
    samples the 2 ranks had already trained on are not skipped."""
    from paddle_dx.engine.checkpoint import write_state
    from paddle_dx.engine.trainer import Trainer

    root, settings, _ = launched
    images, lists = root / "data" / "images", root / "data" / "lists"
    state = json.loads((root / "out" / "latest" / "state.json").read_text())
    assert (state["epoch"], state["step"], state["world_size"], state["batch_size"]) == (2, 0, 2, 4)

    shutil.copytree(root / "out", tmp_path / "run")
    three_stages = STAGES[:-1] + ", {name: more, epochs: 1, freeze: none, lr: 0.0001}]"
    result = Trainer(
        tiny_config(
            images,
            lists,
            tmp_path / "run",
            **dict(
                settings,
                **{
                    "Stages": three_stages,
                    "Global.epochs": 3,
                    "Global.allow_config_change": True,
                    "Global.checkpoints": tmp_path / "run" / "latest",
                },
            ),
        )
    ).fit()
    assert [h["epoch"] for h in result["history"]] == [1, 2, 3]

    # As if the 2-rank run had been stopped after its first step of epoch 2 (8 samples seen).
    checkpoint = shutil.copytree(root / "out" / "latest", tmp_path / "mid_epoch")
    write_state(checkpoint, dict(state, epoch=1, step=1))  # signed as the trainer would have
    with caplog.at_level(logging.WARNING):
        trainer = Trainer(
            tiny_config(
                images,
                lists,
                tmp_path / "mid",
                **dict(settings, **{"DataLoader.Train.sampler.batch_size": 3, "Global.allow_config_change": True}),
            )
        )
        trainer.resume(checkpoint)
    assert (trainer.start_epoch, trainer.start_step) == (1, 2)  # 8 // 3
    assert "continues at step 2 (2 samples are trained on again)" in caplog.text


@pytest.mark.parametrize("old, new", [((2, 4), (1, 4)), ((1, 4), (3, 2)), ((2, 3), (4, 1)), ((3, 2), (2, 5))])
def test_resume_step_misses_no_sample_when_devices_or_batch_change(old, new):
    """The first run's steps 0..S-1 on W ranks plus the second run's steps from resume_step(...)
    on W' ranks train every sample of the epoch, repeating less than one new global batch."""
    from paddle_dx.data.sampler import EpochBatchSampler
    from paddle_dx.engine.distributed import resume_step

    labels = np.arange(23) % 2

    def trained(world_size, batch_size, steps):
        seen = []
        for rank in range(world_size):
            sampler = EpochBatchSampler(labels, batch_size, seed=3, rank=rank, world_size=world_size)
            sampler.set_epoch(1)
            seen += [i for step, batch in enumerate(sampler) if step in steps for _, i in batch]
        return seen

    first = EpochBatchSampler(labels, old[1], rank=0, world_size=old[0])
    for stop in range(1, len(first)):
        after = EpochBatchSampler(labels, new[1], rank=0, world_size=new[0])
        start = resume_step({"epoch": 1, "step": stop, "world_size": old[0], "batch_size": old[1]}, after)
        before = trained(*old, range(stop))
        rest = trained(*new, range(start, len(after)))
        assert set(before) | set(rest) == set(range(len(labels)))
        assert len(set(before) & set(rest)) < new[0] * new[1]
