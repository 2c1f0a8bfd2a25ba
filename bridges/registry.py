"""The outputs synd knows: where each one's class lives, and whether it can run here.

Each check is cheap and imports nothing heavy: it looks for the module and the platform.
An output class's own `available()` (`synd.bridges.base.Output`) starts from its check
and may look further (a display, a device).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass


def _always() -> str | None:
    return None


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


@dataclass(frozen=True)
class OutputEntry:
    """One kind of output: where its class is (imported on first use) and a cheap check."""

    target: str  # "module:Class"
    check: Callable[[], str | None] = _always  # None when it can run here, else why not


#: Every output by name: the one registry (`synd.bridges.base.register_output` adds more).
OUTPUTS: dict[str, OutputEntry] = {
    "preview": OutputEntry("synd.bridges.preview:PreviewOutput", lambda: _module("PyQt6", "preview")),
    "record": OutputEntry("synd.bridges.record:RecordOutput", lambda: _module("av", None)),
    "ndi": OutputEntry("synd.bridges.ndi:NdiOutput", lambda: _module("NDIlib", "ndi")),
    "syphon": OutputEntry(
        "synd.bridges.syphon:SyphonOutput", _platform("darwin", "Syphon", "syphon", "syphon")
    ),
    "spout": OutputEntry("synd.bridges.spout:SpoutOutput", _platform("win", "Spout", "SpoutGL", "spout")),
    "virtualcam": OutputEntry(
        "synd.bridges.virtualcam:VirtualCamOutput", lambda: _module("pyvirtualcam", "virtualcam")
    ),
}
