"""Faults lose nothing: real components, real faults.

* `synd train` SIGKILLed again and again (mid-write, between the two checkpoint files, at
  seeded random moments): every checkpoint file left loads, and `--resume` continues from
  the last one, to the same weights as a run never interrupted.
* `synd render` SIGKILLed at seeded random moments, a full disk (a real tmpfs), a disk that
  fills while the video is written, a destination folder removed mid-render: never a
  truncated video at the destination, one-line errors.
* The sound server SIGKILLed under a running engine and started again: frames keep
  coming, one log line each way, and a tone played afterwards reaches the features.
* An NDI receiver SIGKILLed mid-stream: the sender and the engine keep their rate, and a
  new receiver gets frames.
* An output raising on every frame and one whose send never returns: the engine and the
  other outputs keep their rate.

Each test prints what it injected and what survived (`pytest -s` shows it). The NDI
scenario runs in tests/helpers/ndi_driver.py (its mode receiver-killed) inside a
loopback-only network namespace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.audio import dominant_hz, music_clip, tone
from tests.helpers.engine import Collect, run_engine, stop_all
from tests.helpers.models import TINY_PRESET
from tests.helpers.ndi import drive, requires_namespace, unique
from tests.helpers.pulse import requires_pulse
from tests.helpers.tmpfs import mounted_tmpfs
from tests.helpers.wait import wait_for

SYND = [sys.executable, "-m", "synd"]


# -- helpers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def spawned(cmd: list[str], log: Path, **kwargs):
    """A subprocess with stderr (and stdout) in `log`; SIGKILLed and reaped at the end
    whatever happens."""
    with open(log, "ab") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, **kwargs)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def poll_until(cond, timeout: float, every: float = 0.0005) -> bool:
    """Poll `cond()` every `every` s until true (True) or `timeout` s passed (False)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def partials(folder: Path, pid: int | None = None) -> list[str]:
    """The hidden temporary files writers have in `folder` (left there if killed); with
    `pid`, only that process's (their names carry it)."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    mine = "" if pid is None else f".{pid}-"
    return sorted(n for n in names if ".partial" in n and mine in n)


# -- 1. SIGKILL during `synd train` ----------------------------------------------------------

TRAIN_STEPS = 40
# One thread: the reference run in this process must do the same arithmetic as the
# killed ones, and two threads spin-waiting on a busy two-core machine crawl.
ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _checkpoint_steps(run: Path) -> dict[str, int]:
    """Every checkpoint file in `run` must load; the step each holds."""
    from synd.bundle import load_model
    from synd.checkpoint import read_checkpoint

    steps = {}
    for path in sorted(run.glob("*.safetensors")):
        _, meta = read_checkpoint(path)  # raises on a truncated or corrupt file
        if "training" in meta:
            steps[path.name] = meta["training"]["step"]
        else:
            steps[path.name] = load_model(str(path)).meta["summary"]["steps"]
    return steps


def _kill_when(proc: subprocess.Popen, strategy: str, run: Path, state: Path, rng: random.Random) -> bool:
    """SIGKILL `proc` at the moment `strategy` names; False if it ended first.

    mid-write: as soon as a checkpoint's temporary file appears (the file is being
        written); after-state: as soon as the training state file is replaced (before
        the model file is); random: a seeded random moment while it trains.
    """
    alive = lambda: proc.poll() is None  # noqa: E731
    before = _mtime(state)
    if strategy == "mid-write":
        hit = poll_until(lambda: partials(run, proc.pid) or not alive(), 120)
    elif strategy == "after-state":
        hit = poll_until(lambda: _mtime(state) != before or not alive(), 120)
    else:
        hit = poll_until(lambda: _mtime(state) != before or not alive(), 120, every=0.01)
        time.sleep(rng.uniform(0.0, 0.4))
    if not hit or not alive():
        return False
    proc.kill()
    proc.wait(timeout=30)
    return True


def _tiny_corpus(tmp_path: Path) -> tuple[Path, Path]:
    """Three short songs and the tiny preset (TINY_PRESET)."""
    from synd.audio import write_wav

    songs = tmp_path / "songs"
    songs.mkdir()
    for k in range(3):
        write_wav(songs / f"song{k}.wav", music_clip(k, seconds=3.0), 24000)
    preset = tmp_path / "tiny.toml"
    preset.write_text(TINY_PRESET)
    return songs, preset


@pytest.mark.slow
def test_sigkill_during_training_loses_no_checkpoint_and_resume_continues(tmp_path):
    import torch

    from synd.bundle import load_model
    from synd.presets import load_preset
    from synd.train import TrainOptions, state_path, train

    songs, preset = _tiny_corpus(tmp_path)
    run = tmp_path / "run"
    out = run / "m.safetensors"
    state = state_path(out)
    cmd = [
        *SYND,
        "train",
        str(songs),
        "--preset",
        str(preset),
        "--out",
        str(out),
        "--steps",
        str(TRAIN_STEPS),
        "--checkpoint-every",
        "1",
        "--eval-every",
        "1000",
        "--sample-every",
        "1000",
        "--holdout",
        "0",
    ]
    rng = random.Random(1234)
    plan = ["mid-write", "after-state", "random", "mid-write"]
    kills, mid_write, model_behind, resumed_at = [], 0, 0, []
    last_step = 0
    while plan:
        strategy = plan.pop(0)
        log = tmp_path / f"train{len(kills)}.log"
        with spawned(cmd + (["--resume"] if state.exists() else []), log, env=ONE_THREAD) as proc:
            killed = _kill_when(proc, strategy, run, state, rng)
        text = log.read_text()
        if m := re.search(r"resumed '.*' at step (\d+)", text):
            resumed_at.append(int(m.group(1)))
            assert int(m.group(1)) == last_step, text[-2000:]  # the last checkpoint, not 0
        if not killed:  # it finished first (a fast machine)
            assert proc.returncode == 0, text[-3000:]
            break
        left = partials(run, proc.pid)
        steps = _checkpoint_steps(run)  # never a half-written checkpoint
        step = steps.get(state.name, 0)
        assert step >= last_step, (steps, last_step)  # never lost ground
        mid_write += bool(left)
        model_behind += steps.get(out.name, 0) < step
        kills.append((strategy, step, left))
        last_step = step
        if not plan and mid_write == 0 and len(kills) < 10:
            plan.append("mid-write")  # keep trying until a kill lands inside a write
    if killed:
        with spawned(cmd + ["--resume"], tmp_path / "final.log", env=ONE_THREAD) as proc:
            proc.wait(timeout=300)
        text = (tmp_path / "final.log").read_text()
        assert proc.returncode == 0, text[-3000:]
        assert f"at step {last_step}" in text
    steps = _checkpoint_steps(run)
    assert steps == {"m.safetensors": TRAIN_STEPS, "m.train.safetensors": TRAIN_STEPS}
    assert partials(run) == []  # what the kills left was cleaned up by the next writes

    # Resumed across all those kills, the weights are those of an uninterrupted run.
    straight = tmp_path / "straight" / "m.safetensors"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            TrainOptions(
                inputs=[songs],
                preset=load_preset(str(preset)),
                out=straight,
                steps=TRAIN_STEPS,
                checkpoint_every=TRAIN_STEPS,
                eval_every=1000,
                sample_every=1000,
                holdout=0.0,
                progress=False,
            )
        )
    finally:
        torch.set_num_threads(threads)
    a, b = load_model(str(straight)), load_model(str(out))
    for k, v in a.generator.state_dict().items():
        assert np.array_equal(v.numpy(), b.generator.state_dict()[k].numpy()), k
    print(
        f"\ntrain: {len(kills)} SIGKILLs injected and survived ({mid_write} inside a "
        f"checkpoint write, {model_behind} leaving the model file behind the training "
        f"state), "
        f"kills at steps {[k[1] for k in kills]}, resumed at {resumed_at}; "
        f"final weights equal an uninterrupted run's"
    )
    assert len(kills) >= 3 and mid_write >= 1


# -- 2. SIGKILL, a full disk and a vanished folder during `synd render` ----------------------


def _video_frames(path: Path) -> int | None:
    """Frames of a complete, readable video; None for anything else."""
    from synd.video import read_video_info

    try:
        return read_video_info(path)["n_frames"]
    except Exception:  # noqa: BLE001 - truncated or not a video at all
        return None


@pytest.mark.slow
def test_render_killed_at_random_moments_never_leaves_a_truncated_video(tmp_path, tiny_bundle):
    from synd.audio import write_wav

    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    songs = {"long": tmp_path / "long.wav", "short": tmp_path / "short.wav"}
    write_wav(songs["long"], music_clip(3, seconds=8.0), 24000)  # killed long before its end
    write_wav(songs["short"], music_clip(3, seconds=2.0), 24000)  # 50 frames, to the end
    dest = tmp_path / "out" / "song.mp4"
    dest.parent.mkdir()
    dest.write_bytes(b"an older video")

    def cmd(song: str) -> list[str]:
        return [
            *SYND,
            "render",
            str(songs[song]),
            "--model",
            str(model),
            "--size",
            "320x240",
            "--fps",
            "25",
            "-o",
            str(dest),
        ]

    rng = random.Random(99)
    outcomes, killed_writing = [], 0
    # Two kills at random moments of the encoding, one right as the video is renamed
    # into place (the destination's inode changes).
    for k, when in enumerate(("random", "random", "at the rename")):
        before = dest.stat().st_ino
        song = "long" if when == "random" else "short"
        with spawned(cmd(song), tmp_path / f"render{k}.log") as proc:
            # its own temporary file, not one an earlier kill left
            writing = lambda: partials(dest.parent, proc.pid)  # noqa: E731
            started = poll_until(lambda: writing() or proc.poll() is not None, 120, 0.005)  # noqa: B023 - called at once
            assert started and proc.poll() is None, (tmp_path / f"render{k}.log").read_text()
            if when == "random":
                time.sleep(rng.uniform(0.0, 1.0))
            else:
                poll_until(lambda: dest.stat().st_ino != before or proc.poll() is not None, 120)  # noqa: B023 - called at once
            proc.kill()
            proc.wait(timeout=30)
        old = dest.read_bytes() == b"an older video"
        frames = None if old else _video_frames(dest)
        assert old or frames == {"long": 200, "short": 50}[song], "a truncated video"
        killed_writing += bool(writing())
        outcomes.append(f"{when}: " + ("old file kept" if old else "complete new video"))
        if not old:
            dest.write_bytes(b"an older video")
    # The last render removed what the killed ones had left when it started.
    assert partials(dest.parent) == []
    print(
        f"\nrender: 3 SIGKILLs injected and survived ({killed_writing} left a hidden "
        f"temporary file, removed by the next render): {outcomes}"
    )
    assert killed_writing >= 1 and outcomes[-1].endswith("complete new video")


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs, with an older video on it."""
    with mounted_tmpfs(tmp_path / "disk", "2m") as disk:
        (disk / "song.mp4").write_bytes(b"an older video")
        yield disk


