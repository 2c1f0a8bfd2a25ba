"""The `synd` command: one subcommand per job, each with its own --help."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from synd.sizes import GENERATION_SHORT_SIDE

log = logging.getLogger("synd")


EPILOG = """examples:
  synd presets                                   list the looks
  synd render song.flac                          music video song.mp4 with the default look
  synd eval song.flac --report report/           does the picture see the sound? (HTML)
  synd eval --video capture.mp4                  score any visualizer's video the same way
  synd listen song.mp4 -o heard.wav              hear the sound back from the pictures
  synd train ~/music --preset prism --out mine.safetensors --minutes 10
  synd train ~/music --preset sharp -o loss.noise=1.0 --out sharper.safetensors
  synd run --input mic --output preview          live visuals from the microphone
  synd run --tray                                live, with a tray icon and control window
  synd tray                                      a tray for an already running synd run
  synd info                                      models, presets, audio devices, outputs
"""


def _size(text: str) -> tuple[int, int]:
    from synd.config import parse_size

    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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


BENCH_PARTS = (
    "limits",
    "generator",
    "baseline",
    "live",
    "render",
    "train",
    "ndi",
    "capacity",
    "guard",
    "judge",
    "switch",
)


def _bench_part(text: str) -> str:
    if text not in BENCH_PARTS:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(BENCH_PARTS)}, not {text!r}")
    return text


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _add_look_args(p: argparse.ArgumentParser, settings: bool = True) -> None:
    """--preset/--model, --set look.KEY=VALUE and --device: shared by render, eval, listen
    and bench (`settings=False`: no --set, where the look does not matter)."""
    look = p.add_mutually_exclusive_group()
    look.add_argument("--preset", help="look to use (default from config: lava)")
    look.add_argument("--model", help="model name or .safetensors file (look from its preset)")
    if settings:
        p.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="look.KEY=VALUE",
            help="change the look, e.g. --set look.hue=0.25 --set look.feedback=0.6",
        )
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps (default from config: auto)")


def _add_detail(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--detail",
        type=_positive(int),
        default=GENERATION_SHORT_SIDE,
        metavar="PIXELS",
        help=f"{what} (default {GENERATION_SHORT_SIDE}; 256, the models' native scale, is finer and slower)",
    )


def _on_off(text: str) -> bool:
    if text.lower() in ("on", "true", "1", "yes"):
        return True
    if text.lower() in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"choose on or off, not {text!r}")


def _add_flash_guard(p: argparse.ArgumentParser, default: bool | None) -> None:
    p.add_argument(
        "--flash-guard",
        dest="flash_guard",
        type=_on_off,
        default=default,
        metavar="on|off",
        help="never more than 3 flashes a second over a quarter of the screen "
        "(ITU-R BT.1702; default on; off warns: a seizure risk)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synd",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
        description="synd, the SyNEThesia daemon: a neural network that sees the sound "
        "and paints it, for VJs, streamers and music videos.",
    )
    from synd import __version__

    parser.add_argument("--version", action="version", version=f"synd {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "train",
        help="learn a new look from your own music",
        description="Train a generator/decoder pair on audio files or folders. "
        "With --out mine.safetensors it writes mine.safetensors (the model), "
        "mine.train.safetensors (the state for --resume) and sample sheets in "
        "mine.samples/, side by side; with --out a folder (an existing one, or one "
        "ending in /), the same files inside it, named after the first input and the "
        "preset (music-prism.safetensors). Runs unchanged under "
        "`torchrun --nproc_per_node N -m synd train ...`.",
    )
    p.add_argument("inputs", nargs="+", type=Path, metavar="AUDIO_OR_DIR")
    p.add_argument("--preset", default=None, help="look to learn (default from config: lava)")
    p.add_argument(
        "--out",
        required=True,
        metavar="OUT",
        help="model file to write (.safetensors), or a folder to write it in (made if missing)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps",
        type=_positive(int),
        help="training steps (default: the preset's; with --resume: the run's)",
    )
    budget.add_argument(
        "--minutes",
        type=_positive(float),
        help="train for this long in all (time before an interruption counts)",
    )
    p.add_argument(
        "--size",
        type=_positive(int),
        help="training crop in pixels, a multiple of 8 up to 256 (default: the preset's)",
    )
    p.add_argument("--batch", type=_positive(int), help="sequences per step and process")
    p.add_argument("--resume", action="store_true", help="continue from OUT.train.safetensors")
    p.add_argument(
        "--init",
        metavar="MODEL",
        help="start from this model's weights (a name or .safetensors file; fine-tuning): "
        "it must have the preset's network and features",
    )
    p.add_argument(
        "--device", default=None, help="auto, cpu, cuda, cuda:1 or mps (default from config: auto)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--holdout", type=float, default=0.1, help="share of the files held out to measure R^2 (default 0.1)"
    )
    p.add_argument(
        "-o",
        "--set",
        action="append",
        default=[],
        metavar="TABLE.KEY=VALUE",
        help="change one preset setting, e.g. -o loss.noise=0.3 -o train.steps=5000 "
        "(tables: features, architecture, loss, look, train)",
    )
    p.add_argument(
        "--decoder-only",
        action="store_true",
        help="keep the generator (every picture stays the same) and fine-tune the decoder "
        "of --init (default: the preset's model) to read whole frames as looks show them",
    )
    p.add_argument(
        "--looks",
        metavar="PRESET,...",
        help="with --decoder-only: the presets whose looks paint the frames "
        "(default: every offered preset of that model)",
    )
    p.add_argument("--eval-every", type=_positive(int), default=250, metavar="N")
    p.add_argument("--sample-every", type=_positive(int), default=500, metavar="N")
    p.add_argument("--checkpoint-every", type=_positive(int), default=250, metavar="N")
    p.add_argument("--quiet", action="store_true", help="no progress bar (nor progress lines in a log)")

    p = sub.add_parser(
        "render",
        help="make music videos from songs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render songs to videos with their audio muxed in (one video "
        "per song). Frames go straight into the encoder; each file "
        "appears only when complete, so Ctrl-C or a full disk never "
        "leaves a broken video behind.",
        epilog="examples:\n"
        "  synd render song.flac                      song.mp4 beside the song\n"
        "  synd render *.mp3 -o videos/               one video per song\n"
        "  synd render live.wav -o set.mov --codec prores --size 1920x1080\n"
        "  synd render song.flac --start 60 --duration 15 -o teaser.mp4",
    )
    p.add_argument(
        "songs",
        nargs="+",
        type=Path,
        metavar="SONG",
        help="audio or video files with sound (any format FFmpeg reads)",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT_OR_DIR",
        help="video file (one song; .mp4, .mov, .mkv) or folder: an existing one, or one ending "
        "in / (made if missing) (default: SONG.mp4 beside each song)",
    )
    _add_look_args(p)
    p.add_argument("--size", type=_size, default=(1280, 720), help="WxH (default 1280x720)")
    p.add_argument("--fps", type=_positive(float), default=30.0, help="frames per second (default 30)")
    p.add_argument(
        "--codec",
        choices=["h264", "hevc", "av1", "prores"],
        default="h264",
        help="video codec (default h264; prores needs .mov or .mkv)",
    )
    p.add_argument(
        "--crf", type=int, default=20, help="quality, lower is better (default 20; h264/hevc/av1 only)"
    )
    p.add_argument(
        "--speed",
        default="superfast",
        choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"],
        help="encoder speed: slower makes smaller files of the same quality (default superfast)",
    )
    p.add_argument("--start", type=_non_negative, default=0.0, help="start at this second of the song")
    p.add_argument("--duration", type=_positive(float), help="render only this many seconds")
    p.add_argument("--seed", type=int, default=0, help="seed of the starting picture (default 0)")
    _add_detail(p, "short side at which the pictures are painted before upscaling")
    _add_flash_guard(p, True)
    p.add_argument("--quiet", action="store_true", help="no progress bar (nor progress lines in a log)")

    p = sub.add_parser(
        "eval",
        help="measure how well the pictures see the sound, for synd or any other visualizer's video",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="With songs: render the frames (without encoding) and "
        "measure the model: sound_r2 (the decoder reads the sound "
        "back), probe_r2, sync_corr/sync_lag_frames, colorfulness, "
        "flicker_silence and silence_motion_de. Use music the model "
        "was not trained on.\n\n"
        "Then, for songs and for --video alike, the judge scores "
        "what a viewer sees, from pictures and sound alone: "
        "motion_de, swing_de, variety_de, spread_de (CIELAB "
        "delta-E; 2.3 is just visible), tiling, onset_sync, "
        "beat_sync, energy_sync, sound_de, sound_frac, flashes_max "
        "and flash_hazard_s. The README explains each number.",
        epilog="examples:\n"
        "  synd eval song.flac\n"
        "  synd eval --preset poster ~/music/*.mp3 --json poster.json "
        "--report poster-report/\n"
        "  synd eval --video projectm.mp4 --video synd.mp4 --audio "
        "song.flac --report side-by-side/",
    )
    p.add_argument(
        "audio",
        nargs="*",
        type=Path,
        metavar="SONG",
        help="songs to render and measure (or give --video instead)",
    )
    p.add_argument(
        "--video",
        action="append",
        type=Path,
        default=[],
        metavar="CLIP",
        help="score a video made by any program (repeat for side by side)",
    )
    p.add_argument(
        "--audio",
        dest="video_audio",
        type=Path,
        metavar="SONG",
        help="with --video: the music the videos were made to (default: each video's own soundtrack)",
    )
    _add_look_args(p)
    p.add_argument("--json", type=Path, metavar="OUT", help="write the numbers as one JSON object")
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write an HTML report with plots and a contact sheet to DIR",
    )
    p.add_argument(
        "--size",
        type=_size,
        default=(1280, 720),
        help="output size WxH whose frames are measured (default 1280x720)",
    )
    p.add_argument("--fps", type=_positive(float), default=30.0, help="frames per second (default 30)")
    p.add_argument("--seed", type=int, default=0)
    _add_detail(p, "short side at which the pictures are painted")
    _add_flash_guard(p, True)
    p.add_argument("--quiet", action="store_true", help="no progress bar (nor progress lines in a log)")

    p = sub.add_parser(
        "listen",
        help="hear the sound the pictures carry (video or images -> WAV)",
        description="Read the sound features back from a video's frames (or a "
        "folder of images) with the model's decoder and turn them "
        "into audio. Use the model that painted the pictures.",
        epilog="example:\n  synd render song.flac && synd listen song.mp4 -o heard.wav",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", type=Path, metavar="VIDEO_OR_IMAGE_DIR")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT.wav",
        help="WAV file to write (default: SOURCE.heard.wav beside the source)",
    )
    _add_look_args(p, settings=False)
    p.add_argument(
        "--fps",
        type=_positive(float),
        help="frame rate of an image folder, or to override a video's (default: the "
        "video's own; 30 for images)",
    )
    _add_detail(p, "the --detail the video was rendered with")

    p = sub.add_parser(
        "bench",
        help="measure what this machine can do (live, render, train)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Measure synd on this machine, with warm-up and medians over "
        "repeated runs, and report ratios measured in the same run: "
        "the generator's share of the machine's GEMM rate, frames/s "
        "against the original SyNEThesia generator, multiples of real "
        "time. Each ratio is measured in rounds alternating its two sides "
        "and shown with the rounds' p10-p90 spread; a target the rounds "
        "cannot decide, or one measured while other processes kept the "
        "machine busy, says 'noisy: rerun on an idle machine'. With no "
        "PART, everything (a few minutes; --quick: about a minute).",
        epilog="parts:\n"
        "  limits     float32 GEMM GFLOP/s and memory copy GB/s\n"
        "  generator  frames/s of each shipped preset at 128x128 to 1280x720, "
        "GFLOP a frame, share of GEMM\n"
        "  baseline   the original SyNEThesia generator at the same sizes; "
        "speed ratio, sound R^2 of both\n"
        "  live       the live chain painting 256x256 to 1280x720 at 60 fps: "
        "fps, drops, ms per stage, latency\n"
        "  render     x real time at 1280x720@30 and 1920x1080@30, encoding "
        "alone vs the whole pipeline\n"
        "  train      training steps/s at the default crop and batch\n"
        "  ndi        a real NDI source at 720p60 and 1080p30 watched by a "
        "receiver (when installed)\n"
        "  capacity   per preset, the largest painted size that holds 60 fps "
        "and 30 fps live\n"
        "  switch     the longest frame while presets change (not in the "
        "default set)\n\n"
        "examples:\n"
        "  synd bench --quick\n"
        "  synd bench --json bench.json\n"
        "  synd bench live render",
    )
    p.add_argument(
        "parts",
        nargs="*",
        type=_bench_part,
        metavar="PART",
        help="what to measure (default: everything but switch)",
    )
    p.add_argument(
        "--quick", action="store_true", help="the default preset only, short runs, no NDI, estimated capacity"
    )
    p.add_argument("--json", type=Path, metavar="OUT", help="also write the numbers as JSON")
    _add_look_args(p, settings=False)
    p.add_argument(
        "--sizes",
        type=lambda t: [_size(s) for s in t.split(",")],
        default=None,
        metavar="WxH,...",
        help="render sizes (default 1280x720,1920x1080)",
    )
    p.add_argument(
        "--seconds",
        type=_positive(float),
        default=None,
        help="song length for render (default 20; 4 with --quick)",
    )
    p.add_argument("--speed", default="superfast", help="x264 speed preset (default superfast)")
    _add_detail(p, "short side at which render and NDI paint")

    p = sub.add_parser(
        "run",
        help="the live daemon: audio in, visuals out to VJ software",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Capture audio and paint it live, publishing frames to the "
        "outputs until stopped (Ctrl-C, SIGTERM, or q in the preview). "
        "Stays in the foreground, for systemd and launchd. Settings "
        "come from the [run], [osc], [midi] and [tray] tables of the "
        "config file; flags and -o (e.g. -o fps=60, -o osc.listen=off) "
        "override them.",
        epilog="inputs: system (what the computer plays), mic, a device name or "
        "index (see synd info), or an audio file played in real time\n"
        "outputs (comma-separated; NAME@WxH@FPS sets an output's own size "
        "and rate):\n"
        "  preview            a window (f: fullscreen, Esc, q: quit)\n"
        "  ndi[:NAME]         an NDI source for Resolume, OBS, TouchDesigner\n"
        "  syphon[:NAME]      a Syphon server (macOS)\n"
        "  spout[:NAME]       a Spout sender (Windows)\n"
        "  virtualcam[:DEV]   a virtual webcam (v4l2loopback, OBS camera)\n"
        "  record:FILE.mp4    a video file with the captured audio\n\n"
        "examples:\n"
        "  synd run                                 system audio -> preview window and NDI\n"
        "  synd run --input mic --output preview,record:set.mp4\n"
        "  synd run --input song.flac --play --preset lava\n"
        "  synd run --tray                          a tray icon and control window\n"
        "  synd run --output ndi@1920x1080@30,preview@640x360 --ndi-name Stage\n"
        "  synd run -o fps=60 -o delay_ms=80",
    )
    p.add_argument(
        "--input",
        help="system, mic, a device name/index or an audio file "
        "(default: system audio when available, else the microphone)",
    )
    p.add_argument(
        "--play",
        action="store_true",
        default=None,
        help="with a file as input: also play it through the speakers",
    )
    p.add_argument(
        "--loop", action="store_true", default=None, help="with a file as input: start again at the end"
    )
    p.add_argument(
        "--output",
        help="outputs, e.g. preview,ndi,record:set.mp4 (default: auto = "
        "the preview window where there is a display, NDI where "
        "installed; with no display, also a recording)",
    )
    p.add_argument(
        "--osc",
        metavar="HOST:PORT",
        help="where the OSC server listens (default 127.0.0.1:9000; off: no OSC)",
    )
    p.add_argument(
        "--osc-remote",
        dest="osc_remote",
        action="store_true",
        default=None,
        help="allow --osc beyond this machine (e.g. 0.0.0.0:9000)",
    )
    p.add_argument(
        "--osc-allow",
        dest="osc_allow",
        metavar="LIST",
        help="only take OSC from these IPs, hosts or networks (comma-separated)",
    )
    p.add_argument(
        "--osc-feedback",
        dest="osc_feedback",
        metavar="HOST:PORT",
        help="send status, beats and changes there (e.g. a TouchOSC tablet)",
    )
    p.add_argument(
        "--midi",
        metavar="PORT",
        help="MIDI input: auto (default: the first port, else a virtual port named "
        "synd), virtual, part of a port's name, or off",
    )
    p.add_argument("--midi-api", dest="midi_api", choices=["auto", "alsa", "jack", "coremidi", "winmm"])
    p.add_argument(
        "--midi-map",
        dest="midi_map",
        metavar="FILE",
        help="MIDI mapping (default ~/.config/synd/midi.toml, else the shipped one)",
    )
    p.add_argument(
        "--midi-feedback",
        dest="midi_feedback",
        metavar="PORT",
        help="send state back to this MIDI output (controller LEDs; virtual: a port)",
    )
    p.add_argument(
        "--mix",
        choices=["image", "weights"],
        help="how the crossfader blends two models: pictures or weights",
    )
    _add_flash_guard(p, None)  # None: the config's [run] flash_guard
    p.add_argument(
        "--tray",
        action="store_true",
        default=None,
        help="show a tray icon and a control window (with the picture; the "
        "default outputs then leave out the preview window)",
    )
    p.add_argument(
        "--ndi-name", dest="ndi_name", help="source name of the ndi, syphon and spout outputs (default synd)"
    )
    p.add_argument("--fps", type=_positive(float), help="frames per second (default 30)")
    p.add_argument("--size", help="main output size WxH (default 1280x720)")
    p.add_argument(
        "--delay-ms",
        type=_non_negative,
        dest="delay_ms",
        help="delay the visuals by this much, for audio that reaches the room later",
    )
    _add_look_args(p, settings=False)
    p.add_argument("--config", type=Path, help="config file (default: ~/.config/synd/config.toml)")
    p.add_argument(
        "-o",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key for this run, e.g. -o fps=60 -o input=mic",
    )

    p = sub.add_parser(
        "tray",
        help="a tray icon and control window for a running synd run",
        description="Attach to a running `synd run` over its OSC port and show "
        "a tray icon (presets, input, outputs, intensity, freeze, "
        "blackout) and a control window with the live picture. "
        "Quitting the tray leaves synd running. Where the desktop "
        "has no system tray, the control window opens instead.",
        epilog="control window keys: PgDown/PgUp next/previous preset, Ctrl+1..9 "
        "preset N, Ctrl+Up/Down intensity, [ ] fade to A/B, C cut on the "
        "beat, F freeze, B blackout, Ctrl+L MIDI learn, Esc close, Ctrl+Q quit",
    )
    p.add_argument(
        "--osc",
        metavar="HOST:PORT",
        help="synd's OSC port (default: the config's [osc] listen, 127.0.0.1:9000)",
    )
    p.add_argument("--config", type=Path, help="config file (default: ~/.config/synd/config.toml)")

    p = sub.add_parser("service", help="run synd as a background service (systemd user unit)")
    ssub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = ssub.add_parser(
        "install",
        help="write and enable a systemd user unit running `synd run`",
        description="Write ~/.config/systemd/user/synd.service running `synd run "
        "RUN_ARGS` and enable it (systemctl --user enable --now).",
        epilog="example: synd service install -- --input mic --output preview",
    )
    q.add_argument("--no-enable", action="store_true", help="only write the unit file")
    q.add_argument("run_args", nargs=argparse.REMAINDER, metavar="-- RUN_ARGS", help="arguments for synd run")

    p = sub.add_parser(
        "midi",
        help="MIDI tools: list ports, learn a control",
        description="synd midi ports [--api API]: list MIDI ports. synd midi learn "
        "TARGET [--port PART] [--mapping FILE]: bind the next control "
        "moved to TARGET (a parameter such as intensity, a trigger such "
        "as blackout, cut, or preset/next) and save the mapping. A running "
        "synd run learns over OSC instead: /synd/midi/learn s TARGET.",
    )
    from synd.midi import add_commands

    add_commands(p)

    p = sub.add_parser("info", help="models, presets, audio devices and outputs on this machine")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")

    sub.add_parser("presets", help="list the presets with a one-line description")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="synd: %(message)s")
    if args.command == "run":
        _stop_during_startup()
        try:
            return _main(args)
        except _StartupStopped as exc:
            log.info("%s during start-up: stopped before starting", exc)
            return 0
    return _main(args)


def _main(args) -> int:
    from synd.audio import AudioError
    from synd.capture import CaptureError
    from synd.checkpoint import CheckpointError
    from synd.presets import PresetError
    from synd.train import TrainError
    from synd.video import VideoError

    handlers = {
        "train": cmd_train,
        "render": cmd_render,
        "eval": cmd_eval,
        "bench": cmd_bench,
        "midi": cmd_midi,
        "tray": cmd_tray,
        "listen": cmd_listen,
        "run": cmd_run,
        "service": cmd_service,
        "info": cmd_info,
        "presets": cmd_presets,
    }
    if args.command in ("train", "render", "eval", "listen"):
        _stop_on_signals()
    try:
        return handlers[args.command](args) or 0
    except (AudioError, CaptureError, CheckpointError, PresetError, TrainError, VideoError, ValueError) as e:
        print(f"synd: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a disk or permission problem: one line, no traceback
        where = f" '{e.filename}'" if e.filename else ""
        print(f"synd: error:{where} {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("synd: interrupted", file=sys.stderr)
        return 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _stop_on_signals() -> None:
    """Make SIGINT, SIGTERM (kill, systemd) and a closing terminal's HUP stop a job like Ctrl-C,
    so the same clean-up runs: no half-written video, a training checkpoint."""
    import signal

    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python keeps an
    # inherited "ignore", so `kill -INT` would otherwise do nothing.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _interrupt)


def cmd_train(args) -> int:
    from dataclasses import replace

    from synd.config import load_config
    from synd.presets import apply_overrides, load_preset
    from synd.train import TrainOptions, learning_warning, model_path, summary_table, train

    config = load_config()
    if args.decoder_only:
        return _train_decoder(args, load_preset(args.preset or config.preset))
    if args.looks:
        raise ValueError("--looks goes with --decoder-only")
    preset = apply_overrides(load_preset(args.preset or config.preset), args.set)
    overrides = {k: v for k, v in (("size", args.size), ("batch", args.batch)) if v is not None}
    if overrides:
        preset = replace(preset, train=replace(preset.train, **overrides))
    out = model_path(args.out, args.inputs, preset.name)
    result = train(
        TrainOptions(
            inputs=args.inputs,
            preset=preset,
            out=out,
            steps=args.steps,
            minutes=args.minutes,
            resume=args.resume,
            init=args.init,
            device=args.device or config.device,
            seed=args.seed,
            holdout=args.holdout,
            eval_every=args.eval_every,
            sample_every=args.sample_every,
            checkpoint_every=args.checkpoint_every,
            progress=not args.quiet,
        )
    )
    import os

    if int(os.environ.get("RANK", "0")) == 0:  # one summary under torchrun
        print(f"trained {out}:\n{summary_table(result, out, preset.loss)}", flush=True)
        warning = learning_warning(result)
        if warning:
            log.warning("%s", warning)
    return 0


def _train_decoder(args, preset) -> int:
    """`synd train --decoder-only`: the decoder of a model learns to read whole frames."""
    from synd.bundle import load_model
    from synd.presets import list_presets, load_preset
    from synd.readback import ReadbackOptions, tune_decoder
    from synd.train import model_path

    asked = (("--resume", args.resume), ("--size", args.size), ("--set", args.set))
    unused = [flag for flag, on in asked if on]
    if unused:
        raise ValueError(f"--decoder-only keeps the model's network and settings: drop {', '.join(unused)}")
    bundle = load_model(args.init or preset.model)
    if args.looks:
        looks = [load_preset(name.strip()) for name in args.looks.split(",") if name.strip()]
    else:
        looks = [p for p in list_presets() if p.model == bundle.name] or [preset]
    out = model_path(args.out, args.inputs, bundle.name)
    result = tune_decoder(
        ReadbackOptions(
            inputs=args.inputs,
            bundle=bundle,
            looks=looks,
            out=out,
            minutes=args.minutes,
            steps=args.steps,
            holdout=args.holdout,
            batch=args.batch or 16,
            eval_every=args.eval_every,
            seed=args.seed,
            progress=not args.quiet,
        )
    )
    verb = "wrote" if result["written"] else "kept (not written)"
    print(
        f"{verb} {out}: the decoder of '{bundle.name}' reads held-out whole frames of "
        f"{', '.join(result['looks'])} at R^2 {result['holdout_r2_before']} -> {result['holdout_r2_after']} "
        f"({result['steps']} steps, {result['wall_seconds']} s)",
        flush=True,
    )
    return 0


def _model_and_look(args):
    """The model (on the chosen device) and look that --preset/--model/--set ask for."""
    from synd.catalog import resolve_look
    from synd.config import load_config
    from synd.device import pick_device
    from synd.presets import Preset, apply_overrides

    device = pick_device(args.device or load_config().device)
    bundle, look = resolve_look(args.preset, args.model)
    if getattr(args, "set", None):
        if any(not item.startswith("look.") for item in args.set):
            raise ValueError("only look settings can be changed here: --set look.KEY=VALUE")
        look = apply_overrides(Preset(name="cli", description="", model="", look=look), args.set).look
    return bundle.to(device), look


def cmd_render(args) -> int:
    from synd.audio import AudioError
    from synd.render import RenderOptions, check_size, output_paths, render_song
    from synd.video import VideoError

    check_size(args.size, args.codec)  # before any work, not after the first song's features
    outs = output_paths(args.songs, args.output, args.codec)
    for song, out in zip(args.songs, outs):
        if out.resolve() == song.resolve():
            raise ValueError(f"refusing to overwrite the song '{song}' with its video: choose another -o")
    bundle, look = _model_and_look(args)
    options = RenderOptions(
        size=args.size,
        fps=args.fps,
        codec=args.codec,
        crf=args.crf,
        speed=args.speed,
        start=args.start,
        duration=args.duration,
        seed=args.seed,
        detail=args.detail,
        progress=not args.quiet,
        flash_guard=args.flash_guard,
    )
    if not args.flash_guard:
        log.warning(
            "flash guard off: the video may flash more than 3 times a second, a seizure risk for some viewers"
        )
    failed = 0
    for song, out in zip(args.songs, outs):
        try:
            result = render_song(song, out, bundle, look, options)
        except (AudioError, VideoError) as e:  # one bad song does not stop the others
            print(f"synd: error: {e}", file=sys.stderr)
            failed += 1
            continue
        log.info(
            "wrote %s (%d frames, %.1f s, %.2fx real time%s)",
            result.path,
            result.frames,
            result.seconds_of_audio,
            result.speed,
            f", {result.guarded_frames} frames limited by the flash guard" if result.guarded_frames else "",
        )
    if failed and len(outs) > 1:
        log.info("%d of %d songs failed", failed, len(outs))
    return 1 if failed else 0


def cmd_eval(args) -> int:
    from synd.evaluate import evaluate, print_summary, write_eval_report
    from synd.files import write_json

    if args.video:
        return _eval_videos(args)
    if args.video_audio is not None:
        raise ValueError("--audio goes with --video; songs to render are given without it")
    if not args.audio:
        raise ValueError("give songs to render and measure, or --video CLIP to score a video")
    bundle, look = _model_and_look(args)
    result, tracks = evaluate(
        bundle,
        look,
        args.audio,
        size=args.size,
        fps=args.fps,
        seed=args.seed,
        detail=args.detail,
        progress=not args.quiet,
        flash_guard=args.flash_guard,
    )
    print(
        f"{bundle.name} on {len(tracks)} track(s), {result['seconds']} s (painted at {result['painted_at']}):"
    )
    print(print_summary(result))
    if args.json:
        log.info("wrote %s", write_json(result, args.json))
    if args.report:
        log.info("wrote %s", write_eval_report(result, tracks, args.report, bundle, args.fps))
    return 0


def _eval_videos(args) -> int:
    """`synd eval --video`: the judge's view of videos made by any program."""
    from synd.evaluate import evaluate_videos, print_summary, write_video_report
    from synd.files import write_json

    if args.audio:
        raise ValueError("give either songs to render or --video clips, not both")
    result, judged = evaluate_videos(args.video, args.video_audio, progress=not args.quiet)
    print(f"{len(judged)} video(s), {result['seconds']} s:")
    print(print_summary(result))
    if args.json:
        log.info("wrote %s", write_json(result, args.json))
    if args.report:
        log.info("wrote %s", write_video_report(result, judged, args.report))
    return 0


