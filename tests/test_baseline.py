"""The benchmark baseline (synd.baseline): sizes, features, training, checkpoints, R^2."""

import json
import pickle

import numpy as np
import pytest
import torch

from synd.audio import write_wav
from synd.baseline import (
    FEATURE_DIM,
    NATIVE_SIZE,
    BaselineDecoder,
    BaselineFeatures,
    BaselineGenerator,
    load_baseline,
    main,
    read_back,
    save_baseline,
    sound_r2,
    train_baseline,
)
from synd.checkpoint import CheckpointError, save_checkpoint
from synd.evaluate import WARMUP_FRAMES
from synd.measure import count_flops
from tests.helpers.audio import music_clip

SR = 24000
SMALL = (32, 16)  # training in tests is at a small size: the layers are the same
TRAIN_STEPS = 200


def _models(seed=0):
    torch.manual_seed(seed)
    return BaselineGenerator().eval(), BaselineDecoder().eval()


def test_parameter_count_matches_the_description():
    generator, decoder = _models()
    n_gen = sum(p.numel() for p in generator.parameters())
    n_dec = sum(p.numel() for p in decoder.parameters())
    assert abs(n_gen - 4.4e6) / 4.4e6 < 0.10
    assert abs(n_gen + n_dec - 4.4e6) / 4.4e6 < 0.10
    assert n_dec < 0.01 * n_gen  # a 16-channel decoder


def test_macs_at_native_size_match_the_description():
    """The description's ~2.4 GMAC counts a transposed convolution by its output pixels
    (as layer-wise counters do); torch's counter (what `synd bench` uses) counts the
    multiplications it really does, by input pixels."""
    generator, _ = _models()
    base, feats = torch.rand(1, 3, *NATIVE_SIZE), torch.randn(1, FEATURE_DIM)
    extra = []  # what counting transposed convolutions by output pixels adds

    def by_output(layer, args, out):
        weights = layer.weight.numel() // layer.groups
        extra.append((out[0, 0].numel() - args[0][0, 0].numel()) * weights)

    hooks = [
        m.register_forward_hook(by_output)
        for m in generator.modules()
        if isinstance(m, torch.nn.ConvTranspose2d)
    ]
    real = count_flops(generator, base, feats) // 2
    for hook in hooks:
        hook.remove()
    assert len(extra) == 4 and all(e > 0 for e in extra)
    assert abs(real + sum(extra) - 2.4e9) / 2.4e9 < 0.15


def test_output_shape_range_and_independent_frames():
    generator, _ = _models()
    feats = torch.randn(3, FEATURE_DIM)
    bases = []
    generator.register_forward_pre_hook(lambda module, args: bases.append(args[0]))
    with torch.no_grad():
        out = generator.paint(feats, *NATIVE_SIZE, generator=torch.Generator().manual_seed(1))
        odd = generator.paint(feats[:1], 216, 384)
        generator.paint(feats[[0, 0]], 64, 32, generator=torch.Generator().manual_seed(2))
    assert out.shape == (3, 3, *NATIVE_SIZE)
    assert odd.shape == (1, 3, 216, 384)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    # Each frame gets its own random solid-colour base image, even for equal features.
    base = bases[-1]
    assert base.shape == (2, 3, 64, 32)
    assert torch.equal(base, base[:, :, :1, :1].expand_as(base))
    assert not torch.equal(base[0], base[1])
    with torch.no_grad():
        decoded = BaselineDecoder().eval()(out)
    assert decoded.shape == (3, FEATURE_DIM)


