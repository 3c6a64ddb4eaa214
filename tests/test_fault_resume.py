"""A training run killed anywhere (mid-epoch, mid-checkpoint-write, between the checkpoint's
renames; by SIGKILL, SIGTERM or Ctrl-C) and then resumed ends with exactly the weights and
metrics of a run that was never interrupted.

Each run is a real ``tools/train.py`` subprocess. A pause point (paddle_dx.utils.pause) holds it
at the exact place named in ``PADDLE_DX_PAUSE_AT`` and drops a marker file; the test then sends
the signal, so the kill lands there every time, without timing races. All interrupted runs
start together to share the Paddle start-up cost. Every resume and the reference run are fresh
``tools/train.py`` processes too, as a user's resume is, and each case runs in both engines
(dygraph and the static Program) with 2 threads: state kept inside a process (the static
engine's Executor) once made a resumed run drift from the uninterrupted one.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, make_tiny_dataset, tiny_config

# 12 training images, batch 2: 6 steps per epoch, 2 epochs, saves after each epoch.
SETTINGS = {"DataLoader.Train.sampler.batch_size": 2, "Global.num_threads": 2}
ENGINES = ("dygraph", "static")
CASES = {
    # name: (pause point "name:count", signal, seconds the pause may last)
    "sigkill_mid_epoch": ("train_step:9", signal.SIGKILL, 300),  # epoch 2, step 3
    "sigterm_mid_epoch": ("train_step:9", signal.SIGTERM, 300),
    "sigint_mid_epoch": ("train_step:4", signal.SIGINT, 300),  # epoch 1, step 4: nothing saved yet
    "sigkill_checkpoint_write": ("checkpoint_write:2", signal.SIGKILL, 300),  # weights written, optimizer not
    "sigkill_checkpoint_swap": ("checkpoint_swap:2", signal.SIGKILL, 300),  # old moved aside, new not in place
    "sigterm_checkpoint_write": ("checkpoint_write:1", signal.SIGTERM, 5),  # save completes, then it stops
}
START_TIMEOUT_S = 240


def _config(data, out, engine, **extra):
    images, lists = data
    return tiny_config(images, lists, out, **SETTINGS, **{"Global.engine": engine}, **extra)


def _train(config, where):
    """tools/train.py on ``config`` in a new process; its stderr on failure."""
    from paddle_dx.config import dump_config

    dump_config(config, where)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train.py"), "-c", str(where)],
        capture_output=True,
        text=True,
        env=dict(os.environ, FLAGS_call_stack_level="0"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module", params=ENGINES)
def engine(request):
    return request.param


def _stderr(case_dir):
    return (case_dir / "stderr.txt").read_text()[-3000:]


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory, engine):
    """Start every case's training, signal each at its pause point; return {name: (dir, rc, stderr)}."""
    from paddle_dx.config import dump_config

    base = tmp_path_factory.mktemp("faults")
    data = make_tiny_dataset(base / "data", per_class=12)
    procs = {}
    try:
        for name, (point, _sig, pause_s) in CASES.items():
            out = base / name
            out.mkdir()
            dump_config(_config(data, out / "run", engine), out / "config.yaml")
            env = dict(
                os.environ,
                PADDLE_DX_PAUSE_AT=point,
                PADDLE_DX_PAUSE_MARKER=str(out / "paused"),
                PADDLE_DX_PAUSE_SECONDS=str(pause_s),
                FLAGS_call_stack_level="0",
            )
            with open(out / "stderr.txt", "w") as err:
                procs[name] = subprocess.Popen(
                    [sys.executable, str(ROOT / "tools" / "train.py"), "-c", str(out / "config.yaml")],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                )
        waiting, deadline = dict(procs), time.monotonic() + START_TIMEOUT_S
        while waiting and time.monotonic() < deadline:  # signal each run as soon as it is paused
            for name, proc in list(waiting.items()):
                if (base / name / "paused").exists():
                    proc.send_signal(CASES[name][1])
                    del waiting[name]
                else:
                    assert proc.poll() is None, f"{name}: ended before its pause point: {_stderr(base / name)}"
            time.sleep(0.02)
        assert not waiting, f"never reached their pause points: {list(waiting)}"
        return (
            data,
            engine,
            {name: (base / name / "run", proc.wait(timeout=120), _stderr(base / name)) for name, proc in procs.items()},
        )
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def reference(interrupted_runs, tmp_path_factory):
    """The same training, never interrupted (a fresh process)."""
    data, engine, _ = interrupted_runs
    out = tmp_path_factory.mktemp("reference")
    _train(_config(data, out / "run", engine), out / "config.yaml")
    return out / "run"


def _state(run):
    return json.loads((run / "latest" / "state.json").read_text())


def _resume(runs, run):
    data, engine, _ = runs
    _train(_config(data, run, engine, **{"Global.checkpoints": str(run / "latest")}), run.parent / "resume.yaml")


def assert_same_result(run, reference):
    import paddle

    from paddle_dx.engine.verification import compare

    for weights in ("latest/model.pdparams", "best_model.pdparams"):
        got, want = paddle.load(str(run / weights)), paddle.load(str(reference / weights))
        assert got.keys() == want.keys()
        for key in want:
            assert np.array_equal(got[key].numpy(), want[key].numpy()), f"{weights}: tensor {key} differs"
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (run, reference)]
    diffs = [(k, a, b) for k, a, b, _, ok in compare(*metrics, atol=0.0) if not ok]
    assert not diffs, f"metrics differ from the uninterrupted run: {diffs[:5]}"


