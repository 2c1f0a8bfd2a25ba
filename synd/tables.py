"""Typed tables (dataclasses) read from TOML or JSON: one strict rule for unknown keys,
and one reading of the command line's `key=value` settings."""

from __future__ import annotations

import tomllib
from dataclasses import fields


def parse_assignment(item: str) -> tuple[str, object]:
    """`key=value` from the command line (`-o fps=60`, `--set loss.noise=0.3`) -> (key,
    value). The value is TOML (`60`, `true`, `"fft"`); a bare word is taken as a string.
    ValueError (one line) when there is no `=` or no key."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"setting '{item}' must look like key=value")
    try:
        return key, tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return key, text.strip()


def reject_unknown(cls: type, table: dict, what: str) -> None:
    """Raise ValueError naming the keys of `table` that `cls` has no field for, so that a
    typo is an error instead of a silently ignored setting."""
    unknown = sorted(set(table) - {f.name for f in fields(cls)}, key=str)
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}")
