"""Read PaddleClas's own configs (``ppcls/configs/...yaml``) as paddle_dx configs.

A config is PaddleClas-style when it uses a key or op only PaddleClas has (``Global.class_num``,
``Optimizer.lr: {name: Cosine}``, ``DecodeImage``, ``Infer``, ...). Its keys are then translated
to the paddle_dx ones before validation, each translation logged ("PaddleClas key X -> paddle_dx
Y"), so the resolved ``config.yaml`` a run writes is a plain paddle_dx config. Keys without an
honest paddle_dx meaning are collected and refused together, in ONE error that says for each
why and what to use instead: a PaddleClas config otherwise fails one key per attempt.
docs/paddleclas.md is the table of what maps to what.
"""

import copy
import logging
import re
from typing import Any

from paddle_dx.config.choices import names_of
from paddle_dx.config.schema import SCHEMA, Key
from paddle_dx.errors import ConfigError
from paddle_dx.utils.registry import Registry

log = logging.getLogger(__name__)

BACKBONE_NAMES = names_of("Arch.name")
OPTIMIZER_NAMES = names_of("Optimizer.name")
LOSS_NAMES = names_of("Loss")
OP_NAMES = names_of("DataLoader.dataset.transform_ops")

PADDLECLAS_OPS = ("DecodeImage", "RandCropImage", "RandFlipImage", "CropImage")
PADDLECLAS_GLOBAL = ("class_num", "eval_during_train", "to_static", "use_gpu", "use_dali")
PADDLECLAS_SECTIONS = ("Infer", "AMP", "EMA", "Slim")

# Keys with no paddle_dx meaning, and what to do instead (anything else unknown is refused
# with the schema's did-you-mean).
REFUSED = {
    "EMA": "paddle_dx keeps no moving average of the weights; remove the EMA section",
    "Slim": "quantization and pruning are not part of paddle_dx; remove the Slim section",
    "Global.use_dali": "paddle_dx decodes with OpenCV, not NVIDIA DALI; remove it or set it to false",
    "Arch.use_ssld": "paddle_dx loads PaddleClas's plain ImageNet weights (Arch.pretrained: true)",
    "DataLoader.Train.dataset.batch_transform_ops": "batch ops (Mixup, CutMix) are not in paddle_dx; remove them",
    "Optimizer.no_weight_decay_name": "weight decay applies to every trainable tensor in paddle_dx",
    "Optimizer.one_dim_param_no_weight_decay": "weight decay applies to every trainable tensor in paddle_dx",
}


class Translation:
    """One config being translated: the output dict, the log of mappings, the refusals."""

    def __init__(self, raw) -> None:
        self.out = copy.deepcopy(raw)
        self.made = []
        self.refused = {}

    def mapped(self, key: str, target: str, note: str = "") -> None:
        self.made.append(f"PaddleClas key {key} -> paddle_dx {target}" + (f" ({note})" if note else ""))

    def refuse(self, key: str, why: str) -> None:
        self.refused.setdefault(key, why)

    def section(self, name: str) -> dict | None:
        value = self.out.get(name)
        return value if isinstance(value, dict) else None


# ---- detection -------------------------------------------------------------------------------


def _op_names(ops):
    return [next(iter(op)) if isinstance(op, dict) and op else op for op in ops or []]


def _transform_lists(raw):
    """(where, ops list) of every DataLoader list in ``raw``."""
    loaders = raw.get("DataLoader") if isinstance(raw.get("DataLoader"), dict) else {}
    for mode, section in loaders.items():
        dataset = section.get("dataset") if isinstance(section, dict) else None
        if isinstance(dataset, dict) and isinstance(dataset.get("transform_ops"), list):
            yield f"DataLoader.{mode}.dataset.transform_ops", dataset["transform_ops"]


