"""Console logging for tools/: short lines, no noise from third-party INFO logs."""
import logging
import sys


def setup_logging(level=logging.INFO, logfile=None):
    handlers = [logging.StreamHandler(sys.stdout)]
    if logfile:
        handlers.append(logging.FileHandler(logfile, encoding="utf-8"))
    logging.basicConfig(level=level, format="[%(asctime)s] %(levelname)s %(message)s",
                        datefmt="%H:%M:%S", handlers=handlers, force=True)
    for noisy in ("faiss", "faiss.loader", "ppcls", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
