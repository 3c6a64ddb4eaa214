"""``Global.engine: static``: each training step runs as a compiled static Program with oneDNN
kernels (paddle_dx/accel/), proven against the dygraph step before it trains, while the dygraph
model stays the source of truth."""

import logging
import signal

import numpy as np
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.accel import onednn_program
from paddle_dx.engine.callbacks import Callback
from paddle_dx.engine.steps import CompiledStep, DygraphStep
from paddle_dx.engine.trainer import Interrupted, Trainer

STATIC = {"Global.engine": "static"}
# pre-training (backbone frozen: frozen BatchNorm in the Program) then fine-tuning (a new Program)
STAGES = [
    {"name": "pre-training", "epochs": 1, "freeze": "backbone", "lr": 0.01},
    {"name": "fine-tuning", "epochs": 1, "freeze": "none", "lr": 0.001},
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("static") / "data", per_class=8, size=32)


def _config(data, out, **extra):
    # ResNet18 from scratch, dropout before the head, RandomFlip in Train (so no feature cache)
    return tiny_config(
        *data, out, **{"Arch.name": "ResNet18", "Arch.dropout": 0.5, "DataLoader.Train.sampler.batch_size": 2, **extra}
    )


def _weights(trainer):
    return {k: v.numpy().copy() for k, v in trainer.model.state_dict().items()}


def test_without_onednn_the_program_trains_exactly_like_dygraph(data, tmp_path, monkeypatch):
    """With plain kernels the static step is bit-for-bit the dygraph step: so weights pushed and
    pulled, Adam's moments, the cosine schedule, dropout's generator, frozen BatchNorm and the
    stage switch all behave as in dygraph."""
    extra = {"Stages": STAGES, "Optimizer.lr_schedule": "cosine"}
    dygraph = Trainer(_config(data, tmp_path / "dygraph", **extra))
    dygraph_result = dygraph.fit()
    monkeypatch.setattr(onednn_program, "ONEDNN_OPS", ())
    static = Trainer(_config(data, tmp_path / "static", **extra, **STATIC))
    static_result = static.fit()
    assert isinstance(static.strategy, CompiledStep) and static.engine == "static"
    assert [h["step_losses"] for h in static_result["history"]] == [h["step_losses"] for h in dygraph_result["history"]]
    want = _weights(dygraph)
    for name, value in _weights(static).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


def test_onednn_convolutions_give_the_dygraph_update(data, tmp_path):
    """oneDNN's convolution kernels differ from the plain ones in rounding only: one plain SGD step
    (lr x gradient; Adam's first step would amplify rounding in near-zero gradients to +-lr, and
    several steps of an untrained network amplify it too) moves every weight as dygraph does."""
    sgd = {
        "Optimizer.name": "Momentum",
        "Optimizer.momentum": 0.0,
        "Optimizer.lr": 0.01,
        "Global.epochs": 1,
        "Arch.dropout": 0.0,
        "DataLoader.Train.sampler.batch_size": 8,
    }  # the 8 training images: one step
    start = _weights(Trainer(_config(data, tmp_path / "start", **sgd)))
    dygraph, static = (
        Trainer(_config(data, tmp_path / "dygraph", **sgd)),
        Trainer(_config(data, tmp_path / "static", **sgd, **STATIC)),
    )
    dygraph.fit()
    static.fit()
    got, want = _weights(static), _weights(dygraph)
    moved = 0
    for name, w0 in start.items():
        step_dygraph, step_static = want[name] - w0, got[name] - w0
        scale = np.linalg.norm(step_dygraph)
        if scale > 0:
            moved += 1
            assert np.linalg.norm(step_static - step_dygraph) <= 1e-3 * scale, name
    assert moved > 60  # every conv, BatchNorm and the head moved


