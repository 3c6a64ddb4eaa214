"""The study-results tables (ImageNet transfer vs scratch first, then the papers' runs) that README.md, docs/studies.md and results/README.md quote, built
from the committed reports (results/<study>/report.json).

    python tools/results_table.py           # print the table (Markdown)
    python tools/results_table.py --write   # rewrite the generated blocks of the three pages
    python tools/results_table.py --check   # exit 1 when a page is stale"""

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    ROOT / "README.md": "results/",
    ROOT / "docs" / "studies.md": "../results/",
    ROOT / "results" / "README.md": "",
}  # page -> link prefix to results/
WRITE_COMMAND = "python tools/results_table.py --write"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the generated blocks")
    mode.add_argument("--check", action="store_true", help="exit 1 if a page differs from the reports")
    args = parser.parse_args(argv)
    from paddle_dx.studies.results_index import results_table, transfer_table
    from paddle_dx.utils.generated_blocks import update

    if not (args.write or args.check):
        print(transfer_table() + "\n\n" + results_table())
        return 0
    stale = [
        page
        for page, prefix in PAGES.items()
        if update(page, {"transfer": transfer_table(prefix), "results": results_table(prefix)}, args.write)
    ]
    for page in stale:
        print(
            f"{page.relative_to(ROOT)}: {'updated' if args.write else f'stale: run {WRITE_COMMAND}'}",
            file=sys.stdout if args.write else sys.stderr,
        )
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
