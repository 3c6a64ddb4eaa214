"""Optimizer state keyed by structured parameter names, so it survives Paddle's naming counter."""


def rename_optimizer_state(opt_state: dict, names: dict) -> dict:
    """Rename the per-parameter keys (``<parameter name>_moment1_0`` ...) by ``names``.

    Paddle names parameters from a process-wide counter (``conv2d_2.w_0``), so the same model
    gets other names in a process that built other layers first (a notebook, a test, a study
    script). Checkpoints therefore store the optimizer keyed by structured names
    (``backbone.conv1.weight_moment1_0``), mapped back to the live names on load.
    """
    by_length = sorted(names, key=len, reverse=True)
    out = {}
    for key, value in opt_state.items():
        old = next((n for n in by_length if key.startswith(n + "_")), None)
        out[names[old] + key[len(old) :] if old else key] = value
    return out