def _compiled(arch_name, front_shape=None, freeze="none"):
    """The checked compiled step the static engine would train with (None: it chose dygraph)."""
    from paddle_dx.config import load_config
    from paddle_dx.engine.loss import build_loss
    from paddle_dx.engine.steps import StageSpec, compile_checked
    from paddle_dx.models import apply_freeze, build_model

    config = load_config(raw={"Global": {"image_shape": [3, 32, 32]}, "Arch": {"name": arch_name, "class_num": 2}})
    model = build_model(config["Arch"])
    apply_freeze(model, freeze)
    spec = StageSpec(
        config["Arch"], config["Global"]["image_shape"], config["Loss"]["Train"], config["Optimizer"], freeze, [0, 1]
    )
    loss_fn = build_loss(spec.loss, "Loss.Train", [0, 1], 2)
    return compile_checked(model, spec, 0.001, None, loss_fn, front_shape)


def _onednn_types(step):
    return {op.type for op in step.program.global_block().ops if op.has_attr("use_mkldnn") and op.attr("use_mkldnn")}


def test_whole_images_compile_in_nhwc_with_batch_norm_and_max_pool_on_onednn():
    """A ResNet over whole images computes in NHWC (no reorder after each oneDNN convolution),
    with batch norm, relu and max pooling (forward and backward) on oneDNN too; each
    convolution's weight gradient is transposed back to OIHW before the optimizer (1 x 1 ones too:
    an L2 regulariser adds the weight, of OIHW shape, to it), and each relu_grad reads a plain copy
    of a convolution's input gradient. Over cached stage maps, and for networks without an NHWC
    form, the Program stays NCHW."""
    step, failures = _compiled("ResNet18")
    assert step is not None, failures
    ops = step.program.global_block().ops
    assert step.channels_last
    assert {op.attr("data_format") for op in ops if op.type == "conv2d"} == {"NHWC"}
    assert _onednn_types(step) == {
        "conv2d",
        "conv2d_grad",
        "batch_norm",
        "batch_norm_grad",
        "relu",
        "relu_grad",
        "pool2d",
        "pool2d_grad",
    }
    assert all(op.attr("pooling_type") == "max" for op in ops if op.type == "pool2d" and op.attr("use_mkldnn"))
    conv_grads = [op for op in ops if op.type == "conv2d_grad"]
    transposes = [op for op in ops if op.type == "transpose2" and op.output("Out")[0].endswith("@OIHW")]
    assert len(transposes) == len(conv_grads) >= 20  # every convolution of the ResNet-18
    transposed = {t.input("X")[0] for t in transposes}
    assert not any(
        n in transposed for op in ops if op.type == "merged_adam" for n in op.input("Grad")
    )  # the optimizer reads the OIHW copies
    # each relu_grad reading a convolution's input gradient reads its plain copy
    conv_input_grads = {op.output("Input@GRAD")[0] for op in conv_grads if op.output("Input@GRAD")}
    copies = {op.output("Out")[0]: op.input("X")[0] for op in ops if op.type == "transfer_layout"}
    relu_inputs = [op.input("Out@GRAD")[0] for op in ops if op.type == "relu_grad"]
    assert not set(relu_inputs) & conv_input_grads
    assert {copies[n] for n in relu_inputs if n in copies} <= conv_input_grads and len(copies) >= 8

    cached, _ = _compiled("ResNet18", front_shape=[128, 4, 4], freeze="until stage 2")
    assert not cached.channels_last and "batch_norm" not in _onednn_types(cached)
    assert {op.attr("data_format") for op in cached.program.global_block().ops if op.type == "conv2d"} == {"NCHW"}
    assert not _compiled("LeNet5")[0].channels_last


def test_the_parity_check_catches_a_scrambled_layout_and_falls_back(monkeypatch):
    """Without the weight-gradient transposes, the NHWC Program hands the optimizer rotated
    gradients: the check sees them differ from dygraph's and the NCHW Program is used instead."""
    monkeypatch.setattr(onednn_program, "_insert_reading", _only_plain_copies(onednn_program._insert_reading))
    step, _ = _compiled("ResNet18")
    assert step is not None and not step.channels_last
    assert {op.attr("data_format") for op in step.program.global_block().ops if op.type == "conv2d"} == {"NCHW"}


