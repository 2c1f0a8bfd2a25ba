#!/usr/bin/env bash
# Score every shipped look with the judge on held-out real music, as the README shows it:
# the eval set of `python -m synd.music` (packages no look is trained on), rendered at
# 640x360@30 like `synd render --size 640x360`. Prints a Markdown table; the JSON of each
# look goes to runs/judge/LOOK.json.
# Usage: scripts/judge_looks.sh [PRESET...]        (default: every shipped preset)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
MUSIC=data/music/eval
[ -f "$MUSIC/music.json" ] || $BIN/python -m synd.music eval "$MUSIC"
PRESETS=("$@")
[ ${#PRESETS[@]} -gt 0 ] || mapfile -t PRESETS < <($BIN/python -c \
  'from synd.paths import shipped_dir; print("\n".join(sorted(p.stem for p in shipped_dir("presets").glob("*.toml"))))')
mkdir -p runs/judge
for preset in "${PRESETS[@]}"; do
  $BIN/synd eval --preset "$preset" "$MUSIC"/*.flac --size 640x360 --json "runs/judge/$preset.json" >&2
done
$BIN/python - "${PRESETS[@]}" <<'PY'
import json, sys
from synd.judge import JUDGE_KEYS
keys = [k for k in JUDGE_KEYS if k != "onset_sync"] + ["silence_motion_de", "sound_r2"]
print("| look | " + " | ".join(keys) + " |")
print("|---" * (len(keys) + 1) + "|")
for preset in sys.argv[1:]:
    r = json.load(open(f"runs/judge/{preset}.json"))
    cells = [("-" if r[k] is None else f"{r[k]:.3g}") + ("" if r["passed"].get(k) is not False else " ✗")
             for k in keys]
    print(f"| {preset} | " + " | ".join(cells) + " |")
PY
