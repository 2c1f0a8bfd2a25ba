"""Where synd finds its shipped data and the user's own files (XDG base directories)."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def shipped_dir(kind: str) -> Path:
    """The shipped `models` or `presets` folder.

    An installed package carries them as synd/shipped/<kind> (see pyproject.toml); a
    source checkout or editable install uses the folder at the repository root.
    """
    installed = _PACKAGE / "shipped" / kind
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / kind


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/synd (default ~/.config/synd): config.toml and the user's presets."""
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "synd"


def data_dir() -> Path:
    """$XDG_DATA_HOME/synd (default ~/.local/share/synd): the user's trained models."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "synd"


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/synd (default ~/.cache/synd): files synd can make again (the demo clip)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synd"


def search_dirs(kind: str) -> list[Path]:
    """Folders searched for models or presets by name, the user's first."""
    user = data_dir() / "models" if kind == "models" else config_dir() / "presets"
    return [user, shipped_dir(kind)]


def is_plain_name(name: str) -> bool:
    """True for a bare name such as `prism`: no folder part, no `..`, not absolute."""
    return (
        bool(name)
        and name not in {".", ".."}
        and "/" not in name
        and "\\" not in name
        and not os.path.isabs(name)
        and "\x00" not in name
    )


def resolve(kind: str, name: str, suffix: str, allow_paths: bool = True) -> Path:
    """Find a model (`kind="models"`) or preset (`"presets"`) by name or path.

    A bare name is looked up as NAME+suffix in `search_dirs(kind)`. Anything else is a
    file path, accepted only when `allow_paths` (the command line may name any file;
    names arriving over the network may only reach the search folders).
    Raises FileNotFoundError with a one-line message listing what was tried.
    """
    if is_plain_name(name):
        stem = name[: -len(suffix)] if name.endswith(suffix) else name
        tried = []
        for folder in search_dirs(kind):
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                return candidate
            tried.append(str(folder))
        if allow_paths and Path(name).is_file():
            return Path(name)
        raise FileNotFoundError(f"no {kind[:-1]} named '{stem}' in {', '.join(tried)}")
    if not allow_paths:
        raise FileNotFoundError(f"refusing {kind[:-1]} '{name}': only bare names are accepted here")
    path = Path(name).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no {kind[:-1]} file '{name}'")
    return path
