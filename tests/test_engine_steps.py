"""Which step strategy (engine/steps.py) each engine / device / freeze / feature-cache situation
gets, and what it trains on."""

import logging

import numpy as np
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.accel.static_program import StaticTrainStep
from paddle_dx.engine.feature_cache import CachedForward
from paddle_dx.engine.steps import CompiledStep, DygraphStep, choose_step, resolve_engine
from paddle_dx.engine.trainer import Trainer
from paddle_dx.errors import ConfigError

DETERMINISTIC = [{"ResizeImage": {}}, {"NormalizeImage": {}}]  # no random op: the feature cache may apply


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("steps") / "data", per_class=8, size=32)


def _trainer(data, out, **extra):
    return Trainer(
        tiny_config(
            *data,
            out,
            **{
                "Arch.name": "ResNet18",
                "DataLoader.Train.sampler.batch_size": 4,
                "Global.feature_cache_engine": "dygraph",
                **extra,
            },
        )
    )


@pytest.mark.parametrize(
    "wanted, device, world_size, runs",
    [
        ("static", "cpu", 1, "static"),
        ("static", "gpu", 1, "dygraph"),
        ("static", "cpu", 2, "dygraph"),
        ("dygraph", "cpu", 1, "dygraph"),
        ("dygraph", "gpu", 4, "dygraph"),
    ],
)
def test_static_runs_only_in_one_cpu_process(wanted, device, world_size, runs, caplog):
    caplog.set_level(logging.INFO, logger="paddle_dx.engine.steps")
    assert resolve_engine(wanted, device, world_size) == runs
    assert ("using dygraph" in caplog.text) == (wanted != runs)


def test_dygraph_trains_whole_images_with_the_stage_optimizer(data, tmp_path):
    trainer = _trainer(data, tmp_path / "run")
    step = trainer._stage_step()
    assert type(step) is DygraphStep and step.optimizer_state_owner is trainer.optimizer
    images, labels = next(iter(step.begin_epoch(0)))
    assert list(images.shape) == [4, 3, 32, 32] and step.forward is trainer.model


def test_static_compiles_the_whole_network_when_nothing_is_cached(data, tmp_path):
    trainer = _trainer(data, tmp_path / "run", **{"Global.engine": "static"})
    step = trainer._stage_step()
    assert type(step) is CompiledStep and isinstance(step.optimizer_state_owner, StaticTrainStep)
    assert step.compiled.program.global_block().var("images").shape[1:] == (3, 32, 32)


def test_static_over_cached_stage_maps_trains_on_them(data, tmp_path):
    """``until stage 2`` with the cache: the Program takes the cached stage-2 maps, the epoch's
    batches are those maps."""
    trainer = _trainer(
        data,
        tmp_path / "run",
        **{
            "Global.engine": "static",
            "Arch.freeze": "until stage 2",
            "Global.feature_cache": "on",
            "DataLoader.Train.dataset.transform_ops": DETERMINISTIC,
        },
    )
    step = trainer._stage_step()
    assert type(step) is CompiledStep
    assert step.compiled.program.global_block().var("images").shape[1:] == (128, 4, 4)
    trainer.model.train()
    trainer.train_sampler.set_epoch(0, 0)
    features, _ = next(iter(step.begin_epoch(0)))
    step.end_epoch()
    assert list(features.shape) == [4, 128, 4, 4]


@pytest.mark.parametrize("engine", ["dygraph", "static"])
def test_head_only_on_cached_vectors_trains_in_dygraph(data, tmp_path, engine):
    """Backbone frozen and cached: only the head trains, nothing for a Program to speed up."""
    trainer = _trainer(
        data,
        tmp_path / "run",
        **{
            "Global.engine": engine,
            "Arch.freeze": "backbone",
            "Global.feature_cache": "on",
            "DataLoader.Train.dataset.transform_ops": DETERMINISTIC,
        },
    )
    step = trainer._stage_step()
    assert type(step) is DygraphStep
    trainer.model.train()
    trainer.train_sampler.set_epoch(0, 0)
    features, labels = next(iter(step.begin_epoch(0)))
    assert isinstance(step.forward, CachedForward) and list(features.shape) == [4, 512]
    loss, logits = step.step(features, labels)
    assert list(logits.shape) == [4, 2] and np.isfinite(float(loss))


def test_static_falls_back_to_dygraph_when_the_program_cannot_compile(data, tmp_path, caplog):
    trainer = _trainer(data, tmp_path / "run", **{"Global.engine": "static", "Optimizer.grad_clip": 1.0})
    assert type(trainer._stage_step()) is DygraphStep
    assert "this stage trains in dygraph" in caplog.text and "TypeError" in caplog.text


def test_a_new_stage_gets_a_new_strategy_with_its_optimizer(data, tmp_path):
    stages = [
        {"name": "pre-training", "epochs": 1, "freeze": "backbone", "lr": 0.01},
        {"name": "fine-tuning", "epochs": 1, "freeze": "none", "lr": 0.001},
    ]
    trainer = _trainer(data, tmp_path / "run", **{"Stages": stages})
    trainer._enter_stage(0)
    first = trainer._stage_step()
    trainer._enter_stage(1)
    second = trainer._stage_step()
    assert second is not first and second.optimizer_state_owner is trainer.optimizer
    assert first.optimizer_state_owner is not trainer.optimizer


def test_an_unknown_engine_is_a_config_error(data, tmp_path):
    trainer = _trainer(data, tmp_path / "run")
    with pytest.raises(ConfigError, match="Global.engine: unknown training engine 'eager'"):
        choose_step("eager", trainer._stage_step().parts, None)