class _StartupStopped(Exception):
    """SIGINT/SIGTERM while `synd run` was still starting (importing, loading the model)."""


def _stop_during_startup() -> None:
    """`synd run` takes seconds to start (imports, the model): SIGINT/SIGTERM meanwhile
    raise _StartupStopped, which `main` turns into a clean exit. run_daemon installs the
    running daemon's own handlers once it is built."""

    def during_startup(signum, frame):
        raise _StartupStopped(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, during_startup)
    signal.signal(signal.SIGTERM, during_startup)


#: `synd run` flags (argparse dests) that set a key of the config's [run] table; the
#: OSC, MIDI and tray flags are named as their keys once were (`synd.config.MOVED`).
RUN_TABLE_FLAGS = (
    "input",
    "play",
    "loop",
    "output",
    "fps",
    "size",
    "delay_ms",
    "ndi_name",
    "mix",
    "flash_guard",
)


def cmd_run(args) -> int:
    from synd.config import MOVED, apply_overrides, load_config, with_values
    from synd.daemon import run_daemon

    config = apply_overrides(load_config(args.config), args.overrides)
    where = {**{k: ("run", k) for k in RUN_TABLE_FLAGS}, **MOVED}
    flags: dict[tuple[str | None, str], object] = {
        where[dest]: value for dest in where if (value := getattr(args, dest)) is not None
    }
    config = with_values(config, flags, "flags")
    return run_daemon(config, preset=args.preset, model=args.model, device=args.device)


