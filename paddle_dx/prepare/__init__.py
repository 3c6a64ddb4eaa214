"""Dataset preparation: turn a public dataset's own layout into the class-folder images
paddle_dx trains on (run once, before splitting; not part of the training data pipeline)."""
