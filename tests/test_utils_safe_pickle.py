"""Weights files are loaded without running code from them (paddle_dx.utils.safe_pickle)."""

import os
import pickle
import re

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
    weights = dict(model.state_dict(), empty=paddle.zeros([0, 3]))  # protocol 2 pickles b"" as bytes()
    for name, state in {"m.pdparams": weights, "m.pdopt": optimizer.state_dict()}.items():
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


# ---- bounded: small hostile files cannot make a loader build something huge ---------------------


def _laughs(depth=30, fan=10):
    """A "billion laughs" list: ``fan`` references to the level below, ``depth`` times (10**30
    elements when walked, under a kilobyte pickled)."""
    x = []
    for _ in range(depth):
        x = [x] * fan
    return x


def _shared_dicts(depth=40):
    x = {"w": 1.0}
    for _ in range(depth):
        x = {"a": x, "b": x}
    return x


def _tuple_copies(elements=50_000, copies=5_000):
    """One list of ``elements`` ints, then ``copies`` calls of builtins.tuple on it (a 2 GB
    build from a 130 kB file): written opcode by opcode, as no Python object pickles this way."""
    P = pickle
    ints = P.MARK + (P.BININT1 + b"\x01") * elements + P.APPENDS
    body = P.PROTO + b"\x02" + P.EMPTY_LIST + P.BINPUT + b"\x00" + ints
    body += P.GLOBAL + b"builtins\ntuple\n" + P.BINPUT + b"\x01"
    body += P.EMPTY_LIST + P.MARK + (P.BINGET + b"\x01" + P.BINGET + b"\x00" + P.TUPLE1 + P.REDUCE) * copies
    return body + P.APPENDS + P.STOP


class _ArrayClaiming:
    """Pickles as an ndarray of ``shape`` and ``dtype`` whose data is ``data``; ``empty``: as the
    empty array of ``shape`` that NumPy's reconstruction allocates before any data arrives."""

    def __init__(self, shape, dtype, data=b"", empty=False):
        self.shape, self.dtype, self.data, self.empty = shape, dtype, data, empty

    def __reduce__(self):
        reconstruct = np.arange(1).__reduce__()[0]
        if self.empty:
            return reconstruct, (np.ndarray, self.shape, self.dtype.char.encode())
        return reconstruct, (np.ndarray, (0,), b"b"), (1, self.shape, self.dtype, False, self.data)


def _cycle():
    a = []
    a.append(a)
    return {"w": a}


def _deep(levels=200):
    x = [1.0]
    for _ in range(levels):
        x = [x]
    return {"w": x}


BOMBS = {
    "laughs.pdparams": (lambda: pickle.dumps({"w": _laughs()}, protocol=2), r"expands to more than [\d,]+ elements"),
    "dicts.pdparams": (lambda: pickle.dumps(_shared_dicts(), protocol=4), r"expands to more than [\d,]+ elements"),
    "tuples.pdparams": (_tuple_copies, r"builds more than [\d,]+ elements"),
    "huge_array.pdparams": (
        lambda: pickle.dumps({"w": _ArrayClaiming((10**6, 10**6), np.dtype("float32"))}, protocol=2),
        r"builds more than [\d,]+ bytes of arrays",
    ),
    "huge_empty.pdparams": (
        lambda: pickle.dumps({"w": _ArrayClaiming((10**6, 10**6), np.dtype("float64"), empty=True)}, protocol=2),
        r"builds more than [\d,]+ bytes of arrays",
    ),
    "objects.pdparams": (
        lambda: pickle.dumps({"w": _ArrayClaiming((2,), np.dtype("O"), [1, 2])}, protocol=2),
        r"holds an array of type dtype\('O'\), not numbers",
    ),
    "cycle.pdparams": (lambda: pickle.dumps(_cycle(), protocol=2), r"contains itself \(a reference cycle\)"),
    "deep.pdparams": (lambda: pickle.dumps(_deep(), protocol=2), r"is nested more than 100 levels"),
}

_LOAD_UNDER_LIMITS = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))  # 1 GiB: a bomb dies here, not the machine
resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
from paddle_dx.errors import WeightsError
from paddle_dx.models.weights import load_state
errors = {}
for path in sys.argv[1:]:
    try:
        load_state(path)
        errors[path] = None
    except WeightsError as exc:
        errors[path] = str(exc)
print(json.dumps(errors))
"""


def test_shared_reference_and_size_bombs_are_refused_fast_under_a_memory_limit(tmp_path):
    """Each file is a few hundred bytes to 130 kB; unbounded, each would hang a loader or take
    gigabytes. In a subprocess capped at 1 GiB and 60 s of CPU, each is refused with one line."""
    import json
    import subprocess
    import sys

    from torch_files import write_torch

    paths = {}
    for name, (make, _) in BOMBS.items():
        paths[name] = tmp_path / name
        paths[name].write_bytes(make())
    paths["laughs.pth"] = write_torch(tmp_path / "laughs.pth", {"w": np.ones(2, np.float32), "x": _laughs()})
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_UNDER_LIMITS, *map(str, paths.values())],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    errors = json.loads(done.stdout.splitlines()[-1])
    expected = {name: pattern for name, (_, pattern) in BOMBS.items()} | {"laughs.pth": r"expands to more than"}
    for name, pattern in expected.items():
        message = errors[str(paths[name])]
        assert message is not None, f"{name} was loaded"
        assert "\n" not in message
        assert re.match(rf"{re.escape(str(paths[name]))}: refused to load: the file {pattern}", message), message


def test_files_larger_than_the_limit_are_refused_before_reading(tmp_path, monkeypatch):
    from paddle_dx.utils import safe_pickle

    path = tmp_path / "big.pdparams"
    paddle.save({"w": paddle.ones([64])}, str(path))
    monkeypatch.setattr(safe_pickle, "MAX_FILE_BYTES", 100)
    with pytest.raises(
        WeightsError, match=r"big\.pdparams: [\d,]+ bytes, larger than any weights file paddle_dx reads"
    ):
        safe_load(path)
