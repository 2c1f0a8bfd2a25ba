"""The catalog: what a preset or model name stands for, in one place.

Every part of synd that turns a name into something to paint with comes here: `synd
render`, `synd eval` and `synd bench` (`resolve_look`), the daemon and what reaches it
over OSC, MIDI and the tray (`look_for`, `choices`), and `synd info` (`model_files`).

* A **preset** (`presets/NAME.toml`, user folder first) names a model and a look.
* A **model** (`models/NAME.safetensors`, user folder first; `*.train.safetensors`,
  a training run's resumable state, is not a model) carries the look of the preset it
  was trained with, used when a model is chosen by itself.

Names that arrive over the network (`look_for`) only ever reach the presets and models
folders; the command line may also name files.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from synd.bundle import ModelBundle, load_model
from synd.checkpoint import CheckpointError
from synd.config import load_config
from synd.errors import shown_name
from synd.paths import is_plain_name, resolve, search_dirs
from synd.presets import Look, list_presets, load_preset

#: The ending of a training run's resumable state, kept beside the model it makes.
TRAINING_STATE = ".train.safetensors"


def model_files() -> list[tuple[str, Path]]:
    """(name, path) of every model in the models folders, the user's shadowing shipped
    ones of the same name, sorted by folder then name."""
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for folder in search_dirs("models"):
        for path in sorted(folder.glob("*.safetensors")):
            if path.stem not in seen and not path.name.endswith(TRAINING_STATE):
                seen.add(path.stem)
                found.append((path.stem, path))
    return found


def preset_names() -> list[str]:
    """The names of the presets that load (broken files left out), sorted."""
    return [p.name for p in list_presets()]


def choices() -> list[str]:
    """What a model slot can load by name: the presets, then the models that no preset
    of the same name shadows (a retired preset's model is not offered either)."""
    names = preset_names()
    taken = {p.name for p in list_presets(retired=True)}
    return names + [name for name, _ in model_files() if name not in taken]


def model_look(bundle: ModelBundle) -> Look:
    """The look of the preset a model was trained with (defaults where it has none)."""
    preset = bundle.meta.get("preset")
    saved = preset.get("look") if isinstance(preset, dict) else None
    known = {f.name for f in fields(Look)}
    try:
        return Look(**{k: v for k, v in (saved or {}).items() if k in known})
    except (TypeError, ValueError):
        return Look()


def resolve_look(preset: str | None, model: str | None) -> tuple[ModelBundle, Look]:
    """The model and look the command line asks for: a model (a name or a file: its
    training preset's look), else a preset (a name or a file: its model, by name),
    else the configured default preset."""
    if model:
        try:
            bundle = load_model(model)
        except CheckpointError:
            known = [name for name, _ in model_files()]
            stem = model.removesuffix(".safetensors")
            if is_plain_name(model) and stem not in known and not Path(model).is_file():
                shown = ", ".join(shown_name(n, limit=40) for n in known) or "none"
                raise CheckpointError(f"no model named '{shown_name(stem)}' (models: {shown})") from None
            raise
        return bundle, model_look(bundle)
    p = load_preset(preset if preset is not None else load_config().preset)
    # A preset names its model by bare name: only the models folders are searched (not a
    # file of that name in the working directory).
    return load_model(p.model, allow_paths=False), p.look


def look_for(name: str) -> tuple[ModelBundle, Look]:
    """(bundle, look) for a name from a control surface: a preset, else a model. Only
    the presets and models folders are searched (never a path, nor a file in the working
    directory), and a preset that exists but is broken is reported as such."""
    try:
        resolve("presets", name, ".toml", allow_paths=False)
    except (OSError, ValueError):  # no preset of that name: a model
        bundle = load_model(name, allow_paths=False)
        return bundle, model_look(bundle)
    p = load_preset(name, allow_paths=False)
    return load_model(p.model, allow_paths=False), p.look
