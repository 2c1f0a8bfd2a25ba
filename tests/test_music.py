"""Real music from Debian packages (synd.music): fetched with apt-get, cut, licensed."""

import json
import shutil

import numpy as np
import pytest

from synd.audio import load_audio, write_wav
from synd.music import EVAL, RATE, TRAIN, Package, build, excerpt, songs


def test_training_and_held_out_music_never_share_a_package():
    assert not {p.name for p in EVAL} & {p.name for p in TRAIN}


def test_a_multitrack_song_is_its_stems_mixed(tmp_path):
    pkg = Package("x", "MIT", "rock", stems=("song.ogg", "guitar.ogg"))
    for name in ("One", "Two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "song.ogg").touch()
        (tmp_path / name / "guitar.ogg").touch()
        (tmp_path / name / "notes.txt").touch()
    found = songs(pkg, tmp_path)
    assert [[p.name for p in s] for s in found] == [["song.ogg", "guitar.ogg"]] * 2
    t = np.arange(4 * 24000) / 24000
    write_wav(tmp_path / "a.wav", 0.6 * np.sin(2 * np.pi * 440 * t), 24000)
    write_wav(tmp_path / "b.wav", 0.6 * np.sin(2 * np.pi * 440 * t), 24000)
    mixed, start = excerpt([tmp_path / "a.wav", tmp_path / "b.wav"], 2.0)
    assert mixed.shape == (2 * RATE, 1) and start == pytest.approx(1.0, abs=0.01)
    assert 0.95 <= np.abs(mixed).max() <= 0.98 + 1e-6  # 1.2 summed, scaled below full scale
    assert excerpt([tmp_path / "a.wav"], 10.0) is None  # shorter than asked


@pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None,
    reason="needs Debian's apt-get and dpkg-deb",
)
def test_a_debian_package_becomes_licensed_excerpts(tmp_path):
    asc = next(p for p in EVAL if p.name == "asc-music")  # 10 MB, three songs
    manifest = json.loads(build("eval", tmp_path, seconds=5.0, packages=(asc,)).read_text())
    assert manifest["set"] == "eval" and len(manifest["excerpts"]) == 3
    for item in manifest["excerpts"]:
        assert item["package"] == "asc-music" and item["licence"].startswith("GPL-2+")
        audio = load_audio(tmp_path / item["file"], RATE)
        assert len(audio) == pytest.approx(5 * RATE, abs=2)
        assert np.abs(audio).max() > 0.05  # music, not silence
    assert "GPL" in (tmp_path / "asc-music.copyright").read_text()
