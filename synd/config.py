"""The user's config: $XDG_CONFIG_HOME/synd/config.toml (default ~/.config/synd/config.toml).

Example:

    preset = "drift"      # default look for render, run and train
    device = "auto"       # auto, cpu, cuda or mps

Every key is optional; an unknown key or a wrong type is an error naming the file,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from synd.paths import config_dir
from synd.presets import DEFAULT_PRESET
from synd.tables import reject_unknown


@dataclass(frozen=True)
class Config:
    """Defaults that command-line flags override."""

    preset: str = DEFAULT_PRESET
    device: str = "auto"


def config_path() -> Path:
    return config_dir() / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """Read the config file if there is one; defaults otherwise."""
    path = path or config_path()
    if not path.is_file():
        return Config()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config '{path}': invalid TOML ({e})") from None
    reject_unknown(Config, doc, f"config '{path}'")
    for key, value in doc.items():
        if not isinstance(value, str):
            raise ValueError(f"config '{path}': '{key}' must be a string")
    return Config(**doc)
