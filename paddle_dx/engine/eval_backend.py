"""Which backend runs an evaluation's forward passes (``Global.eval_engine``), and the Paddle
Inference one; eval_loop.py runs the loop over the batches.

Dygraph convolutions on CPU skip oneDNN; Paddle Inference runs the same ResNet-50 ~5x faster
(docs/speed.md). Paddle Inference has no call that replaces a created predictor's parameters
(and its oneDNN passes fold BatchNorm into the convolution weights), so each evaluation of new
weights exports them again and creates a predictor. The eval-mode copy is converted to a static
program once per run (``to_static``, ~1.5 s for ResNet-50) and only given the new weights at
later evaluations, whose ``paddle.jit.save`` then writes the parameters (~0.06 s); the predictor
takes ~1 s more, repaid at ~0.08-0.28 s saved per image, i.e. from a few dozen images on. ``auto`` therefore uses it on one CPU process for sets of at least
``MIN_IMAGES`` images; the session is kept per weights hash, so evaluating the same weights on
validation and test exports once. Outputs equal dygraph's within oneDNN's float tolerance
(~1e-3, the export parity test's).

Evaluations that already train from cached frozen-backbone features (engine/feature_cache.py)
run only the head on cached vectors: nothing left to speed up, recorded as ``feature cache``.
"""

import copy
import logging
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import paddle

from paddle_dx.engine.feature_cache import CachedForward
from paddle_dx.engine.frozen_features import weights_hash
from paddle_dx.utils.paddle_inference import InferenceSession, find_program

log = logging.getLogger(__name__)
MIN_IMAGES = 64  # ~6 s of export + predictor creation over ~0.1 s saved per image on a busy 2-core CPU


class InferenceForward:
    """Looks like the model to ``eval_loop.predict``: images -> logits, through Paddle Inference."""

    training = False

    def __init__(self, session) -> None:
        self.session = session

    def eval(self) -> None:
        pass

    def train(self) -> None:
        pass

    def __call__(self, images):
        return paddle.to_tensor(self.session.run(images.numpy()))


class EvalExport:
    """An eval-mode copy of the trained model, converted to a static program once; each
    ``session(model)`` gives it ``model``'s current weights, exports it to a temporary folder
    and loads that with Paddle Inference + oneDNN (the folder goes once the predictor has read
    it). A model of another structure (names, shapes) gets a fresh copy."""

    def __init__(self, image_shape: Sequence[int], threads: int | None) -> None:
        self.spec = [paddle.static.InputSpec([None, *image_shape], "float32", "x")]
        self.threads = threads
        self._copy = None  # (structure, eval-mode copy, its static function)

    def session(self, model: paddle.nn.Layer) -> InferenceSession:
        structure = [(name, tuple(value.shape)) for name, value in model.state_dict().items()]
        if self._copy is None or self._copy[0] != structure:
            frozen = copy.deepcopy(model)
            frozen.eval()
            self._copy = structure, frozen, paddle.jit.to_static(frozen, input_spec=self.spec, full_graph=True)
        else:
            self._copy[1].set_state_dict(model.state_dict())
        with tempfile.TemporaryDirectory(prefix="paddle_dx_eval_") as tmp:
            paddle.jit.save(self._copy[2], str(Path(tmp) / "model"))
            return InferenceSession(
                find_program(tmp, "model"), Path(tmp) / "model.pdiparams", enable_mkldnn=True, threads=self.threads
            )


class EvalBackend:
    """``forward(model, loader)`` -> (what to run, engine name) for one evaluation."""

    def __init__(self, setting, device, world_size, image_shape, threads=0) -> None:
        self.setting, self.image_shape, self.threads = setting, list(image_shape), threads
        self._export = EvalExport(self.image_shape, threads)
        self._session = None  # (weights hash, InferenceSession) of the last weights exported
        self._logged = set()
        if setting != "dygraph" and (device != "cpu" or world_size > 1):
            self._say(
                f"Global.eval_engine: {setting} -> dygraph on "
                f"{'several devices' if world_size > 1 else 'the GPU'} (Paddle Inference + oneDNN is the "
                "CPU fast path)"
            )
            self.setting = "dygraph"

    def _say(self, message):
        if message not in self._logged:
            self._logged.add(message)
            log.info(message)

    def choose(self, n_images: int) -> str:
        """``dygraph`` or ``inference`` for an evaluation of ``n_images`` images."""
        if self.setting != "auto":
            return self.setting
        if n_images >= MIN_IMAGES:
            self._say(
                f"Global.eval_engine: auto -> inference (Paddle Inference + oneDNN, the weights exported "
                f"for each evaluation) for sets of >= {MIN_IMAGES} images"
            )
            return "inference"
        self._say(
            f"Global.eval_engine: auto -> dygraph for a set of {n_images} images (< {MIN_IMAGES}: "
            "exporting would cost more than it saves)"
        )
        return "dygraph"

    def forward(self, model: paddle.nn.Layer, loader: Iterable) -> tuple[Callable, str]:
        """(what evaluates ``loader``, its engine name): ``model`` itself, or its weights exported."""
        if isinstance(model, CachedForward):
            return model, "feature cache"
        if self.choose(len(getattr(loader, "dataset", ()))) == "dygraph":
            return model, "dygraph"
        key = weights_hash(model)
        if self._session is None or self._session[0] != key:
            self._session = None  # release the old predictor before building the next
            self._session = key, self._export.session(model)
        return InferenceForward(self._session[1]), "inference"