def _fill(disk: Path) -> Path:
    """Write a file on `disk` until it is full."""
    filler = disk / f"filler{time.monotonic_ns()}"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        block = b"\0" * 4096
        with contextlib.suppress(OSError):
            while os.write(fd, block):
                pass
    finally:
        os.close(fd)
    return filler


def _render_with(
    tiny_bundle, song: Path, dest: Path, when_writing, crf: int = 20, size: tuple[int, int] = (320, 240)
) -> BaseException | None:
    """Render `song` to `dest` in this process, calling `when_writing()` as soon as the
    video's temporary file appears; the render's exception, if any."""
    from synd.presets import Look
    from synd.render import RenderOptions, render_song

    done = threading.Event()

    def watch():
        if poll_until(lambda: partials(dest.parent) or done.is_set(), 60):
            if not done.is_set():
                when_writing()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        render_song(
            song,
            dest,
            tiny_bundle,
            Look(),
            RenderOptions(size=size, fps=25, crf=crf, speed="ultrafast", progress=False),
        )
    except Exception as exc:  # noqa: BLE001 - what the test looks at
        return exc
    finally:
        done.set()
        watcher.join(10)
    return None


@pytest.fixture
def long_song(tmp_path) -> Path:
    from synd.audio import write_wav

    song = tmp_path / "song.wav"
    write_wav(song, music_clip(4, seconds=6.0), 24000)
    return song