def _only_plain_copies(insert):
    def patched(block, position, op_type, name, suffix, attrs):
        return insert(block, position, op_type, name, suffix, attrs) if op_type != "transpose2" else name

    return patched


def test_a_different_update_rule_is_refused_and_the_stage_trains_in_dygraph(data, tmp_path, monkeypatch, caplog):
    """A Program whose optimizer differs from the dygraph one (here: AdamW's decoupled decay left
    out) fails the plain-kernel check to the last bit; the stage trains in dygraph, and one log line
    says which tensor differed."""
    from paddle_dx.accel import static_program

    monkeypatch.setattr(static_program, "_insert_decoupled_decay", lambda block, coeff: None)
    adamw = {"Optimizer.name": "AdamW", "Optimizer.weight_decay": 0.5, "Global.epochs": 1, **STATIC}
    trainer = Trainer(_config(data, tmp_path / "run", **adamw))
    assert type(trainer._stage_step()) is DygraphStep
    assert "this stage trains in dygraph" in caplog.text and "plain kernels: the update of" in caplog.text


def test_an_untested_paddle_gets_the_dygraph_step(data, tmp_path, monkeypatch, caplog):
    import paddle_dx.accel as accel

    assert accel.refusal("3.3.1") is None
    monkeypatch.setattr(accel.paddle, "__version__", "3.4.0")
    trainer = Trainer(_config(data, tmp_path / "run", **{"Global.epochs": 1, **STATIC}))
    assert type(trainer._stage_step()) is DygraphStep
    assert "Paddle 3.4.0 is not one the static program was tested on" in caplog.text


def test_interrupted_static_run_resumes_to_the_same_weights(data, tmp_path):
    """Stopped (as by SIGTERM) mid-epoch in the fine-tuning stage, saved, resumed: the same weights
    as a run never stopped; the checkpoint carries the Program's Adam moments."""
    extra = {"Stages": STAGES, **STATIC}
    reference = Trainer(_config(data, tmp_path / "reference", **extra))
    reference.fit()

    class StopAtSixthStep(Callback):  # epoch 2 (fine-tuning), step 2 of 4, as the SIGTERM handler notes it
        steps = 0

        def on_train_batch_end(self, trainer, epoch, step):
            self.steps += 1
            if self.steps == 6:
                trainer.stop_signal = signal.SIGTERM

    run = Trainer(_config(data, tmp_path / "run", **extra), callbacks=[StopAtSixthStep()])
    with pytest.raises(Interrupted, match="epoch 2, step 2"):
        run.fit()
    resumed = Trainer(
        _config(data, tmp_path / "run", **extra, **{"Global.checkpoints": str(tmp_path / "run" / "latest")})
    )
    resumed.fit()
    want = _weights(reference)
    for name, value in _weights(resumed).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


def test_static_step_over_cached_stage_maps_equals_dygraph(data, tmp_path, monkeypatch, caplog):
    """``until stage 2`` with the feature cache: the Program takes the cached stage-2 maps and runs
    stages 3-4 and the head, as the dygraph CachedForward does."""
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.steps")
    cached = {
        "Arch.freeze": "until stage 2",
        "Global.feature_cache": "on",
        "Global.feature_cache_engine": "dygraph",
        "DataLoader.Train.dataset.transform_ops": [{"ResizeImage": {}}, {"NormalizeImage": {}}],
    }
    dygraph = Trainer(_config(data, tmp_path / "dygraph", **cached))
    dygraph_result = dygraph.fit()
    monkeypatch.setattr(onednn_program, "ONEDNN_OPS", ())
    static = Trainer(_config(data, tmp_path / "static", **cached, **STATIC))
    static_result = static.fit()
    assert "from cached front outputs [128, 4, 4]" in caplog.text
    assert [h["step_losses"] for h in static_result["history"]] == [h["step_losses"] for h in dygraph_result["history"]]
    want = _weights(dygraph)
    for name, value in _weights(static).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


