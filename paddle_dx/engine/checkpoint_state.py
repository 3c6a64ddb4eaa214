"""What a checkpoint's ``state.json`` may hold, checked field by field before a resume uses it.

The state steers the resumed loop (where it starts, what it appends to, what it compares with):
an edited or damaged field used to end in a traceback deep in training, or, with a negative
epoch, in a loader thread that hung and ignored SIGTERM. Every field is therefore checked for
its type and range, and the whole state carries a SHA-256 of its own content (``state_sha256``,
over every other field), so an edit is refused even when it is well-typed. A state written before
that digest existed still resumes, with one warning, after the field checks.
"""

import logging
from pathlib import Path

from paddle_dx.errors import WeightsError
from paddle_dx.utils.hashing import json_sha256

log = logging.getLogger(__name__)

DIGEST = "state_sha256"


def state_digest(state: dict) -> str:
    """SHA-256 of ``state`` as JSON with sorted keys, without its own digest field."""
    return json_sha256({k: v for k, v in state.items() if k != DIGEST})


def signed(state: dict) -> dict:
    """``state`` (already JSON-shaped: as json.loads returns it) with its digest added."""
    return dict(state, **{DIGEST: state_digest(state)})


def check_digest(state: dict, file: Path | str) -> None:
    """Refuse a state whose content is not the one its writer signed; warn when it has no digest."""
    if DIGEST not in state:
        log.warning(
            "%s was written by an older paddle_dx without a digest of its state: its fields are checked, "
            "but an edit to them cannot be detected",
            file,
        )
        return
    if state[DIGEST] != state_digest(state):
        raise WeightsError(
            f"{file}: the checkpoint state was edited or damaged after it was saved ({DIGEST} does not match "
            f"its content); resume from another checkpoint or start the run again"
        )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Fields:
    """Checks the fields of one state, each failure one line naming the file and the field."""

    def __init__(self, state, file) -> None:
        self.state, self.file = state, file

    def fail(self, field, value, expected):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise WeightsError(f"{self.file}: field '{field}' = {shown} is not valid: expected {expected}")

    def integer(self, field, value, low, high=None):
        if not _is_int(value) or value < low or (high is not None and value > high):
            self.fail(field, value, f"an integer {low}..{high}" if high is not None else f"an integer >= {low}")

    def mapping(self, field, value, optional=False):
        if not (isinstance(value, dict) or (optional and value is None)):
            self.fail(field, value, "an object" + (" or null" if optional else ""))

    def records(self, field, value):
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            self.fail(field, value, "a list of objects")

    def numbers(self, field, value):
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            self.fail(field, value, "a list of numbers")


def check_fields(state: object, file: Path | str, epochs: int | None = None, stages: int = 0) -> None:
    """Every field a resume reads has the type and range a run writes.

    ``epochs``: the resuming config's Global.epochs, the bound of ``epoch`` when the state has no
    config of its own (a state with one is bounded by its own run's epochs); ``stages``: how many
    ``Stages`` that config has."""
    if not isinstance(state, dict):
        raise WeightsError(f"{file}: the checkpoint state is a JSON {type(state).__name__}, not an object")
    f = _Fields(state, file)
    for field in ("epoch", "step", "history", "best"):
        if field not in state:
            raise WeightsError(f"{file}: the checkpoint state has no field '{field}'")
    f.mapping("config", state.get("config"), optional=True)
    own = ((state.get("config") or {}).get("Global") or {}).get("epochs")
    limit = own if _is_int(own) and own >= 1 else epochs
    f.integer("epoch", state["epoch"], 0, limit)
    f.integer("step", state["step"], 0)
    f.records("history", state["history"])
    for i, record in enumerate(state["history"]):
        f.integer(f"history[{i}].epoch", record.get("epoch"), 1, limit)
        if record.get("val_score") is not None and not _is_number(record["val_score"]):
            f.fail(f"history[{i}].val_score", record["val_score"], "a number or null")
    best = state["best"]
    f.mapping("best", best, optional=True)
    if best is not None:
        f.integer("best.epoch", best.get("epoch"), 1, limit)
        if not _is_number(best.get("score")):  # NaN is a diverged run's score, not an edit
            f.fail("best.score", best.get("score"), "a number")
        f.mapping("best.metrics", best.get("metrics"))
    partial = state.get("partial")
    f.mapping("partial", partial, optional=True)
    if partial:
        if not _is_number(partial.get("loss_sum")):
            f.fail("partial.loss_sum", partial.get("loss_sum"), "a number")
        f.integer("partial.correct", partial.get("correct"), 0)
        f.integer("partial.seen", partial.get("seen"), 0)
        f.numbers("partial.step_losses", partial.get("step_losses", []))
    for field in ("config_changes", "stage_results"):
        f.records(field, state.get(field) or [])
    f.mapping("scheduler", state.get("scheduler"), optional=True)
    if state.get("stage") is not None:
        if not stages:
            f.fail("stage", state["stage"], "null (the config has no Stages)")
        f.integer("stage", state["stage"], 0, stages - 1)
    for field in ("world_size", "batch_size"):
        if field in state:
            f.integer(field, state[field], 1)
