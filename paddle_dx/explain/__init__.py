"""Why did the model decide? Grad-CAM heat maps over the image the model saw."""

from paddle_dx.explain.gradcam import GradCAM, overlay_heatmap

__all__ = ["GradCAM", "overlay_heatmap"]
