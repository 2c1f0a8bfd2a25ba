"""`synd render` basics: a real encoded video with the song's audio, read back."""

import numpy as np

from synd.audio import write_wav
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.presets import Look
from synd.render import generation_size, render_song
from synd.video import read_frames, read_video_info

from conftest import music_clip


def test_render_writes_video_with_audio_of_equal_length(tiny_bundle, tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(5, seconds=2.0), 24000)
    out = render_song(song, tmp_path / "song.mp4", tiny_bundle, Look(), size=(160, 96), fps=24,
                      progress=False)
    info = read_video_info(out)
    assert (info["width"], info["height"]) == (160, 96)
    assert info["n_frames"] == 48
    assert abs(info["audio_duration"] - info["video_duration"]) <= 1 / 24
    assert abs(info["video_duration"] - 2.0) <= 1 / 24
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_render_shows_the_frame_loop(tiny_bundle, tmp_path):
    """The video's frames are the shared frame loop's frames (up to encoding loss)."""
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(6, seconds=1.0), 24000)
    look = Look(feedback=0.9)
    out = render_song(song, tmp_path / "v.mp4", tiny_bundle, look, size=(128, 128), fps=30,
                      progress=False)
    from synd.audio import load_audio
    from synd.features import FeatureExtractor

    feats = FeatureExtractor(tiny_bundle.features).offline(load_audio(song, 24000))
    loop = FrameLoop(tiny_bundle, 128, 128, look=look)
    expected = [to_rgb_uint8(f).astype(np.float32) for f in loop.run(feats)]
    decoded = [f.astype(np.float32) for f in read_frames(out)]
    assert len(decoded) == len(expected)
    errors = [np.abs(a - b).mean() for a, b in zip(decoded, expected)]
    assert max(errors) < 6.0  # H.264 at crf 20 on 8-bit pixels


def test_generation_size_keeps_aspect_and_native_scale():
    assert generation_size(1280, 720) == (456, 256)
    assert generation_size(1920, 1080) == (456, 256)
    assert generation_size(720, 1280) == (256, 456)
    assert generation_size(128, 96) == (128, 96)


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
