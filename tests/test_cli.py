"""The `synd` command as a user meets it: help, listings, clear one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SYND = [sys.executable, "-m", "synd"]
COMMANDS = ["train", "render", "eval", "listen", "bench", "run", "service", "midi", "info", "presets"]


def run(*args, env=None, **kw):
    return subprocess.run(
        [*SYND, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, **kw
    )


def test_help_lists_every_subcommand_and_each_has_its_own_help():
    top = run("--help")
    assert top.returncode == 0
    for cmd in COMMANDS:
        assert cmd in top.stdout
        sub = run(cmd, "--help")
        assert sub.returncode == 0 and f"usage: synd {cmd}" in sub.stdout
    assert "--resume" in run("train", "--help").stdout
    assert "--minutes" in run("train", "--help").stdout


def test_console_script_is_installed():
    synd = Path(sys.executable).with_name("synd")
    proc = subprocess.run([str(synd), "presets"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "lava" in proc.stdout


def test_presets_lists_names_with_descriptions():
    out = run("presets").stdout.splitlines()
    names = [line.split()[0] for line in out]
    assert {"lava", "tide", "neon", "mandala", "poster", "wormhole"} == set(names)  # retired ones left out
    assert all(len(line.split(maxsplit=1)) == 2 for line in out)


def test_info_json_reports_models_presets_audio_and_outputs():
    proc = run("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert {"models", "presets", "audio", "outputs", "devices"} <= set(info)
    assert info["outputs"]["syphon"].startswith("unavailable: Syphon exists only on macOS")
    assert info["outputs"]["spout"].startswith("unavailable: Spout exists only on Windows")
    assert info["outputs"]["record"] == "available"
    assert {p["name"] for p in info["presets"]} >= {"lava", "tide"}
    text = run("info").stdout
    assert "outputs:" in text and "presets:" in text


@pytest.mark.parametrize("content", [b"", b"this is not audio at all" * 10])
def test_render_of_unreadable_audio_is_one_clear_line_and_writes_nothing(tmp_path, content, tiny_bundle):
    song = tmp_path / "song.mp3"
    song.write_bytes(content)
    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    proc = run("render", str(song), "--model", str(model))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "song.mp3" in lines[0] and lines[0].startswith("synd: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mp3", "tiny.safetensors"]


def test_corrupt_model_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    song = tmp_path / "s.wav"
    song.write_bytes(b"")
    proc = run("render", str(song), "--model", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "bad.safetensors" in proc.stderr


def test_bad_size_flag_is_explained():
    proc = run("render", "x.flac", "--size", "big")
    assert proc.returncode == 2 and "size must look like 1280x720" in proc.stderr


def test_render_never_overwrites_the_song(tmp_path, tiny_bundle):
    song = tmp_path / "clip.mp4"
    song.write_bytes(b"precious")
    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    proc = run("render", str(song), "--model", str(model), "-o", str(song))
    assert proc.returncode == 1 and "refusing to overwrite the song" in proc.stderr
    assert song.read_bytes() == b"precious"


def test_train_flags_are_checked(tmp_path):
    for flags, match in (
        (["--steps", "0"], "must be more than 0"),
        (["--minutes", "-1"], "must be more than 0"),
        (["--eval-every", "0"], "must be more than 0"),
    ):
        proc = run("train", str(tmp_path), "--out", str(tmp_path / "m"), *flags)
        assert proc.returncode == 2 and match in proc.stderr
    proc = run("train", str(tmp_path), "--out", str(tmp_path / "m"), "--device", "cuda")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1


def test_render_look_settings_and_train_overrides(tmp_path, tiny_bundle):
    from synd.audio import write_wav
    from tests.helpers.audio import music_clip

    song = tmp_path / "s.wav"
    write_wav(song, music_clip(1, seconds=0.5), 24000)
    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    ok = run("render", str(song), "--model", str(model), "--size", "64x64", "--set", "look.hue=0.5")
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "s.mp4").stat().st_size > 0
    bad = run("render", str(song), "--model", str(model), "--set", "loss.noise=1")
    assert bad.returncode == 1 and "only look settings can be changed" in bad.stderr
    typo = run("train", str(tmp_path), "--out", str(tmp_path / "m"), "-o", "loss.nosie=1")
    assert typo.returncode == 1 and "unknown keys ['nosie']" in typo.stderr
