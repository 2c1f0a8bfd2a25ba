"""`synd train --decoder-only`: the decoder learns to read whole frames; the pictures stay."""

import pytest
import torch

from synd.bundle import load_model
from synd.presets import Look, Preset
from synd.readback import PAINT_SIZE, ReadbackOptions, paint_window, read_r2, tune_decoder
from synd.sizes import generation_size
from synd.train import TrainError
from tests.test_cli import run

LOOKS = [
    Preset(name="plain", description="", model="tiny", look=Look(feedback=0.7, smoothing=0.3)),
    Preset(name="kaleido", description="", model="tiny", look=Look(feedback=0.5, mirror=6, flow=1.0)),
]


def options(bundle, clip_dir, out, **kw):
    defaults = dict(
        inputs=[clip_dir],
        bundle=bundle,
        looks=LOOKS,
        out=out,
        steps=60,
        seconds=3.0,
        eval_every=20,
        progress=False,
    )
    return ReadbackOptions(**{**defaults, **kw})


def test_the_decoder_learns_to_read_whole_frames_and_the_pictures_stay(tiny_bundle, clip_dir, tmp_path):
    out = tmp_path / "tuned.safetensors"
    result = tune_decoder(options(tiny_bundle, clip_dir, out, lr=3e-3))
    assert result["written"] and result["steps"] == 60
    assert [h["step"] for h in result["history"]] == [0, 20, 40, 60]
    assert result["holdout_r2_after"] > result["holdout_r2_before"] + 0.05, result["history"]
    assert result["looks"] == ["plain", "kaleido"] and result["files"] == 4
    tuned = load_model(str(out))
    assert tuned.meta["readback"]["holdout_r2_after"] == result["holdout_r2_after"]
    for k, v in tiny_bundle.generator.state_dict().items():  # the painter is untouched
        assert torch.equal(v, tuned.generator.state_dict()[k]), k
    tuned_decoder = tuned.decoder.state_dict()
    assert any(not torch.equal(v, tuned_decoder[k]) for k, v in tiny_bundle.decoder.state_dict().items())
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_the_written_decoder_reads_as_well_as_reported(tiny_bundle, clip_dir, tmp_path):
    """The R^2 in the model's metadata is what the saved decoder reads on held-out frames
    painted again (the last of the four songs is the held-out one)."""
    from synd.audio import load_audio
    from synd.features import FeatureExtractor

    out = tmp_path / "tuned.safetensors"
    result = tune_decoder(options(tiny_bundle, clip_dir, out, lr=3e-3, holdout=0.25))
    tuned = load_model(str(out))
    song = sorted(clip_dir.iterdir())[-1]
    raw = FeatureExtractor(tuned.features).offline(load_audio(song, tuned.features.sample_rate))
    # the held-out file is the first (and only) held-out track: it took the first look
    painted = paint_window(tuned, LOOKS[0].look, raw, frames=int(3.0 * 30 / 3), every=3)
    assert painted.frames.shape[1:3] == generation_size(*PAINT_SIZE)[::-1]
    r2 = read_r2(tuned.decoder, tuned.decoder_tile, [painted])
    assert r2 == pytest.approx(result["holdout_r2_after"], abs=1e-4)


def test_a_decoder_that_reads_no_better_is_not_written(tiny_bundle, clip_dir, tmp_path):
    out = tmp_path / "tuned.safetensors"
    result = tune_decoder(options(tiny_bundle, clip_dir, out, lr=0.0, steps=10, eval_every=5))
    assert not result["written"] and not out.exists()
    assert result["holdout_r2_after"] == result["holdout_r2_before"]


def test_bad_requests_are_clear(tiny_bundle, clip_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(TrainError, match="budget"):
        tune_decoder(options(tiny_bundle, clip_dir, out, steps=None))
    with pytest.raises(TrainError, match="no looks"):
        tune_decoder(options(tiny_bundle, clip_dir, out, looks=[]))
    with pytest.raises(TrainError, match="held-out"):
        tune_decoder(options(tiny_bundle, clip_dir, out, holdout=0.0))


def test_the_command_line_refuses_what_decoder_only_cannot_do(tmp_path):
    proc = run(
        "train", str(tmp_path), "--decoder-only", "--resume", "--out", str(tmp_path / "m"), "--steps", "3"
    )
    assert proc.returncode == 1
    refusal = "synd: error: --decoder-only keeps the model's network and settings: drop --resume"
    assert proc.stderr.strip() == refusal
    proc = run("train", str(tmp_path), "--looks", "lava", "--out", str(tmp_path / "m"), "--steps", "3")
    assert proc.returncode == 1 and "--looks goes with --decoder-only" in proc.stderr
    assert "--decoder-only" in run("train", "--help").stdout
