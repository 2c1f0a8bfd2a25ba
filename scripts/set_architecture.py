"""Change an architecture setting of a model file that leaves its weights' shapes alone.

Usage: python scripts/set_architecture.py MODEL.safetensors KEY=VALUE [KEY=VALUE ...]

Only settings that change what the networks are given, not their weights, may change
(`SETTABLE`); everything else in the file stays as it was, the card included (measure it
again with scripts/model_cards.sh). The file is rewritten atomically.

For example `python scripts/set_architecture.py runs/lava.safetensors fourier_max=2`
hides the finest coordinate wave from a generator that had baked it into a fixed pattern
of vertical stripes, before fine-tuning it with `synd train --init` (docs/looks-research.md,
"The stripes").
"""

from __future__ import annotations

import sys

from synd.bundle import ModelBundle, load_model
from synd.model import Generator, ModelConfig, SoundDecoder

#: Architecture settings that change no weight's shape.
SETTABLE = ("fourier_max",)


def set_architecture(path: str, changes: dict[str, int]) -> ModelConfig:
    """Rewrite the model at `path` with `changes` to its architecture; returns the new one."""
    unknown = sorted(set(changes) - set(SETTABLE))
    if unknown:
        raise SystemExit(f"cannot change {', '.join(unknown)} in place (settable: {', '.join(SETTABLE)})")
    old = load_model(path)
    config = ModelConfig.from_dict({**old.config.to_dict(), **changes})
    generator, decoder = Generator(config), SoundDecoder(config)
    generator.load_state_dict(old.generator.state_dict())
    decoder.load_state_dict(old.decoder.state_dict())
    meta = dict(old.meta)
    preset = meta.get("preset")
    if isinstance(preset, dict):  # the preset it was trained with: so a --init run matches
        meta["preset"] = {**preset, "architecture": {**preset.get("architecture", {}), **changes}}
    ModelBundle(config, old.features, old.stats, generator, decoder, meta).save(path)
    return config


def main(argv: list[str]) -> None:
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        raise SystemExit(__doc__)
    changes = {k: int(v) for k, v in (a.split("=", 1) for a in argv[1:])}
    config = set_architecture(argv[0], changes)
    print(f"{argv[0]}: architecture {config.to_dict()}")


if __name__ == "__main__":
    main(sys.argv[1:])
