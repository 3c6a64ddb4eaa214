"""Weights files are loaded without running code from them (paddle_dx.utils.safe_pickle)."""

import os
import pickle

import numpy as np
import paddle
import pytest

from paddle_dx.errors import WeightsError
from paddle_dx.utils.safe_pickle import safe_load


class _CreatesFile:
    """Unpickling this runs os.system: what a hostile .pdparams would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


@pytest.mark.parametrize("protocol", [2, 4])
def test_genuine_paddle_files_load_equal_to_paddle_load(tmp_path, protocol):
    model = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.BatchNorm2D(4), paddle.nn.Linear(4, 2))
    optimizer = paddle.optimizer.Adam(parameters=model.parameters(), use_multi_tensor=True)
    model(paddle.randn([2, 3, 6, 6])).mean().backward()
    optimizer.step()
    for name, state in {"m.pdparams": model.state_dict(), "m.pdopt": optimizer.state_dict()}.items():
        paddle.save(state, str(tmp_path / name), protocol=protocol)
        ours, theirs = safe_load(tmp_path / name), paddle.load(str(tmp_path / name))
        assert sorted(ours) == sorted(theirs)
        for key, value in theirs.items():
            if isinstance(value, paddle.Tensor):
                np.testing.assert_array_equal(ours[key].numpy(), value.numpy())
            else:
                assert ours[key] == value


def test_a_pickle_that_would_create_a_file_is_refused_before_it_runs(tmp_path):
    target = tmp_path / "pwned"
    hostile = tmp_path / "evil.pdparams"
    hostile.write_bytes(pickle.dumps({"fc.weight": _CreatesFile(target)}))
    with pytest.raises(
        WeightsError, match=r"evil\.pdparams: refused to load.*posix\.system|evil\.pdparams: refused.*system"
    ):
        safe_load(hostile)
    assert not target.exists()


def test_truncated_and_missing_files_are_named(tmp_path):
    good = tmp_path / "good.pdparams"
    paddle.save({"w": paddle.ones([64, 64])}, str(good))
    cut = tmp_path / "cut.pdparams"
    cut.write_bytes(good.read_bytes()[:200])
    with pytest.raises(WeightsError, match=r"cut\.pdparams: not a readable Paddle weights file"):
        safe_load(cut)
    with pytest.raises(WeightsError, match=r"nope\.pdparams: weights file not found"):
        safe_load(tmp_path / "nope.pdparams")
