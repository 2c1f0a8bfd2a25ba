"""Checkpoint files: safetensors tensors plus one JSON metadata document.

A checkpoint is a single `.safetensors` file. Its header's `__metadata__` holds the key
`synd` with a JSON document (format, version, architecture, features, normalisation,
losses, training summary, metrics). Loading parses the header ourselves and hands the
tensors to safetensors: nothing is ever unpickled, so a file cannot run code. Only
regular files are read (a pipe or device named like a model would block or never end).
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

from synd.errors import error_line, shown_name
from synd.files import atomic_write_bytes, read_regular_file

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


_PICKLE = "a Python pickle, which can run code when loaded; synd only loads safetensors"


def _looks_like_text_pickle(data: bytes) -> bool:
    """A protocol 0 or 1 pickle (no magic number): it opens with a mark, a dict or list,
    or a global such as `cos\nsystem`, and ends with the STOP opcode. Only used to name
    what a file that is not safetensors is; such a file is refused either way."""
    return data.endswith(b".") and (
        data[:1] in (b"(", b"}", b"]", b")") or (data[:1] == b"c" and b"\n" in data[:256])
    )


def _sniff_foreign(head: bytes) -> str | None:
    """Name a known unsafe or foreign format from a file's first bytes."""
    if head.startswith(b"PK\x03\x04"):
        return (
            "a PyTorch/zip pickle archive (torch.save), which can run code when loaded; "
            "synd only loads safetensors"
        )
    if head[:1] == b"\x80" and head[1:2] in {bytes([n]) for n in range(2, 6)}:
        return _PICKLE
    if head.startswith(b"\x89HDF"):
        return "an HDF5 (Keras) file, not a synd safetensors checkpoint"
    return None


def _read_regular_file(path: Path, where: str) -> bytes:
    """`files.read_regular_file`, its errors as CheckpointError."""
    try:
        return read_regular_file(path)
    except FileNotFoundError:
        raise CheckpointError(f"{where}: no such file") from None
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{where}: {getattr(e, 'strerror', None) or e}") from None


def _json(raw: bytes | str, where: str, what: str):
    """Parsed JSON, or CheckpointError: invalid text and absurd nesting are both corrupt."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{where}: {what}") from None


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """Read and validate a checkpoint; returns (tensors, metadata).

    Raises CheckpointError with one line naming the file and the problem for a missing,
    truncated, corrupt, pickled or foreign file, or one that is not a regular file.
    """
    path = Path(path)
    where = f"cannot load model '{shown_name(path)}'"
    data = _read_regular_file(path, where)
    if not data:
        raise CheckpointError(f"{where}: file is empty")
    foreign = _sniff_foreign(data[:8])
    if foreign:
        raise CheckpointError(f"{where}: this is {foreign}")
    if len(data) < 8:
        raise CheckpointError(f"{where}: file is truncated (only {len(data)} bytes)")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(MAX_HEADER, len(data) - 8):
        if _looks_like_text_pickle(data):
            raise CheckpointError(f"{where}: this is {_PICKLE}")
        raise CheckpointError(
            f"{where}: not a safetensors file, or truncated (header length "
            f"{header_len}, file {len(data)} bytes)"
        )
    header = _json(data[8 : 8 + header_len], where, "corrupt safetensors header")
    if not isinstance(header, dict):
        raise CheckpointError(f"{where}: corrupt safetensors header")
    meta_block = header.get("__metadata__")
    meta_raw = meta_block.get("synd") if isinstance(meta_block, dict) else None
    if not isinstance(meta_raw, str):
        raise CheckpointError(f"{where}: a safetensors file, but not a synd model (no synd metadata)")
    meta = _json(meta_raw, where, "corrupt synd metadata (invalid JSON)")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{where}: not a synd model (format {meta.get('format')!r})"
            if isinstance(meta, dict)
            else f"{where}: corrupt synd metadata"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise CheckpointError(f"{where}: corrupt synd metadata (format version {version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: format version {version!r} is newer than this synd "
            f"understands ({FORMAT_VERSION}); upgrade synd"
        )
    try:
        end = max(
            (
                int(e["data_offsets"][1])
                for k, e in header.items()
                if k != "__metadata__" and isinstance(e, dict) and "data_offsets" in e
            ),
            default=0,
        )
    except (TypeError, ValueError, IndexError, KeyError):
        raise CheckpointError(f"{where}: corrupt safetensors header (bad tensor offsets)") from None
    if 8 + header_len + end > len(data):
        raise CheckpointError(f"{where}: file is truncated ({len(data)} bytes, needs {8 + header_len + end})")
    try:
        tensors = load_safetensors_bytes(data)
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types for every corruption
        raise CheckpointError(f"{where}: corrupt tensor data ({error_line(e, 160)})") from None
    return tensors, meta
