"""Checkpoints: round trip, atomic writes, and clear refusals of bad files (never unpickling)."""

import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from synd.bundle import load_model
from synd.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
from synd.model import make_coords


def test_round_trip_keeps_weights_and_metadata(tiny_bundle, tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_bundle.save(path, extra_meta={"summary": {"steps": 7}})
    loaded = load_model(str(path))
    for a, b in zip(tiny_bundle.generator.state_dict().values(), loaded.generator.state_dict().values()):
        assert torch.equal(a, b)
    assert loaded.meta["summary"]["steps"] == 7
    assert loaded.features == tiny_bundle.features
    assert (loaded.stats.mean == tiny_bundle.stats.mean).all()
    assert loaded.config == tiny_bundle.config


def test_write_is_atomic_and_leaves_old_file_on_failure(tiny_bundle, tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    tiny_bundle.save(path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        tiny_bundle.save(path, extra_meta={"summary": {"steps": 99}})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickled_checkpoint_is_refused_and_payload_never_runs(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"weights": Payload(str(marker))}, protocol=4))
    else:
        torch.save({"weights": Payload(str(marker))}, path)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="pickle.*only loads safetensors"):
        load_model(str(path))
    assert not marker.exists()


def test_truncated_file(tiny_bundle, tmp_path):
    path = tmp_path / "m.safetensors"
    tiny_bundle.save(path)
    data = path.read_bytes()
    for cut in (3, 100, len(data) // 2, len(data) - 10):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="m.safetensors.*(truncated|corrupt)"):
            load_model(str(path))


def test_corrupt_header_and_empty_file(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        read_checkpoint(path)
    path.write_bytes(struct.pack("<Q", 20) + b"{not json at all....")
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        read_checkpoint(path)
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def test_foreign_safetensors_file(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a synd model"):
        load_model(str(path))


def test_metadata_that_disagrees_with_tensors(tiny_bundle, tmp_path):
    path = tmp_path / "m.safetensors"
    tensors = tiny_bundle.state_tensors()
    meta = tiny_bundle.metadata()
    meta["architecture"]["width"] = 6  # tensors were made for width 4
    save_checkpoint(path, tensors, meta)
    with pytest.raises(CheckpointError, match="has shape .* the architecture needs"):
        load_model(str(path))
    meta = tiny_bundle.metadata()
    meta["features"]["bands"] = 12
    save_checkpoint(path, tensors, meta)
    with pytest.raises(CheckpointError, match="metadata disagrees"):
        load_model(str(path))
    tensors.pop(next(iter(tensors)))
    save_checkpoint(path, tensors, tiny_bundle.metadata())
    with pytest.raises(CheckpointError, match="missing tensor"):
        load_model(str(path))


def test_non_finite_weights_and_future_versions(tiny_bundle, tmp_path):
    path = tmp_path / "m.safetensors"
    tensors = tiny_bundle.state_tensors()
    key = next(k for k in tensors if k.endswith("weight"))
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_checkpoint(path, tensors, tiny_bundle.metadata())
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        load_model(str(path))
    save_checkpoint(path, tiny_bundle.state_tensors(), {**tiny_bundle.metadata(), "format_version": 1})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    doc = json.loads(header["__metadata__"]["synd"])
    doc["format_version"] = 99
    header["__metadata__"]["synd"] = json.dumps(doc)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    with pytest.raises(CheckpointError, match="newer than this synd"):
        load_model(str(path))


def test_missing_file_and_names(tmp_path):
    with pytest.raises(CheckpointError, match="no model"):
        load_model("no-such-model-name")
    with pytest.raises(CheckpointError, match="only bare names"):
        load_model("../../etc/passwd", allow_paths=False)
    with pytest.raises(CheckpointError, match="only bare names"):
        load_model("/etc/passwd", allow_paths=False)


def test_written_files_get_ordinary_permissions(tiny_bundle, tmp_path):
    old = os.umask(0o022)
    try:
        tiny_bundle.save(tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o644


def test_odd_names_give_one_line_errors(tmp_path):
    for name in ("a\nb", "x" * 5000, "a\x00b", str(tmp_path / "dir\nname.safetensors")):
        with pytest.raises(CheckpointError) as err:
            load_model(name)
        assert "\n" not in str(err.value) and len(str(err.value)) < 1200


def test_set_architecture_hides_the_finest_wave_and_keeps_the_weights(tiny_bundle, tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    from set_architecture import set_architecture

    path = tmp_path / "m.safetensors"
    tiny_bundle.save(path, extra_meta={"preset": {"name": "tiny", "architecture": {}}})
    assert set_architecture(str(path), {"fourier_max": 2}).fourier_max == 2
    changed = load_model(str(path))
    assert changed.config.fourier_max == 2 and changed.meta["preset"]["architecture"] == {"fourier_max": 2}
    for a, b in zip(tiny_bundle.generator.state_dict().values(), changed.generator.state_dict().values()):
        assert torch.equal(a, b)
    coords = make_coords(16, 16, changed.config.native_size)
    before, after = tiny_bundle.generator.position_term(coords), changed.generator.position_term(coords)
    assert not torch.allclose(before, after)
    with pytest.raises(SystemExit, match="cannot change width"):
        set_architecture(str(path), {"width": 4})
