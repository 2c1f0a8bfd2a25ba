"""Tests for synd.video: real encodes read back with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from synd.video import (
    VideoError,
    VideoWriter,
    _frame_rate,
    codec_available,
    read_audio,
    read_frames,
    read_video_info,
)
from tests.helpers.tmpfs import mounted_tmpfs

W, H = 128, 72


def colour(i: int) -> np.ndarray:
    """A distinct, codec-friendly colour per frame index."""
    return np.array([(i * 37) % 200 + 28, (i * 91 + 60) % 200 + 28, (255 - i * 23) % 200 + 28], np.uint8)


def make_frame(i: int, width: int = W, height: int = H) -> np.ndarray:
    """Solid colour on the left, a horizontal grey gradient on the right."""
    frame = np.empty((height, width, 3), np.uint8)
    frame[:, : width // 2] = colour(i)
    ramp = np.linspace(16, 235, width - width // 2).astype(np.uint8)
    frame[:, width // 2 :] = ramp[None, :, None]
    return frame


def files_in(folder: Path) -> list[str]:
    """Everything in the folder, hidden temporary files included."""
    return sorted(os.listdir(folder))


def write_video(
    path: Path, n: int, fps: float, codec: str = "h264", audio=None, audio_rate=48000, **kw
) -> Path:
    with VideoWriter(path, W, H, fps, codec=codec, audio=audio, audio_rate=audio_rate, **kw) as writer:
        for i in range(n):
            writer.write(make_frame(i))
    return writer.path


def check_frames(path: Path, n: int, tol: float = 6.0) -> None:
    frames = list(read_frames(path))
    assert len(frames) == n
    for i, frame in enumerate(frames):
        assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
        err = np.abs(frame.astype(np.int16) - make_frame(i).astype(np.int16)).mean()
        assert err < tol, f"frame {i}: mean abs error {err:.2f}"


def test_h264_roundtrip_with_stereo_audio(tmp_path: Path) -> None:
    fps, n, rate = 25, 64, 48000
    t = np.arange(int(3 * rate)) / rate
    audio = np.zeros((t.size, 2), np.float32)
    # A tone burst starting exactly at frame 20 lets us check audio/video sync.
    burst = (t >= 20 / fps) & (t < 30 / fps)
    audio[burst, 0] = 0.5 * np.sin(2 * np.pi * 440 * t[burst])
    audio[burst, 1] = 0.25 * np.sin(2 * np.pi * 660 * t[burst])
    out = write_video(tmp_path / "clip.mp4", n, fps, audio=audio)

    assert out == tmp_path / "clip.mp4"
    assert files_in(tmp_path) == ["clip.mp4"]
    info = read_video_info(out)
    assert (info["width"], info["height"]) == (W, H)
    assert info["n_frames"] == n
    assert info["frame_rate"] == 25
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    assert info["audio_rate"] == rate and info["audio_channels"] == 2
    assert info["video_duration"] == pytest.approx(n / fps, abs=1e-3)
    assert abs(info["audio_duration"] - n / fps) < 1 / fps
    check_frames(out, n)

    decoded, got_rate = read_audio(out)
    assert got_rate == rate and decoded.shape[1] == 2
    assert abs(decoded.shape[0] / rate - n / fps) < 1 / fps
    loud = np.flatnonzero(np.abs(decoded[:, 0]) > 0.1)
    assert abs(loud[0] / rate - 20 / fps) < 1 / fps, "audio is out of sync with the video"
    assert abs(loud[-1] / rate - 30 / fps) < 1 / fps
    # Channels stay apart: left is louder than right, as written.
    assert np.abs(decoded[:, 0]).max() > 1.5 * np.abs(decoded[:, 1]).max()


@pytest.mark.parametrize(
    ("codec", "ext"),
    [("h264", ".mkv"), ("hevc", ".mp4"), ("av1", ".mkv"), ("av1", ".mp4"), ("prores", ".mov")],
)
def test_codecs_roundtrip(tmp_path: Path, codec: str, ext: str) -> None:
    if not codec_available(codec):
        pytest.skip(f"{codec} encoder not in this FFmpeg build")
    fps, n, rate = 29.97, 16, 44100
    audio = (0.3 * np.sin(2 * np.pi * 330 * np.arange(rate) / rate)).astype(np.float32)  # mono, 1 s
    out = write_video(tmp_path / f"c{ext}", n, fps, codec=codec, audio=audio, audio_rate=rate)
    info = read_video_info(out)
    expected = {"h264": "h264", "hevc": "hevc", "av1": ("av1", "libdav1d", "libaom-av1"), "prores": "prores"}
    assert info["video_codec"] in expected[codec]
    assert info["n_frames"] == n and (info["width"], info["height"]) == (W, H)
    assert info["frame_rate"] == Fraction(30000, 1001)
    assert info["audio_channels"] == 1
    assert abs(info["audio_duration"] - info["video_duration"]) < 1 / fps
    if codec == "prores":
        assert info["pix_fmt"] == "yuv422p10le"
    check_frames(out, n)
    assert files_in(tmp_path) == [f"c{ext}"]


@pytest.mark.parametrize("seconds", [0.3, 5.0])
def test_audio_is_trimmed_or_padded_to_video_length(tmp_path: Path, seconds: float) -> None:
    fps, n, rate = 24, 30, 48000
    audio = np.full((int(seconds * rate), 2), 0.2, np.float32)
    out = write_video(tmp_path / "a.mp4", n, fps, audio=audio, audio_rate=rate)
    info = read_video_info(out)
    assert abs(info["audio_duration"] - n / fps) < 1 / fps
    decoded, _ = read_audio(out)
    assert abs(decoded.shape[0] - n / fps * rate) < rate / fps
    if seconds < n / fps:  # the padding is silence
        assert np.abs(decoded[int(0.6 * rate) :]).max() < 0.01
    else:
        assert np.abs(decoded[int(0.6 * rate) : int(1.1 * rate)]).mean() > 0.1


def test_video_without_audio(tmp_path: Path) -> None:
    out = write_video(tmp_path / "silent.mp4", 8, 30)
    info = read_video_info(out)
    assert info["audio_codec"] is None and info["audio_duration"] is None
    assert info["n_frames"] == 8


@pytest.mark.parametrize(
    ("fps", "rate"),
    [
        (29.97, Fraction(30000, 1001)),
        (23.976, Fraction(24000, 1001)),
        (59.94, Fraction(60000, 1001)),
        (25, Fraction(25)),
        (12.5, Fraction(25, 2)),
        (30.0, Fraction(30)),
    ],
)
def test_frame_rate_is_exact(fps: float, rate: Fraction) -> None:
    assert _frame_rate(fps) == rate


@pytest.mark.parametrize(("width", "height"), [(127, 72), (128, 71), (0, 72)])
def test_bad_size_raises_before_creating_anything(tmp_path: Path, width: int, height: int) -> None:
    with pytest.raises(ValueError, match="even|positive"):
        VideoWriter(tmp_path / "odd.mp4", width, height, 30)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("x.avi", {}, "extension"),
        ("x.mp4", {"codec": "prores"}, "ProRes"),
        ("x.mp4", {"codec": "nope"}, "not available"),
        ("x.mp4", {"fps": 0}, "positive"),
        ("x.mp4", {"audio": np.zeros((10, 3), np.float32)}, "mono or stereo"),
        ("x.mp4", {"audio": np.full(10, np.nan, np.float32)}, "NaN"),
    ],
)
def test_bad_arguments(tmp_path: Path, name: str, kwargs: dict, match: str) -> None:
    args = {"fps": 30, **kwargs}
    with pytest.raises(ValueError, match=match):
        VideoWriter(tmp_path / name, W, H, **args)
    assert files_in(tmp_path) == []


def test_smaller_frames_are_upscaled_on_the_way_into_the_encoder(tmp_path: Path) -> None:
    small = np.zeros((H // 4, W // 4, 3), np.uint8)
    small[:, : W // 8] = (255, 0, 0)  # left half red, right half blue
    small[:, W // 8 :] = (0, 0, 255)
    with VideoWriter(tmp_path / "up.mp4", W, H, 30) as writer:
        for _ in range(3):
            writer.write(small)
    frames = list(read_frames(tmp_path / "up.mp4"))
    assert len(frames) == 3 and frames[0].shape == (H, W, 3)
    left, right = frames[0][:, : W // 2 - 8].astype(int), frames[0][:, W // 2 + 8 :].astype(int)
    assert np.abs(left - (255, 0, 0)).mean() < 8 and np.abs(right - (0, 0, 255)).mean() < 8


def test_frame_scaler_gives_packed_arrays_of_the_asked_size() -> None:
    from synd.video import FrameScaler

    rgb = np.zeros((9, 16, 3), np.uint8)
    rgb[..., 0] = 200
    bgra = FrameScaler(64, 36, "bgra").array(rgb)
    assert bgra.shape == (36, 64, 4)
    assert np.all(np.abs(bgra[..., 2].astype(int) - 200) <= 1) and np.all(bgra[..., 3] == 255)


@pytest.mark.parametrize(
    "pix_fmt, order", [("rgb24", (0, 1, 2)), ("bgr24", (2, 1, 0)), ("rgba", (0, 1, 2)), ("bgra", (2, 1, 0))]
)
def test_packed_arrays_have_the_right_channel_order_and_match_swscale(pix_fmt, order) -> None:
    """The packed formats are made by OpenCV, the others by swscale: both must agree."""
    from synd.video import FrameScaler

    y, x = np.mgrid[0:27, 0:48]
    rgb = np.stack([x * 5, y * 9, 255 - x * 5], axis=-1).astype(np.uint8)  # smooth ramps
    scaler = FrameScaler(128, 72, pix_fmt)
    packed = scaler.array(rgb)
    assert packed.shape == (72, 128, 3 if pix_fmt.endswith("24") else 4)
    if packed.shape[2] == 4:
        assert np.all(packed[..., 3] == 255)
    via_swscale = scaler.frame(rgb).to_ndarray(format="rgb24").astype(int)
    as_rgb = packed[..., list(order)].astype(int)
    assert np.abs(as_rgb - via_swscale).mean() < 2.0
    assert np.abs(as_rgb[..., 0] - as_rgb[..., 2]).mean() > 50  # red and blue differ


def test_bad_frames_are_rejected_and_writer_stays_usable(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "v.mp4", W, H, 30) as writer:
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((H, W), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((H, W, 3), np.float32))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((H, W, 4), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((0, W, 3), np.uint8))
        for i in range(4):
            writer.write(make_frame(i))
    assert read_video_info(tmp_path / "v.mp4")["n_frames"] == 4
    with pytest.raises(ValueError, match="closed"):
        writer.write(make_frame(0))


def test_exception_in_with_block_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(tmp_path / "out.mp4", W, H, 30, audio=np.zeros(4800, np.float32)) as writer:
            for i in range(10):
                writer.write(make_frame(i))
            assert any(name.endswith(".partial.mp4") for name in files_in(tmp_path))
            raise RuntimeError("boom")
    assert files_in(tmp_path) == []


def test_existing_destination_survives_failure_and_is_replaced_on_success(tmp_path: Path) -> None:
    dest = tmp_path / "out.mp4"
    dest.write_bytes(b"previous render")
    with pytest.raises(KeyError):
        with VideoWriter(dest, W, H, 30) as writer:
            writer.write(make_frame(0))
            raise KeyError("x")
    assert dest.read_bytes() == b"previous render"

    writer = VideoWriter(dest, W, H, 30)
    writer.write(make_frame(0))
    writer.abort()
    assert dest.read_bytes() == b"previous render"
    assert files_in(tmp_path) == ["out.mp4"]

    write_video(dest, 3, 30)
    assert read_video_info(dest)["n_frames"] == 3
    assert files_in(tmp_path) == ["out.mp4"]


def test_close_without_frames_is_an_error(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "empty.mp4", W, H, 30)
    with pytest.raises(VideoError, match="no frames"):
        writer.close()
    assert files_in(tmp_path) == []


def test_missing_folder_gives_one_line_video_error(tmp_path: Path) -> None:
    dest = tmp_path / "missing" / "out.mp4"
    with pytest.raises(VideoError) as info:
        VideoWriter(dest, W, H, 30)
    message = str(info.value)
    assert "\n" not in message and str(dest) in message
    assert "No such file or directory" in message


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 200 KiB tmpfs, unmounted afterwards; skips when mounting is not permitted."""
    with mounted_tmpfs(tmp_path / "tiny", "200k") as mount_point:
        yield mount_point