def test_a_full_disk_leaves_the_older_video_and_no_temporary_file(small_disk, long_song, tiny_bundle):
    from synd.video import VideoError

    dest = small_disk / "song.mp4"
    fillers: list[Path] = []
    faults = []
    # (case, fill it first, fill it once the video's file is open, crf, size): lossless
    # 640x480 makes about 4 MB here and reaches the disk as it goes; the others make
    # about 200 kB, which the muxer buffers until the end.
    for case, before, during, crf, size in (
        ("full from the start", True, False, 20, (320, 240)),
        ("filled by the video itself", False, False, 0, (640, 480)),
        ("filled by another program while writing", False, True, 20, (320, 240)),
    ):
        if before:
            fillers.append(_fill(small_disk))
        fill_now = (lambda: fillers.append(_fill(small_disk))) if during else (lambda: None)
        error = _render_with(tiny_bundle, long_song, dest, fill_now, crf=crf, size=size)
        for f in fillers:
            f.unlink()
        fillers.clear()
        assert isinstance(error, VideoError), (case, error)
        assert str(error) == f"cannot write '{dest}': No space left on device", case
        assert dest.read_bytes() == b"an older video", case
        assert sorted(os.listdir(small_disk)) == ["song.mp4"], case
        faults.append(case)
    print(
        f"\nrender: full disk injected {len(faults)} times ({', '.join(faults)}); "
        "the older video survived each, no temporary file left"
    )


