"""`synd listen`: sound features read back from pictures and inverted to audio.

The claims: inverting features gives audio whose own features (beats, spectrum) match
the original's, and this survives the whole trip through the shipped model's pictures,
an h264 video or a folder of PNGs. Print the measured values with
``.venv/bin/python -m pytest tests/test_listen.py -s -q``.
"""

from __future__ import annotations

import wave
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from synd.audio import load_audio, write_wav
from synd.bundle import load_model
from synd.catalog import model_look
from synd.corpus import demo_clip
from synd.features import FeatureConfig, FeatureExtractor
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.listen import ListenError, decode_pictures, default_output, features_to_audio, listen, read_pictures
from synd.sizes import generation_size
from synd.video import VideoWriter

SECONDS = 10.0
VIDEO_SIZE = (640, 360)  # generated at generation_size(640, 360) = 384x216, then upscaled


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # On a shared 2-core machine two OpenMP threads that spin-wait on each other can be
    # 10x slower than one; one thread keeps this file's runtime predictable.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ----------------------------------------------------------------------------- measures


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64), np.asarray(b, np.float64))[0, 1])


def beat_frames(ref: np.ndarray) -> np.ndarray:
    """Frames whose onset is music, not the jump out of digital silence.

    The onset out of an all-zero window is about 23 (log of 1e-10), 10x any drum hit, so
    the first frames and those just after the demo's silent break would decide a
    Pearson correlation alone.
    """
    ok = np.ones(len(ref), dtype=bool)
    ok[:2] = False
    for i in np.flatnonzero(ref[:, -2] < -80.0):  # loudness column: silent window
        ok[i : i + 4] = False
    return ok


def onset_corr(ref: np.ndarray, out: np.ndarray) -> float:
    """Pearson correlation of the onset columns over the beat frames."""
    n = min(len(ref), len(out))
    ok = beat_frames(ref[:n])
    return pearson(ref[:n][ok, -1], out[:n][ok, -1])


def spectrum_corr(ref: np.ndarray, out: np.ndarray, bands: int) -> float:
    """Mean per-frame Pearson correlation of the bands, as deviations from the clip's
    average spectrum (raw spectra share the same tilt, which any sound would match)."""
    n = min(len(ref), len(out))
    ok = beat_frames(ref[:n])
    a = ref[:n][ok, :bands] - ref[:n][ok, :bands].mean(axis=0)
    b = out[:n][ok, :bands] - out[:n][ok, :bands].mean(axis=0)
    return float(np.mean([pearson(x, y) for x, y in zip(a, b)]))


