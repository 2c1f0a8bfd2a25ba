"""The flash guard (synd.flash): no screen gets more than 3 flashes a second.

Guarded streams are checked with the standard's rule (`FlashCounter`, as the judge
counts), in memory and after encoding to a real video read back; content the rule
allows must pass bit for bit. Then the real `synd run` steered over OSC by liblo's
`oscsend`, and `synd render` of a model made to strobe.
"""

import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from synd.audio import write_wav
from synd.flash import FlashCounter, FlashGuard
from synd.judge import judge_video
from synd.video import VideoWriter, read_frames

FPS = 30
H, W = 216, 384
N = 300
SYND = [sys.executable, "-m", "synd"]


def solid(value) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def square(hz: float, on, off=0, n: int = N, patch: float | None = None):
    """A square wave between two colours at `hz`; only in a centred patch covering the
    share `patch` of the screen if given (the rest mid-grey)."""
    frames = []
    for i in range(n):
        colour = on if int(i * 2 * hz / FPS) % 2 else off
        if patch is None:
            frames.append(solid(colour))
        else:
            frame = solid(90)
            side = np.sqrt(patch)
            ph, pw = int(H * side), int(W * side)
            frame[(H - ph) // 2 : (H - ph) // 2 + ph, (W - pw) // 2 : (W - pw) // 2 + pw] = colour
            frames.append(frame)
    return frames


def flashes(frames) -> tuple[float, int]:
    """(most flashes in any second over a quarter of the screen, hazardous frames)."""
    counter = FlashCounter(FPS)
    readings = [counter.push(f) for f in frames]
    return max(r.flashes for r in readings), sum(r.hazard for r in readings)


def guarded(frames, enabled=True):
    guard = FlashGuard(FPS, enabled=enabled)
    return [guard(f) for f in frames], guard


@pytest.mark.parametrize(
    "name, frames",
    [
        ("10 Hz black/white", square(10, 255)),
        ("5 Hz saturated red", square(5, (200, 0, 0))),
        ("15 Hz between two greys", square(15, 200, 60)),
    ],
)
def test_a_strobe_is_cut_to_at_most_3_flashes_a_second(name, frames):
    assert flashes(frames)[1] > 200, "the unguarded stream must be a hazard"
    out, guard = guarded(frames)
    most, hazardous = flashes(out)
    assert hazardous == 0 and most <= 3, name
    assert guard.changed > 0
    off, _ = guarded(frames, enabled=False)
    assert flashes(off)[1] > 200  # turned off, it changes nothing


@pytest.mark.parametrize(
    "name, frames",
    [
        ("2 Hz full-screen flash", square(2, 255)),
        ("10 Hz patch on 15 % of the screen", square(10, 255, patch=0.15)),
        ("slow fade", [solid(int(255 * i / (N - 1))) for i in range(N)]),
        (
            "moving texture",
            [
                np.roll(
                    np.tile(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], (H, 1, 3)), 3 * i, axis=1
                )
                for i in range(N)
            ],
        ),
    ],
)
def test_content_the_rule_allows_passes_bit_for_bit(name, frames):
    out, guard = guarded(frames)
    assert guard.changed == 0, name
    assert all(o is f for o, f in zip(out, frames))