def test_a_destination_folder_removed_mid_render_is_one_line(tmp_path, long_song, tiny_bundle):
    from synd.video import VideoError

    folder = tmp_path / "videos"
    folder.mkdir()
    dest = folder / "song.mp4"
    began = time.monotonic()
    error = _render_with(tiny_bundle, long_song, dest, lambda: shutil.rmtree(folder))
    assert isinstance(error, VideoError), error
    assert str(error) == f"cannot write '{dest}': folder '{folder}' was removed while writing"
    assert not folder.exists()
    print(f"\nrender: folder removed mid-render, noticed after {time.monotonic() - began:.2f} s")


# -- 3. The sound server dies under a running engine, and comes back ------------------------

FPS = 30.0


def _recording_features(engine) -> list[tuple[float, np.ndarray]]:
    """(time, feature rows) of everything slot A hears from now on (engine thread)."""
    heard: list[tuple[float, np.ndarray]] = []
    slot = engine.slots["a"]
    hear = slot.hear

    def recording(samples):
        rows = hear(samples)
        heard.append((time.monotonic(), rows))
        return rows

    slot.hear = recording
    return heard


@requires_pulse
@pytest.mark.slow
def test_the_engine_publishes_through_a_sound_server_crash_and_hears_again(
    pulse, tmp_path, tiny_bundle, caplog
):
    from dataclasses import replace

    from synd.audio import write_wav
    from synd.bridges.base import OutputRunner
    from synd.capture import DeviceInput, refresh_devices
    from synd.engine import SILENCE_AFTER_S, Engine, EngineOptions
    from synd.features import FeatureExtractor
    from synd.presets import Look

    caplog.set_level(logging.INFO)
    refresh_devices()  # PortAudio may have listed devices before this server started
    source = DeviceInput("system", rate=24000)
    out = Collect(fps=FPS)
    runner = OutputRunner(out)
    engine = Engine(tiny_bundle, Look(), source, [runner], EngineOptions(fps=FPS, size=(96, 64)))
    heard = _recording_features(engine)
    wav = tmp_path / "tone.wav"
    write_wav(wav, tone(1000, 1.5, 48000), 48000)
    source.start()
    runner.start()
    engine.start()
    try:
        wait_for(lambda: source.ring.written > 0 and engine.frames > FPS, what="capture and frames")
        first_fault_record = len(caplog.records)
        killed_at, seq_killed = time.monotonic(), engine.frames
        pulse.kill()
        wait_for(lambda: not source.status()["connected"], what="the loss")
        seq_lost = engine.frames
        time.sleep(1.5)  # down for a while: a few reopen attempts fail meanwhile
        assert engine.running and engine.error is None
        seq_back, down_s = engine.frames, time.monotonic() - killed_at
        pulse.start()
        wait_for(lambda: source.status()["connected"], timeout=15, what="capture resuming")
        assert source.status()["reconnects"] == 1
        time.sleep(0.3)
        toned_at = time.monotonic()
        pulse.play(wav, wait=True)
        toned_until = time.monotonic()
        runner.flush(2)
    finally:
        engine.stop()
        runner.stop(2)
        source.stop()
    assert engine.error is None and runner.failed is None

    # Frames never stopped: the full rate while the server was down (generous margin).
    published = seq_back - seq_killed
    print(
        f"\nsound server: 1 SIGKILL injected and survived; {published} frames published in "
        f"{down_s:.2f} s down (expected {FPS * down_s:.0f}), capture resumed by itself"
    )
    assert published >= 0.6 * FPS * down_s
    # ... carrying silence from SILENCE_AFTER_S on (the picture calms down, a recording
    # keeps its sound in step).
    calm = max(seq_lost, seq_killed + FPS * SILENCE_AFTER_S + 1)
    silent = [f for f in out.frames if calm <= f.seq < seq_back]
    assert len(silent) >= FPS and all(f.audio.size and not f.audio.any() for f in silent)

    # One line when the capture is lost, one when it resumes; nothing else complains.
    lines = [r for r in caplog.records[first_fault_record:] if r.name.startswith("synd")]
    complaints = [r.getMessage() for r in lines if r.levelno >= logging.WARNING]
    assert len(complaints) == 1 and complaints[0].startswith("capture lost:"), complaints
    assert "\n" not in complaints[0]
    assert sum(r.getMessage().startswith("capture resumed:") for r in lines) == 1

    # The tone played after the restart reaches the features: its band is the loudest.
    rows = np.concatenate([r for t, r in heard if toned_at + 0.3 < t < toned_until - 0.2 and len(r)])
    audio = np.concatenate([f.audio for f in out.frames if f.seq >= seq_back])
    loud = np.flatnonzero(np.abs(audio) > 0.1)
    # One stretch: masking out quiet samples would drop those near zero crossings.
    assert dominant_hz(audio[loud[0] : loud[-1]]) == pytest.approx(1000, abs=5)
    bands = tiny_bundle.features.bands
    extractor = FeatureExtractor(replace(tiny_bundle.features, fps=FPS))
    offline = extractor.offline(tone(1000, 1.0, 24000))
    assert len(rows) >= 10
    assert np.argmax(rows[:, :bands].mean(axis=0)) == np.argmax(offline[5:-5, :bands].mean(axis=0))
    quiet = np.concatenate([r for t, r in heard if killed_at + 0.5 < t < killed_at + down_s and len(r)])
    assert rows[:, :bands].mean() > quiet[:, :bands].mean() + 3.0  # far louder than the silence


