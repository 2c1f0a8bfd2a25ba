"""Output bridges: the runner's mailbox, --output specs, the record and preview outputs,
and VideoWriter's streaming additions (explicit pts, live audio). Real files, a real Qt
window (offscreen, in a subprocess: the Qt platform is fixed per process)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from synd.bridges.base import (
    OUTPUTS,
    Frame,
    Output,
    OutputRunner,
    OutputSpecError,
    create_output,
    output_status,
    parse_outputs,
    register_output,
)
from synd.bridges.record import SYNC_TOLERANCE_S, RecordOutput
from synd.bridges.registry import OutputEntry
from synd.video import VideoWriter, read_audio, read_frames, read_timed_frames, read_video_info

HAVE_QT = importlib.util.find_spec("PyQt6") is not None


def frame(
    seq: int, audio: np.ndarray | None = None, rgb: np.ndarray | None = None, rate: int = 48000
) -> Frame:
    if rgb is None:
        rgb = np.full((36, 64, 3), seq % 256, np.uint8)
    if audio is None:
        audio = np.zeros(0, np.float32)
    return Frame(
        seq=seq,
        audio_time=(seq + 1) / 30,
        captured_at=time.monotonic(),
        rgb=rgb,
        audio=audio,
        sample_rate=rate,
    )


class FakeOutput(Output):
    """Records every call; send can block on an event, sleep, or raise."""

    name = "fake"
    default_size = (64, 36)

    def __init__(
        self,
        size=None,
        fps=1000.0,
        *,
        sleep: float = 0.0,
        gate=None,
        fail_open: bool = False,
        fail_at: int | None = None,
        **options,
    ) -> None:
        super().__init__(size, fps, **options)
        self.sleep, self.gate, self.fail_open, self.fail_at = sleep, gate, fail_open, fail_at
        self.calls: list[str] = []
        self.frames: list[Frame] = []

    def open(self) -> None:
        self.calls.append("open")
        if self.fail_open:
            raise RuntimeError("no such device\n(second line)")

    def send(self, f: Frame) -> None:
        self.calls.append("send")
        if self.fail_at is not None and len(self.frames) == self.fail_at:
            raise RuntimeError("boom")
        if self.gate is not None:
            self.gate.wait(10)
        if self.sleep:
            time.sleep(self.sleep)
        self.frames.append(f)

    def close(self) -> None:
        self.calls.append("close")


def failures(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- OutputRunner ------------------------------------------------------------------------------


def test_offer_never_waits_for_a_busy_output_and_carries_the_dropped_audio():
    gate = threading.Event()
    out = FakeOutput(gate=gate)
    runner = OutputRunner(out).start()
    assert runner.wait_open(5)
    offered = []
    for seq in range(60):
        block = np.arange(seq * 100, seq * 100 + 100, dtype=np.float32)
        if seq % 7 == 3:
            block = block[:0]  # frames without audio happen too
        offered.append(block)
        # frame 0 is taken and blocks send(); every later offer must still return at once
        # (if offer() waited for the output, this loop would hang until the gate opens)
        assert runner.offer(frame(seq, block))
        if seq == 0:
            deadline = time.monotonic() + 5
            while runner.stats()["pending"] and time.monotonic() < deadline:
                time.sleep(0.005)
    stats = runner.stats()
    assert stats["pending"] == 1  # the mailbox holds exactly one frame, the newest
    assert stats["dropped"] == 58 and stats["skipped"] == 0  # 1..58 replaced while busy
    gate.set()
    assert runner.flush(5)
    assert runner.stop(5)
    assert [f.seq for f in out.frames] == [0, 59]
    delivered = np.concatenate([f.audio for f in out.frames])
    np.testing.assert_array_equal(delivered, np.concatenate(offered))
    assert out.calls[0] == "open" and out.calls.count("open") == 1
    assert out.calls[-1] == "close" and out.calls.count("close") == 1
    assert runner.stats()["sent"] == 2 and not runner.running


def test_slow_output_gets_the_newest_frames_and_all_audio():
    out = FakeOutput(sleep=0.01)
    runner = OutputRunner(out).start()
    blocks = [np.full(10, seq, np.float32) for seq in range(300)]
    for seq, block in enumerate(blocks):
        runner.offer(frame(seq, block))  # ten frames for every one the output can send
        time.sleep(0.001)
    assert runner.flush(10)
    runner.stop(5)
    stats = runner.stats()
    assert stats["dropped"] > 0 and stats["sent"] == len(out.frames) < 300
    assert stats["sent"] + stats["dropped"] + stats["skipped"] == 300
    seqs = [f.seq for f in out.frames]
    assert seqs == sorted(seqs) and seqs[-1] == 299
    np.testing.assert_array_equal(np.concatenate([f.audio for f in out.frames]), np.concatenate(blocks))
    assert out.calls.count("open") == 1 and out.calls.count("close") == 1


def test_a_failing_send_disables_the_output_with_one_line_and_closes_once(caplog):
    out = FakeOutput(fail_at=2)
    runner = OutputRunner(out).start()
    for seq in range(5):
        runner.offer(frame(seq))
        runner.flush(5)
    assert runner.failed == "boom"
    assert failures(caplog) == ["output fake failed: boom; disabled"]
    assert not runner.offer(frame(10))  # takes no more frames
    assert runner.stop(5)
    assert out.calls == ["open", "send", "send", "send", "close"]
    assert runner.stats()["failed"] == "boom" and runner.stats()["sent"] == 2


def test_a_failing_open_is_one_line_and_close_is_still_called_once(caplog):
    out = FakeOutput(fail_open=True)
    runner = OutputRunner(out).start()
    assert not runner.wait_open(5)
    assert runner.failed == "no such device (second line)"
    assert failures(caplog) == ["output fake failed: no such device (second line); disabled"]
    assert not runner.offer(frame(0))
    assert runner.stop(5)
    assert out.calls == ["open", "close"]


def test_stop_is_prompt_even_while_waiting_for_the_next_slot():
    out = FakeOutput(fps=0.1)  # one frame every 10 s
    runner = OutputRunner(out).start()
    runner.offer(frame(0))
    assert runner.flush(5)
    runner.offer(frame(1))  # not due for seconds: the runner waits for its slot
    time.sleep(0.05)
    assert runner.stats()["pending"] == 1
    assert runner.stop(timeout=2.0)  # the wait is interrupted, not sat out
    assert out.calls == ["open", "send", "close"]
    assert not runner.offer(frame(2))


def test_stop_before_start_never_opens_and_double_start_is_an_error():
    out = FakeOutput()
    runner = OutputRunner(out)
    assert runner.stop(1)
    runner.start()  # stopped already: does nothing
    runner.run_here()
    assert out.calls == [] and not runner.running
    running = OutputRunner(FakeOutput()).start()
    with pytest.raises(RuntimeError, match="already started"):
        running.start()
    running.stop(5)


def feed(runner: OutputRunner, seconds: float, fps: float = 30.0) -> int:
    """Offer frames in real time like the engine; returns how many were offered."""
    start, n = time.monotonic(), round(seconds * fps)
    for seq in range(n):
        runner.offer(frame(seq))
        time.sleep(max(0.0, start + (seq + 1) / fps - time.monotonic()))
    return n


def test_output_fps_limits_what_it_is_sent():
    slow, full = FakeOutput(fps=10), FakeOutput(fps=30)
    runners = [OutputRunner(slow).start(), OutputRunner(full).start()]
    start, n = time.monotonic(), 45
    for seq in range(n):
        for r in runners:
            r.offer(frame(seq))
        time.sleep(max(0.0, start + (seq + 1) / 30 - time.monotonic()))
    for r in runners:
        r.stop(5)
    slow_stats, full_stats = (r.stats() for r in runners)
    # a 10 fps output of a 30 fps engine gets about a third of the frames, skipping the rest
    assert 0.25 <= slow_stats["sent"] / n <= 0.45, slow_stats
    assert slow_stats["skipped"] >= n // 2
    # an output at the engine's rate is not thinned out by jitter
    assert full_stats["sent"] >= 0.8 * n, full_stats


def test_main_thread_outputs_run_here_until_stopped():
    class MainOnly(FakeOutput):
        needs_main_thread = True

    out = MainOnly()
    runner = OutputRunner(out)
    with pytest.raises(RuntimeError, match="main thread"):
        runner.start()
    result = {}

    def engine():
        assert runner.wait_open(5)
        for seq in range(5):
            runner.offer(frame(seq))
            runner.flush(5)
        result["stopped"] = runner.stop(5)

    t = threading.Thread(target=engine)
    t.start()
    runner.run_here()  # returns once the engine thread stopped it
    t.join(5)
    assert result["stopped"] is True
    assert [f.seq for f in out.frames] == [0, 1, 2, 3, 4]
    assert out.calls.count("open") == 1 and out.calls[-1] == "close" and out.calls.count("close") == 1


# -- --output specs -------------------------------------------------------------------------------


def test_pixels_scale_to_the_output_size_in_the_asked_layout():
    rgb = np.zeros((36, 64, 3), np.uint8)
    rgb[..., 0] = 250  # red
    out = FakeOutput(size=(160, 90))
    bgra = out.pixels(frame(0, rgb=rgb))
    assert bgra.shape == (90, 160, 4) and bgra.dtype == np.uint8
    assert np.all(bgra[..., 2] >= 248) and np.all(bgra[..., 0] <= 2) and np.all(bgra[..., 3] == 255)
    rgba = out.pixels(frame(1, rgb=rgb), "rgba")
    assert np.all(rgba[..., 0] >= 248) and rgba.shape == (90, 160, 4)
    again = out.pixels(frame(2, rgb=rgb))
    assert again is not bgra and not np.shares_memory(again, bgra)  # senders may hold the last


def test_parse_outputs_valid_specs():
    assert parse_outputs("record:set.mp4") == [("record", {"path": "set.mp4"})]
    assert parse_outputs("record@1920x1080@29.97:out/set.mkv") == [
        ("record", {"size": (1920, 1080), "fps": 29.97, "path": "out/set.mkv"})
    ]
    assert parse_outputs(" record@24 : a.mov , record@640x360:b.mp4") == [
        ("record", {"fps": 24.0, "path": "a.mov"}),
        ("record", {"size": (640, 360), "path": "b.mp4"}),
    ]
    assert parse_outputs("preview@640x360@15,record:set.mp4", check_available=False) == [
        ("preview", {"size": (640, 360), "fps": 15.0}),
        ("record", {"path": "set.mp4"}),
    ]
    assert parse_outputs("PREVIEW@30@640x360:fullscreen", check_available=False) == [
        ("preview", {"fps": 30.0, "size": (640, 360), "mode": "fullscreen"})
    ]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty output"),
        ("record:a.mp4,", "empty output"),
        ("record", "needs a file"),
        ("record:", "needs a file"),
        ("record:set.avi", "must end in .mp4"),
        ("record@641x360:a.mp4", "must be even"),
        ("record@0x0:a.mp4", "must be positive"),
        ("record@0:a.mp4", "must be positive"),
        ("record@fast:a.mp4", "bad part 'fast'"),
        ("record@640x360@800x600:a.mp4", "bad part '800x600'"),
        ("preview:big", "preview mode must be"),
        ("record:a.mp4,record:a.mp4", "given twice"),
        ("preview,preview@640x360", "only one main-thread output"),
    ],
)
def test_parse_outputs_errors_are_one_line(spec, message):
    with pytest.raises(OutputSpecError, match=message) as info:
        parse_outputs(spec, check_available=False)
    assert "\n" not in str(info.value)


def test_unknown_output_lists_what_exists_and_why_not():
    with pytest.raises(OutputSpecError) as info:
        parse_outputs("record:a.mp4,telepathy")
    text = str(info.value)
    assert text.startswith("unknown output 'telepathy'")
    assert "\n" not in text
    status = output_status()
    assert status["record"] is None and "available: " in text and "record" in text
    for name, why in status.items():  # every output appears, the unusable ones with reasons
        assert name in text
        if why is not None:
            assert f"{name} ({why})" in text


def test_unavailable_output_gives_its_reason(monkeypatch):
    class Unicorn(FakeOutput):
        name = "unicorn"

        @classmethod
        def available(cls):
            return "needs a unicorn"

    monkeypatch.setitem(OUTPUTS, "unicorn", OutputEntry("x:y"))
    from synd.bridges import base

    monkeypatch.setitem(base._loaded, "unicorn", Unicorn)
    with pytest.raises(
        OutputSpecError, match=r"^output 'unicorn' is not available: needs a unicorn \(available: .*record"
    ):
        parse_outputs("record:a.mp4,unicorn")
    assert parse_outputs("unicorn", check_available=False) == [("unicorn", {})]


def test_create_output_takes_the_engine_fps_unless_told(monkeypatch):
    from synd.bridges import base

    monkeypatch.setitem(OUTPUTS, "fake", OutputEntry("x:y"))
    monkeypatch.setitem(base._loaded, "fake", FakeOutput)
    out = create_output("fake", {}, engine_fps=25)
    assert (out.size, out.fps, out.engine_fps) == ((64, 36), 25.0, 25.0)
    out = create_output("fake", {"size": (320, 180), "fps": 10.0}, engine_fps=30)
    assert (out.size, out.fps, out.engine_fps) == ((320, 180), 10.0, 30.0)
    rec = create_output("record", {"path": "x.mp4"}, engine_fps=30)
    assert isinstance(rec, RecordOutput) and rec.size == (1280, 720) and rec.fps == 30
    with pytest.raises(TypeError, match="no option"):
        create_output("fake", {"colour": "red"}, engine_fps=30)


def test_register_output_adds_a_class(monkeypatch):
    from synd.bridges import base

    monkeypatch.setattr(base, "OUTPUTS", dict(OUTPUTS))
    monkeypatch.setattr(base, "_loaded", dict(base._loaded))

    class Other(FakeOutput):
        name = "other"

    assert register_output(Other) is Other
    assert base.output_class("other") is Other
    assert base.parse_outputs("other@12") == [("other", {"fps": 12.0})]


# -- record -----------------------------------------------------------------------------------------

SR_IN = 24000  # the capture rate in these tests: the file gets 48 kHz
TONE = 440.0
BURST = (1.5, 1.6)  # seconds of louder tone; the frames painted from it are white


def live_frame(seq: int, fps: float = 30.0) -> Frame:
    """Frame `seq` of an engine at `fps` with its slice of a 440 Hz tone."""
    a, b = round(seq * SR_IN / fps), round((seq + 1) * SR_IN / fps)
    t = np.arange(a, b) / SR_IN
    loud = (t >= BURST[0]) & (t < BURST[1])
    audio = (np.where(loud, 0.8, 0.2) * np.sin(2 * np.pi * TONE * t)).astype(np.float32)
    rgb = np.full((36, 64, 3), 255 if loud.any() else 30, np.uint8)
    return Frame(
        seq=seq, audio_time=b / SR_IN, captured_at=time.monotonic(), rgb=rgb, audio=audio, sample_rate=SR_IN
    )


def record_live(
    runner: OutputRunner,
    seconds: float,
    first: int = 0,
    stop_at: float | None = None,
    fps: float = 30.0,
    frame_at: Callable[[int, float], Frame] = live_frame,
) -> int:
    """Feed frames (`frame_at(seq, fps)`) in real time; stop the runner at `stop_at` s
    while frames keep coming."""
    start = time.monotonic()
    n = round(seconds * fps)
    for seq in range(first, n):
        if stop_at is not None and seq == round(stop_at * fps):
            runner.stop(10)
        runner.offer(frame_at(seq, fps))
        time.sleep(max(0.0, start + (seq - first + 1) / fps - time.monotonic()))
    return n


def decoded_frame_times(path: Path) -> list[tuple[float, float]]:
    """(time in s, mean brightness) of every decoded video frame."""
    return [(t, float(f.mean())) for t, f in read_timed_frames(path)]


def check_sound(path: Path, quiet_until: float = 1.4) -> tuple[dict, np.ndarray, int]:
    """Read back the file's audio and check the tone up to `quiet_until` s of the file."""
    info = read_video_info(path)
    audio, rate = read_audio(path)
    mono = audio[:, 0]
    assert rate == 48000 and info["audio_rate"] == 48000 and info["audio_channels"] == 1
    # the tone's pitch survived resampling and encoding
    quiet = mono[: int(quiet_until * rate)]
    spectrum = np.abs(np.fft.rfft(quiet * np.hanning(len(quiet))))
    peak = np.fft.rfftfreq(len(quiet), 1 / rate)[np.argmax(spectrum)]
    assert abs(peak - TONE) < 2.0, peak
    # gapless: every 50 ms window of the quiet part holds the tone at the same loudness
    # (a lost audio block would leave a hole or a click in this window list)
    win = rate // 20
    rms = np.sqrt(np.mean(quiet[win : len(quiet) // win * win].reshape(-1, win) ** 2, axis=1))
    assert rms.min() > 0.85 * 0.2 / np.sqrt(2) and rms.max() < 1.15 * 0.2 / np.sqrt(2), (rms.min(), rms.max())
    return info, mono, rate


def check_sync(path: Path, mono: np.ndarray, rate: int) -> None:
    """The first white picture appears when the loud sound starts, within a frame or so."""
    win = rate // 200  # 5 ms
    env = np.sqrt(np.mean(mono[: len(mono) // win * win].reshape(-1, win) ** 2, axis=1))
    sound_at = np.argmax(env > 0.3) * win / rate
    picture_at = next(t for t, level in decoded_frame_times(path) if level > 128)
    assert abs(sound_at - picture_at) <= 1.5 / 30, (sound_at, picture_at)


@pytest.mark.slow
def test_record_writes_video_and_audio_in_sync(tmp_path):
    path = tmp_path / "set.mp4"
    out = create_output("record", {"path": str(path), "size": (320, 180)}, engine_fps=30)
    runner = OutputRunner(out).start()
    assert runner.wait_open(10)
    record_live(runner, 3.0)
    assert not path.exists()  # atomic: nothing at the destination while recording
    assert runner.stop(10) and runner.failed is None
    info, mono, rate = check_sound(path)
    assert (info["width"], info["height"], info["video_codec"]) == (320, 180, "h264")
    assert info["fps"] == 30
    assert abs(info["video_duration"] - 3.0) <= 2 / 30, info
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 30, info
    check_sync(path, mono, rate)
    assert sorted(os.listdir(tmp_path)) == ["set.mp4"]  # no temporary file left


class StutteringRecord(RecordOutput):
    """A recorder that stalls now and then, so the mailbox drops frames."""

    def send(self, frame: Frame) -> None:
        super().send(frame)
        if frame.seq % 20 == 10:
            time.sleep(0.15)


@pytest.mark.slow
def test_dropped_frames_leave_gaps_and_the_audio_stays_whole_and_in_sync(tmp_path):
    path = tmp_path / "set.mkv"
    out = StutteringRecord(size=(320, 180), fps=30, path=path)
    runner = OutputRunner(out)
    for seq in range(8):  # frames published before the recorder runs: dropped but heard
        runner.offer(live_frame(seq))
    runner.start()
    record_live(runner, 2.5, first=8)
    assert runner.stop(10)
    stats = runner.stats()
    assert stats["failed"] is None and stats["dropped"] >= 10, stats
    info, mono, rate = check_sound(path, quiet_until=1.2)  # the file starts at 7/30 s
    assert info["n_frames"] == stats["sent"] < 75 - 8
    # the video spans from its first frame (seq 7) to the end, gaps included, and the
    # audio covers all of it: no drift between the two
    assert abs(info["video_duration"] - (75 - 7) / 30) <= 2 / 30, info
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 30, info
    assert abs(len(mono) / rate - info["video_duration"]) <= 1 / 30
    check_sync(path, mono, rate)


STALL = range(12, 24)  # engine frames painted while the capture brought no sound


def starved_capture(seq: int, fps: float) -> Frame:
    """A capture starved for 0.4 s (the engine paints silence), then its backlog at once."""
    frame = live_frame(seq, fps)
    if seq in STALL:
        return dataclasses.replace(frame, audio=np.zeros_like(frame.audio))
    if seq == STALL.stop:
        return dataclasses.replace(frame, audio=np.concatenate([live_frame(s).audio for s in [*STALL, seq]]))
    return frame


def lossy_capture(seq: int, fps: float) -> Frame:
    """A capture that lost half of each block for 0.4 s (a backlog the engine skipped)."""
    frame = live_frame(seq, fps)
    if seq in STALL:
        return dataclasses.replace(frame, audio=frame.audio[frame.audio.size // 2 :])
    return frame


@pytest.mark.slow
@pytest.mark.parametrize("capture, late, lost", [(starved_capture, 0.4, 0.0), (lossy_capture, 0.0, 0.2)])
def test_sound_that_comes_late_or_is_lost_is_put_back_in_step(tmp_path, caplog, capture, late, lost):
    """Frame 45 (1.5 s) is painted from the loud burst: it is on screen when the burst
    plays, though the sound before it came 0.4 s late, or 0.2 s of it never came. The
    recorder corrects what is more than its tolerance out of step, and says how much."""
    path = tmp_path / "set.mp4"
    out = create_output("record", {"path": str(path), "size": (160, 90)}, engine_fps=30)
    runner = OutputRunner(out).start()
    assert runner.wait_open(10)
    with caplog.at_level(logging.INFO, logger="synd.bridges"):
        record_live(runner, 2.5, frame_at=capture)
        assert runner.stop(10) and runner.stats()["dropped"] == 0
    info = read_video_info(path)
    mono = read_audio(path)[0][:, 0]
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 30, info
    check_sync(path, mono, 48000)
    said = re.search(r"([\d.]+) s of late sound dropped, ([\d.]+) s of silence added", caplog.text)
    assert said, caplog.text
    for corrected, wrong in zip(map(float, said.groups()), (late, lost)):
        assert wrong - SYNC_TOLERANCE_S - 0.01 <= corrected <= wrong + 0.01, caplog.text


@pytest.mark.slow
def test_record_stopped_midway_leaves_a_complete_playable_file(tmp_path):
    path = tmp_path / "cut.mov"
    out = create_output("record", {"path": str(path), "size": (320, 180)}, engine_fps=30)
    runner = OutputRunner(out).start()
    record_live(runner, 1.5, stop_at=0.8)  # the engine keeps publishing after the stop
    assert not runner.running and runner.failed is None
    info = read_video_info(path)
    frames = list(read_frames(path))
    assert len(frames) == info["n_frames"] == runner.stats()["sent"] > 10
    assert frames[0].shape == (180, 320, 3)
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 30
    assert sorted(os.listdir(tmp_path)) == ["cut.mov"]


@pytest.mark.slow
def test_record_at_half_the_engine_rate(tmp_path):
    path = tmp_path / "half.mp4"
    out = create_output("record", {"path": str(path), "size": (160, 90), "fps": 15}, engine_fps=30)
    runner = OutputRunner(out).start()
    record_live(runner, 1.6)
    runner.stop(10)
    info, mono, rate = check_sound(path)
    assert info["fps"] == 15 and abs(info["video_duration"] - 1.6) <= 2 / 15, info
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 15


def test_ctrl_c_in_a_daemon_that_forgets_to_stop_still_finishes_the_recording(tmp_path):
    path = tmp_path / "crash.mp4"
    script = textwrap.dedent(f"""
        import time
        import numpy as np
        from synd.bridges.base import Frame, OutputRunner, create_output
        runner = OutputRunner(create_output("record", {{"path": {str(path)!r}, "size": (160, 90)}}, 30))
        runner.start().wait_open(10)
        for seq in range(20):
            runner.offer(Frame(seq, (seq + 1) / 30, time.monotonic(), np.full((36, 64, 3), 99, np.uint8),
                               np.zeros(1600, np.float32), 48000))
            time.sleep(1 / 30)
        raise KeyboardInterrupt  # uncaught, the runner never stopped
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert "KeyboardInterrupt" in proc.stderr and proc.returncode != 0
    info = read_video_info(path)  # the file was finished at exit, not lost
    assert info["n_frames"] >= 10 and abs(info["audio_duration"] - info["video_duration"]) <= 1 / 30
    assert len(list(read_frames(path))) == info["n_frames"]
    assert os.listdir(tmp_path) == ["crash.mp4"]


def test_unwritable_record_path_fails_in_open_with_one_line(tmp_path, caplog):
    # A missing folder is made (as for render -o); a "folder" that is a file cannot be.
    (tmp_path / "a file").write_text("not a folder")
    path = tmp_path / "a file" / "set.mp4"
    out = create_output("record", {"path": str(path), "size": (320, 180)}, engine_fps=30)
    runner = OutputRunner(out).start()
    assert not runner.wait_open(10)
    assert runner.failed.startswith(f"cannot write '{path}'")
    assert failures(caplog) == [f"output record failed: {runner.failed}; disabled"]
    assert not runner.offer(live_frame(0))
    assert runner.stop(5)
    assert os.listdir(tmp_path) == ["a file"]


def test_record_with_no_frames_reports_it_and_leaves_nothing(tmp_path, caplog):
    path = tmp_path / "empty.mp4"
    runner = OutputRunner(create_output("record", {"path": str(path), "size": (64, 36)}, 30)).start()
    assert runner.wait_open(10)
    assert runner.stop(10)
    assert "no frames were written" in runner.failed
    assert len(failures(caplog)) == 1
    assert os.listdir(tmp_path) == []


# -- VideoWriter: explicit pts and live audio ---------------------------------------------------------


def test_videowriter_pts_gaps_keep_later_frames_in_place(tmp_path):
    path = tmp_path / "gaps.mkv"
    with VideoWriter(path, 64, 36, 30) as w:
        for pts in (0, 1, 2, 10, 11):
            w.write(np.full((36, 64, 3), pts * 20, np.uint8), pts=pts)
        w.write(np.full((36, 64, 3), 240, np.uint8))  # None: right after the last
        with pytest.raises(ValueError, match="pts"):
            w.write(np.zeros((36, 64, 3), np.uint8), pts=5)  # not after the previous
        assert (w.n_frames, w.end_pts) == (6, 13)
    info = read_video_info(path)
    assert info["n_frames"] == 6 and abs(info["video_duration"] - 13 / 30) < 1e-3
    times = [round(t * 30) for t, _ in decoded_frame_times(path)]
    assert times == [0, 1, 2, 10, 11, 12]


@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_videowriter_live_audio_is_written_as_it_arrives(tmp_path, ext):
    path = tmp_path / f"live.{ext}"
    rate, fps = 48000, 25
    t = np.arange(rate * 2) / rate
    tone = (0.5 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    # ~1500 samples a block for 1920 a frame: mostly behind the video, caught up at the end
    sizes = np.random.default_rng(0).integers(0, 3000, 100)
    pos = 0
    with VideoWriter(path, 64, 36, fps, live_audio=1, audio_rate=rate, audio_bitrate=192_000) as w:
        for i in range(40):  # 40 frames = 1.6 s; audio arrives in odd blocks
            size = int(sizes[i])
            w.write_audio(tone[pos : pos + size])
            pos += size
            w.write(np.full((36, 64, 3), 100, np.uint8))
        w.write_audio(tone[pos:])  # more than the video: cut at its end
    info = read_video_info(path)
    audio, got_rate = read_audio(path)
    assert got_rate == rate and audio.shape == (round(1.6 * rate), 1)
    assert abs(info["audio_duration"] - 1.6) < 1e-3 and abs(info["video_duration"] - 1.6) < 1e-3
    if ext == "mkv":  # FLAC: the samples themselves come back
        np.testing.assert_allclose(audio[:, 0], tone[: audio.shape[0]], atol=1e-3)
    else:  # AAC at 192 kbit/s: the same samples within a small error, no gaps
        np.testing.assert_allclose(audio[2000:-2000, 0], tone[2000 : audio.shape[0] - 2000], atol=0.01)


def test_videowriter_live_audio_short_is_padded_and_stereo_works(tmp_path):
    path = tmp_path / "short.mkv"
    with VideoWriter(path, 64, 36, 10, live_audio=2, audio_rate=8000) as w:
        w.write_audio(np.full((4000, 2), 0.25, np.float32))  # 0.5 s for a 1 s video
        for _ in range(10):
            w.write(np.zeros((36, 64, 3), np.uint8))
    audio, rate = read_audio(path)
    assert audio.shape == (8000, 2)
    assert np.allclose(audio[:4000], 0.25, atol=1e-3) and np.allclose(audio[4000:], 0, atol=1e-3)


def test_videowriter_live_audio_errors(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        VideoWriter(tmp_path / "a.mp4", 64, 36, 30, audio=np.zeros(10, np.float32), live_audio=1)
    with pytest.raises(ValueError, match="live_audio"):
        VideoWriter(tmp_path / "a.mp4", 64, 36, 30, live_audio=3)
    with VideoWriter(tmp_path / "b.mp4", 64, 36, 30) as w:
        w.write(np.zeros((36, 64, 3), np.uint8))
        with pytest.raises(ValueError, match="live_audio"):
            w.write_audio(np.zeros(10, np.float32))
    with VideoWriter(tmp_path / "c.mp4", 64, 36, 30, live_audio=1) as w:
        with pytest.raises(ValueError, match="1-channel"):
            w.write_audio(np.zeros((10, 2), np.float32))
        with pytest.raises(ValueError, match="NaN"):
            w.write_audio(np.full(10, np.nan, np.float32))
        w.write(np.zeros((36, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="closed"):
        w.write_audio(np.zeros(10, np.float32))


# -- preview -------------------------------------------------------------------------------------------


def test_preview_needs_a_display():
    from synd.bridges.preview import display_problem

    assert display_problem({}, "linux").startswith("no display")
    assert display_problem({"QT_QPA_PLATFORM": "xcb"}, "linux").startswith("no display")
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") is None
    assert display_problem({"QT_QPA_PLATFORM": "xcb;offscreen"}, "linux") is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is None
    assert display_problem({}, "darwin") is None and display_problem({}, "win32") is None
    # a DISPLAY with no X server behind it (or without Qt's X libraries) is no display
    # either: Qt would abort the process instead of raising
    if HAVE_QT:
        assert display_problem({"DISPLAY": ":93"}, "linux") is not None


@pytest.mark.skipif(not HAVE_QT, reason="PyQt6 is not installed")
def test_preview_available_reports_no_display(monkeypatch):
    from synd.bridges.preview import PreviewOutput

    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert PreviewOutput.available().startswith("no display")
    with pytest.raises(OutputSpecError, match="output 'preview' is not available: no display"):
        parse_outputs("preview")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert PreviewOutput.available() is None


PREVIEW_SCRIPT = textwrap.dedent("""
    import json, os, signal, sys, threading, time
    import numpy as np
    from PyQt6.QtCore import Qt, QTimer
    from PyQt6.QtTest import QTest
    from PyQt6.QtWidgets import QApplication
    from synd.bridges.base import Frame, OutputRunner, create_output

    scenario = sys.argv[1]
    # Ctrl-C raises KeyboardInterrupt even where the test runner was started with SIGINT
    # ignored (a background job), as `synd` itself arranges.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app = QApplication(["test"])
    quits = []
    out = create_output("preview", {"size": (320, 180)}, engine_fps=30)
    out.on_quit = lambda: quits.append(time.monotonic())
    calls = []
    for method in ("open", "close"):
        def wrap(real=getattr(out, method), method=method):
            calls.append(method)
            return real()
        setattr(out, method, wrap)
    runner = OutputRunner(out)
    picture = {"rgb": np.full((36, 64, 3), (255, 0, 0), np.uint8)}
    results = {}
    done = threading.Event()

    def engine():
        seq = 0
        while not done.is_set():
            runner.offer(Frame(seq, seq / 30, time.monotonic(), picture["rgb"]))
            seq += 1
            time.sleep(1 / 30)
            if scenario == "stop" and seq == 15:
                results["stop_returned"] = runner.stop(10)
            if scenario == "sigint" and seq == 15:
                os.kill(os.getpid(), signal.SIGINT)

    def colour(img, x, y):
        c = img.pixelColor(x, y)
        return [c.red(), c.green(), c.blue()]

    def step1():
        w = out.window
        results["title"] = w.windowTitle()
        img = w.grab().toImage()
        results["size"] = [img.width(), img.height()]
        results["red"] = [colour(img, x, y) for x, y in ((160, 90), (3, 3), (316, 176))]
        picture["rgb"] = np.full((48, 48, 3), (0, 255, 0), np.uint8)  # square: side bars
        QTimer.singleShot(300, step2)

    def step2():
        w = out.window
        img = w.grab().toImage()
        results["green_bars"] = [colour(img, x, 90) for x in (5, 160, 314)]
        QTest.keyClick(w, Qt.Key.Key_F)
        results["fs_after_f"] = w.isFullScreen()
        QTimer.singleShot(200, step3)

    def step3():
        w = out.window
        img = w.grab().toImage()
        results["fs_size"] = [img.width(), img.height()]
        results["fs_centre"] = colour(img, img.width() // 2, img.height() // 2)
        QTest.keyClick(w, Qt.Key.Key_Escape)
        results["fs_after_esc"] = w.isFullScreen()
        QTest.mouseDClick(w, Qt.MouseButton.LeftButton)
        results["fs_after_dclick"] = w.isFullScreen()
        QTest.keyClick(w, Qt.Key.Key_Escape)
        results["fs_after_esc2"] = w.isFullScreen()
        results["quits_before_q"] = len(quits)
        QTest.keyClick(w, Qt.Key.Key_Q)

    if scenario == "ui":
        QTimer.singleShot(500, step1)
    QTimer.singleShot(20000, lambda: runner.stop(0))  # never hang the test
    feeder = threading.Thread(target=engine, daemon=True)
    feeder.start()
    try:
        runner.run_here()
        results["returned"] = "normally"
    except KeyboardInterrupt:
        results["returned"] = "KeyboardInterrupt"
    done.set()
    feeder.join(10)
    results["quits"] = len(quits)
    results["calls"] = calls
    results["window_left"] = out.window is not None
    stats = runner.stats()
    results["sent"], results["failed"], results["running"] = stats["sent"], stats["failed"], stats["running"]
    print("RESULT " + json.dumps(results))
""")


def run_preview(scenario: str) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.run(
        [sys.executable, "-c", PREVIEW_SCRIPT, scenario], env=env, capture_output=True, text=True, timeout=120
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


@pytest.mark.skipif(not HAVE_QT, reason="PyQt6 is not installed")
def test_preview_window_shows_frames_and_obeys_keys():
    r = run_preview("ui")
    assert r["title"] == "synd" and r["size"] == [320, 180]
    assert all(c[0] > 200 and c[1] < 50 and c[2] < 50 for c in r["red"]), r[
        "red"
    ]  # a red frame, a red window
    left, centre, right = r["green_bars"]  # a square frame in a 16:9 window: black bars
    assert max(left) < 20 and max(right) < 20, r["green_bars"]
    assert centre[1] > 200 and centre[0] < 50, r["green_bars"]
    assert r["fs_after_f"] is True and r["fs_size"] != [320, 180]
    assert r["fs_centre"][1] > 200, r["fs_centre"]
    assert r["fs_after_esc"] is False
    assert r["fs_after_dclick"] is True and r["fs_after_esc2"] is False
    assert r["quits_before_q"] == 0 and r["quits"] == 1  # Q asked the daemon to quit
    assert r["returned"] == "normally" and r["calls"] == ["open", "close"]
    assert not r["window_left"] and not r["running"] and r["failed"] is None and r["sent"] > 10


@pytest.mark.skipif(not HAVE_QT, reason="PyQt6 is not installed")
def test_preview_stops_from_another_thread_and_on_ctrl_c():
    r = run_preview("stop")
    assert r["stop_returned"] is True and r["returned"] == "normally"
    assert r["calls"] == ["open", "close"] and r["quits"] == 0 and not r["window_left"]
    r = run_preview("sigint")
    assert r["returned"] == "KeyboardInterrupt"
    assert r["calls"] == ["open", "close"] and not r["window_left"] and r["failed"] is None
