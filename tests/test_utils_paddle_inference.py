"""A Paddle Inference predictor leaves the process's dygraph numerics as they were: it used to
reset Paddle's CPU math threads to 1, so a training that built a feature cache through Paddle
Inference computed differently afterwards (a resumed run drifted from the straight one)."""

import numpy as np
import paddle


def test_dygraph_gradients_are_the_same_before_and_after_a_predictor_runs(tmp_path):
    from paddle_dx.utils.device import select_device
    from paddle_dx.utils.paddle_inference import InferenceSession

    select_device("cpu", 2)
    paddle.seed(1)
    net = paddle.nn.Sequential(
        *[paddle.nn.Sequential(paddle.nn.Conv2D(16, 16, 3, padding=1), paddle.nn.ReLU()) for _ in range(4)]
    )
    x = paddle.to_tensor(np.random.RandomState(0).randn(8, 16, 32, 32).astype("float32"))

    def gradients():
        net.clear_gradients()
        net(x).sum().backward()
        return [p.grad.numpy().copy() for p in net.parameters()]

    before = gradients()
    small = paddle.nn.Conv2D(3, 4, 3)
    small.eval()
    paddle.jit.save(
        paddle.jit.to_static(small, input_spec=[paddle.static.InputSpec([None, 3, 16, 16])]), str(tmp_path / "m")
    )
    session = InferenceSession(tmp_path / "m.json", tmp_path / "m.pdiparams")
    session.run(np.zeros((2, 3, 16, 16), "float32"))
    after = gradients()
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
