"""A model's layer / output shape / parameter table, walked over its layers in forward order
(the brain paper's Table 1 prints one for its ResNet-18)."""

from collections.abc import Sequence

import numpy as np
import paddle

from paddle_dx.models.transfer import TransferModel, build_model


def own_parameters(layer: paddle.nn.Layer) -> int:
    return sum(int(p.size) for p in layer.parameters())


def layer_summary(model: TransferModel, image_shape: Sequence[int]) -> list[dict]:
    """[{layer, type, output_shape, params}] of the backbone's layers in forward order, then the
    dropout and the new head, from one forward pass of a zero image [1, *image_shape]."""
    names = {id(layer): name for name, layer in model.named_sublayers()}
    layers = list(model.sequence()) + [model.dropout, model.head]
    rows = []
    x = paddle.zeros([1] + list(image_shape), dtype="float32")
    was_training = model.training
    model.eval()
    with paddle.no_grad():
        for layer in layers:
            x = layer(x)
            rows.append(
                {
                    "layer": names.get(id(layer), type(layer).__name__),
                    "type": type(layer).__name__,
                    "output_shape": [int(d) for d in x.shape],
                    "params": own_parameters(layer),
                }
            )
    if was_training:
        model.train()
    return rows


def config_summary(config: dict) -> tuple[list[dict], int]:
    """layer_summary of the network a run config describes (random weights: shapes and counts
    do not depend on them, and nothing is downloaded)."""
    arch = dict(config["Arch"], pretrained=False, freeze="none")
    model = build_model(arch, config["Global"]["image_shape"])
    rows = layer_summary(model, config["Global"]["image_shape"])
    return rows, int(np.sum([int(p.size) for p in model.parameters()]))
