"""Shared fixtures: tiny generated datasets and configs, and the shared real datasets."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paddle_dx.engine.components  # noqa: E402, F401  (configs loaded in tests know every registry)

SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite tests/golden/*.json from this run and print the diff (tests/test_golden.py)",
    )


@pytest.fixture(scope="session")
def update_golden(request):
    return request.config.getoption("--update-golden")


@pytest.fixture(scope="session")
def repo_root():
    return ROOT


@pytest.fixture(scope="session")
def shared_datasets():
    """../shared/datasets; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS


def make_tiny_dataset(root, per_class=8, size=32, seed=0, classes=("normal", "lesion")):
    """Write a small synthetic class-folder tree and its train/val/test lists; return the list dir."""
    from paddle_dx.data.split import write_split
    from paddle_dx.data.synthetic import write_demo_dataset

    images = write_demo_dataset(Path(root) / "images", per_class=per_class, size=size, seed=seed, classes=classes)
    lists = Path(root) / "lists"
    write_split(images, lists, ratios=(2, 1, 1), seed=seed, classes=list(classes))
    return images, lists


def tiny_config(images, lists, output_dir, **overrides):
    """A validated config for a fast run on a tiny dataset (LeNet5, 32 px, 2 epochs)."""
    from paddle_dx.config import load_config

    def loader(split, ops):
        return {
            "dataset": {
                "image_root": str(images),
                "cls_label_path": str(Path(lists) / f"{split}_list.txt"),
                "transform_ops": ops,
            },
            "sampler": {"batch_size": 4},
            "loader": {"num_workers": 0},
        }

    raw = {
        "Global": {
            "seed": 7,
            "epochs": 2,
            "output_dir": str(output_dir),
            "image_shape": [3, 32, 32],
            "use_visualdl": False,
            "device": "cpu",
        },
        "Arch": {"name": "LeNet5", "class_num": 2, "pretrained": False},
        "Optimizer": {"name": "Adam", "lr": 0.003},
        "DataLoader": {
            "Train": loader("train", [{"ResizeImage": {}}, {"RandomFlip": {}}, {"NormalizeImage": {}}]),
            "Eval": loader("val", [{"ResizeImage": {}}, {"NormalizeImage": {}}]),
            "Test": loader("test", [{"ResizeImage": {}}, {"NormalizeImage": {}}]),
        },
    }
    flat = [f"{k}={v}" for k, v in overrides.items()]
    return load_config(raw=raw, overrides=flat)


@contextlib.contextmanager
def paused_training(config_file, point, stderr=subprocess.DEVNULL):
    """tools/train.py on ``config_file`` in a new process, handed over once it waits at the pause
    point ``point`` ("name" or "name:count", paddle_dx/utils/pause.py); killed on leaving the block."""
    marker = Path(config_file).with_name(f"paused-{point.replace(':', '-')}")
    env = dict(os.environ, PADDLE_DX_PAUSE_AT=point, PADDLE_DX_PAUSE_MARKER=str(marker), PADDLE_DX_PAUSE_SECONDS="300")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "train.py"), "-c", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the training never reached its pause point {point}"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.fixture
def tiny_dataset(tmp_path):
    return make_tiny_dataset(tmp_path / "data")


@pytest.fixture
def tiny_run_config(tiny_dataset, tmp_path):
    images, lists = tiny_dataset
    return tiny_config(images, lists, tmp_path / "out")


os.environ.setdefault("FLAGS_call_stack_level", "0")


# `make test-fast` (pytest -m "not slow") leaves these out: each trains real networks, runs
# subprocesses or a browser for seconds to minutes (per-file times: docs/testing.md). `make test`
# and CI run everything.
SLOW_FILES = {
    "test_fault_resume.py",
    "test_engine_optimizer_matrix.py",
    "test_accel_static_program.py",
    "test_studies_reproduce.py",
    "test_studies_pairs.py",
    "test_studies_runner.py",
    "test_studies_cross_validation.py",
    "test_data_loader_errors.py",
    "test_core_hyperkvasir_integration.py",
    "test_inference_export_formats.py",
    "test_engine_feature_cache.py",
    "test_engine_stage_schedule.py",
    "test_engine_distributed.py",
    "test_engine_eval_backend.py",
    "test_studies_paper_tables.py",
    "test_engine_run_folder.py",
    "test_engine_steps.py",
    "test_studies_results.py",
    "test_cli_terminal.py",
    "test_ui_browser.py",
    "test_studies_speak.py",
    "test_cli.py",
    "test_data_image_header.py",
    "test_ui_server.py",
    "test_engine_callbacks.py",
    "test_engine_interrupts.py",
    "test_engine_disk_space.py",
    "test_models_efficientnet_lite.py",
    "test_config_paddleclas.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
