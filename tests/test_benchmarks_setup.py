"""The benchmarks (run by hand, never timed here) still build what they time: they load configs
the way scripts must (paddle_dx.api), and their setups run on this version of paddle_dx."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE = {"paddle_dx.config", "paddle_dx.config.loader"}  # load_config without the registries offered


def test_no_benchmark_loads_configs_before_the_registries_are_offered():
    offenders = []
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in BARE:
                if any(alias.name == "load_config" for alias in node.names):
                    offenders.append(f"{script.name}:{node.lineno}")
    assert not offenders, f"load configs through paddle_dx.api.load_config: {offenders}"


def test_the_training_step_and_time_to_accuracy_setups_build_models_recipes_and_lists(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"")  # a listed image must exist; nothing decodes it here
    (tmp_path / "label_list.txt").write_text("0 normal\n1 lesion\n")
    (tmp_path / "train_list.txt").write_text("a/x.png 1\n")
    code = """
import sys
from pathlib import Path
from benchmarks.lite0_step import paddle_setup
from benchmarks.time_to_accuracy import _recipe, classes_of, read_split
model, config, loss_fn, optimizer, x, y = paddle_setup("ResNet18", 2)
assert config["Arch"]["name"] == "ResNet18" and tuple(x.shape) == (2, 3, 224, 224)
assert _recipe("configs/brain_ct_efficientnet_lite0.yaml")["batch"] == 16
assert _recipe("configs/brain_ct_efficientnet_lite0.yaml")["unmirrored"] == []
assert _recipe("configs/esophagus_efficientnet_lite0.yaml")["unmirrored"] == ["CropBorder", "Denoise"]
bf16 = ["Global.use_amp=true", "Global.amp_dtype=bfloat16", "Arch.name=ResNet50"]
assert _recipe("configs/brain_ct_resnet18.yaml", bf16)["bf16"] is True  # adds the PyTorch autocast side
assert _recipe("configs/brain_ct_resnet18.yaml", bf16)["arch"] == "ResNet50"
assert _recipe("configs/brain_ct_resnet18.yaml")["bf16"] is False
lists = Path(sys.argv[1])
assert classes_of(lists) == ["normal", "lesion"]
assert read_split(lists, lists, "train", 2) == [(str(lists / "a" / "x.png"), 1)]
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-2000:]
