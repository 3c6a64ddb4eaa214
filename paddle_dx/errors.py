"""Exceptions that carry a message meant for the user (printed without a traceback by tools/)."""


class PaddleDxError(Exception):
    """Base class: a problem with the user's input that a clear message can explain."""


class ConfigError(PaddleDxError):
    """The YAML config or an ``-o`` override is wrong (unknown key, wrong type, bad value)."""


class DataError(PaddleDxError):
    """A data file (image, list file, label list) is missing, unreadable or inconsistent."""


class ImageReadError(DataError):
    """One image could not be decoded; ``path`` names it."""

    def __init__(self, path, problem) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{shown_path(path)}: {problem}")


def shown_path(path: object, most: int = 300) -> str:
    """``path`` as an error line shows it: a path of a megabyte is cut, with its length."""
    text = str(path)
    return text if len(text) <= most else f"{text[: most - 40]}... ({len(text):,} characters)"


class WeightsError(PaddleDxError):
    """Pretrained weights or a checkpoint cannot be found, fetched or loaded."""


class TrainingDiverged(PaddleDxError):
    """The training loss became NaN/inf before any epoch was evaluated: no model to keep."""


class DiskFull(PaddleDxError):
    """A write failed because the disk (or the user's quota) is full; the message names the file."""
