"""`python tools/compare_runs.py ...` = `paddle_dx compare-runs ...`: same flags (paddle_dx/commands/compare_runs.py)."""

import os
import sys

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from paddle_dx.cli import run  # noqa: E402
from paddle_dx.commands import compare_runs as command  # noqa: E402

if __name__ == "__main__":
    run(command.main)
