"""The config file's [run] table and `-o key=value` overrides."""

import pytest

from synd.config import Config, RunConfig, apply_overrides, load_config


def test_run_table_is_read_and_typed(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        'preset = "drift"\n[run]\ninput = "mic"\nfps = 25\noutput = "record:a.mp4"\nplay = true\n'
    )
    config = load_config(path)
    assert config.preset == "drift"
    assert config.run == RunConfig(input="mic", fps=25.0, output="record:a.mp4", play=True)


@pytest.mark.parametrize(
    "text,match",
    [
        ('[run]\nfps = "fast"\n', "'fps' must be float"),
        ("[run]\nfsp = 30\n", "unknown keys \\['fsp'\\]"),
        ("run = 3\n", "'run' must be a table"),
        ("[run]\nplay = 1\n", "'play' must be bool"),
        ("[run]\ndetail = true\n", "'detail' must be int"),
    ],
)
def test_bad_run_settings_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_overrides_take_toml_values_or_bare_words():
    config = apply_overrides(
        Config(),
        [
            "fps=60",
            "input=mic",
            "run.delay_ms=120",
            "preset=sharp",
            "play=true",
            "output=preview,record:x.mp4",
        ],
    )
    assert config.preset == "sharp"
    assert (config.run.fps, config.run.input, config.run.delay_ms, config.run.play) == (
        60.0,
        "mic",
        120.0,
        True,
    )
    assert config.run.output == "preview,record:x.mp4"
    for bad, match in (["fps=fast"], "must be float"), (["nokey"], "key=value"), (["zzz=1"], "unknown"):
        with pytest.raises(ValueError, match=match):
            apply_overrides(Config(), bad)


def test_an_explicit_config_file_must_exist(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_config(tmp_path / "missing.toml")