def raw_spectrum_corr(ref: np.ndarray, out: np.ndarray, bands: int) -> float:
    n = min(len(ref), len(out))
    ok = beat_frames(ref[:n])
    return float(np.mean([pearson(x, y) for x, y in zip(ref[:n][ok, :bands], out[:n][ok, :bands])]))


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(samples, features) of 10 s of the drum-driven demo song (it has a silent break)."""
    cfg = FeatureConfig()
    path = demo_clip(
        tmp_path_factory.mktemp("demo") / "demo.wav", duration=SECONDS, sample_rate=cfg.sample_rate
    )
    samples = load_audio(path, cfg.sample_rate)
    return samples, FeatureExtractor(cfg).offline(samples)


@pytest.fixture(scope="module")
def inverted(demo):
    return features_to_audio(demo[1], FeatureConfig())


@pytest.fixture(scope="module")
def prism():
    return load_model("prism")


@pytest.fixture(scope="module")
def rendered(prism, demo):
    """The demo painted by the shipped model and upscaled to VIDEO_SIZE: uint8 frames."""
    width, height = VIDEO_SIZE
    gw, gh = generation_size(width, height)
    assert (gw, gh) != (width, height)  # the downscale in listen is exercised
    loop = FrameLoop(prism, gh, gw, look=model_look(prism), seed=0)
    return [
        np.asarray(Image.fromarray(to_rgb_uint8(f)).resize(VIDEO_SIZE, Image.BILINEAR))
        for f in loop.run(demo[1])
    ]


@pytest.fixture(scope="module")
def video(rendered, tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    with VideoWriter(path, *VIDEO_SIZE, fps=30.0, codec="h264") as writer:
        for frame in rendered:
            writer.write(frame)
    return path


def audio_features(path) -> np.ndarray:
    cfg = FeatureConfig()
    return FeatureExtractor(cfg).offline(load_audio(path, cfg.sample_rate))


# ------------------------------------------------------------------- inversion of features


def test_inverted_features_keep_beats_and_spectrum(demo, inverted):
    samples, ref = demo
    cfg = FeatureConfig()
    out = FeatureExtractor(cfg).offline(inverted)
    onset = onset_corr(ref, out)
    spectrum = spectrum_corr(ref, out, cfg.bands)
    print(
        f"\ninverted exact features: onset r={onset:.3f}, per-frame mel r={spectrum:.3f} "
        f"(raw {raw_spectrum_corr(ref, out, cfg.bands):.3f}), "
        f"loudness r={pearson(ref[2:, -2], out[2 : len(ref), -2]):.3f}"
    )
    assert inverted.shape == samples.shape and inverted.dtype == np.float32
    assert onset >= 0.85  # measured 0.99
    assert spectrum >= 0.85  # measured 0.99
    # Correlations ignore scale; the log-mel contrast (time x bands) must match too, as it
    # would not if the log-power bands were taken for log-magnitudes.
    ok = beat_frames(ref)
    contrast = out[: len(ref)][ok, : cfg.bands].std() / ref[ok, : cfg.bands].std()
    print(f"log-mel contrast ratio {contrast:.3f}")
    assert 0.9 <= contrast <= 1.1


def test_shuffled_features_lose_the_beats(demo):
    """Negative control: the same frames in a random order."""
    ref = demo[1]
    cfg = FeatureConfig()
    shuffled = ref[np.random.default_rng(0).permutation(len(ref))]
    out = FeatureExtractor(cfg).offline(features_to_audio(shuffled, cfg))
    onset, spectrum = onset_corr(ref, out), spectrum_corr(ref, out, cfg.bands)
    print(f"\nshuffled features: onset r={onset:.3f}, per-frame mel r={spectrum:.3f}")
    assert onset < 0.3
    assert spectrum < 0.3


def test_silent_break_stays_silent(demo, inverted):
    ref = demo[1]
    cfg = FeatureConfig()
    silent = np.flatnonzero(ref[:, -2] < -80.0)
    assert silent.size >= 5  # the demo's break
    for end in cfg.frame_ends(silent):
        assert not inverted[max(0, end - cfg.n_fft) : end].any()


def test_level_and_finite(demo, inverted):
    assert np.isfinite(inverted).all()
    assert np.abs(inverted).max() == pytest.approx(10 ** (-1 / 20), rel=1e-3)
    cfg = FeatureConfig()
    silence = FeatureExtractor(cfg).offline(np.zeros(12000, np.float32))
    assert not features_to_audio(silence, cfg).any()
    broken = demo[1][:60].copy()
    broken[5, 3], broken[7, -1], broken[9, 0] = np.nan, np.inf, -np.inf
    out = features_to_audio(broken, cfg, iterations=4)
    assert np.isfinite(out).all() and np.abs(out).max() > 0.5


def test_other_frame_rate_keeps_time(demo):
    """Features at 24 fps (hop 1000, not a 30 fps grid) come back as long and in time."""
    samples = demo[0][: 5 * 24000]
    cfg = replace(FeatureConfig(), fps=24.0)
    ref = FeatureExtractor(cfg).offline(samples)
    out = features_to_audio(ref, cfg)
    assert out.shape == samples.shape
    assert onset_corr(ref, FeatureExtractor(cfg).offline(out)) >= 0.8


def test_fft_features_invert(demo):
    cfg = FeatureConfig(kind="fft")
    samples = demo[0][: 5 * 24000]
    ref = FeatureExtractor(cfg).offline(samples)
    out = FeatureExtractor(cfg).offline(features_to_audio(ref, cfg, iterations=32))
    assert onset_corr(ref, out) >= 0.8
    assert spectrum_corr(ref, out, cfg.bands) >= 0.8


def test_wave_features_give_the_low_frequencies():
    """``wave`` features are a coarse waveform: a 90 Hz tone comes back."""
    cfg = FeatureConfig(kind="wave")
    t = np.arange(2 * cfg.sample_rate) / cfg.sample_rate
    tone = (0.5 * np.sin(2 * np.pi * 90 * t)).astype(np.float32)
    out = features_to_audio(FeatureExtractor(cfg).offline(tone), cfg)
    assert out.shape == tone.shape
    assert pearson(tone[2048:-2048], out[2048:-2048]) >= 0.95
    # ...and not just anything: a 90 Hz tone half a period later does not match.
    assert pearson(np.roll(tone, 133)[2048:-2048], out[2048:-2048]) < 0


def test_features_of_wrong_width_are_refused():
    with pytest.raises(ValueError, match=r"\(n, 34\)"):
        features_to_audio(np.zeros((10, 33)), FeatureConfig())


# ---------------------------------------------------------------- through the pictures


def test_listen_to_a_video_of_the_shipped_model(prism, demo, video, tmp_path):
    out = listen(video, tmp_path / "heard.wav", prism, progress=False)
    assert out == tmp_path / "heard.wav"
    with wave.open(str(out)) as w:
        assert w.getframerate() == prism.features.sample_rate and w.getnchannels() == 1
        assert w.getnframes() == len(demo[0])
    ref, heard = demo[1], audio_features(out)
    onset = onset_corr(ref, heard)
    print(
        f"\nvideo -> listen: onset r={onset:.3f} (all frames but the first two: "
        f"{pearson(ref[2:, -1], heard[2 : len(ref), -1]):.3f}), "
        f"per-frame mel r={spectrum_corr(ref, heard, 32):.3f}"
    )
    assert onset >= 0.7  # measured 0.94 (0.96 on all frames but the first two)
    assert spectrum_corr(ref, heard, 32) >= 0.5  # measured 0.71
    assert [p.name for p in tmp_path.iterdir()] == ["heard.wav"]  # no temporary files


def test_listen_to_a_folder_of_pngs(prism, demo, rendered, tmp_path):
    """Frames named frame_1 .. frame_150 (not zero-padded): only natural order works."""
    folder = tmp_path / "frames"
    folder.mkdir()
    n = 150
    for i, frame in enumerate(rendered[:n]):
        Image.fromarray(frame).save(folder / f"frame_{i + 1}.png", compress_level=1)
    out = listen(folder, tmp_path / "heard.wav", prism, progress=False)
    ref, heard = demo[1][:n], audio_features(out)
    assert len(heard) == n
    onset = onset_corr(ref, heard)
    print(f"\npng folder -> listen: onset r={onset:.3f}, per-frame mel r={spectrum_corr(ref, heard, 32):.3f}")
    assert onset >= 0.7  # measured 0.95


# ------------------------------------------------------------------------- reading


def solid(colour: int, size=(48, 32)) -> Image.Image:
    return Image.new("RGB", size, (colour, 0, 0))


def test_folder_is_read_in_natural_order_at_the_given_rate(tmp_path):
    for name, colour in [
        ("frame_10.png", 30),
        ("frame_2.jpg", 20),
        ("frame_1.bmp", 10),
        ("Frame_11.webp", 40),
        ("notes.txt", 0),
    ]:
        if name.endswith(".txt"):
            (tmp_path / name).write_text("not a frame")
        else:
            solid(colour).save(tmp_path / name, quality=100, lossless=True)
    pictures, fps = read_pictures(tmp_path)
    assert fps == 30.0 and pictures.count == 4
    reds = [int(f[..., 0].mean()) for f in pictures]
    assert [round(r / 10) for r in reds] == [1, 2, 3, 4]
    assert read_pictures(tmp_path, fps=12.5)[1] == 12.5
    assert read_pictures(tmp_path, default_fps=24.0)[1] == 24.0


def test_default_output(tmp_path):
    assert default_output(tmp_path / "clip.mp4") == tmp_path / "clip.heard.wav"
    (tmp_path / "frames").mkdir()
    assert default_output(tmp_path / "frames") == tmp_path / "frames.heard.wav"


def test_video_rate_and_frames(tmp_path):
    path = tmp_path / "v.mkv"
    with VideoWriter(path, 64, 48, fps=25.0) as w:
        for k in range(5):
            w.write(np.full((48, 64, 3), 40 * k, np.uint8))
    pictures, fps = read_pictures(path)
    frames = list(pictures)
    assert fps == 25.0 and pictures.count == 5 and len(frames) == 5
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert read_pictures(path, fps=30.0)[1] == 30.0


def test_decoder_reads_big_frames_at_generation_scale(tiny_bundle, rendered):
    """An upscaled frame reads like the frame the generator made (the downscale works)."""
    small = [
        np.asarray(Image.fromarray(f).resize(generation_size(*VIDEO_SIZE), Image.BOX)) for f in rendered[:8]
    ]
    big = decode_pictures(tiny_bundle, rendered[:8], bfloat16=False)
    direct = decode_pictures(tiny_bundle, small, bfloat16=False)
    assert big.shape == (8, tiny_bundle.features.dim) and big.dtype == np.float32
    np.testing.assert_allclose(big, direct, atol=1e-4)
    # Raw units: the tiny bundle's stats are mean -5, std 2.
    with torch.inference_mode():
        x = torch.from_numpy(np.stack(small)).permute(0, 3, 1, 2).float() / 255.0
        normed = tiny_bundle.decoder.read(x, tiny_bundle.decoder_tile).numpy()
    np.testing.assert_allclose(direct, normed * 2.0 - 5.0, rtol=1e-4, atol=1e-4)


def test_bfloat16_reads_like_float32(prism, rendered):
    frames = rendered[100:116]
    exact = decode_pictures(prism, frames, bfloat16=False)
    fast = decode_pictures(prism, frames, bfloat16=True)
    error = np.abs(fast - exact) / prism.stats.std  # in standard deviations of each feature
    print(f"\nbfloat16 vs float32: max {error.max():.4f} std, mean {error.mean():.4f} std")
    assert error.max() < 0.05
    assert next(prism.decoder.parameters()).dtype == torch.float32  # the bundle is untouched


# -------------------------------------------------------------------------- errors


def one_line_error(tmp_path, tiny_bundle, source) -> str:
    out = tmp_path / "out" / "heard.wav"
    out.parent.mkdir(exist_ok=True)
    with pytest.raises(ListenError) as info:
        listen(source, out, tiny_bundle, progress=False)
    message = str(info.value)
    assert "\n" not in message and str(source) in message
    assert list(out.parent.iterdir()) == []  # no output, no temporary file
    return message


def test_missing_path(tmp_path, tiny_bundle):
    assert "no such file" in one_line_error(tmp_path, tiny_bundle, tmp_path / "nope.mp4")


def test_folder_without_images(tmp_path, tiny_bundle):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    assert "no images" in one_line_error(tmp_path, tiny_bundle, empty)


def test_text_file_is_not_a_video(tmp_path, tiny_bundle):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n" * 20)
    assert "not a video" in one_line_error(tmp_path, tiny_bundle, fake)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert "empty" in one_line_error(tmp_path, tiny_bundle, empty)


def test_audio_file_is_not_a_video(tmp_path, tiny_bundle):
    song = tmp_path / "song.wav"
    write_wav(song, np.zeros(2400, np.float32), 24000)
    assert "no video stream" in one_line_error(tmp_path, tiny_bundle, song)


def test_unreadable_image(tmp_path, tiny_bundle):
    folder = tmp_path / "frames"
    folder.mkdir()
    solid(10, (64, 64)).save(folder / "frame_1.png")
    (folder / "frame_2.png").write_bytes(b"\x89PNG but not really")
    message = one_line_error(tmp_path, tiny_bundle, folder)
    assert "frame_2.png" in message and "unreadable image" in message


def test_failed_write_leaves_the_old_file(tmp_path, tiny_bundle, monkeypatch):
    folder = tmp_path / "frames"
    folder.mkdir()
    solid(10, (64, 64)).save(folder / "frame_1.png")
    out = tmp_path / "heard.wav"
    out.write_bytes(b"old")

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("synd.files.os.fsync", full_disk)  # after the data went to the temp file
    with pytest.raises(OSError, match="No space"):
        listen(folder, out, tiny_bundle, progress=False)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "heard.wav"]


def test_cli_renders_then_listens(tmp_path, tiny_bundle):
    import subprocess
    import sys

    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    song = tmp_path / "song.wav"
    write_wav(song, load_audio(demo_clip(tmp_path / "demo.wav", duration=2.0), 24000), 24000)
    synd = [sys.executable, "-m", "synd"]
    made = subprocess.run(
        [*synd, "render", str(song), "--model", str(model), "--size", "128x72"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert made.returncode == 0, made.stderr
    heard = subprocess.run(
        [*synd, "listen", str(tmp_path / "song.mp4"), "--model", str(model)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert heard.returncode == 0, heard.stderr
    with wave.open(str(tmp_path / "song.heard.wav")) as w:  # not song.wav: that is the song
        assert abs(w.getnframes() / w.getframerate() - 2.0) < 0.1
    assert np.array_equal(load_audio(song, 24000), load_audio(tmp_path / "song.wav", 24000))
    refused = subprocess.run(
        [
            *synd,
            "listen",
            str(tmp_path / "song.mp4"),
            "--model",
            str(model),
            "-o",
            str(tmp_path / "song.mp4"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1 and "refusing to overwrite" in refused.stderr
