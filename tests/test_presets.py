"""Presets: the shipped looks parse and differ; bad files are clear errors; names stay in their folders."""

import pytest

from synd.config import load_config
from synd.presets import PresetError, list_presets, load_preset


def test_shipped_presets_are_different_looks():
    presets = {p.name: p for p in list_presets(retired=True)}
    offered = {p.name for p in list_presets()}
    assert offered == {"lava", "tide", "neon", "mandala", "poster", "wormhole"}
    # Retired: looks that missed the targets, still loadable by name (classic is lava's base).
    assert {"classic", "sharp", "prism"} <= set(presets) - offered
    assert all(presets[name].retired for name in ("classic", "sharp", "prism"))
    assert "drift" not in presets  # deleted: it strobed (15 flashes a second unguarded)
    own = [p for p in presets.values() if p.model == p.name]  # presets that train a model
    losses = [tuple(sorted(p.loss.to_dict().items())) for p in own]
    assert len(set(losses)) == len(losses)  # no two models train the same way
    assert presets["sharp"].loss.noise > 0
    assert presets["prism"].loss.colorfulness > 0 and presets["prism"].loss.color_variance > 0
    looks = [(p.model, tuple(sorted(vars(p.look).items()))) for p in presets.values()]
    assert len(set(looks)) == len(looks)  # ...and no two presets show the same model the same way
    for p in presets.values():
        assert p.description
        # A preset on another preset's model learns that model's way (`synd train --preset`).
        assert (
            p.model in presets and presets[p.model].loss == p.loss and presets[p.model].features == p.features
        )
    assert presets["lava"].look.flow > 0 and presets["tide"].look.flow > 0
    # The geometric, high-contrast and tunnel looks: lava's flowing fields, re-drawn.
    assert presets["mandala"].look.mirror == 6 and presets["mandala"].look.flow > 0
    assert presets["poster"].look.ink == 1 and presets["wormhole"].look.tunnel == 1


def test_unknown_keys_and_bad_values_are_errors(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('name = "typo"\n[look]\nfeedbak = 0.5\n')
    with pytest.raises(PresetError, match=r"typo.toml.*unknown keys \['feedbak'\]"):
        load_preset(str(path))
    path.write_text('name = "x"\n[look]\nfeedback = 1.5\n')
    with pytest.raises(PresetError, match="feedback must be in"):
        load_preset(str(path))
    path.write_text('name = "x"\n[loss]\nsound = "loud"\n')
    with pytest.raises(PresetError):
        load_preset(str(path))
    path.write_text("name = \n")
    with pytest.raises(PresetError, match="invalid TOML"):
        load_preset(str(path))


def test_user_presets_shadow_shipped_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "synd" / "presets"
    folder.mkdir(parents=True)
    (folder / "prism.toml").write_text('name = "prism"\ndescription = "my own prism"\n')
    (folder / "mine.toml").write_text('description = "mine"\n[look]\nfeedback = 0.5\n')
    presets = {p.name: p for p in list_presets()}
    assert presets["prism"].description == "my own prism"
    assert presets["mine"].look.feedback == 0.5
    assert load_preset("mine").model == "mine"


def test_names_cannot_leave_the_preset_folders():
    for name in ("../../etc/passwd", "/etc/passwd", "..", "a/../../b"):
        with pytest.raises(PresetError):
            load_preset(name, allow_paths=False)


def test_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert load_config().preset == "lava"
    (tmp_path / "synd").mkdir()
    (tmp_path / "synd" / "config.toml").write_text('preset = "drift"\n')
    assert load_config().preset == "drift"
    (tmp_path / "synd" / "config.toml").write_text('presett = "drift"\n')
    with pytest.raises(ValueError, match=r"unknown keys \['presett'\]"):
        load_config()


def test_overrides_change_one_setting_and_are_validated():
    from synd.presets import apply_overrides

    base = load_preset("sharp")
    p = apply_overrides(
        base, ["loss.noise=1.5", "look.feedback=0.5", "train.steps=10", 'features.kind="fft"']
    )
    assert (p.loss.noise, p.look.feedback, p.train.steps, p.features.kind) == (1.5, 0.5, 10, "fft")
    assert p.loss.sound == base.loss.sound and p.name == "sharp"
    for bad, match in (
        ("loss.nosie=1", r"unknown keys \['nosie'\]"),
        ("look.feedback=3", "feedback must be in"),
        ("noise=1", "TABLE.KEY=VALUE"),
        ("train.size=30", "multiple of 8"),
    ):
        with pytest.raises(PresetError, match=match):
            apply_overrides(base, [bad])


def test_a_preset_names_its_model_never_a_path(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('model = "prism.safetensors"\n')  # a bare file name is a name
    assert load_preset(str(path)).model == "prism.safetensors"
    for model in ("../models/prism", "/etc/passwd", "..", ""):
        path.write_text(f'model = "{model}"\n')
        with pytest.raises(PresetError, match="p.toml.*not a path"):
            load_preset(str(path))
