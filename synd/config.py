"""The user's config: $XDG_CONFIG_HOME/synd/config.toml (default ~/.config/synd/config.toml).

Example:

    preset = "lava"       # default look for render, run and train
    device = "auto"       # auto, cpu, cuda or mps

    [run]                 # the live daemon, `synd run`
    input = "system"      # system, mic, a device name or index, or an audio file
    output = "preview"    # comma-separated outputs, e.g. "preview,record:set.mp4" (default: auto)
    fps = 30
    size = "1280x720"
    delay_ms = 0          # delay the visuals to match audio that reaches the room later

    [osc]                 # OSC control (synd.frontends)
    listen = "127.0.0.1:9000"

    [midi]                # MIDI control
    port = "auto"         # auto, virtual, part of a port's name, or off

    [tray]
    show = false          # a tray icon and control window

Every key is optional; an unknown key or a wrong type is an error naming the file,
so a typo never silently falls back to a default. `synd run -o key=value` overrides a
key for one run (`-o fps=60`, `-o preset=lava`, `-o osc.listen=off`).

The OSC, MIDI and tray keys once lived in `[run]` (`osc`, `osc_remote`, `midi_api`,
`tray`, ...); those names still work for one release, each with a one-line notice
naming its new place (`MOVED`).
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from synd.paths import config_dir
from synd.presets import DEFAULT_PRESET
from synd.sizes import GENERATION_SHORT_SIDE
from synd.tables import parse_assignment, reject_unknown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """Settings of `synd run` (the `[run]` table)."""

    input: str = ""  # empty: system audio when available, else the microphone
    # auto: the preview window (with a display) and NDI (when installed); with no display,
    # also a recording (and only a recording when neither is available)
    output: str = "auto"
    fps: float = 30.0
    size: str = "1280x720"
    detail: int = GENERATION_SHORT_SIDE  # short side the pictures are painted at (render's --detail)
    delay_ms: float = 0.0
    play: bool = False  # with an audio file as input: also play it
    loop: bool = False  # with an audio file as input: start again at the end
    status_every: float = 10.0  # seconds between status log lines (0: never)
    runtime: str = "auto"  # what paints: auto (ONNX Runtime on a CPU when installed), onnx, torch
    ndi_name: str = "synd"  # the source name of the ndi, syphon and spout outputs
    mix: str = "image"  # the crossfader blends slot A and B pictures, or their weights
    flash_guard: bool = True  # never more than 3 flashes a second (off: a warning at start)


@dataclass(frozen=True)
class OscConfig:
    """OSC control of `synd run` (the `[osc]` table)."""

    listen: str = "127.0.0.1:9000"  # where the OSC server listens ("off": no OSC)
    remote: bool = False  # allow binding beyond this machine (with allow, ideally)
    allow: str = ""  # comma-separated sender IPs, hosts or networks (empty: anyone)
    feedback: str = ""  # HOST:PORT that gets status, beats and changes (TouchOSC)


@dataclass(frozen=True)
class MidiConfig:
    """MIDI control of `synd run` (the `[midi]` table)."""

    port: str = "auto"  # auto (first input port, else a virtual port), virtual, a port name part, off
    api: str = "auto"  # auto, alsa, jack, coremidi or winmm
    map: str = ""  # mapping file (empty: ~/.config/synd/midi.toml, else the shipped one)
    feedback: str = ""  # output port name part (or "virtual") for controller LEDs; empty: none


@dataclass(frozen=True)
class TrayConfig:
    """The tray icon of `synd run` (the `[tray]` table)."""

    show: bool = False  # a tray icon and control window (the window has the preview)


@dataclass(frozen=True)
class Config:
    """Defaults that command-line flags override."""

    preset: str = DEFAULT_PRESET
    device: str = "auto"
    run: RunConfig = field(default_factory=RunConfig)
    osc: OscConfig = field(default_factory=OscConfig)
    midi: MidiConfig = field(default_factory=MidiConfig)
    tray: TrayConfig = field(default_factory=TrayConfig)


#: The tables of config.toml and what each holds.
TABLES: dict[str, type] = {"run": RunConfig, "osc": OscConfig, "midi": MidiConfig, "tray": TrayConfig}
#: Keys that moved out of `[run]`: old name -> (table, key). They work for one release.
MOVED: dict[str, tuple[str, str]] = {
    "osc": ("osc", "listen"),
    "osc_remote": ("osc", "remote"),
    "osc_allow": ("osc", "allow"),
    "osc_feedback": ("osc", "feedback"),
    "midi": ("midi", "port"),
    "midi_api": ("midi", "api"),
    "midi_map": ("midi", "map"),
    "midi_feedback": ("midi", "feedback"),
    "tray": ("tray", "show"),
}


def is_off(value: str) -> bool:
    """Whether a setting such as `[osc] listen` or `[midi] port` turns its frontend off."""
    return value.strip().lower() in ("off", "", "none")


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720), with a one-line error (16 to 8192 pixels a side)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must look like 1280x720, got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise ValueError(f"size {text} is out of range (16 to 8192 pixels a side)")
    return w, h


def parse_host_port(text: str, what: str = "address") -> tuple[str, int]:
    """'127.0.0.1:9000' -> ('127.0.0.1', 9000); '[::1]:9000' for IPv6; one-line errors."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
    except ValueError:
        number = -1
    if not sep or not host or not 0 <= number <= 65535:
        raise ValueError(f"{what} must look like HOST:PORT (e.g. 127.0.0.1:9000), got {text!r}")
    return host, number


