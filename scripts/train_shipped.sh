#!/usr/bin/env bash
# Retrain every shipped model, reproducibly: synthesize the corpus, train each preset for
# its step count, measure it on held-out tracks and write its model card. `lava` is then
# fine-tuned from the new `classic` on real recorded music (the training packages of
# `python -m synd.music`, fetched by `make music`) and the synthesized corpus, 10 minutes.
# Usage: scripts/train_shipped.sh [PRESET...]      (default: all shipped presets)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PRESETS=("$@")
[ ${#PRESETS[@]} -gt 0 ] || PRESETS=(classic sharp prism lava)
SCRATCH=()
for preset in "${PRESETS[@]}"; do [ "$preset" = lava ] || SCRATCH+=("$preset"); done

mkdir -p runs
# Training tracks; the held-out ones (scripts/model_cards.sh) come from disjoint seeds.
[ -f data/corpus/corpus.json ] || $BIN/python -m synd.corpus data/corpus --tracks 48 --duration 30 --seed 0

# PARALLEL=1 trains all presets at once, one thread each (how the shipped ones were made
# on a 2-core machine); otherwise one after the other with all threads.
if [ "${PARALLEL:-0}" = 1 ]; then
  for preset in "${SCRATCH[@]}"; do
    OMP_NUM_THREADS=1 $BIN/synd train data/corpus --preset "$preset" --out "runs/$preset.safetensors" \
      > "runs/$preset.log" 2>&1 &
  done
  wait
fi
for preset in "${SCRATCH[@]}"; do
  # Training state and sample sheets stay in runs/; only the model ships.
  [ "${PARALLEL:-0}" = 1 ] || $BIN/synd train data/corpus --preset "$preset" --out "runs/$preset.safetensors"
  cp "runs/$preset.safetensors" "models/$preset.safetensors"
  TRAIN_NOTE="${TRAIN_NOTE:-trained by scripts/train_shipped.sh}" scripts/model_cards.sh "$preset"
done
if [ ${#SCRATCH[@]} -lt ${#PRESETS[@]} ]; then
  [ -f data/music/train/music.json ] || $BIN/python -m synd.music train data/music/train
  $BIN/synd train data/music/train data/corpus --preset lava --init models/classic.safetensors --minutes 10 \
    --out runs/lava.safetensors
  cp runs/lava.safetensors models/lava.safetensors
  scripts/model_cards.sh lava
fi
