"""``python -m paddle_dx COMMAND ...``: the same as the ``paddle_dx`` console command."""

import sys

from paddle_dx.commands import main

if __name__ == "__main__":
    sys.exit(main())