def test_disk_full_raises_video_error_and_cleans_up(tiny_disk: Path) -> None:
    dest = tiny_disk / "full.mp4"
    dest.write_bytes(b"old")
    rng = np.random.default_rng(0)
    # Noise does not compress: ~20 kB per frame overflows 200 KiB within a few dozen frames.
    with pytest.raises(VideoError) as info:
        with VideoWriter(
            dest, 256, 144, 30, audio=rng.uniform(-0.5, 0.5, 48000 * 4).astype(np.float32)
        ) as writer:
            for _ in range(120):
                writer.write(rng.integers(0, 256, (144, 256, 3), dtype=np.uint8))
    message = str(info.value)
    assert message == f"cannot write '{dest}': No space left on device"
    assert files_in(tiny_disk) == ["full.mp4"]
    assert dest.read_bytes() == b"old"


def test_close_and_abort_inside_with_block(tmp_path: Path) -> None:
    with VideoWriter(tmp_path / "a.mp4", W, H, 30) as writer:
        writer.write(make_frame(0))
        assert writer.close() == tmp_path / "a.mp4"
    assert writer.close() == tmp_path / "a.mp4"  # closing twice is harmless
    with VideoWriter(tmp_path / "b.mp4", W, H, 30) as writer:
        writer.write(make_frame(0))
        writer.abort()
    assert files_in(tmp_path) == ["a.mp4"]
    with pytest.raises(ValueError, match="aborted"):
        writer.close()


def test_a_live_writers_temporary_file_is_not_taken_for_an_orphan(tmp_path: Path) -> None:
    first = VideoWriter(tmp_path / "v.mp4", W, H, 30)
    first.write(make_frame(0))
    orphan = tmp_path / ".v.999999999-0000.partial.mp4"  # no such process
    orphan.write_bytes(b"left by a killed render")
    second = VideoWriter(tmp_path / "v.mp4", W, H, 30)
    assert not orphan.exists()
    assert len([p for p in tmp_path.iterdir() if "partial" in p.name]) == 2  # both live ones
    second.abort()
    first.write(make_frame(1))
    assert first.close().exists()


def test_a_folder_removed_while_writing_is_one_line_and_noticed_early(tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "videos"
    folder.mkdir()
    dest = folder / "v.mp4"
    writer = VideoWriter(dest, W, H, 30)
    writer.write(make_frame(0))
    shutil.rmtree(folder)
    with pytest.raises(VideoError) as info:
        for i in range(1, 100):  # noticed within a few dozen frames, not only at close()
            writer.write(make_frame(i))
    assert str(info.value) == f"cannot write '{dest}': folder '{folder}' was removed while writing"
    assert writer.n_frames < 64 and not folder.exists()
