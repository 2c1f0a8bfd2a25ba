"""Presets: TOML files that define a look (training recipe + live look parameters).

A preset names its model, the features it hears, the network size, the loss weights it
was trained with, the look applied at render/live time and the training settings.
Unknown keys are errors, so a typo never silently falls back to a default.

A preset with `retired = "why"` is a look synd no longer offers: it is left out of the
preset list (`synd presets`, the daemon's next/previous/random and rotation, the tray's
menus, the names OSC and MIDI accept), but still loads when named on the command line or
in the config file, so a recipe another model is trained from (`classic` is `lava`'s
starting point) and anyone's habit keep working.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from synd.errors import one_line, shown_name
from synd.features import FeatureConfig
from synd.files import read_regular_file
from synd.losses import LossWeights
from synd.model import ModelConfig
from synd.paths import is_plain_name, resolve, search_dirs
from synd.tables import check_fields, check_value, parse_assignment, typed_table

log = logging.getLogger(__name__)

DEFAULT_PRESET = "lava"
#: A preset is a few hundred bytes of TOML; anything far bigger is not one.
MAX_PRESET_BYTES = 1 << 20


class PresetError(Exception):
    """A preset that cannot be used; one line naming the file and problem."""


def _in(low: float, high: float) -> dict:
    """Field metadata: the allowed range, checked by synd.tables for files, --set and code."""
    return {"range": (low, high)}


@dataclass(frozen=True)
class Look:
    """How frames are made at render and live time."""

    # share of the previous frame in the next base image (0-1)
    feedback: float = field(default=0.85, metadata=_in(0.0, 1.0))
    # how strongly the sound drives the picture (0-1, headroom above)
    intensity: float = field(default=1.0, metadata=_in(0.0, 4.0))
    hue: float = field(default=0.0, metadata=_in(-1.0, 1.0))  # hue rotation in turns
    # feature smoothing between frames (0 = none, 0.9 = very slow)
    smoothing: float = field(default=0.3, metadata=_in(0.0, 0.99))
    # sound-driven light and colour over the picture (synd.stage; 0 = off, 1 = full)
    stage: float = field(default=0.0, metadata=_in(0.0, 1.0))
    # how fast the base pattern flows with the music (synd.flow; 0 = a fixed pattern)
    flow: float = field(default=0.0, metadata=_in(0.0, 2.0))
    # how much a loud passage speeds the flow: sound seconds a second added per standard
    # deviation of the song's loudness over its last 20 s (synd.flow; the hits' push is 2)
    loudness_pace: float = field(default=0.25, metadata=_in(0.0, 2.0))
    # the picture drawn as glowing contour lines (synd.lines; 0 = off, 1 = lines only)
    lines: float = field(default=0.0, metadata=_in(0.0, 1.0))
    # the picture printed in two inks: its colourful half vivid on black (synd.ink; 0 = off)
    ink: float = field(default=0.0, metadata=_in(0.0, 1.0))
    # the picture folded into this many mirrored wedges, turning with the music
    # (synd.polar; 0 = off, else an even number 4-16)
    mirror: float = field(default=0.0, metadata=_in(0.0, 16.0))
    # the picture wrapped into a tunnel streaming outwards with the music (synd.polar; 0 = off)
    tunnel: float = field(default=0.0, metadata=_in(0.0, 1.0))
    # the generator's fine full-height stripes taken out of the shown frame (synd.destripe;
    # 0 = off, 1 = all of them)
    destripe: float = field(default=0.0, metadata=_in(0.0, 1.0))
    # how far the palette turns with the song's passages, in turns of the hue circle: a
    # loud one turns it one way, a quiet one the other; the sign picks which (needs the
    # flow's level, synd.flow.Flow.section; 0 = a fixed palette)
    sections: float = field(default=0.0, metadata=_in(-0.5, 0.5))

    def __post_init__(self):
        check_fields(self, "look.")


@dataclass(frozen=True)
class TrainSettings:
    """Defaults for `synd train` with this preset (flags override them)."""

    steps: int = field(default=3000, metadata=_in(1, 10**9))
    # generator crop (pixels) of a virtual native-size frame
    size: int = field(default=64, metadata=_in(16, 256))
    batch: int = field(default=16, metadata=_in(1, 4096))
    # consecutive frames per sequence, previous output fed back
    unroll: int = field(default=3, metadata=_in(1, 64))
    lr: float = field(default=2e-3, metadata=_in(1e-7, 1.0))
    # the decoder's crop decays from the whole frame to this fraction
    min_crop: float = field(default=0.5, metadata=_in(0.1, 1.0))
    feedback_min: float = field(default=0.5, metadata=_in(0.0, 1.0))
    # persistent chains: long feedback histories without long unrolls
    pool: int = field(default=256, metadata=_in(1, 10**6))
    reset_prob: float = field(default=0.1, metadata=_in(0.0, 1.0))
    # std of random offsets added to the (normalised) features
    augment: float = field(default=0.3, metadata=_in(0.0, 10.0))
    # share of sequences that hear digital silence (a still picture then)
    silence: float = field(default=0.0, metadata=_in(0.0, 1.0))

    def __post_init__(self):
        check_fields(self, "train.")
        if self.size % 8:
            raise ValueError(f"train.size must be a multiple of 8, got {self.size}")
        if self.pool < self.batch:
            raise ValueError(f"train.pool ({self.pool}) must be at least train.batch ({self.batch})")


@dataclass(frozen=True)
class Preset:
    """A named look; see the module docstring."""

    name: str
    description: str
    model: str
    features: FeatureConfig = field(default_factory=FeatureConfig)
    architecture: dict = field(default_factory=dict)
    loss: LossWeights = field(default_factory=LossWeights)
    look: Look = field(default_factory=Look)
    train: TrainSettings = field(default_factory=TrainSettings)
    path: Path | None = None
    #: Why this look is no longer offered ("" = offered); see the module docstring.
    retired: str = ""

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "features": self.features.to_dict(),
            "architecture": dict(self.architecture),
            "loss": self.loss.to_dict(),
            "look": asdict(self.look),
            "train": asdict(self.train),
        }
        return d


def _typed(cls, table: dict, where: str):
    """`cls` made from a [table] of a preset, every value checked first (`typed_table`)."""
    try:
        values = typed_table(cls, table, where)
    except ValueError as e:
        raise PresetError(str(e)) from None
    return cls(**values)


def _checked(cls, table: dict, where: str) -> dict:
    """The values of a [table] read by `cls.from_dict`, their types checked first
    (`check_value`); unknown keys are left for `from_dict` to report."""
    known = {f.name: f for f in fields(cls)}
    try:
        return {k: check_value(where, known[k], v) if k in known else v for k, v in table.items()}
    except ValueError as e:
        raise PresetError(str(e)) from None


def read_preset_text(path: Path) -> str:
    """The UTF-8 text of a preset file; PresetError (one line) for anything else.

    Only a regular file is read, opened without blocking: a pipe or device named like a
    preset (in a presets folder, say) would otherwise hang `synd presets` or never end.
    """
    where = f"preset '{shown_name(path)}'"
    try:
        data = read_regular_file(path, MAX_PRESET_BYTES + 1)
    except (OSError, ValueError) as e:
        raise PresetError(f"{where}: {getattr(e, 'strerror', None) or e}") from None
    if len(data) > MAX_PRESET_BYTES:
        raise PresetError(f"{where}: too big for a preset (over {MAX_PRESET_BYTES} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PresetError(f"{where}: not UTF-8 text (byte {e.start})") from None


def _string(doc: dict, key: str, default: str, where: str) -> str:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise PresetError(f"{where}: {key} must be a string, got {type(value).__name__}")
    return value


def parse_preset(text: str, path: Path) -> Preset:
    """Parse preset TOML text; raises PresetError naming the file and the problem.

    `model` must be a bare model name (found in the models folders), never a path: a
    preset shared as a file must not make synd read some other file.
    """
    where = f"preset '{shown_name(path)}'"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PresetError(f"{where}: invalid TOML ({one_line(e)})") from None
    except RecursionError:
        raise PresetError(f"{where}: invalid TOML (nested too deeply)") from None
    allowed = {"name", "description", "model", "retired", "features", "architecture", "loss", "look", "train"}
    unknown = set(doc) - allowed
    if unknown:
        raise PresetError(f"{where}: unknown keys {sorted(unknown)}")
    name = _string(doc, "name", path.stem, where)
    model = _string(doc, "model", name, where)
    if not is_plain_name(model) or any(not c.isprintable() for c in model):
        raise PresetError(
            f"{where}: model must be the bare name of a model in the models "
            f"folders, not a path: '{shown_name(model)}'"
        )
    return Preset(
        name=name,
        description=_string(doc, "description", "", where),
        model=model,
        path=path,
        retired=_string(doc, "retired", "", where),
        **parse_preset_tables(doc, path),
    )


def parse_preset_tables(doc: dict, path: Path, where: str | None = None) -> dict:
    """The typed features/architecture/loss/look/train tables of a preset document.

    Every value is checked against its field's type (and range) first, so a wrong one is
    one line naming the table, the key, what it wants and what it got. Errors start with
    `where` (default: the preset file's name)."""
    where = where or f"preset '{shown_name(path)}'"
    for table in ("features", "architecture", "loss", "look", "train"):
        if not isinstance(doc.get(table, {}), dict):
            raise PresetError(f"{where}: [{table}] must be a table, got {type(doc[table]).__name__}")
    try:
        features = FeatureConfig.from_dict(
            _checked(FeatureConfig, doc.get("features", {}), f"{where} [features]")
        )
        architecture = _checked(ModelConfig, doc.get("architecture", {}), f"{where} [architecture]")
        ModelConfig.from_dict({"feature_dim": features.dim, **architecture})
        return dict(
            features=features,
            architecture=dict(doc.get("architecture", {})),
            loss=LossWeights.from_dict(_checked(LossWeights, doc.get("loss", {}), f"{where} [loss]")),
            look=_typed(Look, doc.get("look", {}), f"{where} [look]"),
            train=_typed(TrainSettings, doc.get("train", {}), f"{where} [train]"),
        )
    except PresetError:
        raise
    except (TypeError, ValueError) as e:
        raise PresetError(f"{where}: {one_line(e)}") from None


def load_preset(name: str, allow_paths: bool = True) -> Preset:
    """Load a preset by bare name (user folder first, then shipped) or by file path."""
    try:
        path = resolve("presets", name, ".toml", allow_paths=allow_paths)
    except FileNotFoundError as e:
        if is_plain_name(name):  # a name, not a file: say which names there are
            raise PresetError(f"no preset named '{shown_name(name)}' ({_names()})") from None
        raise PresetError(shown_name(str(e), limit=1000)) from None
    except (OSError, ValueError) as e:  # e.g. a name too long for the file system
        reason = getattr(e, "strerror", None) or e
        raise PresetError(f"preset '{shown_name(name)}': {reason}") from None
    preset = parse_preset(read_preset_text(path), path)
    if preset.retired:
        log.info("preset %s is retired as a look (%s); loaded as asked", preset.name, preset.retired)
    return preset


def _names() -> str:
    """What `--preset` takes ("presets: a, b, c": the files that load), for an error."""
    names = sorted(p.path.stem if p.path else p.name for p in list_presets())
    if not names:
        return f"there are no presets in {', '.join(str(d) for d in search_dirs('presets'))}"
    return f"presets: {', '.join(shown_name(n, limit=40) for n in names)}"


def list_presets(errors: list[str] | None = None, retired: bool = False) -> list[Preset]:
    """The presets offered, user presets shadowing shipped ones of the same name; with
    `retired`, the retired ones too.

    A broken file is left out (and still shadows a shipped preset of its name, as
    `load_preset` would find it first); its error is appended to `errors` if given.
    """
    found: dict[str, Preset | None] = {}
    for folder in reversed(search_dirs("presets")):
        for path in sorted(folder.glob("*.toml")):
            try:
                found[path.stem] = parse_preset(read_preset_text(path), path)
            except PresetError as e:
                found[path.stem] = None
                if errors is not None:
                    errors.append(str(e))
    shown = (p for p in found.values() if p is not None and (retired or not p.retired))
    return sorted(shown, key=lambda p: p.name)


def apply_overrides(preset: Preset, overrides: list[str]) -> Preset:
    """A copy of `preset` with `table.key=value` settings changed, e.g. `loss.noise=0.3`,
    `look.feedback=0.7`, `train.steps=5000`. Values are TOML (`0.3`, `true`, `"fft"`; a
    bare word is taken as a string). Every result is validated like a preset file."""
    from dataclasses import replace

    doc = preset.to_dict()
    for item in overrides:
        try:
            key, value = parse_assignment(item)
        except ValueError:
            key, value = "", None
        table, dot, name = key.partition(".")
        if not dot or table not in ("features", "architecture", "loss", "look", "train"):
            raise PresetError(
                f"override '{item}': use TABLE.KEY=VALUE with TABLE one of "
                "features, architecture, loss, look, train"
            )
        doc[table][name.strip()] = value
    text_tables = {k: doc[k] for k in ("features", "architecture", "loss", "look", "train")}
    parsed = parse_preset_tables(text_tables, preset.path or Path(preset.name), where="override")
    return replace(preset, **parsed)
