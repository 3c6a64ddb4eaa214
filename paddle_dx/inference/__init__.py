"""Export a trained model to Paddle Inference and predict with the training preprocessing.

``export_model`` writes ``inference.json`` (or ``.pdmodel``) + ``inference.pdiparams`` and an
``inference.yml`` that carries the Eval preprocessing spec; ``Predictor`` rebuilds that exact
pipeline from ``inference.yml`` with ``paddle_dx.data.transforms``, so nothing is written twice.
"""

from paddle_dx.inference.export import export_from_config, export_model
from paddle_dx.inference.predictor import Predictor
from paddle_dx.inference.spec import SPEC_FILE, load_spec

__all__ = ["SPEC_FILE", "Predictor", "export_from_config", "export_model", "load_spec"]
