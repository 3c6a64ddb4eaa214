"""The exported graph: the network followed by a softmax, so every runtime gets probabilities."""

import paddle
import paddle.nn as nn


class Probabilities(nn.Layer):
    """``softmax(model(x))``: what evaluation computes, as one exportable graph."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return nn.functional.softmax(self.model(x), axis=1)