# -- 4. An NDI receiver SIGKILLed mid-stream -------------------------------------------------


@requires_namespace
def test_an_ndi_receiver_killed_mid_stream_disturbs_nothing(tmp_path):
    """The engine feeds an NdiOutput; a receiver watches and is SIGKILLed mid-stream; the
    engine and sender are sampled for a while; a new receiver then watches (all inside
    the namespace: tests/helpers/ndi_driver.py's mode receiver-killed)."""
    from synd.audio import write_wav

    song = tmp_path / "song.wav"
    write_wav(song, music_clip(5, seconds=4.0), 24000)
    result = drive(
        "receiver-killed",
        tmp_path,
        "--audio",
        str(song),
        "--name",
        unique("Killed"),
        "--size",
        "320x180",
        "--fps",
        "30",
        "--seconds",
        "2",
        "--gap",
        "2",
    )
    phases, first, second = result["phases"], result["first"], result["second"]
    assert first["returncode"] == -signal.SIGKILL and first["first"] is not None
    assert first["left"], "the sender still counted the killed receiver after 10 s"
    assert result["engine"]["error"] is None and result["ndi_stats"]["failed"] is None
    for snap in phases.values():  # the output is never disabled, never stops
        assert snap["failed"] is None and snap["running"], snap
    # The engine and the sender keep their rate through the kill (30 fps; wide margins).
    span = phases["after"]["t"] - phases["watching"]["t"]
    engine_fps = (phases["after"]["frames"] - phases["watching"]["frames"]) / span
    sent_fps = (phases["after"]["sent"] - phases["watching"]["sent"]) / span
    assert span >= 2.0 and engine_fps >= 15.0 and sent_fps >= 15.0, (span, engine_fps, sent_fps)
    assert phases["second_done"]["dropped"] == phases["watching"]["dropped"], phases
    # and a new receiver gets frames at the rate again
    assert second["frames"] >= 15 * 2 and second["rate"] >= 15.0, second
    print(
        f"\nndi: 1 receiver SIGKILLed mid-stream and survived; over {span:.1f} s around the "
        f"kill the engine published {engine_fps:.1f} fps and NDI sent {sent_fps:.1f} fps "
        f"(expected 30); the next receiver got {second['frames']} frames at "
        f"{second['rate']:.1f} fps"
    )


