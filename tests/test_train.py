"""`synd train`: real training runs on generated songs, tiny networks so they stay quick."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from synd.bundle import load_model
from synd.checkpoint import read_checkpoint
from synd.presets import load_preset, parse_preset
from synd.train import TrainError, TrainOptions, decoder_crop, state_path, train
from tests.helpers.models import TINY_PRESET


@pytest.fixture
def tiny_preset(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PRESET)
    return parse_preset(TINY_PRESET, path)


def options(preset, clip_dir, out, **kw):
    defaults = dict(
        inputs=[clip_dir],
        preset=preset,
        out=out,
        steps=6,
        eval_every=3,
        sample_every=6,
        checkpoint_every=3,
        progress=False,
    )
    return TrainOptions(**{**defaults, **kw})


def test_training_writes_model_state_and_sample_sheet(tiny_preset, clip_dir, tmp_path):
    out = tmp_path / "run" / "tiny.safetensors"
    result = train(options(tiny_preset, clip_dir, out))
    assert result["steps"] == 6
    bundle = load_model(str(out))  # the model file loads on its own
    assert bundle.meta["summary"]["steps"] == 6
    assert bundle.meta["data"]["files"] == 4 and bundle.meta["data"]["holdout_frames"] > 0
    assert bundle.meta["loss_weights"]["colorfulness"] == 0.1
    assert bundle.features.bands == 8
    _, meta = read_checkpoint(state_path(out))
    assert meta["training"]["step"] == 6
    assert [h["step"] for h in meta["training"]["history"]] == [3, 6]
    sheet = out.with_name("tiny.samples") / "step_000006.png"
    assert sheet.stat().st_size > 1000
    assert not [p for p in out.parent.iterdir() if ".partial" in p.name]


def test_resume_is_exact(tiny_preset, clip_dir, tmp_path):
    straight = tmp_path / "a" / "m.safetensors"
    train(options(tiny_preset, clip_dir, straight, steps=6))
    split = tmp_path / "b" / "m.safetensors"
    train(options(tiny_preset, clip_dir, split, steps=6, stop_at=3))  # interrupted at step 3
    first_half = load_model(str(split)).generator.state_dict()
    train(options(tiny_preset, clip_dir, split, steps=6, resume=True))
    a, b = load_model(str(straight)), load_model(str(split))
    assert b.meta["summary"]["steps"] == 6
    for k, v in a.generator.state_dict().items():
        assert torch.equal(v, b.generator.state_dict()[k]), k
        assert not torch.equal(v, first_half[k]) or v.numel() == 0 or "bias" in k
    for k, v in a.decoder.state_dict().items():
        assert torch.equal(v, b.decoder.state_dict()[k]), k


def test_resume_needs_state_and_more_steps(tiny_preset, clip_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    with pytest.raises(TrainError, match="nothing to resume"):
        train(options(tiny_preset, clip_dir, out, resume=True))
    train(options(tiny_preset, clip_dir, out, steps=3))
    with pytest.raises(TrainError, match="already at step 3"):
        train(options(tiny_preset, clip_dir, out, steps=3, resume=True))


def test_training_learns_to_hear(tiny_preset, clip_dir, tmp_path):
    """Held-out R^2 rises well above zero within a couple of hundred tiny steps."""
    out = tmp_path / "m.safetensors"
    preset = replace(tiny_preset, train=replace(tiny_preset.train, batch=8))
    train(options(preset, clip_dir, out, steps=200, eval_every=50, sample_every=1000, checkpoint_every=1000))
    _, meta = read_checkpoint(state_path(out))
    r2 = [h["r2"] for h in meta["training"]["history"]]
    assert r2[0] < 0.3 < max(r2[1:]), r2  # at step 50 it barely reads the sound; later it does


def test_crop_decays_from_whole_frame():
    settings = load_preset("classic").train
    assert decoder_crop(settings, 0, 1000) == settings.size
    assert decoder_crop(settings, 1000, 1000) == int(settings.size * settings.min_crop)


def test_bad_inputs_are_clear(tiny_preset, tmp_path):
    with pytest.raises(TrainError, match="no such file or folder"):
        train(options(tiny_preset, tmp_path / "nope", tmp_path / "m.safetensors"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TrainError, match="no audio files"):
        train(options(tiny_preset, empty, tmp_path / "m.safetensors"))
    (empty / "bad.mp3").write_text("not audio")
    with pytest.raises(TrainError, match="none of the audio files could be read"):
        train(options(tiny_preset, empty, tmp_path / "m.safetensors"))


def test_torchrun_with_two_cpu_processes(tiny_preset, clip_dir, tmp_path):
    """The same command under torchrun: DistributedDataParallel over gloo, 2 processes."""
    out = tmp_path / "ddp.safetensors"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "synd",
            "train",
            str(clip_dir),
            "--preset",
            str(tiny_preset.path),
            "--out",
            str(out),
            "--steps",
            "4",
            "--eval-every",
            "2",
            "--checkpoint-every",
            "2",
            "--sample-every",
            "4",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tensors, meta = read_checkpoint(state_path(out))
    assert meta["training"]["world"] == 2
    assert meta["summary"]["processes"] == 2
    assert tensors["pool.previous"].shape[0] == 2 * tiny_preset.train.pool  # both ranks' chains
    # Each rank drew its own batches: the two halves of the pool hold different chains.
    assert not torch.equal(tensors["pool.frame"][:8], tensors["pool.frame"][8:])
    assert load_model(str(out)).meta["summary"]["steps"] == 4
    assert json.loads(json.dumps(meta))  # metadata is plain JSON


def test_resume_refuses_changed_settings(tiny_preset, clip_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    train(options(tiny_preset, clip_dir, out, steps=6, stop_at=3))
    bigger = replace(tiny_preset, train=replace(tiny_preset.train, batch=6))
    with pytest.raises(TrainError, match="batch differ from the interrupted run"):
        train(options(bigger, clip_dir, out, steps=6, resume=True))
    with pytest.raises(TrainError, match="seed differ"):
        train(options(tiny_preset, clip_dir, out, steps=6, resume=True, seed=5))
    # Hiding a coordinate wave changes no weight's shape: only the check can tell.
    wave = replace(tiny_preset, architecture={**tiny_preset.architecture, "fourier_max": 2})
    with pytest.raises(TrainError, match="architecture differ"):
        train(options(wave, clip_dir, out, steps=6, resume=True))
    (clip_dir / "song0.wav").rename(clip_dir / "renamed.wav")
    with pytest.raises(TrainError, match="audio differs"):
        train(options(tiny_preset, clip_dir, out, steps=6, resume=True))


def test_plain_resume_keeps_the_interrupted_budget(tiny_preset, clip_dir, tmp_path):
    out = tmp_path / "m.safetensors"
    train(options(tiny_preset, clip_dir, out, steps=5, stop_at=2))
    result = train(options(tiny_preset, clip_dir, out, steps=None, resume=True))
    assert result["steps"] == 5  # not the preset's default step count


def test_short_and_silent_audio_is_skipped_not_fatal(tiny_preset, clip_dir, tmp_path):
    import numpy as np

    from synd.audio import write_wav

    write_wav(clip_dir / "blip.wav", np.zeros(100, np.float32), 24000)  # 1 frame: skipped
    write_wav(clip_dir / "zz_silence.wav", np.zeros(24000 * 2, np.float32), 24000)
    out = tmp_path / "m.safetensors"
    result = train(options(tiny_preset, clip_dir, out, steps=3, holdout=0.5))
    assert result["steps"] == 3
    assert load_model(str(out)).meta["data"]["files"] == 5


def test_bad_training_settings_are_clear(tmp_path):
    from synd.presets import PresetError

    for table, match in (
        ("size = 30", "multiple of 8"),
        ("size = 512", r"size must be .* \[16, 256\]"),
        ("batch = 0", "batch must be"),
        ("unroll = 0", "unroll must be"),
        ("pool = 2\nbatch = 4", "pool .* at least"),
    ):
        path = tmp_path / "bad.toml"
        path.write_text(f"[train]\n{table}\n")
        with pytest.raises(PresetError, match=match):
            load_preset(str(path))
    path.write_text("[architecture]\nwidht = 4\n")
    with pytest.raises(PresetError, match=r"model config: unknown keys \[.widht.\]"):
        load_preset(str(path))


def test_init_starts_from_a_models_weights_and_normalisation(tiny_preset, clip_dir, tmp_path):
    """--init fine-tunes: one step from a trained model stays next to it (a fresh start is
    far away), hears with its normalisation, and says where it started."""
    first = tmp_path / "first.safetensors"
    train(options(tiny_preset, clip_dir, first, steps=6))
    slow = replace(tiny_preset, train=replace(tiny_preset.train, lr=1e-4))
    tuned, fresh = tmp_path / "tuned.safetensors", tmp_path / "fresh.safetensors"
    train(options(slow, clip_dir, tuned, steps=1, init=str(first)))
    train(options(slow, clip_dir, fresh, steps=1, seed=1))
    a, b, c = (load_model(str(p)) for p in (first, tuned, fresh))

    def distance(x, y) -> float:
        sx, sy = x.generator.state_dict(), y.generator.state_dict()
        return max(float((sx[k] - sy[k]).abs().max()) for k in sx)

    assert distance(a, b) <= 2e-4 < 0.01 < distance(a, c)
    assert (b.stats.mean == a.stats.mean).all() and (b.stats.std == a.stats.std).all()
    assert b.meta["init"] == str(first) and "init" not in c.meta


def test_init_refuses_a_model_of_another_network(tiny_preset, clip_dir, tmp_path):
    first = tmp_path / "first.safetensors"
    train(options(tiny_preset, clip_dir, first, steps=1))
    wider = replace(tiny_preset, architecture={**tiny_preset.architecture, "width": 6})
    with pytest.raises(TrainError, match="network differs"):
        train(options(wider, clip_dir, tmp_path / "w.safetensors", steps=1, init=str(first)))
    with pytest.raises(TrainError, match="--init"):
        train(options(tiny_preset, clip_dir, tmp_path / "x.safetensors", steps=1, init="no-such-model"))
