"""Issue 20, as a newcomer meets `synd render` and `synd train`: folders made for `-o`,
odd sizes refused up front, progress in a log, one warning per song, `train --out` a
folder, and a training run that says how it went (a table, and a warning when it has not
learned). Each runs the real command on real files: tiny models, songs of a few seconds."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from synd.audio import write_wav
from tests.helpers.audio import encode, music_clip
from tests.helpers.models import TINY_PRESET

SYND = [sys.executable, "-m", "synd"]
ROOT = Path(__file__).resolve().parents[1]
# A plain progress line: "NAME:  45% 41/90 frames, 35.2 frames/s, 0:01 elapsed, 0:01 left"
FRAME_LINE = re.compile(r"^song\.wav: +\d+% \d+/\d+ frames, [\d.]+ frames/s, \d+:\d\d elapsed, \d+:\d\d left")


def synd(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command, its standard error a pipe (not a terminal), as in a log or CI.

    One compute thread: the tiny models gain nothing from more, and on a busy 2-core
    machine spinning threads make them many times slower."""
    return subprocess.run(
        [*SYND, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture
def song_and_model(tmp_path, tiny_bundle):
    """A 2-second song and the tiny model as a file, in the working folder `tmp_path`."""
    write_wav(tmp_path / "song.wav", music_clip(3, seconds=2.0), 24000)
    tiny_bundle.save(tmp_path / "tiny.safetensors")
    return tmp_path


def video_facts(path: Path) -> tuple[int, int, int, bool]:
    """(width, height, frames decoded, has audio) of a video, read back with PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return stream.width, stream.height, frames, bool(container.streams.audio)


# -- render -o: folders ---------------------------------------------------------------------


def test_render_o_ending_in_slash_is_a_folder_made_if_missing(song_and_model):
    cwd = song_and_model
    proc = synd(
        "render", "song.wav", "-o", "videos/", "--model", "tiny.safetensors", "--size", "64x36", cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr
    assert video_facts(cwd / "videos" / "song.mp4") == (64, 36, 60, True)
    assert not (cwd / "videos.mp4").exists()


def test_render_o_makes_missing_parent_folders_and_explains_a_bare_name(song_and_model):
    cwd = song_and_model
    proc = synd(
        "render",
        "song.wav",
        "-o",
        "shows/2024/set.mp4",
        "--model",
        "tiny.safetensors",
        "--size",
        "64x36",
        "--duration",
        "1",
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    assert video_facts(cwd / "shows" / "2024" / "set.mp4")[:3] == (64, 36, 30)
    # No extension, no slash, no such folder: not a guess, a one-line way out.
    proc = synd("render", "song.wav", "-o", "clips", "--model", "tiny.safetensors", cwd=cwd)
    assert proc.returncode == 1
    assert "'clips/'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (cwd / "clips").exists()


def test_record_output_makes_its_folder(tmp_path):
    from synd.bridges.base import Frame
    from synd.bridges.record import RecordOutput

    out = RecordOutput((64, 36), 30.0, path=tmp_path / "shows" / "live" / "rec.mp4")
    out.open()
    rgb = np.zeros((36, 64, 3), np.uint8)
    for seq in range(6):
        out.send(Frame(seq, seq / 30, 0.0, rgb, np.zeros(1600, np.float32), 48000))
    out.close()
    assert video_facts(tmp_path / "shows" / "live" / "rec.mp4")[:3] == (64, 36, 6)


# -- render --size ----------------------------------------------------------------------------


def test_odd_size_is_refused_before_rendering_with_the_nearest_that_works(song_and_model):
    cwd = song_and_model
    proc = synd(
        "render", "song.wav", "-o", "odd.mp4", "--model", "tiny.safetensors", "--size", "161x91", cwd=cwd
    )
    assert proc.returncode == 1
    assert "rendering" not in proc.stderr  # refused before any work
    assert "160x90" in proc.stderr and "even" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (cwd / "odd.mp4").exists()

    # ProRes keeps full vertical colour: only the width must be even, and 160x91 works.
    def prores(size: str) -> subprocess.CompletedProcess:
        args = ("-o", "odd.mov", "--model", "tiny.safetensors", "--codec", "prores", "--duration", "0.5")
        return synd("render", "song.wav", *args, "--size", size, cwd=cwd)

    proc = prores("161x91")
    assert proc.returncode == 1 and "160x91" in proc.stderr and "rendering" not in proc.stderr
    proc = prores("160x91")
    assert proc.returncode == 0, proc.stderr
    assert video_facts(cwd / "odd.mov")[:2] == (160, 91)


# -- progress without a terminal --------------------------------------------------------------


def test_render_progress_is_plain_lines_in_a_log_and_quiet_on_request(song_and_model):
    cwd = song_and_model
    proc = synd("render", "song.wav", "--model", "tiny.safetensors", "--size", "64x36", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr  # no redraws in a log
    lines = [line for line in proc.stderr.splitlines() if FRAME_LINE.match(line)]
    assert lines and lines[-1].startswith("song.wav: 100% 60/60 frames"), proc.stderr
    assert "x real time" in lines[-1]
    proc = synd("render", "song.wav", "--model", "tiny.safetensors", "--size", "64x36", "--quiet", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert not [line for line in proc.stderr.splitlines() if "frames/s" in line]
    assert "wrote song.mp4" in proc.stderr


def test_progress_prints_a_line_every_interval_with_rate_and_time_left():
    from synd.progress import Progress

    out = io.StringIO()
    began = time.monotonic()
    bar = Progress(40, "song.flac", "frame", stream=out, terminal=False, every=0.1)
    for _ in range(40):
        time.sleep(0.01)
        bar.update()
    took = time.monotonic() - began
    bar.close()
    lines = out.getvalue().splitlines()
    assert 2 <= len(lines) <= took / 0.1 + 1, lines  # one each 0.1 s, and the last one
    assert all(
        re.match(r"song\.flac: +\d+% \d+/40 frames, [\d.]+ frames/s, \d:\d\d elapsed, \d:\d\d left$", x)
        for x in lines
    ), lines
    assert lines[-1].startswith("song.flac: 100% 40/40 frames") and lines[-1].endswith(" 0:00 left")
    rate = float(re.search(r"([\d.]+) frames/s", lines[-1]).group(1))
    assert 0.8 * 40 / took < rate < 1.2 * 40 / took
    quiet = io.StringIO()
    with Progress(10, "x", "frame", stream=quiet, terminal=False, every=0.0, enabled=False) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


def test_eval_shows_progress_in_a_log_and_makes_its_report_folders(song_and_model):
    cwd = song_and_model
    proc = synd(
        "eval",
        "song.wav",
        "--model",
        "tiny.safetensors",
        "--size",
        "64x36",
        "--report",
        "reports/today/",
        "--json",
        "numbers/today.json",
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr
    assert re.search(r"^eval: 100% 60/60 frames, [\d.]+ frames/s", proc.stderr, re.M), proc.stderr
    assert (cwd / "reports" / "today" / "index.html").is_file()
    assert (cwd / "numbers" / "today.json").is_file()


# -- the truncation warning -------------------------------------------------------------------


def test_a_truncated_songs_warning_is_printed_once(song_and_model):
    cwd = song_and_model
    song = encode(cwd / "cut.flac", music_clip(4, seconds=4.0)[None], 24000, "flac")
    os.truncate(song, song.stat().st_size * 6 // 10)
    proc = synd("render", "cut.flac", "--model", "tiny.safetensors", "--size", "64x36", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "truncated" in line]
    assert len(warnings) == 1, proc.stderr
    assert video_facts(cwd / "cut.mp4")[2] > 30
    # eval decodes the song twice too (features, then the judge's soundtrack)
    proc = synd("eval", "cut.flac", "--model", "tiny.safetensors", "--size", "64x36", "--quiet", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert [line for line in proc.stderr.splitlines() if "truncated" in line] == warnings, proc.stderr


# -- synd train ------------------------------------------------------------------------------


@pytest.fixture
def training(tmp_path, clip_dir):
    """A working folder with the tiny preset and a `music/` folder of four short songs."""
    (tmp_path / "tiny.toml").write_text(TINY_PRESET)
    clip_dir.rename(tmp_path / "music")
    return tmp_path


def train(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return synd("train", "music", "--preset", "./tiny.toml", *args, cwd=cwd)


def test_train_out_an_existing_folder_writes_inside_it(training):
    cwd = training
    (cwd / "models").mkdir()
    proc = train(cwd, "--out", "models", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (cwd / "models").iterdir()) == [
        "music-tiny.safetensors",
        "music-tiny.samples",
        "music-tiny.train.safetensors",
    ]
    assert not list(cwd.glob("models.*"))  # never a sibling of the folder
    # A folder that does not exist yet, named with a final slash, is made.
    proc = train(cwd, "--out", "runs/new/", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert (cwd / "runs" / "new" / "music-tiny.safetensors").is_file()


def test_train_ends_with_a_table_and_a_warning_when_it_has_not_learned(training):
    proc = train(training, "--out", "mine.safetensors", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    assert "{" not in proc.stdout and "{" not in proc.stderr  # no JSON dump
    table = proc.stdout.strip().splitlines()
    assert table[0] == "trained mine.safetensors:"
    rows = dict(re.match(r"^  (\S.*?)  +(.*)$", line).groups() for line in table[1:])
    assert rows["steps"] == "2"
    r2 = float(rows["held-out R^2"].split()[0])
    assert r2 < 0.5  # two steps teach nothing
    assert "mine.train.safetensors" in rows["also wrote"] and "mine.samples/" in rows["also wrote"]
    assert len(table) <= 10
    last = proc.stderr.strip().splitlines()[-1]
    assert "has not learned the sound yet" in last and f"{r2:.2f}" in last
    assert "3000 steps" in last and "minutes" in last  # how long the shipped models trained


def test_learning_warning_quotes_the_shipped_models_own_training_time():
    from synd.train import learning_warning, shipped_training

    # The model cards say how long each shipped model trained ("Steps: 3000, wall time 619.2 s");
    # a fine-tuned one (lava, "fine-tuned from classic") does not say how long training takes.
    texts = [p.read_text() for p in ROOT.glob("models/*.md")]
    assert any("fine-tuned from" in t for t in texts)
    cards = [re.search(r"Steps: (\d+), wall time ([\d.]+) s", t) for t in texts if "fine-tuned from" not in t]
    minutes = sorted(round(float(c.group(2)) / 60) for c in cards if c)
    steps = {c.group(1) for c in cards if c}
    shipped = shipped_training()
    assert shipped == f"{'/'.join(sorted(steps))} steps, {minutes[0]} to {minutes[-1]} minutes each on a CPU"
    assert learning_warning({"holdout_r2_crops": 0.86}) is None
    assert learning_warning({"holdout_r2_crops": None}) is None
    below = learning_warning({"holdout_r2_crops": 0.3})
    assert "below 0.5" in below and shipped in below and "\n" not in below
    assert "below zero" in learning_warning({"holdout_r2_crops": -0.9})


def test_train_time_budget_progress_shows_steps_and_time_left(training):
    proc = train(training, "--out", "budget.safetensors", "--minutes", "0.04")
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and not re.search(r"\ds/s", proc.stderr)  # not tqdm's "1.01s/s"
    lines = [x for x in proc.stderr.splitlines() if x.startswith("train budget:")]
    assert lines, proc.stderr
    assert re.match(r"^train budget: 100% \d+ steps, [\d.]+ steps/s, \d+:\d\d elapsed, 0:00 left", lines[-1])


def test_readme_names_the_files_train_out_writes(training):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Training your own look") :]
    section = section[: section.index("\n## ", 5)]
    row = next(line for line in section.splitlines() if line.startswith("| `mine.safetensors` |"))
    named = re.findall(r"`([^`]+)`", row)
    assert named == ["mine.safetensors", "mine.safetensors", "mine.train.safetensors", "mine.samples/"]
    proc = train(training, "--out", "mine.safetensors", "--steps", "2")
    assert proc.returncode == 0, proc.stderr
    written = sorted(p.name + ("/" if p.is_dir() else "") for p in training.glob("mine*"))
    assert written == sorted(set(named))
    row = next(line for line in section.splitlines() if line.startswith("| `runs/`"))
    named = [n.replace("classic", "tiny") for n in re.findall(r"`(runs/[^`]+)`", row)]
    (training / "runs").mkdir()
    proc = train(training, "--out", "runs", "--steps", "2")  # input music/, preset tiny
    assert proc.returncode == 0, proc.stderr
    for name in named[1:]:
        assert (training / name.rstrip("/")).exists(), name
