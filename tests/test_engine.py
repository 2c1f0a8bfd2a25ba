"""The live engine, in process: real file input, real frame loop, outputs that collect."""

import threading
import time

import numpy as np
import pytest
import torch

from synd.audio import write_wav
from synd.bridges.base import OutputRunner
from synd.capture import FileInput
from synd.engine import Engine, EngineOptions
from synd.onnxgen import painting_threads
from synd.presets import Look
from tests.helpers.audio import music_clip
from tests.helpers.engine import Collect, run_engine, stop_all
from tests.helpers.wait import wait_for


@pytest.fixture
def song(tmp_path):
    path = tmp_path / "song.wav"
    write_wav(path, music_clip(1, seconds=3.0), 24000)
    return path


def test_frames_carry_sequence_audio_time_and_all_the_audio(tiny_bundle, song):
    out = Collect(fps=30.0)
    engine, runners, source = run_engine(tiny_bundle, song, [out], 1.5)
    stop_all(engine, runners, source)
    frames = out.frames
    assert len(frames) >= 20
    seqs = [f.seq for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    times = [f.audio_time for f in frames]
    assert times == sorted(times) and times[-1] > 0.5
    assert all(f.rgb.shape == (64, 96, 3) and f.rgb.dtype == np.uint8 for f in frames)
    # Audio rides along with the frames, none lost even when frames are skipped.
    heard = np.concatenate([f.audio for f in frames])
    original = np.asarray(__import__("synd.audio", fromlist=["x"]).load_audio(song, 24000))
    n = min(len(heard), len(original))
    assert n > 24000 * 0.8
    assert np.allclose(heard[:n], original[:n], atol=1e-6)
    assert out.closed == 1


def test_pictures_follow_the_sound_and_calm_down_without_it(tiny_bundle, tmp_path):
    loud_then_silent = np.concatenate([music_clip(2, seconds=1.5), np.zeros(24000 * 2, np.float32)])
    path = tmp_path / "ls.wav"
    write_wav(path, loud_then_silent, 24000)
    out = Collect(fps=30.0)
    engine, runners, source = run_engine(tiny_bundle, path, [out], 3.2, look=Look(feedback=0.0))
    stop_all(engine, runners, source)
    change = [np.abs(a.rgb.astype(int) - b.rgb).mean() for a, b in zip(out.frames, out.frames[1:])]
    times = [f.audio_time for f in out.frames[1:]]
    loud = [c for c, t in zip(change, times) if 0.2 < t < 1.4]
    quiet = [c for c, t in zip(change, times) if t > 2.2]
    assert loud and quiet
    assert np.mean(loud) > 3 * np.mean(quiet) + 0.1


def test_a_failing_output_is_disabled_and_the_engine_goes_on(tiny_bundle, song):
    bad, good = Collect(fail_after=3), Collect()
    engine, runners, source = run_engine(tiny_bundle, song, [bad, good], 1.0)
    frames_then = len(good.frames)
    time.sleep(0.5)
    stop_all(engine, runners, source)
    assert runners[0].failed and "cable" in runners[0].failed
    assert bad.closed == 1 and len(bad.frames) == 3
    assert len(good.frames) > frames_then and engine.error is None


def test_look_changes_and_model_swaps_are_applied_between_frames(tiny_bundle, song):
    import copy

    out = Collect()
    engine, runners, source = run_engine(tiny_bundle, song, [out], 0.3)
    engine.set_look(intensity=0.0, feedback=0.0)
    other = copy.deepcopy(tiny_bundle)
    loaded = threading.Event()
    results = []

    def slow_load():
        time.sleep(0.3)  # a big file: the engine keeps painting meanwhile
        return other, Look(hue=0.5)

    engine.load_model(slow_load, "other", done=lambda err: (results.append(err), loaded.set()))
    before = engine.frames
    assert loaded.wait(10)
    wait_for(lambda: engine.model_name == "other", 20)
    assert engine.frames > before  # painting went on during the load
    assert results == [None] and engine.look.hue == 0.5 and engine.bundle is other
    # The performer's hue turns each preset's own palette; a preset loaded later is turned too.
    engine.set_look(hue=0.25)
    wait_for(lambda: engine.look.hue == 0.75, 10)
    engine.load_model(lambda: (copy.deepcopy(tiny_bundle), Look(hue=0.9)), "third")
    wait_for(lambda: engine.model_name == "third", 20)
    assert engine.look.hue == pytest.approx(0.15)
    engine.load_model(lambda: (_ for _ in ()).throw(OSError("corrupt file")), "broken")
    time.sleep(0.3)
    assert engine.model_name == "third"  # a failed load keeps the running model
    stop_all(engine, runners, source)
    with pytest.raises(ValueError):
        engine.set_look(feedback=2.0)


@pytest.mark.parametrize("runtime", ["onnx", "torch"])
def test_status_reports_fps_latency_and_outputs(tiny_bundle, song, runtime):
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    out = Collect()
    before = torch.get_num_threads()
    torch.set_num_threads(painting_threads() + 1)  # more than ONNX Runtime paints with
    try:
        engine, runners, source = run_engine(tiny_bundle, song, [out], 1.5, runtime=runtime)
        status = engine.status()
        stop_all(engine, runners, source)
        # With ONNX Runtime painting, torch's steps on the engine thread use as many
        # threads as it does; other threads keep theirs.
        expected = painting_threads() if runtime == "onnx" else painting_threads() + 1
        assert status["torch_threads"] == expected
        assert torch.get_num_threads() == painting_threads() + 1
    finally:
        torch.set_num_threads(before)
    assert status["runtime"] == {"onnx": "onnxruntime", "torch": "torch"}[runtime]
    assert status["fps"] > 10 and status["frames"] > 10
    assert status["latency_ms_median"] is not None and status["latency_ms_median"] >= 0
    assert status["outputs"]["collect"]["sent"] > 0
    assert status["input_connected"] is True


class SilentThenSound:
    """A capture input that delivers nothing for a while (a suspended sound server
    sends no samples at all), then a tone."""

    sample_rate = 24000
    description = "test input"

    def __init__(self, quiet_seconds):
        self.began = time.monotonic()
        self.quiet = quiet_seconds
        self.sent = 0
        self.ring = self

    def read_new(self, max_samples, delay=0):
        now = time.monotonic()
        due = int((now - self.began - self.quiet) * self.sample_rate)
        if due <= self.sent:
            return np.zeros(0, np.float32), now
        t = np.arange(self.sent, due) / self.sample_rate
        self.sent = due
        return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), now

    def status(self):
        return {"connected": True, "overflows": 0, "overruns": 0}


