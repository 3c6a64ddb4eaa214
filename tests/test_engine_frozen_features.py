"""The feature cache runs the frozen backbone on the run's device: Paddle Inference is asked for
the GPU the run trains on (checked here without a GPU, by what the session is asked for)."""

import paddle
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.engine import feature_cache, frozen_features


class _Recorded:
    def __init__(self, program, params, **kwargs):
        self.kwargs = kwargs


@pytest.mark.parametrize("device,use_gpu,gpu_id", [("gpu:1", True, 1), ("gpu:0", True, 0), ("cpu", False, None)])
def test_the_inference_extractor_asks_for_the_runs_gpu_by_index(tmp_path, monkeypatch, device, use_gpu, gpu_id):
    monkeypatch.setattr(frozen_features, "InferenceSession", _Recorded)
    backbone = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.AdaptiveAvgPool2D(1), paddle.nn.Flatten())
    extractor = frozen_features.InferenceExtractor(backbone, tmp_path, threads=2, device=device)
    asked = extractor.session.kwargs
    assert (asked["use_gpu"], asked["gpu_id"], asked["enable_mkldnn"], asked["threads"]) == (use_gpu, gpu_id, True, 2)


def test_the_feature_cache_hands_the_extractor_the_device_paddle_runs_on(tmp_path, monkeypatch):
    from paddle_dx.engine.trainer import Trainer

    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    config = tiny_config(
        images,
        lists,
        tmp_path / "out",
        **{
            "Arch.freeze": "backbone",
            "Global.feature_cache": "on",
            "Global.epochs": 1,
            "DataLoader.Train.dataset.transform_ops": [{"ResizeImage": {}}, {"NormalizeImage": {}}],
        },
    )
    trainer = Trainer(config)
    devices = []

    def recording(engine, backbone, export_dir, threads=0, device="cpu"):
        devices.append((engine, device))
        return frozen_features.build_extractor("dygraph", backbone, export_dir, threads)

    monkeypatch.setattr(feature_cache, "build_extractor", recording)
    monkeypatch.setattr(paddle.device, "get_device", lambda: "gpu:1")  # what select_device sets on GPU 1
    trainer.train_epoch(0)
    assert [d for d in devices if d[0] == "inference"] == [("inference", "gpu:1")]  # (dygraph: shape probe)
