"""The optimizers paddle_dx builds: always Paddle's multi-tensor kernels, in dygraph and in the
static program (the per-tensor ones slow every later matmul in the process on CPU, PERF_NOTES.md
pitfall 1: timed by benchmarks/optimizer_slowdown.py, never here), and AdamW as Paddle defines it.
"""

import paddle

from paddle_dx.config import load_config
from paddle_dx.engine.optimizer import build_optimizer


def _built(name, model, weight_decay=0.0):
    config = load_config(raw={"Optimizer": {"name": name, "lr": 0.01, "weight_decay": weight_decay}})
    return build_optimizer(config["Optimizer"], model, epochs=1)[0]


def test_every_registered_optimizer_runs_the_multi_tensor_kernel():
    """Each optimizer's step goes through Paddle's multi-tensor path, which fills its per-dtype
    parameter groups (a subclass not named 'Adam' or 'Momentum' keeps ``_use_multi_tensor`` but
    silently runs the per-tensor kernel: this checks what ran, not the flag)."""
    from paddle_dx.engine.optimizer import OPTIMIZERS

    for name in OPTIMIZERS.names():
        model = paddle.nn.Linear(4, 2)
        optimizer = _built(name, model, weight_decay=0.01 if name == "AdamW" else 0.0)
        model(paddle.randn([3, 4])).mean().backward()
        optimizer.step()
        assert optimizer._param_dict["FP32_DenseTensor"][0], f"{name} ran the per-tensor kernel"


def test_adamw_matches_paddles_adamw():
    paddle.seed(0)
    ours_model = paddle.nn.Linear(16, 4)
    ref_model = paddle.nn.Linear(16, 4)
    ref_model.set_state_dict(ours_model.state_dict())
    ours = _built("AdamW", ours_model, weight_decay=0.1)
    ref = paddle.optimizer.AdamW(learning_rate=0.01, parameters=ref_model.parameters(), weight_decay=0.1)
    x = paddle.randn([8, 16])
    for _ in range(5):
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            model(x).square().mean().backward()
            opt.step()
            opt.clear_grad()
    for a, b in zip(ours_model.parameters(), ref_model.parameters()):
        assert float((a - b).abs().max()) < 1e-6
    assert float((ours_model.weight - ref_model.weight).abs().max()) < 1e-6


def test_the_static_program_updates_with_multi_tensor_kernels_only():
    """The static engine's Program for Adam and AdamW: merged (multi-tensor) Adam ops, AdamW's
    decoupled decay as scale ops before them, and never Paddle's per-tensor adam / adamw op."""
    from paddle_dx.engine.loss import build_loss
    from paddle_dx.engine.steps import StageSpec, compile_checked
    from paddle_dx.models import build_model

    for name in ("Adam", "AdamW"):
        config = load_config(
            raw={
                "Global": {"image_shape": [3, 32, 32]},
                "Arch": {"name": "LeNet5", "class_num": 2},
                "Optimizer": {"name": name, "lr": 0.001, **({"weight_decay": 0.01} if name == "AdamW" else {})},
            }
        )
        model = build_model(config["Arch"])
        spec = StageSpec(config["Arch"], [3, 32, 32], config["Loss"]["Train"], config["Optimizer"], "none", [0, 1])
        loss_fn = build_loss(spec.loss, "Loss.Train", [0, 1], 2)
        compiled, failures = compile_checked(model, spec, 0.001, None, loss_fn)
        assert compiled is not None, failures
        types = [op.type for op in compiled.program.global_block().ops]
        assert "merged_adam" in types and not {"adam", "adamw"} & set(types)
        decayed = [
            op for op in compiled.program.global_block().ops if op.type == "assign" and "@DECAYED" in op.input("X")[0]
        ]
        assert len(decayed) == (len([p for p in model.parameters() if p.trainable]) if name == "AdamW" else 0)
