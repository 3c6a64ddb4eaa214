#!/usr/bin/env bash
# Rerun the studies whose reports are committed under results/ (`make reproduce STUDY=brain` for
# one, `bash results/reproduce_all.sh brain pcam` for some). Each report records its own command,
# wall time, machine and commit; the runs (weights) stay in $OUT, never in git; the per-image
# predictions, split lists and image hashes are published beside the report. Every study also
# trains its EfficientNet-Lite0 ImageNet-vs-random-init pair with $SEEDS seeds (papers.yaml),
# $PAIR_EPOCHS epochs each.
# --source is used only where the source images are another data set (gastric): a source that
# is the target's own data set leaves fewer than two classes once the target's images are out.
# Hours on 2 CPU cores (see each report's "This run: time and machine").
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/datasets}
OUT=${OUT:-build/studies}
PYTHON=${PYTHON:-python}
SEEDS=${SEEDS:-3}
PAIR_EPOCHS=${PAIR_EPOCHS:-6}   # the EfficientNet-Lite0 pair: 6 epochs per run, as issue 24's check trains them
STUDIES=("$@")
[ ${#STUDIES[@]} -gt 0 ] || STUDIES=(esophagus brain pcam gastric lung_nodule)

reproduce() { "$PYTHON" tools/reproduce.py --out "$OUT" --publish results --seeds "$SEEDS" --pair-epochs "$PAIR_EPOCHS" "$@"; }

for study in "${STUDIES[@]}"; do
  echo "=== $study ($(date -u '+%H:%M UTC'))"
  started=$SECONDS
  case "$study" in
    esophagus)  # ResNet50 at 224 px as the config; 10 of its 30 epochs
      reproduce --study esophagus --data "$DATA/hyperkvasir_lower_gi" --near-duplicates 6 -o Global.epochs=10 ;;
    brain)      # the paper's ResNet-18, 10 epochs; 224 px, not 512 (time)
      reproduce --study brain --data "$DATA/brain_tumor_mri" --near-duplicates 6 ;;
    pcam)       # the paper's ResNet-101 at 96 px, 10 epochs; split by LC25000-clean tile group (MANIFEST.csv)
      reproduce --study pcam --data "$DATA/lc25000_lung_histopathology" ;;
    lung_nodule)  # one patient: crops split one by one (the report says so); accuracy vs training-set size
      rm -rf "$OUT/lidc_crops"
      "$PYTHON" tools/prepare_lidc.py --lidc-root "$DATA/lidc_idri_sample" --out "$OUT/lidc_crops" --per-reader
      reproduce --study lung_nodule --data "$OUT/lidc_crops" --ignore-groups --sizes 10 20 \
        -o Global.save_interval=10 ;;  # VGG16's checkpoint is 1.6 GB: write it every 10 epochs
    gastric)    # VGG19 / ResNet50 / InceptionV3, two stages of 5 epochs at 128 px (time); LC25000 as the source
      reproduce --study gastric --data "$DATA/hyperkvasir_lower_gi" --source "$DATA/lc25000_lung_histopathology" \
        --source-epochs 2 --near-duplicates 6 -o 'Global.image_shape=[3, 128, 128]' \
        -o 'Stages=[{name: pre-training, epochs: 5, freeze: backbone, lr: 0.001}, {name: fine-tuning, epochs: 5, freeze: none, lr: 0.0001}]' ;;
    *) echo "unknown study '$study' (esophagus, brain, pcam, lung_nodule, gastric)" >&2; exit 2 ;;
  esac
  echo "=== $study done: wall time $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s"
done
