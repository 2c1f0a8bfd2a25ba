"""The user's config: $XDG_CONFIG_HOME/synd/config.toml (default ~/.config/synd/config.toml).

Example:

    preset = "drift"      # default look for render, run and train
    device = "auto"       # auto, cpu, cuda or mps

    [run]                 # the live daemon, `synd run`
    input = "system"      # system, mic, a device name or index, or an audio file
    output = "preview"    # comma-separated outputs, e.g. "preview,record:set.mp4" (default: auto)
    fps = 30
    size = "1280x720"
    delay_ms = 0          # delay the visuals to match audio that reaches the room later

Every key is optional; an unknown key or a wrong type is an error naming the file,
so a typo never silently falls back to a default. `synd run -o key=value` overrides a
key for one run (`-o fps=60`, `-o preset=drift`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from synd.paths import config_dir
from synd.presets import DEFAULT_PRESET
from synd.tables import reject_unknown


@dataclass(frozen=True)
class RunConfig:
    """Settings of `synd run` (the `[run]` table)."""

    input: str = ""          # empty: system audio when available, else the microphone
    output: str = "auto"     # auto: preview window (with a display) and NDI (when installed), else a recording
    fps: float = 30.0
    size: str = "1280x720"
    detail: int = 216        # short side the pictures are painted at (render's --detail)
    delay_ms: float = 0.0
    play: bool = False       # with an audio file as input: also play it
    loop: bool = False       # with an audio file as input: start again at the end
    status_every: float = 10.0  # seconds between status log lines (0: never)
    runtime: str = "auto"    # what paints: auto (ONNX Runtime on a CPU when installed), onnx, torch
    ndi_name: str = "synd"   # the source name of the ndi, syphon and spout outputs
    mix: str = "image"       # the crossfader blends slot A and B pictures, or their weights
    osc: str = "127.0.0.1:9000"  # where the OSC server listens ("off": no OSC)
    osc_remote: bool = False  # allow binding beyond this machine (with osc_allow, ideally)
    osc_allow: str = ""      # comma-separated sender IPs, hosts or networks (empty: anyone)
    osc_feedback: str = ""   # HOST:PORT that gets status, beats and changes (TouchOSC)
    midi: str = "auto"       # MIDI input: auto (first port, else a virtual port), virtual, a port name part, off
    midi_api: str = "auto"   # auto, alsa, jack, coremidi or winmm
    midi_map: str = ""       # mapping file (empty: ~/.config/synd/midi.toml, else the shipped one)
    midi_feedback: str = ""  # output port name part (or "virtual") for controller LEDs; empty: none
    tray: bool = False       # a tray icon and control window (the window has the preview)
    flash_guard: bool = True  # never more than 3 flashes a second (off: a warning at start)


@dataclass(frozen=True)
class Config:
    """Defaults that command-line flags override."""

    preset: str = DEFAULT_PRESET
    device: str = "auto"
    run: RunConfig = field(default_factory=RunConfig)


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


def _typed(cls: type, table: dict, where: str) -> dict:
    """Check every value of `table` against the type of `cls`'s field default."""
    reject_unknown(cls, table, where)
    if "run" in table:
        raise ValueError(f"{where}: 'run' must be a table of run settings")
    defaults = {f.name: f.default for f in fields(cls) if f.name != "run"}
    out = {}
    for key, value in table.items():
        want = type(defaults[key])
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ValueError(f"{where}: '{key}' must be {want.__name__}, got {value!r}")
        out[key] = value
    return out


def parse_config(doc: dict, where: str) -> Config:
    """A Config from a parsed TOML document; errors name `where`."""
    doc = dict(doc)
    run = doc.pop("run", {})
    if not isinstance(run, dict):
        raise ValueError(f"{where}: 'run' must be a table")
    top = _typed(Config, doc, where)
    return Config(**top, run=RunConfig(**_typed(RunConfig, run, f"{where} [run]")))


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


def apply_overrides(config: Config, items: list[str]) -> Config:
    """Apply `key=value` overrides: top-level keys (preset, device) or `[run]` keys, with
    or without the `run.` prefix. Values are TOML (`fps=60`, `play=true`); a bare word is
    a string (`input=mic`)."""
    top: dict = {}
    run: dict = {}
    run_keys = {f.name for f in fields(RunConfig)}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"override '{item}' must look like key=value")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        name = key.removeprefix("run.")
        (run if name in run_keys else top)[name] = value
    where = "override -o"
    top = _typed(Config, top, where) if top else {}
    run = _typed(RunConfig, run, where) if run else {}
    return replace(config, **top, run=replace(config.run, **run))
