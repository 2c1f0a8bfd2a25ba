"""Typed tables (dataclasses) read from TOML or JSON: one strict rule for unknown keys."""

from __future__ import annotations

from dataclasses import fields


def reject_unknown(cls: type, table: dict, what: str) -> None:
    """Raise ValueError naming the keys of `table` that `cls` has no field for, so that a
    typo is an error instead of a silently ignored setting."""
    unknown = sorted(set(table) - {f.name for f in fields(cls)}, key=str)
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}")
