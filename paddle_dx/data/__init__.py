"""Reading, preprocessing, splitting and sampling images."""
from paddle_dx.data import ct_window  # noqa: F401,E402  (registers the CTWindow transform op)
