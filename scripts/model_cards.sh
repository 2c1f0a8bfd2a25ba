#!/usr/bin/env bash
# Measure shipped models on held-out audio and (re)write their cards: models/NAME.md,
# models/NAME.png and the `card` block in the model's metadata.
# Usage: scripts/model_cards.sh [PRESET...]        (default: all shipped presets)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PRESETS=("$@")
[ ${#PRESETS[@]} -gt 0 ] || PRESETS=(classic sharp prism)
# Held-out tracks: seeds disjoint from the training corpus (seed 0, 48 tracks).
[ -f data/heldout/corpus.json ] || $BIN/python -m synd.corpus data/heldout --tracks 8 --duration 30 --seed 9000
for preset in "${PRESETS[@]}"; do
  $BIN/python -m synd.modelcard "models/$preset.safetensors" --heldout data/heldout \
    --data-note "48 synthesized 30 s tracks: python -m synd.corpus data/corpus --tracks 48 --duration 30 --seed 0; every 10th track held out during training" \
    --train-note "${TRAIN_NOTE:-all four shipped models trained at once on a 2-core CPU, one thread each (PARALLEL=1 scripts/train_shipped.sh)}"
done
