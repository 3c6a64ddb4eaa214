"""Backbones (from PaddleClas) + a new head, pretrained loading and freezing."""

from paddle_dx.models.backbones import BACKBONES, get_backbone, pretrained_url
from paddle_dx.models.transfer import TransferModel, apply_freeze, build_model, load_model_weights

__all__ = [
    "BACKBONES",
    "TransferModel",
    "apply_freeze",
    "build_model",
    "get_backbone",
    "load_model_weights",
    "pretrained_url",
]
