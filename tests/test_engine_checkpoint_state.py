"""A checkpoint's state.json is checked before a resume uses it: each edited or damaged field is
one line naming the file and the field (it used to be a traceback, or a hang for a negative
epoch), an edit that keeps the types is caught by the state's own digest, and a state written
before that digest existed still resumes, with one warning."""

import json
import logging
import shutil

import pytest
from conftest import tiny_config

from paddle_dx.engine.checkpoint import load_checkpoint, write_state
from paddle_dx.errors import WeightsError


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """(images, lists, run folder) of a 2-epoch tiny run with VisualDL on."""
    from conftest import make_tiny_dataset

    from paddle_dx.engine.trainer import Trainer

    root = tmp_path_factory.mktemp("state")
    images, lists = make_tiny_dataset(root / "data")
    Trainer(tiny_config(images, lists, root / "run", **{"Global.use_visualdl": True})).fit()
    return images, lists, root / "run"


def _edited(finished, tmp_path, drop_digest=False, **fields):
    """A copy of the run's checkpoint with ``fields`` written into its state.json by hand."""
    checkpoint = shutil.copytree(finished[2] / "latest", tmp_path / "latest")
    state = json.loads((checkpoint / "state.json").read_text())
    if drop_digest:
        state.pop("state_sha256")
    (checkpoint / "state.json").write_text(json.dumps(dict(state, **fields)))
    return checkpoint


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"epoch": "two"}, r"field 'epoch' = 'two' is not valid: expected an integer 0\.\.2"),
        ({"epoch": -3}, r"field 'epoch' = -3 is not valid"),
        ({"epoch": 7}, r"field 'epoch' = 7 is not valid: expected an integer 0\.\.2"),
        ({"step": True}, r"field 'step' = True is not valid: expected an integer >= 0"),
        ({"history": "x"}, r"field 'history' = 'x' is not valid: expected a list of objects"),
        ({"history": [{"epoch": "1"}]}, r"field 'history\[0\]\.epoch' = '1' is not valid"),
        ({"best": 5}, r"field 'best' = 5 is not valid: expected an object or null"),
        ({"best": {"epoch": 1, "score": "high", "metrics": {}}}, r"field 'best\.score' = 'high'"),
        ({"partial": {"loss_sum": 0.0, "correct": -1, "seen": 0}}, r"field 'partial\.correct' = -1"),
        ({"stage": 0}, r"field 'stage' = 0 is not valid: expected null \(the config has no Stages\)"),
        ({"world_size": 0}, r"field 'world_size' = 0 is not valid"),
    ],
)
def test_each_bad_field_is_one_line_naming_the_file_and_the_field(finished, tmp_path, fields, message):
    checkpoint = _edited(finished, tmp_path, **fields)
    with pytest.raises(WeightsError, match=rf"latest/state\.json: {message}") as caught:
        load_checkpoint(checkpoint, epochs=2)
    assert "\n" not in str(caught.value)


def test_an_edit_that_keeps_the_types_is_refused_by_the_states_digest(finished, tmp_path):
    checkpoint = _edited(finished, tmp_path, epoch=1)
    with pytest.raises(
        WeightsError, match=r"state\.json: the checkpoint state was edited or damaged after it was saved"
    ):
        load_checkpoint(checkpoint, epochs=2)
    state = json.loads((checkpoint / "state.json").read_text())
    write_state(checkpoint, state)  # as the writer signs it: accepted
    assert load_checkpoint(checkpoint, epochs=2)[2]["epoch"] == 1


def test_a_state_written_before_the_digest_resumes_with_one_warning(finished, tmp_path, caplog):
    checkpoint = _edited(finished, tmp_path, drop_digest=True)
    with caplog.at_level(logging.WARNING):
        _, _, state = load_checkpoint(checkpoint, epochs=2)
    assert state["epoch"] == 2
    warnings = [r.getMessage() for r in caplog.records if "without a digest" in r.getMessage()]
    assert len(warnings) == 1 and "state.json" in warnings[0]


def test_a_resume_of_a_bad_state_stops_before_anything_is_written(finished, tmp_path):
    """Through the trainer: a negative epoch (which once hung in a loader thread) and a step beyond
    the epoch's end in an older state (no digest) stop at once; the run folder, VisualDL records
    included, is left as it was."""
    from paddle_dx.engine.trainer import Trainer

    images, lists, run = finished
    copy = shutil.copytree(run, tmp_path / "run")
    before = sorted(str(p.relative_to(copy)) for p in copy.rglob("*"))
    state = json.loads((copy / "latest" / "state.json").read_text())
    state.pop("state_sha256")
    for fields, message in (({"epoch": -3}, "field 'epoch' = -3"), ({"step": 99}, "field 'step' = 99")):
        (copy / "latest" / "state.json").write_text(json.dumps(dict(state, **fields)))
        config = tiny_config(
            images, lists, copy, **{"Global.use_visualdl": True, "Global.checkpoints": str(copy / "latest")}
        )
        with pytest.raises(WeightsError, match=message):
            Trainer(config).fit()
        assert sorted(str(p.relative_to(copy)) for p in copy.rglob("*")) == before
