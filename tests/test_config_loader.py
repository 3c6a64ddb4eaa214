"""Config contract: -o overrides, defaults, and errors that name the key and the fix."""

import re

import numpy as np
import pytest
import yaml
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.config import config_hash, dump_config, load_config
from paddle_dx.config.schema import SCHEMA
from paddle_dx.errors import ConfigError


def test_overrides_are_parsed_as_yaml_and_defaults_fill_the_rest():
    config = load_config(
        raw={"Global": {"epochs": 5}},
        overrides=[
            "Global.epochs=3",
            "Global.image_shape=[3,64,64]",
            "Arch.name=ResNet18",
            "Arch.pretrained=false",
            "Arch.freeze=until stage 2",
            "Optimizer.lr=0.01",
            "DataLoader.Train.sampler.batch_size=8",
            "Global.output_dir=2024",
        ],
    )
    assert config["Global"]["epochs"] == 3
    assert config["Global"]["image_shape"] == [3, 64, 64]
    assert config["Arch"] == {**config["Arch"], "name": "ResNet18", "pretrained": False, "freeze": "until stage 2"}
    assert config["Optimizer"]["lr"] == 0.01
    assert config["DataLoader"]["Train"]["sampler"]["batch_size"] == 8
    assert config["Global"]["output_dir"] == "2024"  # a number where a path is expected stays a path
    # untouched keys take the schema defaults
    assert config["Global"]["seed"] == SCHEMA["Global"]["seed"].default
    assert config["DataLoader"]["Eval"]["sampler"]["shuffle"] is False
    assert config["Metric"]["best_metric"] == "accuracy"


def error_for(override):
    """The ConfigError message one ``-o`` override produces."""
    with pytest.raises(ConfigError) as err:
        load_config(raw={}, overrides=[override])
    return str(err.value)


def test_integer_where_a_float_is_expected_is_accepted():
    assert load_config(raw={}, overrides=["Optimizer.lr=1"])["Optimizer"]["lr"] == 1.0


@pytest.mark.parametrize("text, value", [("1e-4", 1e-4), ("3E-5", 3e-5), ("+2e1", 20.0), (".5e-3", 5e-4)])
def test_scientific_notation_without_a_dot_is_a_number(tmp_path, text, value):
    """PyYAML (YAML 1.1) reads 1e-4 as a string; people write learning rates that way."""
    assert load_config(raw={}, overrides=[f"Optimizer.lr={text}"])["Optimizer"]["lr"] == pytest.approx(value)
    path = tmp_path / "c.yaml"
    path.write_text(f"Optimizer:\n  lr: {text}\n")
    assert load_config(path)["Optimizer"]["lr"] == pytest.approx(value)


@pytest.mark.parametrize(
    "override, key, suggestion",
    [
        ("Global.epoch=3", "Global.epoch", "epochs"),
        ("Optimizer.learning_rate=0.1", "Optimizer.learning_rate", None),
        ("Optimzer.lr=0.1", "Optimzer", "Optimizer"),
        ("DataLoader.Train.sampler.batchsize=4", "DataLoader.Train.sampler.batchsize", "batch_size"),
        ("Arch.freze=backbone", "Arch.freze", "freeze"),
    ],
)
def test_unknown_key_names_the_key_and_the_closest_valid_one(override, key, suggestion):
    message = error_for(override)
    assert f"unknown config key '{key}'" in message
    if suggestion:
        assert f"did you mean '{suggestion}'" in message


def test_misspelt_key_in_the_yaml_file_is_an_error_too(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("Global:\n  epochs: 2\n  sead: 1\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'Global.sead' \(did you mean 'seed'\?\)"):
        load_config(path)


@pytest.mark.parametrize(
    "override, key, expected",
    [
        ("Global.epochs=abc", "Global.epochs", "int"),
        ("Global.epochs=2.5", "Global.epochs", "int"),
        ("Global.use_visualdl=3", "Global.use_visualdl", "bool"),
        ("Optimizer.lr=fast", "Optimizer.lr", "int or float"),
        ("Optimizer.lr=1e-4x", "Optimizer.lr", "int or float"),
        ("Global.image_shape=224", "Global.image_shape", "list"),
        ("Global.seed=true", "Global.seed", "int"),
    ],
)
def test_wrong_type_names_the_key_and_the_expected_type(override, key, expected):
    message = error_for(override)
    assert f"'{key}'" in message and f"expected {expected}" in message


def test_bad_values_are_rejected_with_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"'Global.device' = 'cuda' is not one of \['auto', 'cpu', 'gpu', 'gpu:N'\]"):
        load_config(raw={}, overrides=["Global.device=cuda"])
    with pytest.raises(ConfigError, match=r"'Optimizer.name' = 'adam' .*did you mean 'Adam'"):
        load_config(raw={}, overrides=["Optimizer.name=adam"])
    with pytest.raises(ConfigError, match="Global.image_shape"):
        load_config(raw={}, overrides=["Global.image_shape=[3,64]"])
    with pytest.raises(ConfigError, match="Global.image_shape"):
        load_config(raw={}, overrides=["Global.image_shape=[1,64,64]"])
    with pytest.raises(ConfigError, match="must look like Section.key=value"):
        load_config(raw={}, overrides=["Global.epochs"])


