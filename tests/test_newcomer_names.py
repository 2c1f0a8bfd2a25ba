"""What a newcomer types and reads (issue 20, items 4, 5 and 9): a wrong `--set` value,
preset name or `synd listen` source is one line saying what is wanted, and the README
says what the presets and the default model really give.

Every check runs the real command line (`python -m synd`) or the real functions, with
empty user folders so that only the shipped presets and models are found.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from synd.audio import write_wav
from synd.listen import ListenError, read_pictures
from synd.paths import shipped_dir
from synd.presets import PresetError, apply_overrides, load_preset

README = Path(__file__).resolve().parent.parent / "README.md"
SYND = [sys.executable, "-m", "synd"]


@pytest.fixture
def home(tmp_path, monkeypatch) -> dict[str, str]:
    """Empty user folders (this process and the commands it runs); the environment."""
    env = {}
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_CACHE_HOME", "cache")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
        env[var] = str(tmp_path / sub)
    return {**os.environ, **env}


def synd(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SYND, *args], capture_output=True, text=True, timeout=180, env=env)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The error of a command that failed as synd fails: exit 1 and one line on stderr."""
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("synd: error: "), proc.stderr
    return proc.stderr.strip()


@pytest.fixture
def song(tmp_path) -> Path:
    path = tmp_path / "song.wav"
    write_wav(path, np.zeros(2400, np.float32), 24000)
    return path


# ------------------------------------------------------------- item 4: --set is typed


def test_set_with_a_wrong_type_names_the_key_its_type_and_range(home, song, tmp_path):
    line = one_error_line(synd(home, "render", str(song), "--set", "look.hue=abc"))
    assert line.endswith("[look] hue must be a number in [-1.0, 1.0], got 'abc'"), line
    # A preset file is checked by the same code, in the same words.
    preset = tmp_path / "mine.toml"
    preset.write_text('model = "prism"\n[look]\nhue = "abc"\n')
    line = one_error_line(synd(home, "render", str(song), "--preset", str(preset)))
    assert line == f"synd: error: preset '{preset}' [look] hue must be a number in [-1.0, 1.0], got 'abc'"


@pytest.mark.parametrize(
    "setting,message",
    [
        ("look.hue=abc", "override [look] hue must be a number in [-1.0, 1.0], got 'abc'"),
        ("look.feedback=true", "override [look] feedback must be a number in [0.0, 1.0], got True"),
        ("look.feedback=1.5", "override [look] feedback must be in [0.0, 1.0], got 1.5"),
        ("train.steps=many", "override [train] steps must be a whole number in [1, 1000000000], got 'many'"),
        ("train.steps=2.5", "override [train] steps must be a whole number in [1, 1000000000], got 2.5"),
        ("loss.noise=loud", "override [loss] noise must be a number, got 'loud'"),
        ("features.bands=many", "override [features] bands must be a whole number, got 'many'"),
        ("architecture.width=wide", "override [architecture] width must be a whole number, got 'wide'"),
    ],
)
def test_every_table_checks_types_before_use(home, setting, message):
    with pytest.raises(PresetError) as err:
        apply_overrides(load_preset("prism"), [setting])
    assert str(err.value) == message


def test_a_whole_number_is_a_number_and_stays_one_type(home):
    preset = apply_overrides(load_preset("prism"), ["look.hue=1", "train.lr=1", "train.steps=10"])
    assert preset.look.hue == 1.0 and isinstance(preset.look.hue, float)
    assert preset.train.lr == 1.0 and isinstance(preset.train.lr, float)
    assert preset.train.steps == 10 and isinstance(preset.train.steps, int)


# ---------------------------------------------------------------- item 5: wrong names


@pytest.mark.parametrize("command", ["render", "eval", "run", "train"])
def test_a_wrong_preset_name_lists_the_presets(home, song, tmp_path, command):
    user = Path(home["XDG_CONFIG_HOME"]) / "synd" / "presets"
    user.mkdir(parents=True)
    (user / "mine.toml").write_text('model = "prism"\n')  # the user's presets are listed too
    record = tmp_path / "out" / "x.mp4"
    args = {
        "render": ["render", str(song)],
        "eval": ["eval", str(song)],
        "run": ["run", "--input", str(song), "--output", f"record:{record}", "--osc", "off", "--midi", "off"],
        "train": ["train", str(tmp_path), "--out", str(tmp_path / "m")],
    }[command]
    line = one_error_line(synd(home, *args, "--preset", "prizm"))
    presets = "lava, mandala, mine, neon, poster, tide, wormhole"  # the offered ones
    assert line == f"synd: error: no preset named 'prizm' (presets: {presets})"
    assert not (tmp_path / "out").exists()  # `synd run` failed before opening anything


def test_a_wrong_model_name_lists_the_models(home, song):
    line = one_error_line(synd(home, "render", str(song), "--model", "prizm"))
    assert line == "synd: error: no model named 'prizm' (models: classic, lava, prism, sharp)"


def test_listen_says_what_it_takes(home, tmp_path, song):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "readme.txt").write_text("no frames here")
    line = one_error_line(synd(home, "listen", str(folder)))
    assert "not a synd video or frame folder (the folder holds no images)" in line, line
    assert "synd listen takes a video made by synd render or synd run --output record:" in line
    text = tmp_path / "clip.mp4"
    text.write_text("not a video at all\n" * 20)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    for source, why in (
        (text, "not a video: "),
        (empty, "the file is empty"),
        (song, "it has no video stream"),
    ):
        with pytest.raises(ListenError) as err:
            read_pictures(source)
        message = str(err.value)
        assert f"cannot listen to '{source}': not a synd video or frame folder ({why}" in message
        assert message.endswith("or a folder of such frames (png, jpg, jpeg, webp, bmp)"), message


