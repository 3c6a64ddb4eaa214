"""`python tools/cross_validate.py ...` = `paddle_dx cross-validate ...`: same flags (paddle_dx/commands/cross_validate.py)."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import run  # noqa: E402
from paddle_dx.commands import cross_validate as command  # noqa: E402

if __name__ == "__main__":
    run(command.main)
