"""Grad-CAM (Selvaraju et al., 2017) on a TransferModel's last convolutional stage.

The class score's gradient with respect to the stage's feature maps, averaged over space,
weights those maps; their ReLU'd sum, upsampled to the input, is the heat map. It runs on the
dygraph model because an exported (static) program exposes neither the intermediate
activations nor their gradients.
"""

import cv2
import numpy as np
import paddle
import paddle.nn.functional as F


class GradCAM:
    """``GradCAM(model)(batch)`` -> (heat maps [N, H, W] in [0, 1], probabilities [N, C]).

    ``layer`` defaults to ``model.last_conv()``; its output is captured by a forward
    post-hook that exists only for the duration of one call.
    """

    def __init__(self, model, layer=None) -> None:
        self.model = model
        self.layer = layer if layer is not None else model.last_conv()

    def __call__(self, images, class_ids=None):
        """``images``: float32 [N, 3, H, W] (preprocessed); ``class_ids``: explain these
        classes (default: each image's predicted class)."""
        x = paddle.to_tensor(np.asarray(images, np.float32))
        x.stop_gradient = False  # gradients must reach the stage even when it is frozen
        captured = {}

        def keep_output(layer, inputs, output):
            captured["maps"] = output

        self.model.eval()
        handle = self.layer.register_forward_post_hook(keep_output)
        try:
            logits = self.model(x)
        finally:
            handle.remove()
        probs = F.softmax(logits, axis=1).numpy()
        ids = probs.argmax(axis=1) if class_ids is None else np.asarray(class_ids, np.int64).reshape(-1)
        maps = captured["maps"]
        score = (logits * F.one_hot(paddle.to_tensor(ids), logits.shape[1])).sum()
        (grads,) = paddle.grad(score, maps)
        weights = grads.mean(axis=[2, 3], keepdim=True)
        cams = F.relu((weights * maps).sum(axis=1)).numpy()
        return np.stack([_normalise(_resize(c, x.shape[2:])) for c in cams]), probs


def _resize(cam, hw):
    return cv2.resize(cam.astype(np.float32), (int(hw[1]), int(hw[0])), interpolation=cv2.INTER_LINEAR)


def _normalise(cam):
    """Scale to [0, 1]; an all-zero map (no positive evidence) stays zero."""
    cam = cam - cam.min()
    peak = cam.max()
    return cam / peak if peak > 0 else cam


def overlay_heatmap(
    rgb: np.ndarray, cam: np.ndarray, alpha: float = 0.45, colormap: int = cv2.COLORMAP_JET
) -> np.ndarray:
    """Blend a [0, 1] heat map (resized to the image) over an RGB uint8 image; RGB uint8 out."""
    h, w = rgb.shape[:2]
    heat = cv2.resize((np.clip(cam, 0, 1) * 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)
    coloured = cv2.cvtColor(cv2.applyColorMap(heat, colormap), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(rgb, 1.0 - alpha, coloured, alpha, 0)