def test_a_step_legacy_static_mode_cannot_compile_trains_in_dygraph(data, tmp_path, caplog):
    """Paddle 3.3's legacy static mode lacks some APIs (global-norm gradient clipping calls
    paddle.sqrt, which has no legacy branch): the stage then trains in dygraph, with a warning,
    to the dygraph result."""
    clipped = {"Optimizer.grad_clip": 1.0, "Global.epochs": 1}
    dygraph = Trainer(_config(data, tmp_path / "dygraph", **clipped))
    dygraph.fit()
    static = Trainer(_config(data, tmp_path / "static", **clipped, **STATIC))
    static.fit()
    assert "this stage trains in dygraph" in caplog.text and type(static.strategy) is DygraphStep
    want = _weights(dygraph)
    for name, value in _weights(static).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


def test_class_weighted_loss_compiles_and_matches_dygraph(data, tmp_path, monkeypatch):
    """The esophagus and lung-nodule configs weight classes ('balanced'): CELoss spells the
    weighted mean with ops the legacy Program has, so those runs get the static engine too."""
    weighted = {"Loss.Train": [{"CELoss": {"class_weights": [1.0, 3.0], "label_smoothing": 0.1}}], "Global.epochs": 1}
    dygraph = Trainer(_config(data, tmp_path / "dygraph", **weighted))
    dygraph.fit()
    monkeypatch.setattr(onednn_program, "ONEDNN_OPS", ())
    static = Trainer(_config(data, tmp_path / "static", **weighted, **STATIC))
    static.fit()
    assert isinstance(static.strategy, CompiledStep)  # compiled, not the dygraph fallback
    want = _weights(dygraph)
    for name, value in _weights(static).items():
        np.testing.assert_array_equal(value, want[name], err_msg=name)


def test_compiling_a_step_leaves_the_process_parameter_names_unique():
    """OldIrGuard leaves a fresh unique-name generator behind: without restoring the process's,
    the next model would reuse earlier parameter names and in-process resumes would fail
    ('conv2d_0.w_0_moment1_1 should in state dict')."""
    import paddle

    from paddle_dx.config import load_config
    from paddle_dx.models import build_model

    config = load_config(raw={"Global": {"image_shape": [3, 32, 32]}, "Arch": {"name": "LeNet5", "class_num": 2}})
    first = build_model(config["Arch"])
    step, _ = _compiled("LeNet5")
    step(paddle.randn([2, 3, 32, 32]), paddle.to_tensor([0, 1]))
    second = build_model(config["Arch"])
    assert not {p.name for p in first.parameters()} & {p.name for p in second.parameters()}


@pytest.mark.parametrize("first, then", [("dygraph", "static"), ("static", "dygraph")])
def test_a_checkpoint_resumes_in_the_other_engine(data, tmp_path, first, then):
    """Both engines name the optimizer's moments after the same parameters, so a run can move
    between them (e.g. pre-trained on a GPU in dygraph, continued on a CPU in static)."""
    Trainer(_config(data, tmp_path / "run", **{"Global.epochs": 1, "Global.engine": first})).fit()
    resumed = Trainer(
        _config(
            data,
            tmp_path / "run",
            **{
                "Global.epochs": 2,
                "Global.engine": then,
                "Global.allow_config_change": True,
                "Global.checkpoints": str(tmp_path / "run" / "latest"),
            },
        )
    )
    owner = resumed._stage_step().optimizer_state_owner
    resumed.resume(str(tmp_path / "run" / "latest"))
    state = owner.state_dict()
    moments = [k for k in state if "moment1" in k]
    assert moments and any(
        float(abs(np.asarray(state[k].numpy() if hasattr(state[k], "numpy") else state[k])).max()) > 0 for k in moments
    )  # the loaded moments, not fresh zeros
    assert [h["epoch"] for h in resumed.fit()["history"]] == [1, 2]