def cmd_tray(args) -> int:
    from synd.bridges.preview import display_problem
    from synd.config import is_off, load_config, parse_host_port

    target = args.osc or load_config(args.config).osc.listen
    if is_off(target):
        raise ValueError("synd's OSC is off in the config: give --osc HOST:PORT")
    host, port = parse_host_port(target, "osc")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    problem = display_problem()
    if problem:
        raise ValueError(f"cannot show the tray: {problem}")
    from synd.tray import attach

    return attach(host, port)


def cmd_midi(args) -> int:
    from synd.midi import run_command

    return run_command(args)


def cmd_service(args) -> int:
    from synd.service import install

    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args
    try:
        _, notes = install(run_args, enable=not args.no_enable)
    except RuntimeError as e:
        print(f"synd: error: {e}", file=sys.stderr)
        return 1
    for line in notes:
        log.info("%s", line)
    return 0


def cmd_listen(args) -> int:
    from synd.listen import default_output, listen

    out = args.output or default_output(args.source)
    if out.resolve() == args.source.resolve():
        raise ValueError(f"refusing to overwrite '{args.source}': choose another -o")
    bundle, _ = _model_and_look(args)
    log.info(
        "wrote %s",
        listen(args.source, out, bundle, fps=args.fps, detail=args.detail, progress=sys.stderr.isatty()),
    )
    return 0


