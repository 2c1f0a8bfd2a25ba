"""Checkpoint files: safetensors tensors plus one JSON metadata document.

A checkpoint is a single `.safetensors` file. Its header's `__metadata__` holds the key
`synd` with a JSON document (format, version, architecture, features, normalisation,
losses, training summary, metrics). Loading parses the header ourselves and hands the
tensors to safetensors: nothing is ever unpickled, so a file cannot run code.
Writing goes to a temporary file in the same folder, is fsynced, then renamed over the
destination, so a crash never leaves a half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from synd.files import atomic_write_bytes

FORMAT = "synd-model"
FORMAT_VERSION = 1
MAX_HEADER = 100 * 1024 * 1024


class CheckpointError(Exception):
    """A model file that cannot be used; the message is one line naming file and problem."""


def save_checkpoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Atomically write `tensors` and the JSON-able `meta` as a synd checkpoint."""
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    data = save_safetensors_bytes(contiguous, metadata={"synd": json.dumps(doc)})
    atomic_write_bytes(path, data)


def _sniff_foreign(head: bytes) -> str | None:
    """Name a known unsafe or foreign format from a file's first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return ("a PyTorch/zip pickle archive (torch.save), which can run code when loaded; "
                "synd only loads safetensors")
    if head[:1] == b"\x80" and head[1:2] in {bytes([n]) for n in range(2, 6)}:
        return "a Python pickle, which can run code when loaded; synd only loads safetensors"
    if head.startswith(b"\x89HDF"):
        return "an HDF5 (Keras) file, not a synd safetensors checkpoint"
    return None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read and validate a checkpoint; returns (tensors, metadata).

    Raises CheckpointError with one line naming the file and the problem for a missing,
    truncated, corrupt, pickled or foreign file.
    """
    path = Path(path)
    where = f"cannot load model '{path}'"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except OSError as e:
        raise CheckpointError(f"{where}: {e.strerror or e}") from None
    if not data:
        raise CheckpointError(f"{where}: file is empty")
    foreign = _sniff_foreign(data[:8])
    if foreign:
        raise CheckpointError(f"{where}: this is {foreign}")
    if len(data) < 8:
        raise CheckpointError(f"{where}: file is truncated (only {len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER, len(data) - 8):
        raise CheckpointError(f"{where}: not a safetensors file, or truncated (bad header length)")
    try:
        header = json.loads(data[8:8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{where}: corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: corrupt safetensors header")
    meta_block = header.get("__metadata__")
    meta_raw = meta_block.get("synd") if isinstance(meta_block, dict) else None
    if not isinstance(meta_raw, str):
        raise CheckpointError(f"{where}: a safetensors file, but not a synd model (no synd metadata)")
    try:
        meta = json.loads(meta_raw)
    except json.JSONDecodeError:
        raise CheckpointError(f"{where}: corrupt synd metadata (invalid JSON)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not a synd model (format {meta.get('format')!r})"
                              if isinstance(meta, dict) else f"{where}: corrupt synd metadata")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{where}: format version {version!r} is newer than this synd "
                              f"understands ({FORMAT_VERSION}); upgrade synd")
    try:
        end = max((int(e["data_offsets"][1]) for k, e in header.items()
                   if k != "__metadata__" and isinstance(e, dict) and "data_offsets" in e), default=0)
    except (TypeError, ValueError, IndexError, KeyError):
        raise CheckpointError(f"{where}: corrupt safetensors header (bad tensor offsets)") from None
    if 8 + header_len + end > len(data):
        raise CheckpointError(f"{where}: file is truncated ({len(data)} bytes, "
                              f"needs {8 + header_len + end})")
    try:
        tensors = load_safetensors_bytes(data)
    except Exception as e:  # safetensors raises its own error types for every corruption
        raise CheckpointError(f"{where}: corrupt tensor data ({str(e).splitlines()[0]})") from None
    return tensors, meta