def config_path() -> Path:
    return config_dir() / "config.toml"


def _typed(cls: type, table: dict, where: str) -> dict[str, Any]:
    """Check every value of `table` against the type of `cls`'s field default."""
    from synd.tables import WrongValue, typed_table

    reject_unknown(cls, table, where)
    for name in TABLES:
        if cls is Config and name in table:
            raise ValueError(f"{where}: '{name}' must be a table of {name} settings")
    try:  # the presets' check, in config.toml's words
        return typed_table(cls, table, where)
    except WrongValue as e:
        raise ValueError(f"{where}: '{e.key}' must be {e.want.__name__}, got {e.value!r}") from None


def _move_old_keys(tables: dict[str, dict], where: str) -> None:
    """Old `[run]` keys (`MOVED`) into their own tables, with a one-line notice each; a
    key also given in its new place keeps the new place's value."""
    run = tables["run"]
    for old in [k for k in run if k in MOVED]:
        table, key = MOVED[old]
        value = run.pop(old)
        log.warning(
            "%s: [run] %s is now [%s] %s (the old key works until the next release)", where, old, table, key
        )
        tables[table].setdefault(key, value)


def parse_config(doc: dict, where: str) -> Config:
    """A Config from a parsed TOML document; errors name `where`."""
    doc = dict(doc)
    tables: dict[str, dict] = {}
    for name in TABLES:
        table = doc.pop(name, {})
        if not isinstance(table, dict):
            raise ValueError(f"{where}: '{name}' must be a table")
        tables[name] = dict(table)
    top = _typed(Config, doc, where)
    _move_old_keys(tables, where)
    return Config(
        **top, **{name: cls(**_typed(cls, tables[name], f"{where} [{name}]")) for name, cls in TABLES.items()}
    )


def load_config(path: Path | None = None) -> Config:
    """Read the config file if there is one; defaults otherwise.

    An explicitly given `path` must exist.
    """
    explicit = path is not None
    path = path or config_path()
    if not path.is_file():
        if explicit:
            raise ValueError(f"config '{path}': no such file")
        return Config()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config '{path}': invalid TOML ({e})") from None
    return parse_config(doc, f"config '{path}'")


def with_values(
    config: Config, values: dict[tuple[str | None, str], object], where: str = "override -o"
) -> Config:
    """A copy of `config` with `values` set: (table, key) -> value, table None for the
    top-level keys (preset, device). Values are type-checked like the file's."""
    top = {key: v for (table, key), v in values.items() if table is None}
    changed = {name: {key: v for (table, key), v in values.items() if table == name} for name in TABLES}
    tables: dict[str, Any] = _typed(Config, top, where) if top else {}
    return replace(
        config,
        **tables,
        **{
            name: replace(getattr(config, name), **_typed(TABLES[name], items, f"{where} [{name}]"))
            for name, items in changed.items()
            if items
        },
    )


def apply_overrides(config: Config, items: list[str]) -> Config:
    """Apply `key=value` overrides: top-level keys (preset, device), `table.key` (`osc.listen`,
    `run.fps`), or `[run]` keys without their prefix (`fps=60`); an old `[run]` key
    (`MOVED`) lands in its new place with a notice. Values are TOML (`fps=60`,
    `play=true`); a bare word is a string (`input=mic`)."""
    values: dict[tuple[str | None, str], object] = {}
    run_keys = {f.name for f in fields(RunConfig)}
    for item in items:
        try:
            key, value = parse_assignment(item)
        except ValueError:
            raise ValueError(f"override '{item}' must look like key=value") from None
        table: str | None
        table, dot, name = key.partition(".")
        if not dot:
            table, name = None, key
        if table == "run" and name in MOVED or table is None and name in MOVED:
            new = MOVED[name]
            log.warning("override -o %s: now %s.%s (the old name works until the next release)", key, *new)
            table, name = new
        elif table is None and name in run_keys:
            table = "run"
        elif table is not None and table not in TABLES:
            raise ValueError(f"override '{item}': no table [{table}] (tables: {', '.join(TABLES)})")
        values[(table, name)] = value
    return with_values(config, values)