def test_features_shape_z_score_and_frame_count():
    x = music_clip(0, seconds=6.0)
    feats = BaselineFeatures()(x)
    assert feats.shape == (144, 41) and feats.dtype == np.float32
    np.testing.assert_allclose(feats.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(feats.std(axis=0), 1, atol=1e-3)
    # ceil(duration * fps) frames, like a 24 fps video as long as the audio.
    assert BaselineFeatures()(x[: int(1.01 * SR)]).shape == (25, 41)
    assert BaselineFeatures(fps=30)(x).shape == (180, 41)


def test_features_see_the_sound():
    quiet = 0.01 * music_clip(1, seconds=3.0)
    loud = music_clip(1, seconds=3.0)
    feats = BaselineFeatures()(np.concatenate([quiet, loud]))
    energy = feats[:, -1]
    assert energy[80:].mean() > energy[:64].mean() + 1.0  # log energy is the last column
    # The cepstra of a pure tone change with its pitch.
    t = np.arange(2 * SR) / SR
    tones = np.concatenate([np.sin(2 * np.pi * 200 * t), np.sin(2 * np.pi * 2000 * t)])
    ceps = BaselineFeatures()(tones.astype(np.float32))[:, :40]
    assert np.abs(ceps[10:40].mean(axis=0) - ceps[60:90].mean(axis=0)).max() > 1.0


def test_silence_gives_zero_features_not_nan():
    feats = BaselineFeatures()(np.zeros(SR, np.float32))
    assert feats.shape == (24, 41) and np.all(feats == 0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A baseline briefly trained at a small size on one short clip."""
    folder = tmp_path_factory.mktemp("baseline")
    clip = music_clip(0, seconds=6.0)
    write_wav(folder / "clip.wav", clip, SR)
    out = folder / "model.safetensors"
    # 200 steps at a higher rate learn as much as 400 at 3e-4 did, in half the time, so
    # the fixture stays well inside the test timeout on a busy two-core machine.
    summary = train_baseline(
        [folder / "clip.wav"], out, steps=TRAIN_STEPS, size=SMALL, batch=8, seed=0, log_every=25, lr=1e-3
    )
    return out, summary, clip


@pytest.mark.slow
def test_training_lowers_the_sound_loss(trained):
    out, summary, clip = trained
    assert summary["steps"] == TRAIN_STEPS and summary["batch"] == 8
    history = summary["history"]
    assert history[-1]["loss_sound"] < 0.9 * history[1]["loss_sound"]  # running means
    generator, decoder, meta = load_baseline(out)
    assert meta["native_size"] == list(SMALL) and meta["training"]["steps"] == TRAIN_STEPS
    target, after = read_back(generator, decoder, clip, SR, SMALL)
    # train_baseline seeds torch before building the models: this is where it started.
    _, before = read_back(*_models(0), clip, SR, SMALL)
    assert np.mean((after - target) ** 2) < 0.85 * np.mean((before - target) ** 2)


@pytest.mark.slow
def test_sound_r2_of_trained_is_much_higher_than_untrained(trained):
    out, _, clip = trained
    generator, decoder, _ = load_baseline(out)
    r2_trained = sound_r2(generator, decoder, clip, SR, SMALL)
    r2_untrained = sound_r2(*_models(0), clip, SR, SMALL)
    assert r2_untrained < 0.05
    assert r2_trained > r2_untrained + 0.15
    target, predicted = read_back(generator, decoder, clip, SR, SMALL)
    assert target.shape == predicted.shape == (144 - WARMUP_FRAMES, 41)
    # Same seed, same frames: the score is reproducible.
    assert sound_r2(generator, decoder, clip, SR, SMALL) == r2_trained


def test_checkpoint_round_trip(tmp_path):
    generator, decoder = _models(3)
    path = tmp_path / "b.safetensors"
    save_baseline(path, generator, decoder, {"note": "test"})
    g2, d2, meta = load_baseline(path)
    assert meta["note"] == "test" and meta["architecture"] == "synethesia-2018-baseline"
    assert path.stat().st_size < 0.55 * 4 * sum(p.numel() for p in generator.parameters())
    feats = torch.randn(4, FEATURE_DIM)
    with torch.no_grad():
        a = generator.paint(feats, 64, 32, generator=torch.Generator().manual_seed(5))
        b = g2.paint(feats, 64, 32, generator=torch.Generator().manual_seed(5))
        assert (a - b).abs().max() < 2e-3  # float16 weights
        assert (decoder(a) - d2(a)).abs().max() < 2e-3
        # Loaded weights are exactly the float16-rounded originals.
        for p, q in zip(generator.parameters(), g2.parameters()):
            assert torch.equal(p.half().float(), q)


def test_pickled_and_foreign_files_are_refused(tmp_path):
    generator, decoder = _models()
    zipped = tmp_path / "zip.safetensors"
    torch.save(generator.state_dict(), zipped)
    with pytest.raises(CheckpointError, match="pickle"):
        load_baseline(zipped)
    raw = tmp_path / "raw.safetensors"
    raw.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(CheckpointError, match="pickle"):
        load_baseline(raw)
    other = tmp_path / "other.safetensors"
    save_checkpoint(other, {"w": torch.zeros(2)}, {"architecture": "something-else"})
    with pytest.raises(ValueError, match="not a baseline"):
        load_baseline(other)


def test_cli_train_and_r2(tmp_path, capsys):
    write_wav(tmp_path / "a.wav", music_clip(4, seconds=2.0), SR)
    model = tmp_path / "m.safetensors"
    assert (
        main(
            [
                "train",
                str(tmp_path / "a.wav"),
                "--out",
                str(model),
                "--steps",
                "2",
                "--batch",
                "2",
                "--size",
                "32",
                "16",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["steps"] == 2
    assert main(["r2", str(model), str(tmp_path / "a.wav")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["size"] == [32, 16] and set(report["tracks"]) == {"a.wav"}
    assert np.isfinite(report["sound_r2"])
    with pytest.raises(SystemExit):
        main(["train", str(tmp_path / "a.wav"), "--out", str(model)])  # no budget