@pytest.mark.parametrize("name", ["sigkill_mid_epoch", "sigkill_checkpoint_write"])
def test_sigkill_then_resume_from_last_complete_checkpoint(name, interrupted_runs, reference):
    run, rc, _ = interrupted_runs[2][name]
    assert rc == -signal.SIGKILL
    assert (_state(run)["epoch"], _state(run)["step"]) == (1, 0)  # the end-of-epoch-1 checkpoint survived
    if name == "sigkill_checkpoint_write":
        partial = list(run.glob(".paddle_dx-tmp.latest.*"))
        assert partial and (partial[0] / "model.pdparams").is_file() and not (partial[0] / "model.pdopt").exists()
    _resume(interrupted_runs, run)
    assert_same_result(run, reference)
    assert not list(run.glob(".paddle_dx-tmp.latest.*"))  # the half-written folder was cleaned up


def test_sigkill_between_checkpoint_renames_falls_back_to_previous(interrupted_runs, reference):
    run, rc, _ = interrupted_runs[2]["sigkill_checkpoint_swap"]
    assert rc == -signal.SIGKILL
    assert not (run / "latest").exists() and (run / "latest.prev" / "state.json").is_file()
    _resume(interrupted_runs, run)
    assert_same_result(run, reference)


@pytest.mark.parametrize(
    "name, where", [("sigterm_mid_epoch", (1, 3)), ("sigint_mid_epoch", (0, 4)), ("sigterm_checkpoint_write", (1, 1))]
)
def test_sigterm_and_ctrl_c_save_a_resumable_checkpoint(name, where, interrupted_runs, reference):
    run, rc, err = interrupted_runs[2][name]
    assert rc == 130, err[-2000:]
    assert "resume with -o Global.checkpoints=" in err and "Traceback" not in err
    assert (_state(run)["epoch"], _state(run)["step"]) == where  # saved where it stopped, mid-epoch
    _resume(interrupted_runs, run)
    assert_same_result(run, reference)


def test_damaged_checkpoint_is_refused_not_loaded(interrupted_runs, tmp_path):
    """A checkpoint whose files do not match the hashes in its state.json is never used."""
    import shutil

    from paddle_dx.engine.checkpoint import load_checkpoint
    from paddle_dx.errors import WeightsError

    ckpt = tmp_path / "latest"
    shutil.copytree(interrupted_runs[2]["sigterm_mid_epoch"][0] / "latest", ckpt)
    with open(ckpt / "model.pdopt", "r+b") as fh:
        fh.truncate(100)
    with pytest.raises(WeightsError, match="model.pdopt: checkpoint file is incomplete"):
        load_checkpoint(ckpt)


def test_static_engine_resumes_exactly_on_real_images_with_two_threads(shared_datasets, tmp_path):
    """The shipped esophagus recipe's engine (static), ResNet-18 at 64 px, 2 threads, real
    HyperKvasir images: killed by SIGKILL after its epoch-1 checkpoint and resumed in a new
    process, it ends with the uninterrupted run's weights bit for bit (before the Executor was
    renewed each epoch they were ~1e-5 apart)."""
    import paddle

    from paddle_dx.config import load_config
    from paddle_dx.data.split import write_split

    source = shared_datasets / "hyperkvasir_lower_gi"
    images = tmp_path / "images"
    for cls, folder in (("normal", "normal-cecum"), ("pathological", "polyp")):
        (images / cls).mkdir(parents=True)
        for path in sorted((source / folder).glob("*.jpg"))[:30]:
            (images / cls / path.name).symlink_to(path)
    lists = tmp_path / "lists"
    write_split(images, lists, classes=["normal", "pathological"])
    overrides = [
        "Arch.name=ResNet18",
        "Arch.pretrained=false",
        "Global.image_shape=[3,64,64]",
        "Global.epochs=3",
        "Global.seed=11",
        "Global.num_threads=2",
        "Global.use_visualdl=false",
        "Global.engine=static",
    ]
    for mode, split in (("Train", "train"), ("Eval", "val"), ("Test", "test")):
        overrides += [
            f"DataLoader.{mode}.dataset.image_root={images}",
            f"DataLoader.{mode}.dataset.cls_label_path={lists / f'{split}_list.txt'}",
        ]

    def config(name, *extra):
        return load_config(
            ROOT / "configs" / "esophagus_resnet50.yaml", overrides + [f"Global.output_dir={tmp_path / name}", *extra]
        )

    _train(config("reference"), tmp_path / "reference.yaml")
    from paddle_dx.config import dump_config

    dump_config(config("killed"), tmp_path / "killed.yaml")
    steps = -(-len((lists / "train_list.txt").read_text().split("\n")[:-1]) // 16)
    env = dict(
        os.environ,
        PADDLE_DX_PAUSE_AT=f"train_step:{steps + 1}",
        PADDLE_DX_PAUSE_MARKER=str(tmp_path / "paused"),
        PADDLE_DX_PAUSE_SECONDS="300",
        FLAGS_call_stack_level="0",
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "train.py"), "-c", str(tmp_path / "killed.yaml")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (tmp_path / "paused").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert json.loads((tmp_path / "killed" / "latest" / "state.json").read_text())["epoch"] == 1
    _train(config("killed", f"Global.checkpoints={tmp_path / 'killed' / 'latest'}"), tmp_path / "resume.yaml")
    got = paddle.load(str(tmp_path / "killed" / "latest" / "model.pdparams"))
    want = paddle.load(str(tmp_path / "reference" / "latest" / "model.pdparams"))
    assert [k for k in want if not np.array_equal(got[k].numpy(), want[k].numpy())] == []