def is_paddleclas(raw: dict) -> bool:
    """True when ``raw`` uses a key or op that only PaddleClas configs have."""
    g = raw.get("Global") if isinstance(raw.get("Global"), dict) else {}
    opt = raw.get("Optimizer") if isinstance(raw.get("Optimizer"), dict) else {}
    metric = raw.get("Metric") if isinstance(raw.get("Metric"), dict) else {}
    loaders = raw.get("DataLoader") if isinstance(raw.get("DataLoader"), dict) else {}
    datasets = [s.get("dataset") for s in loaders.values() if isinstance(s, dict)]
    return (
        any(k in raw for k in PADDLECLAS_SECTIONS)
        or any(k in g for k in PADDLECLAS_GLOBAL)
        or isinstance(opt.get("lr"), dict)
        or "Train" in metric
        or any(isinstance(d, dict) and d.get("name") == "ImageNetDataset" for d in datasets)
        or any(name in PADDLECLAS_OPS for _, ops in _transform_lists(raw) for name in _op_names(ops))
    )


# ---- Global, Arch, Optimizer, Metric, Loss ---------------------------------------------------

GLOBAL_RULES = Registry("PaddleClas Global key")


@GLOBAL_RULES.register(name="class_num")
def _class_num(t, g, value):
    arch = t.section("Arch")
    if arch is None:
        arch = t.out["Arch"] = {}
    if arch.get("class_num") not in (None, value):
        t.refuse("Global.class_num", f"= {value} but Arch.class_num = {arch['class_num']}: give one of them")
        return
    arch["class_num"] = value
    t.mapped("Global.class_num", "Arch.class_num", f"{value}")


@GLOBAL_RULES.register(name="eval_during_train")
def _eval_during_train(t, g, value):
    if value is False:
        g["eval_interval"] = int(g.get("epochs") or SCHEMA["Global"]["epochs"].default)
        t.mapped(
            "Global.eval_during_train: false",
            f"Global.eval_interval: {g['eval_interval']}",
            "evaluate only after the last epoch",
        )
    else:
        t.mapped("Global.eval_during_train: true", "(dropped)", "paddle_dx evaluates every Global.eval_interval epochs")


@GLOBAL_RULES.register(name="to_static")
def _to_static(t, g, value):
    g["engine"] = "static" if value else "dygraph"
    t.mapped(f"Global.to_static: {value}", f"Global.engine: {g['engine']}")


@GLOBAL_RULES.register(name="use_gpu")
def _use_gpu(t, g, value):
    device = "gpu" if value else "cpu"
    if g.get("device") not in (None, device):
        t.refuse("Global.use_gpu", f"= {value} but Global.device = {g['device']!r}: give Global.device only")
        return
    g["device"] = device
    t.mapped(f"Global.use_gpu: {value}", f"Global.device: {device}")


@GLOBAL_RULES.register(name="use_dali")
def _use_dali(t, g, value):
    if value:
        t.refuse("Global.use_dali", REFUSED["Global.use_dali"])
    else:
        t.mapped("Global.use_dali: false", "(dropped)", "paddle_dx decodes with OpenCV")


def _translate_global(t):
    g = t.section("Global")
    if g is None:
        return
    for key in [k for k in g if k in GLOBAL_RULES]:
        GLOBAL_RULES.get(key)(t, g, g.pop(key))
    device = g.get("device")
    if isinstance(device, str) and device not in SCHEMA["Global"]["device"].choices:
        t.refuse(
            "Global.device",
            f"'{device}': paddle_dx trains on cpu or gpu (or auto); Paddle's {device} builds are not supported",
        )


def _translate_amp(t):
    """PaddleClas's AMP section (on when present, unless ``use_amp: False``) -> Global.use_amp,
    amp_level, amp_loss_scale, amp_dynamic_loss_scaling (ppcls/engine/engine.py ``_init_amp``)."""
    if "AMP" not in t.out:
        return
    amp = t.out.pop("AMP") or {}
    g = t.section("Global")
    if g is None:
        g = t.out["Global"] = {}
    if not isinstance(amp, dict):
        t.refuse("AMP", f"{amp!r}: expected a section of keys (use_amp, level, scale_loss, ...)")
        return
    amp = dict(amp)
    g["use_amp"] = bool(amp) and bool(amp.pop("use_amp", True))
    t.mapped(
        "AMP.use_amp",
        f"Global.use_amp: {g['use_amp']}",
        "on the GPU; on the CPU float32, or bf16 convolutions with Global.amp_dtype: bfloat16 and engine static",
    )
    level = amp.pop("level", "O1")
    if level in ("O1", "O2"):
        g["amp_level"] = level
        t.mapped("AMP.level", f"Global.amp_level: {level}")
    else:
        t.refuse("AMP.level", f"{level!r}: O1 (listed ops in float16) or O2 (almost all ops)")
    for key, target in (("scale_loss", "amp_loss_scale"), ("use_dynamic_loss_scaling", "amp_dynamic_loss_scaling")):
        if key in amp:
            g[target] = amp.pop(key)
            t.mapped(f"AMP.{key}", f"Global.{target}: {g[target]}")
    promote = amp.pop("use_promote", False)
    if g["use_amp"] and level == "O2" and not promote:
        t.refuse(
            "AMP.use_promote", "False at O2: paddle_dx runs O2 with Paddle's default use_promote=True; set it True"
        )
    else:
        t.mapped("AMP.use_promote", "(dropped)", "it only matters at O2, where paddle_dx uses Paddle's default True")
    if "use_fp16_test" in amp:
        amp.pop("use_fp16_test")
        t.mapped("AMP.use_fp16_test", "(dropped)", "paddle_dx evaluates in float32")
    for key in amp:
        t.refuse(f"AMP.{key}", "no paddle_dx equivalent; AMP maps use_amp, level, scale_loss, use_dynamic_loss_scaling")


