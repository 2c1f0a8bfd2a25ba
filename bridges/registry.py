"""Which outputs exist on this machine, and why not when they don't.

Each check is cheap and imports nothing heavy: it looks for the module and the platform.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable


def _module(name: str, extra: str | None) -> str | None:
    if importlib.util.find_spec(name) is None:
        hint = f" (pip install 'synethesia[{extra}]')" if extra else ""
        return f"Python module '{name}' is not installed{hint}"
    return None


def _platform(required: str, label: str, module: str, extra: str) -> Callable[[], str | None]:
    def check() -> str | None:
        if not sys.platform.startswith(required):
            return f"{label} exists only on {'macOS' if required == 'darwin' else 'Windows'}"
        return _module(module, extra)

    return check


OUTPUT_CHECKS: dict[str, Callable[[], str | None]] = {
    "record": lambda: _module("av", None),
    "preview": lambda: _module("PyQt6", "preview"),
    "ndi": lambda: _module("NDIlib", "ndi"),
    "syphon": _platform("darwin", "Syphon", "syphon", "syphon"),
    "spout": _platform("win", "Spout", "SpoutGL", "spout"),
    "virtualcam": lambda: _module("pyvirtualcam", "virtualcam"),
}


def output_status() -> dict[str, str | None]:
    """Output name -> None when available, else the reason it is not."""
    return {name: check() for name, check in OUTPUT_CHECKS.items()}
