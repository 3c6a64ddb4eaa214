"""`python tools/verify_run.py ...` = `paddle_dx verify ...`: same flags (paddle_dx/commands/verify.py)."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import run  # noqa: E402
from paddle_dx.commands import verify as command  # noqa: E402

if __name__ == "__main__":
    sys.exit(run(command.main))
