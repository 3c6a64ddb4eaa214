"""Resuming with a different config is refused, naming every key that differs.

A checkpoint continues one run. Resumed with another ``Optimizer.lr`` (or data, seed, epochs ...)
it would silently become a different run that its manifest misdescribes and that
``tools/verify_run.py`` cannot reproduce. Keys that cannot change a result (where to write,
how often to print, loader workers) may differ. To train on with changed settings, either start a
new run from the checkpoint's weights (``Global.pretrained_model``), or opt in with
``Global.allow_config_change: true``: the change is then recorded (metrics.json, manifest, the
history's next epoch) and ``tools/verify_run.py`` replays the run in the same pieces.
"""

from typing import Any

from paddle_dx.config.reference import display_key, leaves
from paddle_dx.errors import ConfigError

# dotted keys (DataLoader.* = any mode) that may differ between a run and its resume
FREE_KEYS = (
    "Global.checkpoints",
    "Global.output_dir",
    "Global.pretrained_model",
    "Global.print_batch_step",
    "Global.allow_config_change",
    "Global.overwrite_output_dir",
    "Global.use_visualdl",
    "Global.feature_cache_max_gb",
    "Global.preprocess_cache",
    "DataLoader.*.loader.num_workers",
    "DataLoader.*.loader.use_shared_memory",
)


def _free(key):
    return key in FREE_KEYS or display_key(key) in FREE_KEYS


def config_changes(saved: dict, current: dict) -> list[tuple[str, Any, Any]]:
    """[(dotted key, saved value, current value)] for every result-affecting key that differs.

    Keys only one side has come from another version of paddle_dx (a key added or removed since
    the checkpoint was written): that is a change of code, which the manifest records, not of
    the run's settings, so they are not compared."""
    old, new = dict(leaves(saved)), dict(leaves(current))
    return [(k, old[k], new[k]) for k in old if k in new and not _free(k) and old[k] != new[k]]


def check_resume_config(saved: dict, current: dict, checkpoint: object) -> list[tuple[str, Any, Any]]:
    """The differences (see config_changes) when ``current`` may resume the run ``saved`` began;
    a ConfigError listing them when it would change the run and Global.allow_config_change is off."""
    changes = config_changes(saved, current)
    if changes and not current["Global"].get("allow_config_change"):
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in changes[:12])
        more = f" (and {len(changes) - 12} more)" if len(changes) > 12 else ""
        raise ConfigError(
            f"{checkpoint}: resuming with a config that changes the run ({listed}{more}); resume "
            f"with the run's own config ({checkpoint}/../config.yaml), or start a new run from its "
            f"weights with -o Global.pretrained_model={checkpoint}/model.pdparams, or record the "
            f"change with -o Global.allow_config_change=true"
        )
    return changes