# -- 5. An output that fails on every frame, and one that never returns ----------------------


def _outputs():
    """Output classes (bridges/base.py's interface) that fail in the ways under test."""
    from synd.bridges.base import Output

    class Failing(Output):
        """send() raises every time."""

        name = "failing"

        def __init__(self, **kw):
            super().__init__((64, 48), FPS, **kw)
            self.sends = self.closes = 0

        def open(self):
            pass

        def send(self, frame):
            self.sends += 1
            raise OSError("the cable is out")

        def close(self):
            self.closes += 1

    class Tolerant(Failing):
        """Allowed 10 failures in a row before it is disabled."""

        name = "tolerant"
        max_failures = 10

    class Flaky(Tolerant):
        """Every other send fails: never 10 in a row, so it stays on."""

        name = "flaky"

        def send(self, frame):
            self.sends += 1
            if self.sends % 2:
                raise OSError("a dropped packet")

    class Hung(Failing):
        """send() never returns (until the test lets it)."""

        name = "hung"

        def __init__(self, **kw):
            super().__init__(**kw)
            self.release = threading.Event()

        def send(self, frame):
            self.sends += 1
            self.release.wait(60)

    return Failing, Tolerant, Flaky, Hung


def _rate(engine, runner, seconds: float) -> tuple[float, float]:
    """(engine fps, runner fps) measured over `seconds`."""
    f0, s0, t0 = engine.frames, runner.stats()["sent"], time.monotonic()
    time.sleep(seconds)
    span = time.monotonic() - t0
    return (engine.frames - f0) / span, (runner.stats()["sent"] - s0) / span


