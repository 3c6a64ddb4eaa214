"""Which precision a run trains in (``Global.use_amp``, ``amp_dtype``, ``amp_level``), decided once
per run with one log line where the config asks for more than this machine gives.

- GPU: Paddle's automatic mixed precision (``auto_cast`` + ``GradScaler``) in ``amp_dtype``.
- CPU, ``amp_dtype: bfloat16``, ``Global.engine: static``, a CPU with avx512_bf16 or AMX: the
  compiled step's forward convolutions compute in bf16 on oneDNN (accel/onednn_program.py), each
  stage's bf16 step checked against dygraph within bf16's rounding (accel/parity.py).
- Anything else on CPU trains in float32 and says why: float16 has no fast CPU kernels; dygraph
  on CPU never reaches oneDNN; a CPU without bf16 instructions would emulate it, slower.
"""

import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    gpu_amp: bool = False  # Paddle's auto_cast + GradScaler
    cpu_bf16: bool = False  # the static step's forward convolutions in bfloat16


def resolve_precision(g: dict, device: str, engine: str) -> Precision:
    """The precision this run trains in, from the Global section, the device and the engine
    (``resolve_engine``'s answer)."""
    if not g["use_amp"]:
        return Precision()
    if device == "gpu":
        return Precision(gpu_amp=True)
    why = _cpu_bf16_refusal(g["amp_dtype"], engine)
    if why:
        log.warning("Global.use_amp: %s; training in float32 on this CPU", why)
        return Precision()
    log.info("Global.use_amp: forward convolutions in bfloat16 on oneDNN (this CPU has bf16 instructions)")
    return Precision(cpu_bf16=True)


def _cpu_bf16_refusal(dtype: str, engine: str) -> str | None:
    if dtype != "bfloat16":
        return f"amp_dtype {dtype} runs on GPUs only (on CPU, Global.amp_dtype: bfloat16 with Global.engine: static)"
    if engine != "static":
        return "bfloat16 on CPU runs in the static engine's oneDNN convolutions (Global.engine: static)"
    from paddle_dx import accel  # private Paddle internals: imported only when asked for

    return accel.refusal() or accel.bf16_refusal()