@pytest.mark.parametrize(
    "key, registry",
    [
        ("Optimizer.name", "paddle_dx.engine.optimizer:OPTIMIZERS"),
        ("Arch.name", "paddle_dx.models.backbones:BACKBONES"),
        ("DataLoader.Train.sampler.name", "paddle_dx.data.sampler:SAMPLERS"),
    ],
)
def test_component_names_are_checked_against_their_registry(key, registry):
    """The registry is the one list of names: registering a component makes it a valid value."""
    import importlib

    module, attr = registry.split(":")
    reg = getattr(importlib.import_module(module), attr)
    with pytest.raises(ConfigError, match=re.escape(f"'{key}' = 'Extra' is not one of {reg.names()}")):
        load_config(raw={}, overrides=[f"{key}=Extra"])
    reg.register(object(), name="Extra")
    try:
        value = load_config(raw={}, overrides=[f"{key}=Extra"])
        for part in key.split("."):
            value = value[part]
        assert value == "Extra"
    finally:
        reg._items.pop("Extra")


def test_the_config_package_imports_no_layer_above_it_the_names_are_handed_down():
    """config/ validates component names from registries offered to it (config/choices.py); on
    its own it imports neither Paddle nor data/models/engine, and says who must offer them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from paddle_dx.config import choices, load_config\n"
        "from paddle_dx.errors import ConfigError\n"
        "try:\n"
        "    load_config(raw={'Optimizer': {'name': 'AdamW'}})\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', 'paddle_dx.engine.components' in str(exc))\n"
        "class Names:\n"
        "    def __init__(self, *names): self._names = sorted(names)\n"
        "    def names(self): return self._names\n"
        "offered = dict.fromkeys(['Global.engine', 'Global.feature_cache_engine', 'Arch.name', 'Loss',\n"
        "    'Optimizer.lr_schedule', 'DataLoader.sampler.name', 'DataLoader.dataset.transform_ops'], Names('x'))\n"
        "choices.offer({**offered, 'Optimizer.name': Names('Adam', 'AdamW')}, [lambda config: config])\n"
        "print(load_config(raw={'Optimizer': {'name': 'AdamW'}})['Optimizer']['name'])\n"
        "try:\n"
        "    load_config(raw={'Optimizer': {'name': 'Adamw'}})\n"
        "except ConfigError as exc:\n"
        "    print('unknown:', \"not one of ['Adam', 'AdamW']\" in str(exc))\n"
        "print(sorted(m for m in sys.modules if m == 'paddle' or m.split('.')[:2] in (\n"
        "    ['paddle_dx', 'data'], ['paddle_dx', 'models'], ['paddle_dx', 'engine'])))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["refused: True", "AdamW", "unknown: True", "[]"]


def test_missing_or_broken_config_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("Global: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: YAML syntax error"):
        load_config(bad)


def test_image_shape_override_shrinks_every_sized_op_of_the_run(tmp_path):
    from paddle_dx.config.sections import DataSection
    from paddle_dx.data.builder import build_dataset

    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4, size=48)
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{
            "Global.image_shape": "[3,24,24]",
            "DataLoader.Train.dataset.transform_ops": "[{RandomResizedCrop: {}}, {NormalizeImage: {}}]",
            "DataLoader.Eval.dataset.transform_ops": "[{ResizeImage: {resize_short: 30}}, {CenterCrop: {}}, "
            "{NormalizeImage: {}}]",
        },
    )
    for mode in ("Train", "Eval"):
        dataset, _ = build_dataset(DataSection.of(config, mode))
        image, label = dataset[(0, 0)]
        assert image.shape == (3, 24, 24) and image.dtype == np.float32


def test_resolved_config_round_trips_and_hash_ignores_key_order(tmp_path):
    config = load_config(raw={}, overrides=["Global.epochs=4"])
    dump_config(config, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == config
    reordered = yaml.safe_load(yaml.safe_dump(config, sort_keys=True))
    assert config_hash(reordered) == config_hash(config)
    assert config_hash(load_config(raw={}, overrides=["Global.epochs=5"])) != config_hash(config)


# ---- values out of range, hostile YAML (refused when the config is loaded) -----------------


@pytest.mark.parametrize(
    "override, key, accepted",
    [
        ("Global.epochs=0", "Global.epochs", ">= 1"),
        ("Global.epochs=-3", "Global.epochs", ">= 1"),
        ("Global.seed=-1", "Global.seed", ">= 0 and <= 4294967295"),
        ("Global.seed=100000000000000000000", "Global.seed", ">= 0 and <= 4294967295"),
        ("DataLoader.Train.sampler.batch_size=0", "DataLoader.Train.sampler.batch_size", ">= 1"),
        ("DataLoader.Eval.sampler.batch_size=-4", "DataLoader.Eval.sampler.batch_size", ">= 1"),
        ("Global.eval_interval=0", "Global.eval_interval", ">= 1"),
        ("Global.save_interval=0", "Global.save_interval", ">= 1"),
        ("Global.num_threads=-2", "Global.num_threads", ">= 0"),
        ("Optimizer.lr=.nan", "Optimizer.lr", "a finite number > 0"),
        ("Optimizer.lr=.inf", "Optimizer.lr", "a finite number > 0"),
        ("Optimizer.lr=-0.1", "Optimizer.lr", "a finite number > 0"),
        ("Optimizer.lr=0", "Optimizer.lr", "a finite number > 0"),
        ("Arch.dropout=1.5", "Arch.dropout", "a finite number >= 0 and <= 0.99"),
        ("Arch.class_num=1", "Arch.class_num", ">= 2"),
    ],
)
def test_number_out_of_range_names_the_key_and_the_accepted_range(override, key, accepted):
    message = error_for(override)
    assert message.startswith(f"config key '{key}' = ") and message.endswith(f"out of range: accepted {accepted}")
    assert "\n" not in message


def test_stage_values_are_range_checked_like_sections():
    with pytest.raises(ConfigError, match=r"config key 'Stages\[1\].lr' = nan is out of range"):
        load_config(raw={"Stages": [{"name": "head", "epochs": 1}, {"name": "all", "epochs": 1, "lr": float("nan")}]})


def test_values_on_the_range_edges_are_accepted():
    config = load_config(
        raw={},
        overrides=[
            "Global.epochs=1",
            "Global.seed=0",
            "Global.seed=4294967295",
            "Global.num_threads=0",
            "DataLoader.Train.sampler.batch_size=1",
            "Optimizer.lr=1e-9",
            "Global.image_shape=[3,16,16]",
        ],
    )
    assert config["Global"]["seed"] == 2**32 - 1 and config["Optimizer"]["lr"] == 1e-9


@pytest.mark.parametrize("shape", ["[3,1,1]", "[3,8,8]", "[1,64,64]", "[4,64,64]", "[3,64,100000]"])
def test_image_shape_too_small_or_not_rgb_is_refused(shape):
    message = error_for(f"Global.image_shape={shape}")
    assert message.startswith(
        "config key 'Global.image_shape' must be [3, height, width] with height and width 16..4096"
    )


def test_output_dir_inside_an_image_root_is_refused(tmp_path):
    images, lists = make_tiny_dataset(tmp_path / "data")
    with pytest.raises(ConfigError, match=r"'Global.output_dir' = .* is inside DataLoader.Train.dataset.image_root"):
        tiny_config(images, lists, images / "runs" / "a")
    with pytest.raises(ConfigError, match="is inside DataLoader"):
        tiny_config(images, lists, images)
    assert tiny_config(images, lists, tmp_path / "images_out")["Global"]["output_dir"]  # a sibling is fine


def billion_laughs(levels=9, width=10):
    """A ~1 kB YAML whose aliases expand to width**levels values (10**9 here)."""
    lines = ["Global:", '  class_names: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"  x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append("Metric:")
    lines.append(f"  Eval: [*a{levels - 1}, *a{levels - 1}]")
    return "\n".join(lines) + "\n"


def test_yaml_alias_bomb_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    assert path.stat().st_size < 1500
    with pytest.raises(ConfigError, match=r"bomb.yaml: YAML expands to more than 100000 values") as err:
        load_config(path)
    assert "\n" not in str(err.value)


def test_yaml_alias_bomb_is_refused_within_a_memory_bound(tmp_path):
    """In a child process limited to 1.5 GB of address space (the bomb took > 3 GB)."""
    import subprocess
    import sys

    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20)); "
        "from paddle_dx.config.loader import read_yaml; from paddle_dx.errors import ConfigError\n"
        f"try:\n    read_yaml({str(path)!r})\nexcept ConfigError as exc:\n    print(exc); sys.exit(2)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "YAML expands to more than" in done.stdout


def test_yaml_alias_bomb_in_an_override_is_refused():
    bomb = "[&a [" + ", ".join(["1"] * 400) + "]" + ", *a" * 300 + "]"  # 120k values from 3 kB
    message = error_for(f"Metric.Eval={bomb}")
    assert message.startswith("override 'Metric.Eval=") and "YAML expands to more than 100000 values" in message


def test_repeated_aliases_within_the_budget_still_load(tmp_path):
    path = tmp_path / "anchors.yaml"
    path.write_text(
        "DataLoader:\n  Train:\n    dataset:\n      transform_ops: &ops [{ResizeImage: {}}, {NormalizeImage: {}}]\n"
        "  Eval:\n    dataset:\n      transform_ops: *ops\n  Test:\n    dataset:\n      transform_ops: *ops\n"
    )
    config = load_config(path)
    ops = [{"ResizeImage": {}}, {"NormalizeImage": {}}]
    assert [config["DataLoader"][m]["dataset"]["transform_ops"] for m in ("Train", "Eval", "Test")] == [ops] * 3


@pytest.mark.parametrize("depth", [60, 5000, 100000])
def test_deeply_nested_yaml_is_one_line_error(tmp_path, depth):
    path = tmp_path / "deep.yaml"
    path.write_text("Metric:\n  Eval: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ConfigError, match=r"deep.yaml: YAML nested (more than 50 levels deep|too deeply)"):
        load_config(path)


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    """tools/train.py interrupted while loading its config (before the trainer's own handler)."""
    import runpy
    import sys

    from conftest import ROOT

    import paddle_dx.config

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(paddle_dx.config, "load_config", interrupted)
    monkeypatch.setattr(sys, "argv", ["train.py", "-c", str(tmp_path / "any.yaml")])
    try:
        runpy.run_path(str(ROOT / "tools" / "train.py"), run_name="__main__")
        code = None
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped tools/train.py (a traceback for the user)")
    err = capsys.readouterr().err
    assert code == 130
    assert err.strip() == "interrupted (Ctrl-C)"


def test_a_hash_in_an_override_value_is_not_a_comment():
    config = load_config(
        raw={},
        overrides=[
            "Global.output_dir=runs/a #2",
            "Global.image_shape=[3,64,64]",
            "DataLoader.Train.sampler.shuffle=False",
        ],
    )
    assert config["Global"]["output_dir"] == "runs/a #2"
    assert config["Global"]["image_shape"] == [3, 64, 64]  # YAML typing is kept
    assert config["DataLoader"]["Train"]["sampler"]["shuffle"] is False
    with pytest.raises(ConfigError, match="'#' inside a list"):
        load_config(raw={}, overrides=["Global.image_shape=[3, 64, 64] #x"])


def test_a_megabyte_override_is_refused_in_one_short_line():
    with pytest.raises(ConfigError) as err:
        load_config(raw={}, overrides=["Global.output_dir" + "x" * 1_000_000])
    assert len(str(err.value)) < 300 and "1,000,017 characters" in str(err.value)


def test_a_duplicate_key_names_the_file_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("Global:\n  epochs: 3\n  seed: 1\n  epochs: 30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 4: duplicate key 'epochs' \(first given at line 2\)"):
        load_config(path)
    path.write_text("Global: {seed: 1, seed: 2}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        load_config(path)
    # a << merge may be overridden: that is what it is for
    path.write_text("base: &b {epochs: 1}\nGlobal:\n  <<: *b\n  epochs: 2\n", encoding="utf-8")
    assert yaml.safe_load(path.read_text())["Global"]["epochs"] == 2
    from paddle_dx.config.loader import read_yaml

    assert read_yaml(path)["Global"] == {"epochs": 2}


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("Global:\n  output_dir: runs/caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.yaml: not UTF-8 text"):
        load_config(path)


def test_a_config_path_that_is_a_folder_or_a_megabyte_is_one_line(tmp_path):
    from paddle_dx.config.shipped import resolve_config

    with pytest.raises(ConfigError, match="is a folder, not a file"):
        load_config(resolve_config(str(tmp_path)))
    with pytest.raises(ConfigError, match="path too long") as err:
        load_config(resolve_config(str(tmp_path / ("c" * 1_000_000)) + ".yaml"))
    assert len(str(err.value)) < 400
