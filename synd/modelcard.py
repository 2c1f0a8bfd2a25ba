"""Model cards: measure a trained model and write what a user should know about it.

    python -m synd.modelcard models/prism.safetensors --heldout data/heldout

runs `synd eval` on held-out audio (frames made as `synd render` makes them at 1280x720,
with the model's look), measures the generator's speed on this machine, stores the
numbers in the model's metadata (`card`) and writes NAME.md and a contact sheet NAME.png
beside the model.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from synd.audio import load_audio
from synd.bundle import ModelBundle, bundle_from_checkpoint
from synd.catalog import model_look
from synd.checkpoint import read_checkpoint
from synd.evaluate import TARGETS, WARMUP_FRAMES, evaluate
from synd.features import FeatureExtractor
from synd.frameloop import FrameLoop
from synd.measure import generator_macs
from synd.model import count_parameters
from synd.quality import r2_score
from synd.sheets import loop_thumbnails, save_contact_sheet
from synd.train import find_audio


def generator_fps(bundle: ModelBundle, width: int, height: int, seconds: float = 3.0) -> float:
    """Median frames/s of the frame loop alone (generator with feedback, batch 1)."""
    loop = FrameLoop(bundle, height, width, look=model_look(bundle))
    feats = bundle.stats.mean.copy()
    for _ in range(3):
        loop.step(feats)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 5:
        t = time.perf_counter()
        loop.step(feats)
        times.append(time.perf_counter() - t)
    return 1.0 / float(np.median(times))


def measure(bundle: ModelBundle, heldout: list[Path], look, size=(1280, 720)) -> dict:
    """`synd eval` numbers and the per-feature read-back R^2 on held-out audio."""
    result, tracks = evaluate(
        bundle, look, heldout, size=size, fps=bundle.features.fps, progress=sys.stderr.isatty()
    )
    t = np.concatenate([tr.given[WARMUP_FRAMES:] for tr in tracks])
    p = np.concatenate([tr.decoded[WARMUP_FRAMES:] for tr in tracks])
    per: dict[str, float | None] = {}
    for i, name in enumerate(bundle.features.names):
        try:
            per[name] = round(r2_score(t[:, [i]], p[:, [i]]), 3)
        except ValueError:  # a feature that never varies in this audio
            per[name] = None
    return {
        "eval": {k: result[k] for k in TARGETS},
        "heldout_r2_per_feature": per,
        "heldout_files": len(heldout),
        "heldout_seconds": result["seconds"],
        "eval_size": f"{result['size']} (painted at {result['painted_at']})",
    }


def sheet(bundle: ModelBundle, song: Path, path: Path, look, count: int = 16) -> None:
    """Contact sheet: one frame every half second of `song`, at the native size."""
    raw = FeatureExtractor(bundle.features).offline(load_audio(song, bundle.features.sample_rate))
    native = bundle.config.native_size
    every = max(1, int(bundle.features.fps / 2))
    thumbs, indices = loop_thumbnails(FrameLoop(bundle, native, native, look=look), raw, every, count)
    save_contact_sheet(
        thumbs,
        path,
        columns=8,
        labels=[f"{i / bundle.features.fps:.1f} s" for i in indices],
        title=f"{bundle.name} on {song.name} (not in its training data)",
    )


def write_card(model: Path, heldout_dir: Path, data_note: str = "", train_note: str = "") -> dict:
    bundle = bundle_from_checkpoint(*read_checkpoint(model), model)  # this file, not a namesake
    files = find_audio([heldout_dir])
    look = model_look(bundle)
    card = measure(bundle, files, look)
    card["generator_fps"] = {
        f"{w}x{h}": round(generator_fps(bundle, w, h), 1) for w, h in ((384, 216), (456, 256), (1280, 720))
    }
    card["generator_gflop_256"] = round(2 * generator_macs(bundle.config, 256, 256) / 1e9, 3)
    card["parameters"] = {
        "generator": count_parameters(bundle.generator),
        "decoder": count_parameters(bundle.decoder),
    }
    card["measured_on"] = (
        f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    bundle.meta["card"] = card
    bundle.save(model)
    sheet(bundle, files[0], model.with_suffix(".png"), look)
    model.with_suffix(".md").write_text(
        render_markdown(bundle, card, data_note, train_note), encoding="utf-8"
    )
    return card


def _cell(text: str) -> str:
    """Text for a Markdown table cell (a bare | would end the cell)."""
    return text.replace("|", r"\|")


def render_markdown(bundle: ModelBundle, card: dict, data_note: str = "", train_note: str = "") -> str:
    meta = bundle.meta
    preset = meta.get("preset", {})
    summary = meta.get("summary", {})
    data = meta.get("data", {})
    worst = sorted(
        ((k, v) for k, v in card["heldout_r2_per_feature"].items() if v is not None), key=lambda kv: kv[1]
    )[:3]
    lines = [
        f"# Model card: {bundle.name}",
        "",
        f"Preset `{preset.get('name')}`: {preset.get('description', '')}.",
        "",
        f"![contact sheet]({bundle.name}.png)",
        "",
        "## Training",
        f"- Data: {data.get('files')} files, {data.get('seconds')} s of audio"
        + (f" ({data_note})" if data_note else "")
        + ".",
        f"- Steps: {summary.get('steps')}, wall time {summary.get('wall_seconds')} s, "
        f"{summary.get('processes', 1)} process(es) on {summary.get('device', 'cpu')}"
        + (f"; {train_note}" if train_note else "")
        + ".",
        f"- Minutes until the held-out R^2 (crops) first reached 0.9: "
        f"{summary.get('metrics', {}).get('minutes_to_r2_0.9')}.",
        *_readback_lines(meta.get("readback")),
        f"- Loss weights: {json.dumps({k: v for k, v in meta.get('loss_weights', {}).items() if v})}",
        f"- Features: {bundle.features.kind}, {bundle.features.bands} bands + loudness + onset, "
        f"{bundle.features.sample_rate} Hz, n_fft {bundle.features.n_fft}.",
        f"- Architecture: {json.dumps(bundle.config.to_dict())}; "
        f"{card['parameters']['generator']} generator and {card['parameters']['decoder']} "
        "decoder parameters.",
        "",
        "## Measured",
        f"`synd eval` on {card['heldout_files']} held-out tracks never seen in training "
        f"({card['heldout_seconds']} s), frames as `synd render` makes them at "
        f"{card['eval_size']} with the preset's look:",
        "",
        "| metric | value | target (default preset) |",
        "|---|---|---|",
        *[f"| {k} | {v} | {_cell(TARGETS[k])} |" for k, v in card["eval"].items()],
        "",
        f"- Hardest features to read back: {', '.join(f'{k} {v}' for k, v in worst)}.",
        f"- Generator speed ({card['measured_on']}): "
        + ", ".join(f"{k} {v} fps" for k, v in card["generator_fps"].items())
        + f"; {card['generator_gflop_256']} GFLOP a frame at 256x256.",
        "",
        "",
    ]
    return "\n".join(lines)


def _readback_lines(readback: dict | None) -> list[str]:
    """The card's line on a decoder fine-tuned on whole frames (`synd.readback`), if it was."""
    if not isinstance(readback, dict):
        return []
    return [
        f"- Then the decoder alone (the generator kept, so every picture is unchanged) read whole "
        f"frames painted through the looks {', '.join(readback.get('looks', []))}: "
        f"{readback.get('train_frames')} frames of {readback.get('files')} files, "
        f"{readback.get('steps')} steps, {readback.get('wall_seconds')} s; held-out frames read at "
        f"R^2 {readback.get('holdout_r2_before')} before, {readback.get('holdout_r2_after')} after."
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m synd.modelcard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", type=Path)
    parser.add_argument("--heldout", type=Path, required=True, help="folder of unseen audio")
    parser.add_argument("--data-note", default="", help="where the training audio came from")
    parser.add_argument("--train-note", default="", help="how the training ran")
    args = parser.parse_args(argv)
    card = write_card(args.model, args.heldout, args.data_note, args.train_note)
    print(json.dumps({k: v for k, v in card.items() if k != "heldout_r2_per_feature"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