def _translate_arch(t):
    arch = t.section("Arch")
    if arch is not None and isinstance(arch.get("name"), str) and arch["name"] not in BACKBONE_NAMES:
        t.refuse(
            "Arch.name",
            f"'{arch['name']}' is not a paddle_dx backbone (it has no freeze stages or "
            f"Grad-CAM layer defined here); use one of {list(BACKBONE_NAMES)}",
        )


LR_RULES = Registry("PaddleClas lr name")


@LR_RULES.register(name="Cosine")
def _lr_cosine(t, opt, lr):
    opt["lr"], opt["lr_schedule"] = lr.pop("learning_rate", None), "cosine"
    t.mapped("Optimizer.lr.name: Cosine", "Optimizer.lr_schedule: cosine", "stepped per epoch, not per iteration")


@LR_RULES.register(name="Piecewise")
def _lr_piecewise(t, opt, lr):
    values, given = lr.pop("values", None), lr.pop("learning_rate", None)
    opt["decay_epochs"], opt["lr_values"], opt["lr_schedule"] = lr.pop("decay_epochs", None), values, "piecewise"
    opt["lr"] = values[0] if isinstance(values, list) and values else given
    t.mapped(
        "Optimizer.lr.name: Piecewise",
        "Optimizer.lr_schedule: piecewise",
        "decay_epochs -> Optimizer.decay_epochs, values -> Optimizer.lr_values, lr = values[0]",
    )


@LR_RULES.register(name="Constant")
def _lr_constant(t, opt, lr):
    opt["lr"], opt["lr_schedule"] = lr.pop("learning_rate", None), "constant"
    t.mapped("Optimizer.lr.name: Constant", "Optimizer.lr_schedule: constant")


def _translate_lr(t, opt):
    lr = dict(opt.pop("lr"))
    name = lr.pop("name", None)
    if name not in LR_RULES:
        t.refuse("Optimizer.lr.name", f"'{name}' has no paddle_dx schedule; use Cosine, Piecewise or Constant")
        return
    LR_RULES.get(name)(t, opt, lr)
    t.mapped("Optimizer.lr.learning_rate", "Optimizer.lr", f"{opt['lr']}")
    warmup = lr.pop("warmup_epoch", 0)
    if warmup:
        opt["warmup_epochs"] = warmup
        t.mapped(
            "Optimizer.lr.warmup_epoch",
            "Optimizer.warmup_epochs",
            f"{warmup}; per epoch: epoch k trains at lr*(k+1)/(N+1)",
        )
    start = lr.pop("warmup_start_lr", 0.0)
    if start:
        t.refuse("Optimizer.lr.warmup_start_lr", "paddle_dx's warm-up starts at lr/(warmup_epochs+1); remove it")
    if lr.pop("last_epoch", -1) != -1:
        t.refuse("Optimizer.lr.last_epoch", "resume with Global.checkpoints instead; remove it")
    lr.pop("by_epoch", None)
    for key in lr:
        t.refuse(f"Optimizer.lr.{key}", "not a parameter paddle_dx's schedules have")