def test_listen_warns_about_a_video_synd_did_not_make(tmp_path, caplog):
    import av

    from synd.video import VideoWriter

    frame = np.zeros((36, 64, 3), np.uint8)
    ours = tmp_path / "ours.mp4"
    with VideoWriter(ours, 64, 36, 30) as writer:
        for _ in range(5):
            writer.write(frame)
    theirs = tmp_path / "theirs.mp4"
    with av.open(str(theirs), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for _ in range(5):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    with caplog.at_level("WARNING", logger="synd.listen"):
        read_pictures(ours)
    assert caplog.records == []
    with caplog.at_level("WARNING", logger="synd.listen"):
        pictures, fps = read_pictures(theirs)
    assert fps == 30.0 and len(list(pictures)) == 5  # read anyway
    assert [r.getMessage() for r in caplog.records] == [
        "'theirs.mp4' was not made by synd (it has no synd tag): reading it anyway, but pictures "
        "synd did not paint say nothing of a sound"
    ]


# --------------------------------------------------------- item 9: the README is true


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def shipped_descriptions() -> dict[str, str]:
    """The offered presets' descriptions (a retired preset is not offered)."""
    docs = {
        path.stem: tomllib.loads(path.read_text(encoding="utf-8"))
        for path in shipped_dir("presets").glob("*.toml")
    }
    return {name: doc["description"] for name, doc in sorted(docs.items()) if "retired" not in doc}


def test_readme_and_synd_presets_quote_the_preset_files(home):
    section = readme_text().split("### Presets and the shipped models", 1)[1].split("\n#", 1)[0]
    rows = dict(re.findall(r"^\| `([\w-]+)`(?: \(default\))? \| ([^|]+?) \|", section, flags=re.M))
    shipped = shipped_descriptions()
    assert rows == shipped
    listed = synd(home, "presets")
    assert listed.returncode == 0, listed.stderr
    printed = dict(line.split(None, 1) for line in listed.stdout.splitlines())
    assert printed == shipped


def mel_band_edges(bundle) -> list[tuple[float, float]]:
    """(lowest, highest) frequency in Hz that each mel band of `bundle` hears."""
    from synd.features import mel_filterbank

    cfg = bundle.features
    freqs = np.fft.rfftfreq(cfg.n_fft, 1 / cfg.sample_rate)
    edges = []
    for row in mel_filterbank(cfg):
        heard = np.flatnonzero(row > 0)
        edges.append((float(freqs[heard[0]]), float(freqs[heard[-1]])))
    return edges


@pytest.mark.slow
def test_readme_read_back_numbers_are_what_synd_eval_measures(home, tmp_path):
    """The intro's per-band numbers: `synd eval` of the default preset on the demo song,
    as `python -m synd.corpus --demo` writes it, read per band as its --report tables
    (`evaluate_track` is `synd eval`'s measurement of one song, without the judge)."""
    import torch

    from synd.catalog import resolve_look
    from synd.corpus import demo_clip
    from synd.evaluate import evaluate_track
    from synd.quality import r2_score
    from synd.render import song_features

    intro = " ".join(readme_text().split("\n## ", 1)[0].split())
    claims = {
        "hats": re.search(
            r"hats \(the (\d+) mel bands above ([\d.]+) kHz\) with R\^2 ([\d.]+) to ([\d.]+)", intro
        ),
        "hits": re.search(r"the hits \(onsets\) with ([\d.]+)", intro),
        "low": re.search(r"([\d.]+) and ([\d.]+) for the two lowest bands \((\d+)-(\d+) Hz\)", intro),
        "next": re.search(r"([\d.]+) and ([\d.]+) for the next two \((\d+)-(\d+) Hz\)", intro),
    }
    assert all(claims.values()), {k: bool(v) for k, v in claims.items()}
    assert "the bass, the hats, the hits" in intro and "20 s demo song" in intro

    bundle, look = resolve_look(None, None)  # the default preset
    raw = song_features(demo_clip(tmp_path / "demo.flac"), bundle, 30.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads spin-waiting on a shared 2-core machine are slower
    try:
        track = evaluate_track(bundle, look, raw, (1280, 720))  # synd eval's defaults
    finally:
        torch.set_num_threads(threads)
    given, decoded = track.given, track.decoded
    assert abs(len(given) / 30.0 - 20.0) < 0.1
    names = bundle.features.names
    r2 = {name: r2_score(given[:, [i]], decoded[:, [i]]) for i, name in enumerate(names)}
    mel = [r2[n] for n in names if n.startswith("mel")]
    edges = mel_band_edges(bundle)
    print("per-band R^2:", {k: round(v, 3) for k, v in r2.items()})

    def near(text: str, value: float, tolerance: float = 0.015) -> bool:
        return abs(float(text) - value) <= tolerance

    count, khz, low, high = claims["hats"].groups()
    top = mel[-int(count) :]
    assert abs(edges[-int(count)][0] / 1000 - float(khz)) < 0.05
    assert near(low, min(top)) and near(high, max(top)), (low, high, min(top), max(top))
    assert near(claims["hits"].group(1), r2["onset"])
    for key, first in (("low", 0), ("next", 2)):
        a, b, lo_hz, hi_hz = claims[key].groups()
        assert near(a, mel[first]) and near(b, mel[first + 1]), (key, a, b, mel[first : first + 2])
        assert abs(edges[first][0] - float(lo_hz)) < 10 and abs(edges[first + 1][1] - float(hi_hz)) < 10
