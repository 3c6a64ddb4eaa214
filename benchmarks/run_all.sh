#!/usr/bin/env bash
# Re-run every benchmark and rewrite benchmarks/results/*.md (about 1.5-2 hours on 2 cores).
# Needs PyTorch for the side-by-side columns: pip install -r benchmarks/requirements.txt
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
python benchmarks/preprocess.py --rounds "$ROUNDS"
python benchmarks/flags.py --rounds "$ROUNDS"
python benchmarks/inference.py --rounds "$ROUNDS"
python benchmarks/inference.py --rounds "$ROUNDS" --arch EfficientNetLite0
python benchmarks/static_levers.py --rounds "$ROUNDS"   # the static Program's layout and ops on oneDNN
python benchmarks/optimizer_slowdown.py --rounds "$ROUNDS"   # does one optimizer step slow later matmuls?
python benchmarks/loader_workers.py --rounds "$ROUNDS"   # DataLoader workers: training epochs on 2 cores
for part in full head partial esophagus eval; do  # results/train_<part>.md, the files docs/speed.md quotes
  python benchmarks/train.py --only "$part" --rounds "$ROUNDS"
done
python benchmarks/lite0_step.py --rounds 2 --arch EfficientNetLite0 ResNet18 ResNet50 --bf16   # full fine-tuning step, float32 and bf16
python benchmarks/profile_step.py   # top operators and oneDNN kernels of one step
python benchmarks/eval_export.py    # export + predictor per validation through Paddle Inference
# time to accuracy on the studies' real images (../shared/datasets); the esophagus config's crop and
# denoise are replaced by resize + flips + normalise on both sides (the PyTorch script runs only those)
python benchmarks/time_to_accuracy.py --study brain --config brain_ct_efficientnet_lite0 --epochs 3
python benchmarks/time_to_accuracy.py --study esophagus --config esophagus_efficientnet_lite0 --epochs 3 \
  -o 'DataLoader.Train.dataset.transform_ops=[{ResizeImage: {}}, {RandomFlip: {horizontal: 0.5, vertical: 0.5}}, {NormalizeImage: {preset: efficientnet_lite}}]' \
  -o 'DataLoader.Eval.dataset.transform_ops=[{ResizeImage: {}}, {NormalizeImage: {preset: efficientnet_lite}}]' \
  -o 'DataLoader.Test.dataset.transform_ops=[{ResizeImage: {}}, {NormalizeImage: {preset: efficientnet_lite}}]'
python benchmarks/time_to_accuracy.py --study brain --config brain_ct_resnet18 --epochs 3 -o Arch.pretrained=false
python benchmarks/time_to_accuracy.py --study brain --config brain_ct_resnet18 --epochs 3 \
  -o Arch.name=ResNet50 -o Arch.pretrained=false   # the file docs/speed.md quotes (the 2-epoch run's file has its own command)
