"""Where each stage of a ``Stages:`` schedule starts and ends, in epochs.

The gastric paper trains in two steps: "pre-training" with the backbone frozen and a new head,
then "fine-tuning" with the backbone unfrozen at a lower learning rate. paddle_dx runs both in
one Trainer; these helpers map an epoch to its stage so a resumed run lands in the right one.
"""


def stage_bounds(stages: list[dict] | None) -> list[tuple[int, int]]:
    """[(first epoch, end epoch exclusive), ...], 0-based, one pair per stage."""
    bounds, start = [], 0
    for stage in stages or []:
        bounds.append((start, start + int(stage["epochs"])))
        start += int(stage["epochs"])
    return bounds


def stage_at(stages: list[dict] | None, epoch: int) -> int | None:
    """Index of the stage that trains ``epoch`` (0-based), or None without stages."""
    for index, (start, end) in enumerate(stage_bounds(stages)):
        if start <= epoch < end:
            return index
    return None


def is_stage_end(stages: list[dict] | None, epoch: int) -> bool:
    """True when ``epoch`` (0-based) is the last epoch of its stage."""
    index = stage_at(stages, epoch)
    return index is not None and epoch + 1 == stage_bounds(stages)[index][1]
