"""The `synd` command: one subcommand per job, each with its own --help."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("synd")

EPILOG = """examples:
  synd presets                                   list the looks
  synd render song.flac                          music video song.mp4 with the default look
  synd train ~/music --preset prism --out mine.safetensors --minutes 10
  synd train ~/music --preset sharp -o loss.noise=1.0 --out sharper.safetensors
  synd info                                      models, presets, audio devices, outputs
"""


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise argparse.ArgumentTypeError(f"size {text} is out of range (16 to 8192 pixels a side)")
    return w, h


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synd", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="synd, the SyNEThesia daemon: a neural network that sees the sound "
                    "and paints it, for VJs, streamers and music videos.")
    from synd import __version__
    parser.add_argument("--version", action="version", version=f"synd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("train", help="learn a new look from your own music",
                       description="Train a generator/decoder pair on audio files or folders. "
                                   "Writes OUT (the model), OUT.train.safetensors (state for "
                                   "--resume) and sample sheets in OUT.samples/. Runs unchanged "
                                   "under `torchrun --nproc_per_node N -m synd train ...`.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="AUDIO_OR_DIR")
    p.add_argument("--preset", default=None, help="look to learn (default from config: prism)")
    p.add_argument("--out", type=Path, required=True, help="model file to write (.safetensors)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=_positive(int),
                        help="training steps (default: the preset's; with --resume: the run's)")
    budget.add_argument("--minutes", type=_positive(float),
                        help="train for this long in all (time before an interruption counts)")
    p.add_argument("--size", type=_positive(int),
                   help="training crop in pixels, a multiple of 8 up to 256 (default: the preset's)")
    p.add_argument("--batch", type=_positive(int), help="sequences per step and process")
    p.add_argument("--resume", action="store_true", help="continue from OUT.train.safetensors")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 or mps (default from config: auto)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--holdout", type=float, default=0.1,
                   help="share of the files held out to measure R^2 (default 0.1)")
    p.add_argument("-o", "--set", action="append", default=[], metavar="TABLE.KEY=VALUE",
                   help="change one preset setting, e.g. -o loss.noise=0.3 -o train.steps=5000 "
                        "(tables: features, architecture, loss, look, train)")
    p.add_argument("--eval-every", type=_positive(int), default=250, metavar="N")
    p.add_argument("--sample-every", type=_positive(int), default=500, metavar="N")
    p.add_argument("--checkpoint-every", type=_positive(int), default=250, metavar="N")

    p = sub.add_parser("render", help="make a music video from a song",
                       description="Render a song to a video with its audio muxed in. The "
                                   "frames go straight into the encoder; the file appears "
                                   "only when complete.")
    p.add_argument("song", type=Path)
    p.add_argument("-o", "--output", type=Path,
                   help="video file (default: the song's name with .mp4, beside the song)")
    look = p.add_mutually_exclusive_group()
    look.add_argument("--preset", help="look to use (default from config: prism)")
    look.add_argument("--model", help="model name or .safetensors file (look from its preset)")
    p.add_argument("--size", type=_size, default=(1280, 720), help="WxH (default 1280x720)")
    p.add_argument("--fps", type=_positive(float), default=30.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps (default from config: auto)")
    p.add_argument("--set", action="append", default=[], metavar="look.KEY=VALUE",
                   help="change the look, e.g. --set look.hue=0.25 --set look.feedback=0.6")

    p = sub.add_parser("info", help="models, presets, audio devices and outputs on this machine")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    sub.add_parser("presets", help="list the presets with a one-line description")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="synd: %(message)s")
    from synd.audio import AudioError
    from synd.checkpoint import CheckpointError
    from synd.presets import PresetError
    from synd.train import TrainError
    from synd.video import VideoError

    handlers = {"train": cmd_train, "render": cmd_render, "info": cmd_info, "presets": cmd_presets}
    try:
        return handlers[args.command](args) or 0
    except (AudioError, CheckpointError, PresetError, TrainError, VideoError, ValueError) as e:
        print(f"synd: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a disk or permission problem: one line, no traceback
        where = f" '{e.filename}'" if e.filename else ""
        print(f"synd: error:{where} {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synd: interrupted", file=sys.stderr)
        return 130


def cmd_train(args) -> int:
    from dataclasses import replace

    from synd.config import load_config
    from synd.presets import apply_overrides, load_preset
    from synd.train import TrainOptions, train

    config = load_config()
    preset = apply_overrides(load_preset(args.preset or config.preset), args.set)
    overrides = {k: v for k, v in (("size", args.size), ("batch", args.batch)) if v is not None}
    if overrides:
        preset = replace(preset, train=replace(preset.train, **overrides))
    out = args.out if args.out.suffix == ".safetensors" else args.out.with_name(args.out.name + ".safetensors")
    result = train(TrainOptions(
        inputs=args.inputs, preset=preset, out=out, steps=args.steps, minutes=args.minutes,
        resume=args.resume, device=args.device or config.device, seed=args.seed, holdout=args.holdout,
        eval_every=args.eval_every, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, progress=True))
    log.info("trained %s: %s", out, json.dumps(result))
    return 0


def cmd_render(args) -> int:
    from synd.config import load_config
    from synd.presets import Preset, apply_overrides
    from synd.render import default_output, render_song, resolve_look
    from synd.train import pick_device

    device = pick_device(args.device or load_config().device)
    out = args.output or default_output(args.song)
    if out.resolve() == args.song.resolve():
        raise ValueError(f"refusing to overwrite the song '{args.song}' with its video: choose another -o")
    bundle, look = resolve_look(args.preset, args.model)
    if args.set:
        if any(not item.startswith("look.") for item in args.set):
            raise ValueError("render takes only look settings: --set look.KEY=VALUE")
        look = apply_overrides(Preset(name="render", description="", model="", look=look), args.set).look
    path = render_song(args.song, out, bundle.to(device), look, size=args.size, fps=args.fps,
                       seed=args.seed)
    log.info("wrote %s", path)
    return 0


def cmd_presets(args) -> int:
    from synd.presets import list_presets

    errors: list[str] = []
    presets = list_presets(errors)
    width = max((len(p.name) for p in presets), default=0)
    for p in presets:
        print(f"{p.name:<{width}}  {p.description}")
    for e in errors:
        print(f"synd: warning: {e}", file=sys.stderr)
    if not presets:
        print("synd: no presets found", file=sys.stderr)
        return 1
    return 0


def cmd_info(args) -> int:
    from synd.info import gather_info, format_info

    info = gather_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
