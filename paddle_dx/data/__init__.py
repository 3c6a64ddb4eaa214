"""Reading, preprocessing, splitting and sampling images."""

from paddle_dx.data import (
    ct_window,  # noqa: F401  (registers the CTWindow transform op)
    dicom,  # noqa: F401  (registers the .dcm reader of io.read_image)
)
