"""The optimizer paddle_dx builds does not trigger Paddle's CPU "Adam slowdown".

After one step of Paddle's per-tensor Adam on a parameter of >= 512 elements, every later
matmul/conv in the process ran 4-5x slower on 2 threads (../shared/PERF_NOTES.md, pitfall 1);
``use_multi_tensor=True`` avoids it. The test times the same matmul before and after one step of
the optimizer ``build_optimizer`` returns for an Adam config, in this process, and compares the
ratio (not an absolute time). Measured here: ~1.0 with multi-tensor Adam, ~4-5 with the
per-tensor one (`use_multi_tensor=False`), which this test is meant to catch.
"""

import statistics
import time

import paddle

from paddle_dx.config import load_config
from paddle_dx.engine.optimizer import build_optimizer
from paddle_dx.utils.device import select_device


def _matmul_seconds(a, b, rounds=7, reps=10):
    """Median over rounds of the time of ``reps`` matmuls (robust to a noisy shared machine)."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(reps):
            out = paddle.matmul(a, b)
        float(out[0, 0])
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def test_adam_step_leaves_matmul_speed_alone():
    select_device("cpu")  # all usable cores: the slowdown needs >= 2 threads to show
    config = load_config(raw={"Optimizer": {"name": "Adam", "lr": 0.001}})
    model = paddle.nn.Sequential(paddle.nn.Linear(256, 256), paddle.nn.Linear(256, 2))
    optimizer, _ = build_optimizer(config["Optimizer"], model, epochs=1)
    a, b = paddle.randn([512, 512]), paddle.randn([512, 512])
    _matmul_seconds(a, b, rounds=2)  # warm-up
    before = _matmul_seconds(a, b)
    loss = model(paddle.randn([8, 256])).mean()
    loss.backward()
    optimizer.step()
    optimizer.clear_grad()
    after = _matmul_seconds(a, b)
    # compare again with a fresh "before" so one noisy phase cannot decide the verdict
    ratio = min(after / before, _matmul_seconds(a, b) / before)
    assert ratio < 2.0, (
        f"matmul {ratio:.1f}x slower after one optimizer step (before {before:.4f}s, after {after:.4f}s)"
    )


def _built(name, model, weight_decay=0.0):
    config = load_config(raw={"Optimizer": {"name": name, "lr": 0.01, "weight_decay": weight_decay}})
    return build_optimizer(config["Optimizer"], model, epochs=1)[0]


def test_every_registered_optimizer_uses_the_multi_tensor_kernel():
    """The timing test above cannot show the slowdown on every machine (it did not reproduce on
    the 2026-11-22 CI machine); this guard fails whenever a per-tensor optimizer is configured."""
    from paddle_dx.engine.optimizer import OPTIMIZERS

    model = paddle.nn.Linear(4, 2)
    for name in OPTIMIZERS.names():
        assert _built(name, model)._use_multi_tensor, f"{name} is built without use_multi_tensor=True"


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


def test_static_engine_optimizer_step_leaves_matmul_speed_alone():
    """Global.engine: static runs the optimizer inside a Program (Adam multi-tensor, AdamW Paddle's
    own, see engine/static_step.py): one step of each, then the same matmul ratio as above."""
    from paddle_dx.engine.static_step import StaticTrainStep
    from paddle_dx.models import build_model

    select_device("cpu")
    a, b = paddle.randn([512, 512]), paddle.randn([512, 512])
    _matmul_seconds(a, b, rounds=2)
    before = _matmul_seconds(a, b)
    for name in ("Adam", "AdamW"):
        config = load_config(
            raw={
                "Global": {"image_shape": [3, 32, 32]},
                "Arch": {"name": "LeNet5", "class_num": 2},
                "Optimizer": {"name": name, "lr": 0.001, "weight_decay": 0.01},
            }
        )
        step = StaticTrainStep(
            build_model(config["Arch"]),
            config["Arch"],
            config["Global"]["image_shape"],
            config["Loss"]["Train"],
            config["Optimizer"],
            "none",
            0.001,
            [0, 1],
        )
        step(paddle.randn([4, 3, 32, 32]), paddle.to_tensor([0, 1, 0, 1]))
    ratio = min(_matmul_seconds(a, b) / before, _matmul_seconds(a, b) / before)
    assert ratio < 2.0, f"matmul {ratio:.1f}x slower after the static engine's optimizer steps"
