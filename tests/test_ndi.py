"""The ndi output (bridges/ndi.py): its options and availability, and real NDI.

The end-to-end tests run the real sender (ndi-python) and an independent receiver in
another process (tests/helpers/ndi_receiver.py, on cyndilib: a different wrapper with its
own copy of the NDI runtime), everything inside a loopback-only network namespace
(``unshare -n``, driven by tests/helpers/ndi_driver.py), so nothing leaves the machine.
"""

from __future__ import annotations

import builtins
import importlib.util
import json
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from synd.audio import write_wav
from synd.bridges.base import (
    Frame,
    OutputRunner,
    OutputSpecError,
    create_output,
    output_status,
    parse_outputs,
)
from synd.bridges.ndi import MAX_NAME_BYTES, NdiOutput, check_source_name, frame_rate
from tests.helpers.audio import music_clip
from tests.helpers.ndi import drive, requires_namespace, unique

# -- no network ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fps, rational",
    [
        (30, (30, 1)),
        (29.97, (30000, 1001)),
        (59.94, (60000, 1001)),
        (60, (60, 1)),
        (23.976, (24000, 1001)),
        (25, (25, 1)),
        (24, (24, 1)),
        (50.0, (50, 1)),
        (119.88, (120000, 1001)),
        (14.985, (15000, 1001)),
        (12.5, (25, 2)),
        (7.3, (73, 10)),
        (1 / 3, (1, 3)),
        (0.5, (1, 2)),
    ],
)
def test_frame_rates_are_exact_rationals(fps, rational):
    assert frame_rate(fps) == rational
    assert NdiOutput(size=(64, 36), fps=fps).frame_rate == rational


