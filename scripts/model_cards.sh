#!/usr/bin/env bash
# Measure shipped models on held-out audio and (re)write their cards: models/NAME.md,
# models/NAME.png and the `card` block in the model's metadata.
# Usage: scripts/model_cards.sh [PRESET...]        (default: all shipped models)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PRESETS=("$@")
[ ${#PRESETS[@]} -gt 0 ] || PRESETS=(classic sharp prism lava)
# Held-out tracks: seeds disjoint from the training corpus (seed 0, 48 tracks).
[ -f data/heldout/corpus.json ] || $BIN/python -m synd.corpus data/heldout --tracks 8 --duration 30 --seed 9000
SYNTH="48 synthesized 30 s tracks: python -m synd.corpus data/corpus --tracks 48 --duration 30 --seed 0; every 10th track held out during training"
# The real music lava is fine-tuned on: each package with its licence (synd.music.TRAIN).
MUSIC=$($BIN/python -c 'from synd.music import TRAIN; print("; ".join(f"{p.name}, {p.licence}" for p in TRAIN))')
for preset in "${PRESETS[@]}"; do
  if [ "$preset" = lava ]; then
    data="107 excerpts (40 s) of recorded game music from the Debian packages $MUSIC (make music: python -m synd.music train data/music/train), and the 48 synthesized tracks classic learned from (python -m synd.corpus data/corpus --tracks 48 --duration 30 --seed 0); every 10th file held out during training"
    train="fine-tuned from classic: synd train data/music/train data/corpus --preset lava --init classic --minutes 10, then its decoder alone on whole frames: synd train data/music/train data/corpus --preset lava --decoder-only --out lava.safetensors --minutes 10, each alone on a 2-core CPU"
  else
    data="$SYNTH"
    train="all four shipped models trained at once on a 2-core CPU, one thread each (PARALLEL=1 scripts/train_shipped.sh)"
  fi
  $BIN/python -m synd.modelcard "models/$preset.safetensors" --heldout data/heldout \
    --data-note "$data" --train-note "${TRAIN_NOTE:-$train}"
done
