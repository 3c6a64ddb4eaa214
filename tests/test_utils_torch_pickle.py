"""PyTorch state dicts (.pth, legacy and zip layouts) are read without torch and without running
pickle code (paddle_dx.utils.torch_pickle); hostile, truncated and lying files fail fast with
one line naming the file."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
from torch_files import write_torch

from paddle_dx.errors import WeightsError
from paddle_dx.models.weights import load_state
from paddle_dx.utils.torch_pickle import is_torch_file, load_torch_state

LAYOUTS = ["legacy", "zip"]


def _state():
    rng = np.random.default_rng(0)
    return {
        "conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "bn.running_var": rng.random(4).astype(np.float32),
        "bn.num_batches_tracked": np.array(12, dtype=np.int64),
        "fc.weight": rng.standard_normal((2, 4)).astype(np.float16),
    }


class _CreatesFile:
    """Unpickling this runs os.system: what a hostile .pth would do."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.system, (f"touch {self.target}",)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_both_layouts_read_back_every_tensor_exactly(tmp_path, layout):
    state = _state()
    path = write_torch(tmp_path / "w.pth", state, layout)
    assert is_torch_file(path)
    read = load_torch_state(path)
    assert list(read) == list(state)
    for name, value in state.items():
        assert read[name].dtype == value.dtype and read[name].shape == value.shape
        np.testing.assert_array_equal(read[name], value)
    tensors = load_state(path)  # the models layer's entry point: the same, as Paddle tensors
    np.testing.assert_array_equal(tensors["conv.weight"].numpy(), state["conv.weight"])


def test_a_paddle_pickle_is_not_taken_for_a_torch_file(tmp_path):
    path = tmp_path / "w.pdparams"
    path.write_bytes(pickle.dumps({"w": np.ones(2)}, protocol=2))
    assert not is_torch_file(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_pth_that_would_run_code_is_refused_before_it_runs(tmp_path, layout):
    target = tmp_path / "pwned"
    path = write_torch(tmp_path / "evil.pth", {"w": np.ones(2, np.float32), "x": _CreatesFile(target)}, layout)
    with pytest.raises(WeightsError, match=r"evil\.pth: refused to load: the file refers to posix\.system"):
        load_torch_state(path)
    assert not target.exists()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    "value, refers_to",
    [
        (np.ones(2), r"numpy"),  # a bare NumPy array: fine in .pdparams, never in a state dict
        (pickle.loads, r"pickle\.loads"),
        (zipfile.ZipFile, r"zipfile\.ZipFile"),
    ],
)
def test_globals_outside_the_allow_list_are_refused(tmp_path, layout, value, refers_to):
    path = write_torch(tmp_path / "odd.pth", {"w": np.ones(2, np.float32), "x": [value]}, layout)
    with pytest.raises(WeightsError, match=rf"odd\.pth: refused to load: the file refers to .*{refers_to}"):
        load_torch_state(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_truncated_files_are_named(tmp_path, layout):
    whole = write_torch(tmp_path / "whole.pth", _state(), layout).read_bytes()
    for cut in (len(whole) - 10, len(whole) // 2, 40):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(whole[:cut])
        with pytest.raises(
            WeightsError, match=rf"cut{cut}\.pth: (not a readable PyTorch weights file|refused to load)"
        ):
            load_torch_state(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_storage_claiming_more_elements_than_the_file_holds_is_refused_before_reading(tmp_path, layout):
    path = write_torch(tmp_path / "big.pth", {"w": np.ones(4, np.float32)}, layout, numel={"0": 10**12})
    with pytest.raises(WeightsError, match=r"big\.pth: refused to load: the file builds more than [\d,]+ bytes"):
        load_torch_state(path)


def test_a_legacy_storage_whose_byte_count_disagrees_is_refused(tmp_path):
    path = write_torch(tmp_path / "w.pth", {"w": np.ones(4, np.float32)}, "legacy")
    data = bytearray(path.read_bytes())
    at = data.rindex((4).to_bytes(8, "little"))  # the element count before the storage bytes
    data[at : at + 8] = (3).to_bytes(8, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"w\.pth: refused to load: the file stores 3 elements for storage 0"):
        load_torch_state(path)


def test_a_zip_storage_of_another_size_is_refused(tmp_path):
    path = write_torch(tmp_path / "w.pth", {"w": np.ones(4, np.float32)}, "zip")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["archive/data/0"] = members["archive/data/0"][:8]
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(WeightsError, match=r"w\.pth: refused to load: the file stores a storage 0 of another size"):
        load_torch_state(path)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    """A tensor's size and strides must stay inside the storage the file gives it: a 4-element
    storage seen as a 10**6 x 10**6 tensor with zero strides would otherwise be copied out."""
    path = write_torch(tmp_path / "w.pth", {"w": np.ones((4, 4), np.float32)}, "legacy", numel={"0": 4})
    with pytest.raises(WeightsError, match=r"w\.pth: refused to load: .*past its storage of 4"):
        load_torch_state(path)


def test_a_zip_that_is_not_a_torch_file_is_named(tmp_path):
    path = tmp_path / "other.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(
        WeightsError, match=r"other\.pth: refused to load: the file is a zip file without the one data\.pkl"
    ):
        load_torch_state(path)


def test_a_big_endian_legacy_file_is_refused(tmp_path):
    path = write_torch(tmp_path / "w.pth", {"w": np.ones(2, np.float32)}, "legacy")
    out = io.BytesIO()
    stream = io.BytesIO(path.read_bytes())
    for _ in range(2):
        pickle.dump(pickle.load(stream), out, protocol=2)
    pickle.load(stream)
    pickle.dump({"protocol_version": 1001, "little_endian": False}, out, protocol=2)
    out.write(stream.read())
    path.write_bytes(out.getvalue())
    with pytest.raises(WeightsError, match=r"w\.pth: refused to load: the file was written on a big-endian machine"):
        load_torch_state(path)