def test_generic_frame_rates_are_close_and_bad_ones_are_refused():
    for fps in (1.0, 9.99, 33.3333, 47.952, 72.0, 100.0, 143.7, 240.0):
        n, d = frame_rate(fps)
        assert isinstance(n, int) and isinstance(d, int) and 0 < d <= 1001 and n < 2**31
        assert abs(n / d - fps) < 1e-3 * fps
    for bad in (0, -30, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            frame_rate(bad)


def test_source_names_that_ndi_publishes_as_given_are_accepted():
    assert check_source_name("  Stage Left ") == "Stage Left"
    assert check_source_name("Bühne (links) #2 — 東京") == "Bühne (links) #2 — 東京"
    longest = "é" * (MAX_NAME_BYTES // 2)  # two bytes each in UTF-8
    assert check_source_name(longest) == longest
    out = NdiOutput(source_name=" Main ")
    assert out.source_name == "Main" and out.size == (1280, 720)
    assert NdiOutput().source_name == "synd"


@pytest.mark.parametrize(
    "name, words",
    [
        ("", "empty"),
        ("   ", "empty"),
        ("a\tb", "control"),
        ("two\nlines", "control"),
        ("zero\u200bwidth", "invisible"),
        ("bell\x07", "control"),
        ("para\u2029graph", "control"),
        ("Stage:Left", ":"),
        ("a/b", "/"),
        ('say "hi"?', '? "'),
        ("a<b>|c*", "* < > |"),
        ("x" * (MAX_NAME_BYTES + 1), "bytes"),
        ("é" * (MAX_NAME_BYTES // 2 + 1), "bytes"),
        (42, "text"),
    ],
)
def test_bad_source_names_are_refused_in_one_line(name, words):
    with pytest.raises(ValueError) as err:
        check_source_name(name)
    message = str(err.value)
    assert "\n" not in message and len(message) < 200
    assert words in message
    with pytest.raises(ValueError):
        NdiOutput(source_name=name)  # the daemon's --ndi-name path is checked too


def test_output_specs_give_size_rate_and_name():
    parsed = parse_outputs("ndi@1920x1080@30:Stage Left", check_available=False)
    assert parsed == [("ndi", {"size": (1920, 1080), "fps": 30.0, "source_name": "Stage Left"})]
    out = create_output(*parsed[0], engine_fps=60.0)
    assert isinstance(out, NdiOutput)
    assert (out.size, out.fps, out.engine_fps) == ((1920, 1080), 30.0, 60.0)
    assert (out.source_name, out.frame_rate) == ("Stage Left", (30, 1))
    assert parse_outputs("ndi@29.97:  Side  ", check_available=False) == [
        ("ndi", {"fps": 29.97, "source_name": "Side"})
    ]
    assert parse_outputs("ndi", check_available=False) == [("ndi", {})]
    with pytest.raises(OutputSpecError) as err:
        parse_outputs("ndi@640x360:Stage|Left", check_available=False)
    assert "\n" not in str(err.value) and "|" in str(err.value)
    with pytest.raises(OutputSpecError):
        parse_outputs("ndi:", check_available=False)


def _without_ndilib(monkeypatch, error: ImportError) -> None:
    """Make `import NDIlib` fail with `error`, as it does where it is missing."""
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "NDIlib" or name.startswith("NDIlib."):
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "NDIlib", raising=False)
    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_available_says_why_not_in_one_line(monkeypatch):
    missing = ModuleNotFoundError("No module named 'NDIlib'", name="NDIlib")
    _without_ndilib(monkeypatch, missing)
    reason = "Python module 'NDIlib' is not installed (pip install 'synethesia[ndi]')"
    assert NdiOutput.available() == reason
    assert output_status()["ndi"] == reason  # what `synd info` lists
    with pytest.raises(OutputSpecError, match="not available: Python module 'NDIlib'"):
        parse_outputs("ndi")
    # open() fails with the same reason; close() afterwards is harmless
    out = NdiOutput(size=(64, 36))
    runner = OutputRunner(out).start()
    assert not runner.wait_open(5)
    assert runner.failed == f"NDI cannot start: {reason}"
    assert runner.stop(5)

    avahi = ImportError("libavahi-common.so.3: cannot open shared object file: No such file or directory")
    _without_ndilib(monkeypatch, avahi)
    assert NdiOutput.available() == (
        "the NDI runtime needs the system library libavahi-common.so.3 (apt install libavahi-client3)"
    )
    odd = ImportError("libfoo.so.7: cannot open shared object file: No such file or directory")
    _without_ndilib(monkeypatch, odd)
    assert "libfoo.so.7" in NdiOutput.available()
    _without_ndilib(monkeypatch, ImportError("undefined symbol: NDIlib_send_create\nmore"))
    assert NdiOutput.available() == (
        "Python module 'NDIlib' cannot load: undefined symbol: NDIlib_send_create more"
    )


class FakeNDIlib(types.ModuleType):
    """Records what NdiOutput hands the SDK, and what NDI could still read at that time."""

    FOURCC_VIDEO_TYPE_BGRA = "BGRA"
    FRAME_FORMAT_TYPE_PROGRESSIVE = "progressive"

    def __init__(self, create_fails=False):
        super().__init__("NDIlib")
        self.calls: list[str] = []
        self.sent: list[dict] = []
        self.create_fails = create_fails
        self.SendCreate = lambda **kw: kw
        outer = self

        class VideoFrameV2:
            def __init__(self):
                self._data = None

            @property
            def data(self):
                return self._data

            @data.setter
            def data(self, array):  # like the binding: keeps a raw pointer only
                outer.pointer_target = array
                self._data = array.__array_interface__["data"][0]
                self.yres, self.xres = array.shape[:2]
                self.line_stride_in_bytes = array.strides[0]

        self.VideoFrameV2 = VideoFrameV2

    def initialize(self):
        self.calls.append("initialize")
        return True

    def destroy(self):
        self.calls.append("destroy")

    def send_create(self, settings):
        self.calls.append("send_create")
        self.settings = settings
        return None if self.create_fails else object()

    def send_send_video_async_v2(self, sender, video):
        self.calls.append("send")
        array = self.pointer_target
        self.sent.append(
            {
                "array": array,
                "pointer": video.data,
                "xres": video.xres,
                "yres": video.yres,
                "stride": video.line_stride_in_bytes,
                "fourcc": video.FourCC,
                "rate": (video.frame_rate_N, video.frame_rate_D),
                "timecode": video.timecode,
                "aspect": video.picture_aspect_ratio,
                "format": video.frame_format_type,
            }
        )

    def send_get_no_connections(self, sender, timeout):
        return 0

    def send_destroy(self, sender):
        self.calls.append("send_destroy")


def test_frames_go_out_as_the_sdk_needs_them(monkeypatch):
    fake = FakeNDIlib()
    monkeypatch.setitem(sys.modules, "NDIlib", fake)
    out = NdiOutput(size=(160, 90), fps=29.97, source_name="Stage Left")
    out.open()
    assert fake.settings == {"p_ndi_name": "Stage Left", "clock_video": False, "clock_audio": False}
    rng = np.random.default_rng(0)
    for seq in range(3):
        rgb = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
        out.send(Frame(seq=seq, audio_time=12.3456789 + seq / 30, captured_at=0.0, rgb=rgb))
        sent = fake.sent[-1]
        bgra = sent["array"]
        # the array NDI reads is the one this output keeps alive until the next send
        assert out._in_flight is bgra and sent["pointer"] == bgra.__array_interface__["data"][0]
        assert bgra.shape == (90, 160, 4) and bgra.dtype == np.uint8 and bgra.flags.c_contiguous
        assert (bgra[..., 3] == 255).all()
        expected = out.pixels(Frame(seq=seq, audio_time=0, captured_at=0, rgb=rgb))
        np.testing.assert_array_equal(bgra, expected)
        assert (sent["xres"], sent["yres"], sent["stride"]) == (160, 90, 640)
        assert sent["fourcc"] == "BGRA" and sent["format"] == "progressive"
        assert sent["rate"] == (30000, 1001) and sent["aspect"] == pytest.approx(16 / 9)
        assert sent["timecode"] == round((12.3456789 + seq / 30) * 1e7)
    assert len({id(s["array"]) for s in fake.sent}) == 3  # a fresh array for every frame
    out.close()
    assert fake.calls == ["initialize", "send_create", "send", "send", "send", "send_destroy", "destroy"]
    assert out._in_flight is None and out.connections() == 0


@pytest.mark.skipif(importlib.util.find_spec("NDIlib") is None, reason="ndi-python is not installed")
def test_the_binding_reads_our_array_in_place():
    """Why send() keeps the previous array alive and hands over only contiguous uint8:
    ndi-python's VideoFrameV2.data keeps a bare pointer into the array it is given
    (into a temporary copy, freed at once, for any other array). No sender is made, so
    no network is involved."""
    import NDIlib

    video = NDIlib.VideoFrameV2()
    pixels = np.zeros((90, 160, 4), np.uint8)
    video.data = pixels
    assert (video.xres, video.yres, video.line_stride_in_bytes) == (160, 90, 640)
    pixels[5, 7] = (1, 2, 3, 4)
    assert tuple(video.data[5, 7]) == (1, 2, 3, 4)  # NDI reads our memory, not a copy
    video.data = np.zeros((1, 1, 4), np.uint8)  # let go of `pixels` before it is freed


def test_a_sender_that_cannot_be_created_fails_in_one_line_and_closes_once(monkeypatch):
    fake = FakeNDIlib(create_fails=True)
    monkeypatch.setitem(sys.modules, "NDIlib", fake)
    runner = OutputRunner(NdiOutput(size=(64, 36), source_name="Taken")).start()
    assert not runner.wait_open(5)
    assert runner.failed == (
        "NDI sender 'Taken' could not be created (is another NDI source on this machine called that?)"
    )
    assert runner.stop(5)
    assert fake.calls == ["initialize", "send_create", "destroy"]


# -- real NDI in a loopback-only network namespace -----------------------------------------------


@pytest.fixture
def song(tmp_path) -> Path:
    path = tmp_path / "song.wav"
    write_wav(path, music_clip(5, seconds=4.0), 24000)
    return path


@requires_namespace
def test_synd_run_is_received_by_an_independent_receiver(tmp_path, song):
    name = unique("Stage Left")
    result = drive(
        "cli",
        tmp_path,
        "--audio",
        str(song),
        "--name",
        name,
        "--size",
        "320x180",
        "--fps",
        "30",
        "--seconds",
        "4",
    )
    got = result["received"]
    log = result["synd_log"]
    assert got["returncode"] == 0, got
    assert got["found"]["source"].endswith(f"({name})"), got["found"]
    assert f"as NDI source '{name}'" in log
    assert got["sizes"] == [[320, 180]] and got["fourccs"] == ["BGRA"]
    assert got["frame_rates"] == [[30, 1]]
    assert got["alpha_min"] == got["alpha_max"] == 255
    assert got["timecodes_monotonic"]
    # ~30 fps arrive (measured 30.3 here); a shared 2-core machine gets a wide margin
    assert got["seconds"] > 3.0 and got["rate"] >= 15.0, got
    assert got["frames"] >= 15 * 3
    assert result["synd_alive_while_watched"] and result["synd_returncode"] == 0, log
    assert "failed" not in log and "stopped after" in log
    # python -m synd.bridges.ndi_watch (ndi-python's receiver) sees the same source.
    watch = result["watch"]
    assert watch["returncode"] == 0, watch
    seen = json.loads(watch["stdout"].strip().splitlines()[-1])
    assert seen["source"].endswith(f"({name})") and seen["size"] == [320, 180]
    assert seen["frames"] >= 20 and seen["fps"] >= 15.0, seen


def bgra_error(received: np.ndarray, expected: np.ndarray) -> float:
    """Mean absolute difference of the colour channels."""
    return float(np.abs(received[..., :3].astype(np.int16) - expected[..., :3]).mean())


@requires_namespace
def test_received_pictures_are_the_engine_frames_of_the_same_audio_time(tmp_path, song):
    result = drive(
        "content",
        tmp_path,
        "--audio",
        str(song),
        "--name",
        unique("Content"),
        "--size",
        "320x180",
        "--fps",
        "30",
        "--seconds",
        "3",
        "--max-save",
        "40",
        "--format",
        "uyva",
    )
    got = result["received"]
    assert got["fourccs"] == ["UYVA"] and got["sizes"] == [[320, 180]]
    assert got["alpha_min"] == got["alpha_max"] == 255  # the alpha plane, exactly
    assert result["unmatched"] == 0, "a received timecode is no engine frame's audio time"
    received = np.load(result["dir"] / "received.npz")
    engine = np.load(result["dir"] / "engine.npz")
    n = len(received["frames"])
    assert n >= 20 and result["matched"] == n
    np.testing.assert_array_equal(received["timecodes"], engine["timecodes"])
    assert (np.diff(engine["seqs"]) >= 1).all()
    # What the engine painted, scaled to the NDI size the way the output scales it.
    ndi = NdiOutput(size=(320, 180), fps=30)
    expected = [
        ndi.pixels(Frame(seq=int(s), audio_time=0.0, captured_at=0.0, rgb=rgb))
        for s, rgb in zip(engine["seqs"], engine["rgb"])
    ]
    frames = received["frames"]
    errors = np.array([[bgra_error(frames[i], expected[j]) for j in range(n)] for i in range(n)])
    matched = np.diag(errors)
    # SpeedHQ 4:2:2 on these saturated pictures: ~4 on average (measured 4.0, worst
    # frame 5.1); a received frame compared with an engine frame ~0.7 s away: ~30.
    assert matched.mean() < 6.0 and matched.max() < 8.0, matched.round(2)
    shifted = np.array([errors[i, (i + n // 2) % n] for i in range(n)])
    assert shifted.mean() > 6.0 and shifted.mean() > 3 * matched.mean(), shifted.round(2)
    # each received frame looks most like the engine frame with its own timecode
    assert (errors.argmin(axis=1) == np.arange(n)).mean() >= 0.8, errors.argmin(axis=1)


@requires_namespace
def test_a_receiver_leaving_and_coming_back_does_not_disturb_the_engine(tmp_path, song):
    result = drive(
        "reconnect",
        tmp_path,
        "--audio",
        str(song),
        "--name",
        unique("Reconnect"),
        "--size",
        "320x180",
        "--fps",
        "30",
        "--seconds",
        "2.5",
        "--gap",
        "1.5",
    )
    phases, first, second = result["phases"], result["first"], result["second"]
    assert first["frames"] > 0 and second["frames"] > 0
    assert first["left"], "the sender still counted the first receiver after it exited"
    assert [
        phases[p]["connections"] for p in ("first_watching", "first_gone", "nobody", "second_watching")
    ] == [1, 0, 0, 1]
    for snap in phases.values():  # the output is never disabled
        assert snap["failed"] is None and snap["running"], snap
    assert result["engine"]["error"] is None and result["ndi_stats"]["failed"] is None
    # The engine keeps its frame rate and drops nothing while receivers come and go.
    order = ["first_watching", "first_gone", "nobody", "second_watching", "second_gone"]
    for a, b in zip(order, order[1:]):
        span = phases[b]["t"] - phases[a]["t"]
        if span >= 1.0:
            fps = (phases[b]["frames"] - phases[a]["frames"]) / span
            assert fps >= 15.0, (a, b, fps)
    # The output's own mailbox never overflows: the sender is never busy when a frame comes.
    assert phases["second_gone"]["output_dropped"] == phases["first_watching"]["output_dropped"]
    # The engine drops nothing on an idle machine. On a busy one (other jobs, and here two
    # receiver processes starting on the same two cores), the CPU it is starved of costs a
    # few frames whatever the output does: then at most 2 % of the frames of the span.
    dropped = phases["second_gone"]["dropped"] - phases["first_watching"]["dropped"]
    painted = phases["second_gone"]["frames"] - phases["first_watching"]["frames"]
    busy = os.getloadavg()[0] > 0.75 * (os.cpu_count() or 1)
    assert dropped <= (0.02 * painted if busy else 0), (dropped, painted, busy, phases)
    # and the new receiver gets frames at the rate again
    assert second["sizes"] == [[320, 180]] and second["rate"] >= 15.0, second
    assert second["frames"] >= 15 * 2