def _translate_optimizer(t):
    opt = t.section("Optimizer")
    if opt is None:
        return
    if isinstance(opt.get("lr"), dict):
        _translate_lr(t, opt)
    reg = opt.get("regularizer")
    if isinstance(reg, dict) and not (reg.get("name") == "L2" and set(reg) <= {"name", "coeff"}):
        opt.pop("regularizer")
        t.refuse("Optimizer.regularizer", f"{reg!r}: only {{name: L2, coeff}} is supported")
    if isinstance(opt.get("name"), str) and opt["name"] not in OPTIMIZER_NAMES:
        t.refuse("Optimizer.name", f"'{opt['name']}' is not a paddle_dx optimizer; use one of {list(OPTIMIZER_NAMES)}")


def _translate_metric(t):
    metric = t.section("Metric")
    if metric is None:
        return
    if metric.pop("Train", None) is not None:
        t.mapped("Metric.Train", "(dropped)", "training accuracy and loss are always logged")
    items = metric.get("Eval")
    if not isinstance(items, list):
        return
    out = []
    for i, item in enumerate(items):
        name = next(iter(item)) if isinstance(item, dict) and item else item
        if name in ("TopkAcc", "Topk"):
            params = item.get(name) or {} if isinstance(item, dict) else {}
            ks = params.get("topk", params.get("k", [1]))
            out.append("Accuracy")
            t.mapped(
                f"Metric.Eval[{i}].{name}",
                "Metric.Eval: Accuracy",
                f"top-1 only; top-k for k in {ks} is not computed: with a few classes (top-2 of 2 is "
                f"always right) it says nothing",
            )
        else:
            out.append(item)
    metric["Eval"] = out


def _translate_loss(t):
    loss = t.section("Loss")
    for mode, items in (loss or {}).items():
        for i, item in enumerate(items if isinstance(items, list) else []):
            name = next(iter(item)) if isinstance(item, dict) and item else item
            if name not in LOSS_NAMES:
                t.refuse(f"Loss.{mode}[{i}].{name}", f"not a paddle_dx loss; use one of {list(LOSS_NAMES)}")
            elif name == "CELoss" and isinstance(item.get(name), dict) and "epsilon" in item[name]:
                item[name]["label_smoothing"] = item[name].pop("epsilon")
                t.mapped(f"Loss.{mode}[{i}].CELoss.epsilon", "CELoss.label_smoothing")


def _translate_infer(t):
    infer = t.out.pop("Infer", None)
    if infer is None:
        return
    t.mapped("Infer", "(dropped)", "the export carries DataLoader.Eval's preprocessing; predict with tools/infer.py")
    ops = infer.get("transforms") if isinstance(infer, dict) else None
    eval_ops = (((t.out.get("DataLoader") or {}).get("Eval") or {}).get("dataset") or {}).get("transform_ops")
    if isinstance(ops, list) and isinstance(eval_ops, list):
        scratch = Translation({})
        if translate_ops(scratch, ops, "Infer.transforms") != eval_ops:
            log.warning(
                "PaddleClas Infer.transforms differ from DataLoader.Eval's ops: paddle_dx exports and "
                "predicts with the Eval ops (one preprocessing for evaluation and deployment)"
            )


def _translate_loaders(t):
    loaders = t.section("DataLoader") or {}
    for mode, section in loaders.items():
        dataset = section.get("dataset") if isinstance(section, dict) else None
        if not isinstance(dataset, dict):
            continue
        if dataset.get("name") == "ImageNetDataset":
            dataset["name"] = "ImageListDataset"
            t.mapped(f"DataLoader.{mode}.dataset.name: ImageNetDataset", "ImageListDataset", "same list format")
        if isinstance(dataset.get("transform_ops"), list):
            dataset["transform_ops"] = translate_ops(
                t, dataset["transform_ops"], f"DataLoader.{mode}.dataset.transform_ops"
            )


# ---- transform ops ---------------------------------------------------------------------------