@pytest.mark.slow
def test_failing_outputs_are_reported_once_and_the_others_keep_their_rate(
    tiny_bundle, tmp_path, caplog, monkeypatch
):
    from synd.audio import write_wav
    from synd.bridges import base

    monkeypatch.setattr(base, "FAILURE_LOG_EVERY_S", 0.5)  # to see the count move on
    caplog.set_level(logging.INFO, logger="synd")
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(1, seconds=3.0), 24000)
    Failing, Tolerant, Flaky, _ = _outputs()
    failing, tolerant, flaky, good = Failing(), Tolerant(), Flaky(), Collect(fps=FPS)
    engine, runners, source = run_engine(tiny_bundle, song, [failing, tolerant, flaky, good], 0.5, fps=FPS)
    try:
        engine_fps, good_fps = _rate(engine, runners[3], 2.0)
    finally:
        stop_all(engine, runners, source)
    lines = {
        name: [r.getMessage() for r in caplog.records if f"output {name}" in r.getMessage()]
        for name in ("failing", "tolerant", "flaky")
    }
    print(
        f"\noutputs: 3 failing outputs; engine {engine_fps:.1f} fps, the good output "
        f"{good_fps:.1f} fps (expected {FPS:g}); failing: {failing.sends} send, "
        f"tolerant: {tolerant.sends} sends, flaky: {flaky.sends} sends "
        f"({runners[2].failures} failed); lines: {lines}"
    )
    assert engine.error is None and engine_fps >= 0.6 * FPS and good_fps >= 0.6 * FPS
    assert runners[3].failed is None
    # Disabled at once, in one line.
    assert failing.sends == 1 and failing.closes == 1
    assert lines["failing"] == ["output failing failed: the cable is out; disabled"]
    # Retried 10 times, then disabled: one line for the first failure, one with the count.
    assert tolerant.sends == 10 and runners[1].failures == 10 and tolerant.closes == 1
    assert lines["tolerant"] == [
        "output tolerant: send failed: the cable is out (1 failed so far); retrying, "
        "disabled after 10 failures in a row",
        "output tolerant failed: the cable is out (10 failed sends in a row); disabled",
    ]
    # Failing every other frame: kept on, its failures counted, a line every 0.5 s at most.
    stats = runners[2].stats()
    assert stats["failed"] is None and stats["failures"] >= FPS and stats["sent"] >= FPS
    assert 2 <= len(lines["flaky"]) <= 2.5 / 0.5 + 1, lines["flaky"]
    counts = [int(re.search(r"\((\d+) failed so far\)", m).group(1)) for m in lines["flaky"]]
    assert counts == sorted(counts) and counts[0] == 1 and counts[-1] > 10


@pytest.mark.slow
def test_an_output_whose_send_never_returns_stalls_nothing(tiny_bundle, tmp_path, caplog):
    from synd.audio import write_wav
    from synd.bridges import base

    caplog.set_level(logging.INFO, logger="synd")
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(2, seconds=3.0), 24000)
    *_, Hung = _outputs()
    hung, good = Hung(), Collect(fps=FPS)
    engine, runners, source = run_engine(tiny_bundle, song, [hung, good], 0.5, fps=FPS)
    try:
        engine_fps, good_fps = _rate(engine, runners[1], 1.5)
        stats = runners[0].stats()
        began = time.monotonic()
        assert runners[0].stop(0.5) is False  # gives up on the hung output ...
        gave_up = time.monotonic() - began
        engine_fps_after, _ = _rate(engine, runners[1], 0.5)
        began = time.monotonic()
        base._stop_all_at_exit()  # ... and so does the exit, after a short grace
        at_exit = time.monotonic() - began
    finally:
        hung.release.set()
        stop_all(engine, runners, source)
    print(
        f"\noutputs: 1 hung output; engine {engine_fps:.1f} fps, the good output "
        f"{good_fps:.1f} fps (expected {FPS:g}), {stats['dropped']} frames dropped in front "
        f"of the hung one; stop gave up after {gave_up:.2f} s, exit after {at_exit:.2f} s"
    )
    assert engine.error is None and engine_fps >= 0.6 * FPS and good_fps >= 0.6 * FPS
    assert engine_fps_after >= 0.6 * FPS
    assert hung.sends == 1 and stats["sent"] == 0 and stats["dropped"] >= FPS
    assert gave_up < 1.5 and at_exit < base.EXIT_SEND_GRACE_S + 1.0
    stuck = [r.getMessage() for r in caplog.records if "output hung" in r.getMessage()]
    assert stuck == ["output hung did not stop within 0.5 s (stuck in open() or send()); left behind"]
    assert runners[0].stop(5) and hung.closes == 1  # released: it closes, once
