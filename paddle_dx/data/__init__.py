"""Reading, preprocessing, splitting and sampling images."""