OP_RULES = Registry("PaddleClas transform op")
INTERPOLATION = {
    None: "linear",
    "bilinear": "linear",
    "bicubic": "cubic",
    "nearest": "nearest",
    "area": "area",
    "linear": "linear",
    "cubic": "cubic",
}  # PaddleClas's names (and paddle_dx's own)
NUMBER = r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_scale(value: object, where: str) -> float:
    """``"1.0/255.0"``, ``"1./255."``, ``0.00392157`` -> float, without eval: a number or a fraction."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = re.fullmatch(rf"\s*({NUMBER})\s*(?:/\s*({NUMBER}))?\s*", value) if isinstance(value, str) else None
    if not match or (match.group(2) is not None and float(match.group(2)) == 0):
        raise ConfigError(f"{where}.NormalizeImage.scale = {value!r}: expected a number or a fraction like 1.0/255.0")
    return float(match.group(1)) / (float(match.group(2)) if match.group(2) else 1.0)


def _hw(size):
    """PaddleClas sizes are int or [w, h] (cv2's order); paddle_dx's are int or [h, w]."""
    return [size[1], size[0]] if isinstance(size, list) and len(size) == 2 else size


def _take(params, where, name, accepted, t):
    """Refuse parameters of a PaddleClas op that paddle_dx does not honour."""
    for key in params:
        if key not in accepted:
            t.refuse(f"{where}.{name}.{key}", f"no paddle_dx equivalent; {name} maps with {list(accepted)}")


def _resize_params(t, params, where, name):
    """interpolation/backend of PaddleClas's cv2 resizes -> paddle_dx's interpolation name."""
    interp, backend = params.pop("interpolation", None), params.pop("backend", "cv2")
    if str(backend).lower() != "cv2":
        t.refuse(f"{where}.{name}.backend", f"'{backend}': paddle_dx resizes with OpenCV (cv2) only")
    if interp not in INTERPOLATION:
        t.refuse(f"{where}.{name}.interpolation", f"'{interp}': use one of {[k for k in INTERPOLATION if k]}")
        return "linear"
    return INTERPOLATION[interp]


@OP_RULES.register(name="DecodeImage")
def _decode(t, params, where):
    _take(params, where, "DecodeImage", ("to_rgb", "channel_first", "to_np"), t)
    if params.get("to_rgb", True) is not True or params.get("channel_first", False) is not False:
        t.refuse(
            f"{where}.DecodeImage",
            f"{params}: paddle_dx always decodes to RGB, channels last "
            f"(to_rgb: true, channel_first: false); other layouts are not supported",
        )
    t.mapped(f"{where}.DecodeImage", "(dropped)", "decoding to RGB HWC is implicit")
    return []


@OP_RULES.register(name="RandCropImage")
def _rand_crop(t, params, where):
    params = dict(params)
    interp = _resize_params(t, params, where, "RandCropImage")
    _take(params, where, "RandCropImage", ("size", "scale", "ratio"), t)
    if interp != "linear":
        t.refuse(f"{where}.RandCropImage.interpolation", "RandomResizedCrop resizes bilinearly only")
    out = {"size": _hw(params.get("size"))}
    out.update({k: params[k] for k in ("scale", "ratio") if params.get(k) is not None})
    t.mapped(f"{where}.RandCropImage", f"RandomResizedCrop {out}", "same area/aspect ranges")
    return [{"RandomResizedCrop": out}]


@OP_RULES.register(name="RandFlipImage")
def _rand_flip(t, params, where):
    _take(params, where, "RandFlipImage", ("flip_code",), t)
    code = params.get("flip_code", 1)
    flips = {1: {"horizontal": 0.5, "vertical": 0.0}, 0: {"horizontal": 0.0, "vertical": 0.5}}
    if code not in flips:
        t.refuse(
            f"{where}.RandFlipImage.flip_code",
            f"{code!r}: 1 (left-right) and 0 (up-down) map to RandomFlip; "
            f"-1 (both at once, a 180 degree turn) has no paddle_dx op",
        )
        return []
    t.mapped(f"{where}.RandFlipImage {{flip_code: {code}}}", f"RandomFlip {flips[code]}")
    return [{"RandomFlip": flips[code]}]


@OP_RULES.register(name="CropImage")
def _crop(t, params, where):
    _take(params, where, "CropImage", ("size",), t)
    t.mapped(f"{where}.CropImage", "CenterCrop")
    return [{"CenterCrop": {"size": _hw(params.get("size"))}}]


@OP_RULES.register(name="ResizeImage")
def _resize(t, params, where):
    params = dict(params)
    params["interpolation"] = _resize_params(t, params, where, "ResizeImage")
    _take(params, where, "ResizeImage", ("size", "resize_short", "interpolation"), t)
    if params.get("size") is not None:
        params["size"] = _hw(params["size"])
    t.mapped(f"{where}.ResizeImage", f"ResizeImage {params}", "PaddleClas's bilinear unless named")
    return [{"ResizeImage": params}]


@OP_RULES.register(name="NormalizeImage")
def _normalize(t, params, where):
    params = dict(params)
    if "preset" in params:  # a paddle_dx NormalizeImage in a PaddleClas-style config
        return [{"NormalizeImage": params}]
    _take(params, where, "NormalizeImage", ("scale", "mean", "std", "order", "output_fp16", "channel_num"), t)
    order = params.pop("order", "")
    if order not in ("", "hwc"):
        t.refuse(
            f"{where}.NormalizeImage.order",
            f"{order!r}: paddle_dx normalises channels-last images (order: '' or hwc) and transposes at the end",
        )
    if params.pop("output_fp16", False) or params.pop("channel_num", 3) != 3:
        t.refuse(f"{where}.NormalizeImage", "output_fp16 and channel_num: 4 are not supported (float32, 3 channels)")
    out = {"mean": params.get("mean", [0.485, 0.456, 0.406]), "std": params.get("std", [0.229, 0.224, 0.225])}
    try:
        out["scale"] = parse_scale(params.get("scale", 1.0 / 255.0), where)
    except ConfigError as exc:
        t.refuse(f"{where}.NormalizeImage.scale", str(exc))
    t.mapped(f"{where}.NormalizeImage", f"NormalizeImage {out}")
    return [{"NormalizeImage": out}]


@OP_RULES.register(name="ToCHWImage")
def _to_chw(t, params, where):
    t.mapped(f"{where}.ToCHWImage", "(dropped)", "every pipeline ends channels-first")
    return []


def translate_ops(t: Translation, ops: list, where: str) -> list:
    """PaddleClas transform ops -> paddle_dx ops; other (paddle_dx) ops pass unchanged."""
    out = []
    for i, item in enumerate(ops):
        name = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else item
        if not isinstance(name, str):
            out.append(item)
            continue
        params = (item.get(name) if isinstance(item, dict) else None) or {}
        if name == "ToCHWImage" and i != len(ops) - 1:
            t.refuse(f"{where}[{i}].ToCHWImage", "must be the last op (paddle_dx ops work on channels-last images)")
        elif name in OP_RULES:
            out += OP_RULES.get(name)(t, dict(params), f"{where}[{i}]")
        elif name in OP_NAMES:
            out.append(item)
        else:
            t.refuse(f"{where}[{i}].{name}", f"not a paddle_dx op; available: {list(OP_NAMES)}")
    return out


# ---- unknown keys ----------------------------------------------------------------------------


def _unknown(node, schema, path, t):
    """Refuse every key of ``node`` the schema lacks (all of them, not just the first)."""
    for name, value in node.items():
        key = f"{path}.{name}" if path else str(name)
        if name not in schema:
            why = REFUSED.get(key) or REFUSED.get(re.sub(r"^DataLoader\.\w+\.", "DataLoader.Train.", key))
            t.refuse(key, why or f"no paddle_dx key{Registry.suggest(name, schema)}")
        elif not isinstance(schema[name], Key) and isinstance(value, dict):
            _unknown(value, schema[name], key, t)


STEPS = (
    _translate_global,
    _translate_amp,
    _translate_arch,
    _translate_optimizer,
    _translate_metric,
    _translate_loss,
    _translate_loaders,
    _translate_infer,
)


def translate(raw: Any, source: str = "config") -> Any:
    """``raw`` unchanged unless PaddleClas-style; else its paddle_dx translation, or one
    ConfigError listing every key that does not map (with why, and what to use)."""
    if not isinstance(raw, dict) or not is_paddleclas(raw):
        return raw
    t = Translation(raw)
    for step in STEPS:
        step(t)
    _unknown(t.out, SCHEMA, "", t)
    if t.refused:
        lines = "\n".join(f"  - {key}: {why}" for key, why in t.refused.items())
        raise ConfigError(
            f"{source}: PaddleClas config has {len(t.refused)} key(s) paddle_dx cannot honour "
            f"(see docs/paddleclas.md):\n{lines}"
        )
    for line in t.made:
        log.info(line)
    return t.out
