"""Global.device names a GPU (gpu:N) or leaves it to the launcher (FLAGS_selected_gpus), checked
without a GPU: the parsing, the choice and the config schema."""

import pytest

from paddle_dx.config import load_config
from paddle_dx.errors import ConfigError
from paddle_dx.utils.device_spec import DeviceChoices, gpu_index, launcher_gpu, parse_device


@pytest.mark.parametrize(
    "value, parsed",
    [
        ("auto", ("auto", None)),
        ("cpu", ("cpu", None)),
        ("gpu", ("gpu", None)),
        ("gpu:1", ("gpu", 1)),
        ("GPU:0", ("gpu", 0)),
    ],
)
def test_device_values_parse(value, parsed):
    assert parse_device(value) == parsed and value in DeviceChoices()


@pytest.mark.parametrize("value", ["cpu:1", "gpu:", "gpu:-1", "xpu", "gpu:a", "auto:0"])
def test_other_device_values_are_one_clear_error(value):
    with pytest.raises(ConfigError, match=r"Global.device = .*expected auto, cpu, gpu or gpu:N"):
        parse_device(value)
    assert value not in DeviceChoices()


def test_gpu_choice_explicit_then_launcher_then_zero():
    assert gpu_index(1, count=2, environ={"FLAGS_selected_gpus": "0"}) == 1  # gpu:1 wins
    assert gpu_index(None, count=4, environ={"FLAGS_selected_gpus": "3"}) == 3  # paddle.distributed.launch's
    assert gpu_index(None, count=4, environ={"FLAGS_selected_gpus": "2,3"}) == 2
    assert gpu_index(None, count=1, environ={}) == 0
    assert launcher_gpu({"FLAGS_selected_gpus": ""}) is None
    with pytest.raises(ConfigError, match=r"Global.device: GPU 2 does not exist \(this machine has 2: 0..1\)"):
        gpu_index(2, count=2, environ={})
    with pytest.raises(ConfigError, match="FLAGS_selected_gpus: GPU 5 does not exist"):
        gpu_index(None, count=2, environ={"FLAGS_selected_gpus": "5"})


def test_config_accepts_gpu_n_and_refuses_others(tmp_path):
    raw = {"Arch": {"name": "LeNet5", "class_num": 2}}
    assert load_config(raw={**raw, "Global": {"device": "gpu:1"}})["Global"]["device"] == "gpu:1"
    with pytest.raises(ConfigError, match="Global.device"):
        load_config(raw={**raw, "Global": {"device": "gpu:x"}})
