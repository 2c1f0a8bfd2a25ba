"""The live engine's ONNX Runtime painter paints what the torch frame loop paints."""

import numpy as np
import pytest
import torch

from synd import onnxgen
from synd.bundle import load_model
from synd.features import FeatureExtractor
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.model import FoldedGenerator
from synd.onnxgen import OnnxGenerator, live_painter, runtime_name
from tests.helpers.audio import music_clip

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def prism():
    bundle = load_model("prism")
    bundle.generator.eval()
    return bundle


def test_one_frame_matches_the_torch_generator(prism):
    h, w = 72, 128
    folded = FoldedGenerator(prism.generator, h, w).eval()
    painter = OnnxGenerator(prism.generator, h, w, threads=1)
    torch.manual_seed(0)
    base, feats = torch.rand(1, 3, h, w), torch.randn(1, prism.config.feature_dim)
    with torch.no_grad():
        expected = folded(base, feats)
        other = folded(base, -feats)
    got = painter(base, feats)
    assert got.shape == (1, 3, h, w)
    assert (got - expected).abs().max() < 1e-4
    assert (expected - other).abs().max() > 0.05  # the sound matters: the check can fail


def test_a_feedback_chain_on_real_music_stays_within_one_level(prism):
    """Rounding differences must not grow through the feedback loop."""
    raw = FeatureExtractor(prism.features).offline(music_clip(4, seconds=4.0))
    h, w = 64, 112
    reference = FrameLoop(prism, h, w, seed=3)
    fast = FrameLoop(prism, h, w, seed=3, paint=OnnxGenerator(prism.generator, h, w))
    diffs, changes, previous = [], [], None
    for row in raw:
        a, b = to_rgb_uint8(reference.step(row)), to_rgb_uint8(fast.step(row))
        diffs.append(np.abs(a.astype(int) - b).max())
        if previous is not None:
            changes.append(np.abs(a.astype(int) - previous).mean())
        previous = a
    assert len(diffs) >= 90
    assert max(diffs) <= 1
    assert np.mean(changes) > 1.0  # the pictures move, so equal chains mean something


def test_a_painter_is_built_for_one_size(prism):
    painter = OnnxGenerator(prism.generator, 32, 48, threads=1)
    with pytest.raises(ValueError, match="48x32"):
        painter(torch.rand(1, 3, 40, 48), torch.zeros(1, prism.config.feature_dim))


def test_runtime_choice(prism, monkeypatch):
    g = prism.generator
    assert isinstance(live_painter(g, 32, 48, "auto"), OnnxGenerator)
    torch_painter = live_painter(g, 32, 48, "torch")
    assert isinstance(torch_painter, FoldedGenerator) and runtime_name(torch_painter) == "torch"
    assert runtime_name(live_painter(g, 32, 48, "onnx")) == "onnxruntime"
    with pytest.raises(ValueError, match="choose one of auto, onnx, torch"):
        live_painter(g, 32, 48, "tensorrt")
    monkeypatch.setattr(onnxgen, "onnx_missing", lambda: "onnxruntime is not installed")
    assert isinstance(live_painter(g, 32, 48, "auto"), FoldedGenerator)  # falls back
    with pytest.raises(ValueError, match="runtime onnx: onnxruntime is not installed"):
        live_painter(g, 32, 48, "onnx")


def test_exports_are_cached_and_a_damaged_cache_file_is_replaced(prism, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    real = onnxgen.export_generator
    monkeypatch.setattr(onnxgen, "export_generator", lambda *a: calls.append(a) or real(*a))
    first = OnnxGenerator(prism.generator, 32, 48, threads=1)
    path = onnxgen.export_cache_path(prism.generator, 32, 48)
    assert path.is_file() and len(calls) == 1
    second = OnnxGenerator(prism.generator, 32, 48, threads=1)
    assert len(calls) == 1  # read from the cache
    base, feats = torch.rand(1, 3, 32, 48), torch.zeros(1, prism.config.feature_dim)
    assert torch.equal(first(base, feats), second(base, feats))
    other_size = onnxgen.export_cache_path(prism.generator, 40, 48)
    assert other_size != path
    path.write_bytes(b"not an onnx model")
    third = OnnxGenerator(prism.generator, 32, 48, threads=1)
    assert len(calls) == 2 and torch.equal(third(base, feats), first(base, feats))
