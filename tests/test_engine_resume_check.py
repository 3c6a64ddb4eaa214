"""Resume with a changed config is refused, listing the keys; result-neutral keys may change."""

import pytest

from paddle_dx.engine.resume_check import check_resume_config, config_changes
from paddle_dx.errors import ConfigError


def _config(**changes):
    config = {
        "Global": {"seed": 1, "epochs": 3, "output_dir": "out/a", "checkpoints": None},
        "Optimizer": {"name": "Adam", "lr": 0.001},
        "DataLoader": {"Train": {"loader": {"num_workers": 0}, "sampler": {"batch_size": 8}}},
    }
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = config
        for part in path:
            node = node[part]
        node[last] = value
    return config


def test_changed_lr_and_batch_size_are_refused_with_each_key_named():
    current = _config(**{"Optimizer.lr": 0.01, "DataLoader.Train.sampler.batch_size": 4})
    assert config_changes(_config(), current) == [
        ("Optimizer.lr", 0.001, 0.01),
        ("DataLoader.Train.sampler.batch_size", 8, 4),
    ]
    with pytest.raises(
        ConfigError,
        match=r"run/latest: resuming with a config that changes the run "
        r"\(Optimizer\.lr: 0\.001 -> 0\.01; DataLoader\.Train\.sampler\.batch_size: 8 -> 4\)",
    ):
        check_resume_config(_config(), current, "run/latest")


def test_output_dir_checkpoints_and_workers_may_differ():
    current = _config(
        **{"Global.output_dir": "out/b", "Global.checkpoints": "out/a/latest", "DataLoader.Train.loader.num_workers": 4}
    )
    check_resume_config(_config(), current, "run/latest")  # no error
    assert config_changes(_config(), current) == []


def test_keys_of_another_paddle_dx_version_are_not_compared():
    """A key the checkpoint's version did not have (or no longer has) is a code change, recorded
    by the manifest; a key both know and that differs is still a change."""
    current = _config(**{"Optimizer.lr": 0.01})
    del current["Global"]["seed"]
    current["Global"]["eval_engine"] = "auto"
    assert config_changes(_config(), current) == [("Optimizer.lr", 0.001, 0.01)]
