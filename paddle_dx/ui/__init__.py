"""The diagnosis assistant: a local web page over an exported model (``tools/serve.py``)."""