def test_frames_carry_silence_while_the_input_sends_nothing(tiny_bundle):
    """A recording stays in step: the audio the frames carry adds up to their audio time,
    across a stretch where the input delivered no samples at all."""
    source = SilentThenSound(quiet_seconds=1.0)
    out = Collect(fps=30.0)
    runner = OutputRunner(out)
    engine = Engine(tiny_bundle, Look(), source, [runner], EngineOptions(size=(96, 64)))
    runner.start()
    engine.start()
    time.sleep(2.0)
    engine.stop()
    runner.stop(2.0)
    frames = out.frames
    carried = sum(len(f.audio) for f in frames) / source.sample_rate
    assert frames[-1].audio_time > 1.2  # silence and then the tone were both heard
    assert abs(carried - frames[-1].audio_time) < 2 / 30
    silent = [f for f in frames if f.audio.size and not np.any(f.audio)]
    assert len(silent) > 10  # the quiet stretch was carried as zeros


def test_frames_skipped_by_a_late_engine_leave_gaps_in_the_sequence(tiny_bundle, song):
    """`Frame.seq` numbers the engine's clock ticks, so a recording places each picture
    at its time: a frame painted late makes the engine skip ticks, and the next frame's
    number jumps by as many."""
    source = FileInput(song, rate=24000)
    out = Collect(fps=30.0)
    runner = OutputRunner(out)
    engine = Engine(tiny_bundle, Look(), source, [runner], EngineOptions(size=(96, 64)))
    paint = engine._picture

    def slow_now_and_then():
        if engine.frames % 10 == 5:
            time.sleep(0.15)  # four and a half frame periods
        return paint()

    engine._picture = slow_now_and_then
    source.start()
    runner.start()
    engine.start()
    wait_for(lambda: engine.frames > 40, timeout=30)
    stop_all(engine, [runner], source)
    assert engine.dropped >= 8
    assert engine.last_frame.seq == engine.frames - 1 + engine.dropped
    seqs = [f.seq for f in out.frames]
    jumps = [b - a for a, b in zip(seqs, seqs[1:])]
    assert all(j >= 1 for j in jumps) and max(jumps) >= 4, jumps


def test_preset_changes_faster_than_loads_build_only_the_newest(tiny_bundle, song):
    """500 preset changes in a burst (a held button, an OSC flood): one load at a time,
    each waiting one replaced by the next, the last asked for on screen, painting on."""
    import copy

    from synd.loadqueue import Superseded

    out = Collect()
    engine, runners, source = run_engine(tiny_bundle, song, [out], 0.3)
    built, outcomes = [], []
    lock = threading.Lock()

    def load(name):
        def build():
            time.sleep(0.05)  # a model file being read
            with lock:
                built.append(name)
            return copy.deepcopy(tiny_bundle), Look()

        return build

    threads_before = threading.active_count()
    frames_before = engine.frames
    most_threads = 0
    for i in range(500):
        engine.switch_to(load(f"look{i}"), f"look{i}", 0.0, done=outcomes.append)
        most_threads = max(most_threads, threading.active_count())
    wait_for(lambda: len(outcomes) == 500, 20)
    wait_for(lambda: engine.model_name == "look499", 20)
    stop_all(engine, runners, source)
    assert len(built) <= 3 and built[-1] == "look499", built
    assert most_threads <= threads_before + 1
    assert sum(isinstance(o, Superseded) for o in outcomes) == 500 - len(built)
    assert outcomes.count(None) == len(built)
    assert engine.frames > frames_before
