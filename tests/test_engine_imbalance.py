"""Class imbalance: class-weighted cross-entropy ('balanced' or a list) and the balanced sampler."""

from collections import Counter

import numpy as np
import paddle
import pytest
from conftest import make_tiny_dataset, tiny_config

from paddle_dx.config.sections import DataSection
from paddle_dx.data.builder import build_dataset, build_loader
from paddle_dx.data.sampler import EpochBatchSampler
from paddle_dx.engine.loss import build_loss
from paddle_dx.errors import ConfigError

LOGITS = np.array([[2.0, 0.5], [0.2, 1.0], [1.5, -0.5], [0.3, 0.1]], dtype="float32")
LABELS = np.array([0, 1, 0, 0])


def weighted_ce_by_hand(weights):
    """Paddle's (and PyTorch's) weighted mean: sum_i w[y_i] * nll_i / sum_i w[y_i]."""
    log_p = LOGITS - np.log(np.exp(LOGITS).sum(axis=1, keepdims=True))
    nll = -log_p[np.arange(len(LABELS)), LABELS]
    w = np.asarray(weights)[LABELS]
    return float((w * nll).sum() / w.sum())


def loss_value(items, train_labels=LABELS):
    loss = build_loss(items, "Loss.Train", train_labels=train_labels, class_num=2)
    return float(loss(paddle.to_tensor(LOGITS), paddle.to_tensor(LABELS, dtype="int64")))


def test_plain_cross_entropy_is_the_unweighted_mean():
    assert loss_value([{"CELoss": {}}]) == pytest.approx(weighted_ce_by_hand([1.0, 1.0]), rel=1e-5)


def test_balanced_class_weights_are_n_over_k_times_count():
    # training labels 3:1 -> weights 4 / (2 * 3) and 4 / (2 * 1)
    expected = weighted_ce_by_hand([4 / 6, 2.0])
    assert loss_value([{"CELoss": {"class_weights": "balanced"}}]) == pytest.approx(expected, rel=1e-5)
    assert expected != pytest.approx(weighted_ce_by_hand([1.0, 1.0]), rel=1e-3)


def test_explicit_class_weight_list_and_loss_weight():
    expected = 0.5 * weighted_ce_by_hand([1.0, 3.0])
    assert loss_value([{"CELoss": {"class_weights": [1.0, 3.0], "weight": 0.5}}]) == pytest.approx(expected, rel=1e-5)


def test_class_weight_errors_name_the_problem():
    with pytest.raises(ConfigError, match="2 values for 3 classes"):
        build_loss([{"CELoss": {"class_weights": [1, 2]}}], "Loss.Train", LABELS, class_num=3)
    with pytest.raises(ConfigError, match="must be a list or 'balanced'"):
        build_loss([{"CELoss": {"class_weights": "inverse"}}], "Loss.Train", LABELS, class_num=2)
    with pytest.raises(
        ConfigError,
        match=r"Loss.Train\[0\].CELoss: unknown parameter 'class_weight'"
        r".*did you mean 'class_weights'",
    ):
        build_loss([{"CELoss": {"class_weight": [1, 2]}}], "Loss.Train", LABELS, class_num=2)
    with pytest.raises(ConfigError, match=r"Loss.Train\[0\]: unknown loss 'CrossEntropy'"):
        build_loss([{"CrossEntropy": {}}], "Loss.Train", LABELS, class_num=2)


def test_balanced_sampler_draws_classes_about_equally():
    labels = [0] * 90 + [1] * 10
    sampler = EpochBatchSampler(labels, batch_size=10, seed=3, balanced=True)
    drawn = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 10 and all(len(b) == 10 for b in batches)
        drawn += [labels[i] for batch in batches for e, i in batch if e == epoch]
    share = Counter(drawn)[1] / len(drawn)
    assert 0.4 < share < 0.6  # 0.1 without balancing
    plain = EpochBatchSampler(labels, batch_size=10, seed=3)
    assert sum(labels[i] for batch in plain for _, i in batch) == 10  # each image once per epoch


def test_sampler_order_is_a_function_of_seed_and_epoch_and_resumes_mid_epoch():
    labels = list(range(10))
    a, b = EpochBatchSampler(labels, 3, seed=1), EpochBatchSampler(labels, 3, seed=1)
    a.set_epoch(2)
    b.set_epoch(2, start_step=2)
    full = list(a)
    assert list(b) == full[2:]
    a.set_epoch(3)
    assert list(a) != full
    shards = [EpochBatchSampler(labels, 2, seed=1, rank=r, world_size=2) for r in range(2)]
    seen = [i for s in shards for batch in s for _, i in batch]
    assert sorted(seen) == labels  # two ranks cover the epoch exactly once


def test_config_selects_the_balanced_sampler_for_training(tmp_path):
    images, lists = make_tiny_dataset(tmp_path / "data", per_class=4)
    config = tiny_config(images, lists, tmp_path / "out", **{"DataLoader.Train.sampler.name": "BalancedBatchSampler"})
    dataset, _ = build_dataset(DataSection.of(config, "Train"))
    _, sampler = build_loader(DataSection.of(config, "Train"), dataset)
    assert sampler.balanced
    _, eval_sampler = build_loader(DataSection.of(config, "Eval"), build_dataset(DataSection.of(config, "Eval"))[0])
    assert not eval_sampler.balanced and not eval_sampler.shuffle
