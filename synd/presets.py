"""Presets: TOML files that define a look (training recipe + live look parameters).

A preset names its model, the features it hears, the network size, the loss weights it
was trained with, the look applied at render/live time and the training settings.
Unknown keys are errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from synd.features import FeatureConfig
from synd.files import read_regular_file
from synd.losses import LossWeights
from synd.model import ModelConfig
from synd.paths import is_plain_name, resolve, search_dirs
from synd.tables import parse_assignment, reject_unknown
from synd.errors import one_line, shown_name

DEFAULT_PRESET = "prism"
#: A preset is a few hundred bytes of TOML; anything far bigger is not one.
MAX_PRESET_BYTES = 1 << 20


class PresetError(Exception):
    """A preset that cannot be used; one line naming the file and problem."""


@dataclass(frozen=True)
class Look:
    """How frames are made at render and live time."""

    feedback: float = 0.85  # share of the previous frame in the next base image (0-1)
    intensity: float = 1.0  # how strongly the sound drives the picture (0-1, headroom above)
    hue: float = 0.0  # hue rotation in turns (0-1)
    smoothing: float = 0.3  # feature smoothing between frames (0 = none, 0.9 = very slow)

    def __post_init__(self):
        for name, lo, hi in (
            ("feedback", 0.0, 1.0),
            ("intensity", 0.0, 4.0),
            ("hue", -1.0, 1.0),
            ("smoothing", 0.0, 0.99),
        ):
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"look.{name} must be in [{lo}, {hi}], got {value}")


@dataclass(frozen=True)
class TrainSettings:
    """Defaults for `synd train` with this preset (flags override them)."""

    steps: int = 3000
    size: int = 64  # generator crop (pixels) of a virtual native-size frame
    batch: int = 16
    unroll: int = 3  # consecutive frames per sequence, previous output fed back
    lr: float = 2e-3
    min_crop: float = 0.5  # the decoder's crop decays from the whole frame to this fraction
    feedback_min: float = 0.5
    pool: int = 256  # persistent chains: long feedback histories without long unrolls
    reset_prob: float = 0.1
    augment: float = 0.3  # std of random offsets added to the (normalised) features
    silence: float = 0.0  # share of sequences that hear digital silence (a still picture then)

    def __post_init__(self):
        lo: float  # whole numbers, then fractions
        hi: float
        for name, lo, hi in (
            ("steps", 1, 10**9),
            ("size", 16, 256),
            ("batch", 1, 4096),
            ("unroll", 1, 64),
            ("pool", 1, 10**6),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"train.{name} must be a whole number in [{lo}, {hi}], got {value!r}")
        if self.size % 8:
            raise ValueError(f"train.size must be a multiple of 8, got {self.size}")
        if self.pool < self.batch:
            raise ValueError(f"train.pool ({self.pool}) must be at least train.batch ({self.batch})")
        for name, lo, hi in (
            ("lr", 1e-7, 1.0),
            ("min_crop", 0.1, 1.0),
            ("feedback_min", 0.0, 1.0),
            ("reset_prob", 0.0, 1.0),
            ("augment", 0.0, 10.0),
            ("silence", 0.0, 1.0),
        ):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not lo <= value <= hi:
                raise ValueError(f"train.{name} must be a number in [{lo}, {hi}], got {value!r}")


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
    try:
        reject_unknown(cls, table, where)
    except ValueError as e:
        raise PresetError(str(e)) from None
    return cls(**table)


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
    allowed = {"name", "description", "model", "features", "architecture", "loss", "look", "train"}
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
        **parse_preset_tables(doc, path),
    )


def parse_preset_tables(doc: dict, path: Path) -> dict:
    """The typed features/architecture/loss/look/train tables of a preset document."""
    where = f"preset '{shown_name(path)}'"
    for table in ("features", "architecture", "loss", "look", "train"):
        if not isinstance(doc.get(table, {}), dict):
            raise PresetError(f"{where}: [{table}] must be a table, got {type(doc[table]).__name__}")
    try:
        features = FeatureConfig.from_dict(doc.get("features", {}))
        ModelConfig.from_dict({"feature_dim": features.dim, **doc.get("architecture", {})})
        return dict(
            features=features,
            architecture=dict(doc.get("architecture", {})),
            loss=LossWeights.from_dict(doc.get("loss", {})),
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
        raise PresetError(shown_name(str(e), limit=1000)) from None
    except (OSError, ValueError) as e:  # e.g. a name too long for the file system
        reason = getattr(e, "strerror", None) or e
        raise PresetError(f"preset '{shown_name(name)}': {reason}") from None
    return parse_preset(read_preset_text(path), path)


def list_presets(errors: list[str] | None = None) -> list[Preset]:
    """All presets found, user presets shadowing shipped ones of the same name.

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
    return sorted((p for p in found.values() if p is not None), key=lambda p: p.name)


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
    try:
        parsed = parse_preset_tables(text_tables, preset.path or Path(preset.name))
    except PresetError as e:
        raise PresetError(f"override: {e}") from None
    return replace(preset, **parsed)
