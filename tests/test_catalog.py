"""The catalog (`synd.catalog`): names to presets, models and looks, with real files in
the user's folders beside the shipped ones."""

from __future__ import annotations

import shutil

import pytest

from synd.catalog import choices, look_for, model_files, preset_names, resolve_look
from synd.checkpoint import CheckpointError
from synd.paths import shipped_dir
from synd.presets import PresetError

SHIPPED_MODEL = "prism"


@pytest.fixture
def user_dirs(tmp_path, monkeypatch):
    """Empty user config and data folders; returns (presets folder, models folder)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    presets = tmp_path / "config" / "synd" / "presets"
    models = tmp_path / "data" / "synd" / "models"
    presets.mkdir(parents=True)
    models.mkdir(parents=True)
    return presets, models


def test_model_files_user_first_and_no_training_state(user_dirs):
    _, models = user_dirs
    shipped = dict(model_files())
    assert SHIPPED_MODEL in shipped and shipped[SHIPPED_MODEL].parent == shipped_dir("models")
    shutil.copy(shipped[SHIPPED_MODEL], models / f"{SHIPPED_MODEL}.safetensors")
    shutil.copy(shipped[SHIPPED_MODEL], models / "mine.safetensors")
    shutil.copy(shipped[SHIPPED_MODEL], models / "mine.train.safetensors")
    found = dict(model_files())
    assert found[SHIPPED_MODEL].parent == models  # the user's copy shadows the shipped one
    assert found["mine"] == models / "mine.safetensors"
    assert "mine.train" not in found
    assert [n for n, _ in model_files()].count(SHIPPED_MODEL) == 1


def test_choices_are_presets_then_unshadowed_models(user_dirs):
    _, models = user_dirs
    shutil.copy(dict(model_files())[SHIPPED_MODEL], models / "zzz-own.safetensors")
    names = choices()
    presets = preset_names()
    assert names[: len(presets)] == presets
    assert names[-1] == "zzz-own"
    assert len(names) == len(set(names))
    # A retired look's model ships (classic is lava's base) but is not offered either.
    assert SHIPPED_MODEL in dict(model_files()) and SHIPPED_MODEL not in names


def test_look_for_a_user_preset_names_its_model_and_look(user_dirs):
    presets, _ = user_dirs
    (presets / "dim.toml").write_text(
        f'name = "dim"\nmodel = "{SHIPPED_MODEL}"\n[look]\nfeedback = 0.5\nintensity = 0.25\n'
    )
    bundle, look = look_for("dim")
    assert (look.feedback, look.intensity) == (0.5, 0.25)
    assert bundle.meta["name"] == resolve_look(None, SHIPPED_MODEL)[0].meta["name"]
    assert "dim" in preset_names() and "dim" in choices()


def test_look_for_a_model_takes_its_training_look(user_dirs):
    bundle, look = look_for(SHIPPED_MODEL)
    saved = bundle.meta["preset"]["look"]
    assert look.feedback == saved["feedback"] and look.smoothing == saved["smoothing"]


def test_look_for_refuses_paths_and_unknown_names(user_dirs, tmp_path):
    model = dict(model_files())[SHIPPED_MODEL]
    with pytest.raises(CheckpointError, match="only bare names"):
        look_for(str(model))
    with pytest.raises(CheckpointError, match="no model named 'nothing-here'"):
        look_for("nothing-here")


def test_broken_user_preset_is_reported_not_skipped(user_dirs):
    presets, _ = user_dirs
    (presets / "broken.toml").write_text("name = [unclosed\n")
    with pytest.raises(PresetError):
        look_for("broken")
    with pytest.raises(PresetError):
        resolve_look("broken", None)
    assert "broken" not in preset_names()
