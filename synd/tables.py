"""Typed tables (dataclasses) read from TOML or JSON: one strict rule for unknown keys,
one check of each value against its field (`typed_table`), and one reading of the command
line's `key=value` settings.

A field's type is its annotation (`float`, `int`, `str` or `bool`; else its default's
type); a field may give its allowed range as `metadata={"range": (low, high)}`.
"""

from __future__ import annotations

import math
import numbers
import tomllib
from dataclasses import MISSING, Field, fields
from typing import Any

from synd.errors import one_line

#: What a value of each checked type is called in messages.
KINDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


class WrongValue(ValueError):
    """A table value of the wrong type or outside its field's range. str() is one line:
    "WHERE KEY must be a number in [-1.0, 1.0], got 'abc'" (or "must be in [...]" when
    only the range is wrong); a `where` ending in "." is joined without a space
    ("look.hue"). `key`, `value`, `want` (the type) and `bounds` say what was wrong."""

    def __init__(self, where: str, key: str, value: object, want: type, bounds: tuple | None) -> None:
        self.key, self.value, self.want, self.bounds = key, value, want, bounds
        span = f"in [{bounds[0]}, {bounds[1]}]" if bounds else ""
        wanted = span if bounds and _is(value, want) else f"{KINDS[want]} {span}".strip()
        shown = one_line(repr(value), limit=80)
        name = f"{where}{key}" if where.endswith(".") or not where else f"{where} {key}"
        super().__init__(f"{name} must be {wanted}, got {shown}")


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


def field_type(f: Field) -> type | None:
    """The checked type (bool, int, float or str) of a dataclass field, or None."""
    by_name = {t.__name__: t for t in KINDS}
    if isinstance(f.type, str) and f.type in by_name:
        return by_name[f.type]
    if f.type in KINDS:
        return f.type
    return type(f.default) if f.default is not MISSING and type(f.default) in KINDS else None


def _is(value: object, want: type) -> bool:
    """Whether `value` is a `want`: True is no number, and a whole number is a float."""
    if want is bool or isinstance(value, bool):
        return want is bool and isinstance(value, bool)
    if want is float:
        return isinstance(value, numbers.Real)
    if want is int:
        return isinstance(value, numbers.Integral)
    return isinstance(value, want)


def check_value(where: str, f: Field, value: Any) -> Any:
    """`value` for field `f` (a whole number given for a float becomes a float); WrongValue
    (one line, naming `where` and the field) when its type or range is wrong."""
    want = field_type(f)
    if want is None:
        return value
    bounds = f.metadata.get("range")
    if not _is(value, want):
        raise WrongValue(where, f.name, value, want, bounds)
    if bounds and not (bounds[0] <= value <= bounds[1] and math.isfinite(value)):
        raise WrongValue(where, f.name, value, want, bounds)
    return float(value) if want is float and isinstance(value, numbers.Integral) else value


def check_fields(obj: Any, where: str) -> None:
    """Check every field of dataclass instance `obj` (for `__post_init__`)."""
    for f in fields(obj):
        check_value(where, f, getattr(obj, f.name))


def typed_table(cls: type, table: dict, where: str) -> dict[str, Any]:
    """`table` checked for `cls(**table)`: unknown keys are an error (`reject_unknown`),
    then each value against its field (`check_value`); returns the checked values. One
    check for preset files, `--set`, config.toml and `-o`, so each says the same."""
    reject_unknown(cls, table, where)
    known = {f.name: f for f in fields(cls)}
    return {key: check_value(where, known[key], value) for key, value in table.items()}
