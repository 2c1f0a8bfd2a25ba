"""`synd info`: what synd finds on this machine."""

from __future__ import annotations

import platform

import torch

from synd.bridges.base import output_status
from synd.catalog import model_files
from synd.checkpoint import CheckpointError, read_checkpoint
from synd.presets import list_presets


def _section(meta: dict, key: str) -> dict:
    """`meta[key]` when it is a dict, else an empty one."""
    value = meta.get(key)
    return value if isinstance(value, dict) else {}


def list_models() -> list[dict]:
    """Model files in the search folders, with the summary their metadata carries."""
    models = []
    for name, path in model_files():
        entry = {"name": name, "path": str(path), "bytes": path.stat().st_size}
        try:
            _, meta = read_checkpoint(path)
            summary, preset, card = (_section(meta, k) for k in ("summary", "preset", "card"))
            scores = _section(card, "eval")
            entry.update(
                preset=preset.get("name"),
                steps=summary.get("steps"),
                sound_r2=scores.get("sound_r2"),
                probe_r2=scores.get("probe_r2"),
            )
        except CheckpointError as e:
            entry["error"] = str(e)
        models.append(entry)
    return models


def audio_devices() -> dict:
    """Audio inputs synd can capture (PortAudio devices and PulseAudio/PipeWire sources)."""
    from synd.capture import list_inputs

    return {"inputs": list_inputs()}


def gather_info() -> dict:
    """Everything `synd info` reports, as JSON-able data."""
    return {
        "platform": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "torch": torch.__version__,
        "devices": ["cpu"]
        + (["cuda"] if torch.cuda.is_available() else [])
        + (["mps"] if torch.backends.mps.is_available() else []),
        "models": list_models(),
        "presets": [{"name": p.name, "model": p.model, "description": p.description} for p in list_presets()],
        "audio": audio_devices(),
        "outputs": {
            name: ("available" if reason is None else f"unavailable: {reason}")
            for name, reason in output_status().items()
        },
    }


def _input_line(d: dict) -> str:
    index = "" if d["index"] is None else f"[{d['index']}] "
    default = ", default" if d.get("default") else ""
    return f"{index}{d['name']} ({d['channels']} ch, {d['host_api']}{default})"


def format_info(info: dict) -> str:
    """The human-readable version."""
    lines = [
        f"synd on {info['platform']}, torch {info['torch']} ({', '.join(info['devices'])})",
        "",
        "models:",
    ]
    for m in info["models"] or [{"name": "(none)"}]:
        detail = m.get("error") or ", ".join(
            f"{k} {m[k]}" for k in ("preset", "steps", "sound_r2", "probe_r2") if m.get(k) is not None
        )
        lines.append(f"  {m['name']:<12} {detail}")
    lines += ["", "presets:"]
    lines += [f"  {p['name']:<12} {p['description']}" for p in info["presets"]]
    lines += ["", "audio inputs:"]
    audio = info["audio"]
    if "error" in audio:
        lines.append(f"  {audio['error']}")
    else:
        lines += [f"  {_input_line(d)}" for d in audio["inputs"]] or [
            "  (none found: start PulseAudio/PipeWire, plug in a device, or use --input FILE)"
        ]
    lines += ["", "outputs:"]
    lines += [f"  {name:<11} {status}" for name, status in info["outputs"].items()]
    return "\n".join(lines)
