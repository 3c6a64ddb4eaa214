"""A training's terminal output is quiet and in one format: no Paddle C++ INFO lines, no ccache
warning, no PaddleClas init_res notice, one timestamp format."""

import re
import subprocess
import sys

from conftest import ROOT, tiny_config


def test_train_prints_only_paddle_dx_lines_in_one_format(tiny_dataset, tmp_path):
    from paddle_dx.config import dump_config

    images, lists = tiny_dataset
    config = tiny_config(
        images, lists, tmp_path / "run", **{"Arch.name": "ResNet18", "Global.epochs": 1, "Global.engine": "static"}
    )
    dump_config(config, tmp_path / "config.yaml")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("GLOG_", "FLAGS_call"))}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "train.py"), "-c", str(tmp_path / "config.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "epoch 1/1" in out
    assert not re.search(r"^[IWE]\d{4} \d\d:\d\d:\d\d\.\d+ ", out, re.M), out[:2000]  # glog lines
    assert "ccache" not in out and "init_res" not in out
    stamps = re.findall(r"^\[([^\]]+)\]", out, re.M)
    assert stamps and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in stamps), stamps


def test_epoch_and_evaluation_show_progress_bars_on_a_terminal(tiny_run_config, monkeypatch):
    """On a terminal, training and each evaluation (validation, test) show a tqdm bar."""
    import io

    from paddle_dx.engine.trainer import Trainer

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    Trainer(tiny_run_config).fit()
    shown = screen.getvalue()
    assert "epoch 1/2" in shown and "validation" in shown and "test" in shown and "batch" in shown