def test_no_stream_gets_past_the_guard(tmp_path):
    """Adversarial streams: random brightness jumps every frame, full screen and in
    halves, random red flashes. Whatever comes in, what goes out is no hazard."""
    rng = np.random.default_rng(0)
    for trial in range(4):
        frames = []
        for _ in range(N):
            frame = solid(int(rng.integers(0, 256)))
            if trial % 2:
                frame[:, : W // 2] = rng.integers(0, 256, 3)
            if trial >= 2 and rng.random() < 0.5:
                frame[H // 3 :] = (int(rng.integers(100, 256)), 0, 0)
            frames.append(frame)
        assert flashes(frames)[1] > 0
        out, _ = guarded(frames)
        assert flashes(out)[1] == 0, trial


def test_a_guarded_strobe_stays_safe_after_scaling_and_encoding(tmp_path):
    """The guard works at the painted size; the file is scaled and H.264-encoded."""
    out, _ = guarded(square(10, 255))
    video = tmp_path / "guarded.mp4"
    with VideoWriter(video, 640, 360, FPS, crf=23, preset="ultrafast") as writer:
        for f in out:
            writer.write(f)
    assert flashes(list(read_frames(video)))[1] == 0


def test_a_frame_size_change_keeps_the_guard_counting():
    guard = FlashGuard(FPS)
    frames = square(10, 255, n=120)
    out = [
        guard(f if i < 60 else np.ascontiguousarray(np.repeat(f, 2, 0)[:, :W])) for i, f in enumerate(frames)
    ]
    counter = FlashCounter(FPS)
    assert not any(counter.push(o).hazard for o in out)


# -- the real programs -------------------------------------------------------------------------


def strobing_model(path):
    """A tiny model whose picture is the negative of the picture before: with feedback,
    it flips between two pictures every frame (a 15 Hz full-screen strobe)."""
    from tests.helpers.models import make_tiny_bundle

    bundle = make_tiny_bundle()
    to_rgb = bundle.generator.to_rgb
    with torch.no_grad():
        to_rgb.weight.zero_()
        to_rgb.bias.zero_()
        skip = to_rgb.weight.shape[1] - 6  # the last six inputs are base * 2 - 1 and coords
        for c in range(3):
            to_rgb.weight[c, skip + c, 1, 1] = -12.0
    bundle.save(path)
    return path


def test_synd_render_of_a_strobing_model_has_no_hazard_unless_the_guard_is_off(tmp_path):
    model = strobing_model(tmp_path / "strobe.safetensors")
    song = tmp_path / "song.wav"
    t = np.arange(8 * 24000) / 24000
    write_wav(song, (0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32), 24000)
    results = {}
    for guard in ("on", "off"):
        video = tmp_path / f"{guard}.mp4"
        proc = subprocess.run(
            [
                *SYND,
                "render",
                str(song),
                "--model",
                str(model),
                "-o",
                str(video),
                "--size",
                "320x180",
                "--set",
                "look.feedback=0.99",
                "--flash-guard",
                guard,
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        results[guard] = (judge_video(video).numbers, proc.stderr)
    on, log_on = results["on"]
    off, log_off = results["off"]
    assert off["flash_hazard_s"] > 6 and off["flashes_max"] >= 10
    assert "flash guard off" in log_off
    assert on["flash_hazard_s"] == 0 and 2 <= on["flashes_max"] <= 3  # limited, not frozen
    assert "frames limited by the flash guard" in log_on


def _status_reply(port: int, timeout: float = 60.0) -> list:
    """Ask synd's OSC server for /synd/status until it answers (python-osc client)."""
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    query = OscMessageBuilder(address="/synd/status").build().dgram
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            s.sendto(query, ("127.0.0.1", port))
            try:
                return OscMessage(s.recv(65536)).params
            except TimeoutError:
                continue
    raise AssertionError("synd run never answered /synd/status")


def _show_with_blackout_strobe(tmp_path, guard: str) -> tuple[list, str, list]:
    """synd run on a looping song, blackout toggled 10 times a second and beat cuts
    hammered over OSC (liblo's oscsend) for 5 s; the recording's frames, stderr, and
    the last status."""
    from tests.helpers.osc import free_udp_port, oscsend

    song = tmp_path / "song.wav"
    t = np.arange(4 * 48000) / 48000
    beat = (np.sin(2 * np.pi * 110 * t) * np.exp(-((t * 2) % 1.0) * 6) * 0.6).astype(np.float32)
    write_wav(song, beat, 48000)
    port = free_udp_port()
    video = tmp_path / f"show-{guard}.mp4"
    proc = subprocess.Popen(
        [
            *SYND,
            "run",
            "--input",
            str(song),
            "--loop",
            "--output",
            f"record:{video}",
            "--size",
            "320x180",
            "--osc",
            f"127.0.0.1:{port}",
            "--flash-guard",
            guard,
            "--midi",
            "off",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _status_reply(port)
        oscsend(port, "/synd/model/b", "s", "tide")
        began = time.monotonic()
        for k in range(50):
            oscsend(port, "/synd/blackout/toggle")
            if k % 3 == 0:
                oscsend(port, "/synd/cut")
            time.sleep(max(0.0, began + 0.1 * (k + 1) - time.monotonic()))
        status = _status_reply(port, timeout=10)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return list(read_frames(video)), err, status


@pytest.mark.skipif(not shutil.which("oscsend"), reason="liblo-tools (oscsend) not installed")
def test_synd_run_with_blackout_toggled_10_times_a_second_records_no_hazard(tmp_path):
    frames, err, status = _show_with_blackout_strobe(tmp_path, "on")
    dark = sum(f.mean() < 3 for f in frames)
    assert 0 < dark < len(frames)  # blackout did reach the screen
    most, hazardous = flashes_at(frames, fps=30)
    assert hazardous == 0 and most <= 3
    assert status[7] > 0  # /synd/status counts the frames the guard limited
    # The same show without the guard is a strobe: the test can fail.
    frames, err, _ = _show_with_blackout_strobe(tmp_path, "off")
    assert "flash guard off" in err
    assert flashes_at(frames, fps=30)[1] > 0


def flashes_at(frames, fps):
    counter = FlashCounter(fps)
    readings = [counter.push(f) for f in frames]
    return max(r.flashes for r in readings), sum(r.hazard for r in readings)
