"""Does every class appear in a split? A class missing from training cannot be learned; one
missing from evaluation leaves its sensitivity and the AUC undefined."""

import logging
from collections import Counter
from collections.abc import Sequence

from paddle_dx.errors import DataError

log = logging.getLogger(__name__)


def check_class_coverage(samples: Sequence[tuple[str, int]], class_num: int, mode: str, source: object) -> list[int]:
    """Stop if a Train split lacks a class; warn (and return the missing ids) for other splits."""
    counts = Counter(label for _, label in samples)
    missing = [c for c in range(class_num) if counts[c] == 0]
    if not missing:
        return []
    what = (
        f"{source}: no images of class label(s) {missing} in the {mode} split "
        f"(per-class counts {dict(sorted(counts.items()))}, Arch.class_num={class_num})"
    )
    if mode == "Train":
        raise DataError(f"{what}; a model cannot learn a class it never sees")
    log.warning("%s; that class's sensitivity and the AUC will be undefined", what)
    return missing
