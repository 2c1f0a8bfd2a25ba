"""`synd render`: real encoded videos read back with PyAV, interruptions, several songs."""

import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from synd.audio import load_audio, write_wav
from synd.features import FeatureExtractor
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.presets import Look
from synd.render import RenderOptions, output_paths, render_song, safe_stem
from synd.sizes import GENERATION_SHORT_SIDE, generation_size
from synd.video import read_audio, read_frames, read_video_info
from tests.helpers.audio import music_clip

SYND = [sys.executable, "-m", "synd"]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


def test_render_writes_video_with_stereo_audio_of_equal_length(tiny_bundle, tmp_path):
    song = tmp_path / "song.wav"
    clip = music_clip(5, seconds=2.0)
    write_wav(song, np.stack([clip, clip * 0.5], axis=1), 24000)
    result = render_song(
        song,
        tmp_path / "song.mp4",
        tiny_bundle,
        Look(),
        RenderOptions(size=(160, 96), fps=24, progress=False),
    )
    info = read_video_info(result.path)
    assert (info["width"], info["height"]) == (160, 96)
    assert info["n_frames"] == result.frames == 48
    assert info["audio_channels"] == 2 and info["audio_codec"] == "aac"
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 24
    assert abs(info["video_duration"] - 2.0) <= 1 / 24
    audio, rate = read_audio(result.path)
    level = np.sqrt((audio[rate // 4 : -rate // 4] ** 2).mean(axis=0))
    assert 1.5 < level[0] / level[1] < 2.5  # left and right kept apart
    assert leftovers(tmp_path) == []


def test_render_shows_the_frame_loop(tiny_bundle, tmp_path):
    """The video's frames are the shared frame loop's frames (up to encoding loss)."""
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(6, seconds=1.0), 24000)
    look = Look(feedback=0.9)
    result = render_song(
        song, tmp_path / "v.mp4", tiny_bundle, look, RenderOptions(size=(128, 128), fps=30, progress=False)
    )
    feats = FeatureExtractor(tiny_bundle.features).offline(load_audio(song, 24000))
    loop = FrameLoop(tiny_bundle, 128, 128, look=look)
    expected = [to_rgb_uint8(f).astype(np.float32) for f in loop.run(feats)]
    decoded = [f.astype(np.float32) for f in read_frames(result.path)]
    assert len(decoded) == len(expected)
    errors = [np.abs(a - b).mean() for a, b in zip(decoded, expected)]
    assert max(errors) < 6.0  # H.264 at crf 20 on 8-bit pixels


def test_render_is_deterministic_and_the_seed_matters(tiny_bundle, tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(7, seconds=1.0), 24000)
    opts = RenderOptions(size=(96, 64), fps=30, progress=False, seed=3)
    videos = [
        render_song(song, tmp_path / f"{name}.mp4", tiny_bundle, Look(), o).path
        for name, o in (("a", opts), ("b", opts), ("c", RenderOptions(**{**opts.__dict__, "seed": 4})))
    ]
    a, b, c = ([f for f in read_frames(v)] for v in videos)
    assert len(a) == len(b) == 30
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.mean([np.abs(x.astype(int) - z).mean() for x, z in zip(a, c)]) > 1.0


def test_start_and_duration_pick_the_excerpt(tiny_bundle, tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(8, seconds=3.0), 24000)
    result = render_song(
        song,
        tmp_path / "part.mkv",
        tiny_bundle,
        Look(),
        RenderOptions(size=(64, 64), fps=25, start=1.0, duration=1.2, progress=False),
    )
    info = read_video_info(result.path)
    assert info["format"].startswith("matroska") and info["n_frames"] == 30
    audio, rate = read_audio(result.path)
    original = load_audio(song, rate, start=1.0, duration=1.2)
    n = min(len(original), len(audio))
    assert np.corrcoef(audio[:n, 0], original[:n])[0, 1] > 0.99  # FLAC in Matroska: lossless


def test_generation_size_keeps_aspect_and_native_scale():
    assert generation_size(1280, 720) == (384, 216)
    assert generation_size(1920, 1080) == (384, 216)
    assert generation_size(720, 1280) == (216, 384)
    assert generation_size(1280, 720, short=256) == (456, 256)
    assert GENERATION_SHORT_SIDE == 216
    assert generation_size(128, 96) == (128, 96)
    assert generation_size(1920, 1080, short=180) == (312, 176)


def test_output_paths_beside_songs_in_a_folder_and_without_collisions(tmp_path):
    songs = [tmp_path / "a" / "x.flac", tmp_path / "b" / "x.wav", tmp_path / "clip.mp4"]
    assert output_paths(songs[:1], None) == [tmp_path / "a" / "x.mp4"]
    assert output_paths(songs[2:], None) == [tmp_path / "clip.synd.mp4"]  # never the song itself
    out = tmp_path / "videos"
    assert [p.name for p in output_paths(songs, out)] == ["x.mp4", "x.synd.mp4", "clip.mp4"]
    assert output_paths(songs[:1], out / "one.mov") == [out / "one.mov"]
    assert output_paths(songs[:1], tmp_path, codec="prores") == [tmp_path / "x.mov"]
    with pytest.raises(ValueError, match="unknown video type"):
        output_paths(songs[:1], tmp_path / "v.avi")
    assert safe_stem('a:b/c*"d"?') == "a_b_c_d_"
    assert safe_stem("...") == "video"


def _tiny_model(tmp_path, tiny_bundle) -> Path:
    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    return model


def test_several_songs_in_one_call_and_a_bad_one_does_not_stop_the_rest(tmp_path, tiny_bundle):
    model = _tiny_model(tmp_path, tiny_bundle)
    songs = []
    for k in range(2):
        songs.append(tmp_path / f"song {k}.wav")
        write_wav(songs[-1], music_clip(k, seconds=1.0), 24000)
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio at all")
    out = tmp_path / "videos"
    proc = subprocess.run(
        [
            *SYND,
            "render",
            str(songs[0]),
            str(broken),
            str(songs[1]),
            "--model",
            str(model),
            "--size",
            "64x48",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "broken.mp3" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["song 0.mp4", "song 1.mp4"]
    for k in range(2):
        info = read_video_info(out / f"song {k}.mp4")
        assert (info["width"], info["height"], info["n_frames"]) == (64, 48, 30)
        assert info["audio_duration"] is not None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_render_leaves_nothing_at_the_destination(tmp_path, tiny_bundle, signum):
    model = _tiny_model(tmp_path, tiny_bundle)
    song = tmp_path / "long.wav"
    write_wav(song, np.tile(music_clip(3, seconds=6.0), 20), 24000)  # two minutes
    out = tmp_path / "long.mp4"
    out.write_bytes(b"an older video")  # must survive untouched
    proc = subprocess.Popen(
        [*SYND, "render", str(song), "--model", str(model), "--size", "320x240", "-o", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert leftovers(tmp_path), "the render never started writing"
    time.sleep(0.5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert out.read_bytes() == b"an older video"
    assert leftovers(tmp_path) == []


def _limit_file_size():
    # A file-size limit makes writes fail with EFBIG, like a full disk does with ENOSPC.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, tiny_bundle):
    model = _tiny_model(tmp_path, tiny_bundle)
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(4, seconds=4.0), 24000)  # 192 kB: under the limit
    proc = subprocess.run(
        [
            *SYND,
            "render",
            str(song),
            "--model",
            str(model),
            "--size",
            "640x480",
            "--crf",
            "0",
            "--speed",
            "ultrafast",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert any("song.mp4" in line and "too large" in line for line in lines), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "song.mp4").exists() and leftovers(tmp_path) == []


def test_hue_rotation_turns_colours_and_keeps_grey(tiny_bundle):
    import torch

    from synd.frameloop import hue_rotation

    red = torch.tensor([1.0, 0.0, 0.0])
    assert torch.allclose(hue_rotation(1 / 3) @ red, torch.tensor([0.0, 1.0, 0.0]), atol=1e-5)
    grey = torch.full((3,), 0.4)
    assert torch.allclose(hue_rotation(0.37) @ grey, grey, atol=1e-6)
    feats = np.zeros((3, tiny_bundle.features.dim), np.float32)
    plain = [f.clone() for f in FrameLoop(tiny_bundle, 32, 32).run(feats)]
    turned = list(FrameLoop(tiny_bundle, 32, 32, look=Look(hue=1 / 3)).run(feats))
    m = hue_rotation(1 / 3)
    for a, b in zip(plain, turned):
        assert torch.allclose(torch.einsum("ij,bjhw->bihw", m, a).clamp(0, 1), b, atol=1e-5)


def test_a_killed_render_leaves_a_hidden_file_that_the_next_render_removes(tmp_path, tiny_bundle):
    model = _tiny_model(tmp_path, tiny_bundle)
    song = tmp_path / "long.wav"
    write_wav(song, np.tile(music_clip(3, seconds=6.0), 20), 24000)
    args = [*SYND, "render", str(song), "--model", str(model), "--size", "320x240"]
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no clean-up can run
    proc.wait(timeout=30)
    orphans = leftovers(tmp_path)
    assert orphans and not (tmp_path / "long.mp4").exists()
    write_wav(song, music_clip(3, seconds=1.0), 24000)
    assert subprocess.run(args, capture_output=True, timeout=300).returncode == 0
    assert leftovers(tmp_path) == [] and (tmp_path / "long.mp4").exists()
