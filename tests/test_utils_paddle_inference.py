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


def test_a_gpu_device_gets_enable_use_gpu_with_its_index_and_no_cpu_settings():
    from paddle_dx.utils.paddle_inference import GPU_MEMORY_MB, config_calls

    assert config_calls("gpu:1") == [("enable_use_gpu", (GPU_MEMORY_MB, 1))]
    assert config_calls("gpu") == [("enable_use_gpu", (GPU_MEMORY_MB, 0))]


def test_the_cpu_gets_onednn_and_its_math_threads():
    from paddle_dx.utils.paddle_inference import config_calls

    assert config_calls("cpu", threads=3) == [
        ("disable_gpu", ()),
        ("enable_mkldnn", ()),
        ("set_cpu_math_library_num_threads", (3,)),
    ]
    assert ("disable_mkldnn", ()) in config_calls("cpu", enable_mkldnn=False, threads=1)


def test_every_call_names_a_paddle_inference_config_method():
    from paddle import inference as paddle_infer

    from paddle_dx.utils.paddle_inference import config_calls

    names = {name for device in ("gpu:2", "cpu") for name, _ in config_calls(device, threads=1)}
    names |= {name for name, _ in config_calls("cpu", enable_mkldnn=False, threads=1)}
    assert sorted(n for n in names if not callable(getattr(paddle_infer.Config, n, None))) == []


def test_the_cpu_calls_take_effect_on_a_real_config():
    from paddle import inference as paddle_infer

    from paddle_dx.utils.paddle_inference import config_calls

    config = paddle_infer.Config()
    for name, args in config_calls("cpu", threads=3):
        getattr(config, name)(*args)
    assert (config.use_gpu(), config.mkldnn_enabled(), config.cpu_math_library_num_threads()) == (False, True, 3)