def cmd_bench(args) -> int:
    from synd.bench import machine
    from synd.benchsuite import SECTIONS, SuiteOptions, format_suite, run_suite
    from synd.config import load_config
    from synd.device import pick_device
    from synd.files import write_json

    config = load_config(None)
    parts = args.parts or list(SECTIONS)
    device = pick_device(args.device or config.device).type
    opts = SuiteOptions(
        sections=tuple(p for p in parts if p != "switch"),
        quick=args.quick,
        device=device,
        preset=args.preset or config.preset,
        model=args.model,
        detail=args.detail,
        render_sizes=args.sizes,
        render_seconds=args.seconds,
        speed=args.speed,
    )
    result = run_suite(opts) if opts.sections else {"machine": machine()}
    if "switch" in parts:
        from synd.bench import bench_switch, format_switch
        from synd.catalog import look_for, preset_names

        names = preset_names()
        print(f"preset-switch benchmark: {', '.join(names)} in turn, 2 s fades, 30 fps; {machine()}")
        switches = [
            bench_switch(look_for, names[0], names, mix, detail=args.detail) for mix in ("image", "weights")
        ]
        result["switch"] = switches
        print(format_switch(switches))
    if opts.sections:
        print()
        print(format_suite(result))
    if args.json:
        write_json(result, args.json)
        log.info("wrote %s", args.json)
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
    from synd.info import format_info, gather_info

    info = gather_info()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
