#!/usr/bin/env bash
# Re-run every benchmark and rewrite benchmarks/results/*.md (about 20-40 minutes on 2 cores).
# Needs PyTorch for the side-by-side columns: pip install -r benchmarks/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
python benchmarks/preprocess.py --rounds "$ROUNDS"
python benchmarks/flags.py --rounds "$ROUNDS"
python benchmarks/inference.py --rounds "$ROUNDS"
python benchmarks/static_levers.py --rounds "$ROUNDS"   # the static Program's layout and ops on oneDNN
python benchmarks/optimizer_slowdown.py --rounds "$ROUNDS"   # does one optimizer step slow later matmuls?
python benchmarks/loader_workers.py --rounds "$ROUNDS"   # DataLoader workers: training epochs on 2 cores
for part in full head partial esophagus eval; do  # results/train_<part>.md, the files docs/speed.md quotes
  python benchmarks/train.py --only "$part" --rounds "$ROUNDS"
done
