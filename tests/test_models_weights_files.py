"""Odd weights files given to eval/infer (Global.pretrained_model) or as Arch.pretrained: one
line naming the file and the tensor, never Paddle's AssertionError or a silent NaN model."""

import pickle

import numpy as np
import pytest

from paddle_dx.errors import WeightsError
from paddle_dx.models.transfer import build_model, load_model_weights


@pytest.fixture(scope="module")
def lenet():
    model = build_model({"name": "LeNet5", "class_num": 2, "pretrained": False})
    return model, {k: v.numpy() for k, v in model.state_dict().items()}


def save(path, state):
    with open(path, "wb") as fh:
        pickle.dump(state, fh, protocol=2)
    return path


CASES = {
    "list": (lambda sd: list(sd.values()), "expected a dict of tensors, got list"),
    "float64": (lambda sd: {k: v.astype(np.float64) for k, v in sd.items()}, "is float64, model expects float32"),
    "int64": (lambda sd: {k: v.astype(np.int64) for k, v in sd.items()}, "is int64, model expects float32"),
    "lists": (lambda sd: {k: v.tolist() for k, v in sd.items()}, "is a list, not an array"),
    "shapes": (lambda sd: {k: np.zeros([s + 1 for s in v.shape], v.dtype) for k, v in sd.items()}, "has shape"),
    "nan": (lambda sd: {k: np.full(v.shape, np.nan, v.dtype) for k, v in sd.items()}, "NaN or infinite"),
}


@pytest.mark.parametrize("case", sorted(set(CASES) - {"float64"}))  # a float64 checkpoint is cast (export tests)
def test_an_odd_checkpoint_for_eval_is_one_clear_line(lenet, tmp_path, case):
    model, state = lenet
    make, words = CASES[case]
    path = save(tmp_path / f"{case}.pdparams", make(state))
    with pytest.raises(WeightsError, match=rf"{case}\.pdparams: .*{words}"):
        load_model_weights(model, path)


@pytest.mark.parametrize("case", ["float64", "int64", "lists", "nan"])
def test_odd_pretrained_weights_name_the_tensor(lenet, tmp_path, case):
    _, state = lenet
    make, words = CASES[case]
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    path = save(tmp_path / f"{case}.pdparams", make(backbone))
    with pytest.raises(WeightsError, match=rf"{case}\.pdparams: tensor conv1\.0\.weight .*{words}"):
        build_model({"name": "LeNet5", "class_num": 2, "pretrained": str(path)})


def test_good_weights_still_load(lenet, tmp_path):
    model, state = lenet
    path = save(tmp_path / "good.pdparams", state)
    assert load_model_weights(model, path) is model
    backbone = {k.removeprefix("backbone."): v for k, v in state.items() if k.startswith("backbone.")}
    loaded = build_model(
        {"name": "LeNet5", "class_num": 2, "pretrained": str(save(tmp_path / "bb.pdparams", backbone))}
    )
    assert len(loaded.pretrained_report["loaded"]) == len(backbone)


def test_a_checkpoint_folder_as_weights_names_the_files_inside(lenet, tmp_path):
    """Global.pretrained_model=<run>/latest (a checkpoint folder) says which files it holds, not "not found"."""
    model, state = lenet
    (tmp_path / "latest").mkdir()
    save(tmp_path / "latest" / "model.pdparams", state)
    with pytest.raises(WeightsError, match=r"latest is a folder; name one of its weights files: model\.pdparams$"):
        load_model_weights(model, tmp_path / "latest")
    (tmp_path / "empty").mkdir()
    with pytest.raises(WeightsError, match=r"empty is a folder; it holds no \.pdparams file$"):
        load_model_weights(model, tmp_path / "empty")
