"""The exported graph: the network followed by a softmax, so every runtime gets probabilities."""

import paddle.nn as nn


class Probabilities(nn.Layer):
    """``softmax(model(x))``: what evaluation computes, as one exportable graph."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return nn.functional.softmax(self.model(x), axis=1)
