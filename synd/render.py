"""`synd render`: songs in, music videos out, through the shared frame loop.

Each song's frames come from the same `FrameLoop` the live daemon runs (features,
generator with feedback), so a render shows what the daemon would show for the same
audio. Generation and encoding overlap: this thread generates while an encoder thread
scales the frames to the video size and encodes them (the generator's and the encoder's
native code both run without the GIL). The video is written under a temporary name and
appears at its destination only when complete.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from synd.audio import load_audio, warnings_said
from synd.bundle import ModelBundle
from synd.features import FeatureExtractor
from synd.files import make_parent, names_folder
from synd.flash import FlashGuard
from synd.frameloop import FrameLoop, to_rgb_uint8
from synd.presets import Look
from synd.progress import Progress
from synd.sizes import GENERATION_SHORT_SIDE, generation_size
from synd.video import CODECS, VideoWriter

log = logging.getLogger(__name__)

MUX_RATE = 48000
# AAC at FFmpeg's default (~69 kbit/s a channel) crackles on pure tones; 192 kbit/s is
# transparent for music.
AUDIO_BITRATE = 192_000
CONTAINER_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")


@dataclass(frozen=True)
class RenderOptions:
    """How to render: output size, frame rate, encoding and which part of the song."""

    size: tuple[int, int] = (1280, 720)
    fps: float = 30.0
    codec: str = "h264"
    crf: int = 20
    # x264's "superfast" keeps 1080p encoding faster than real time on two cores; the
    # quality is set by crf, slower presets only make the file smaller.
    speed: str = "superfast"
    start: float = 0.0
    duration: float | None = None
    seed: int = 0
    detail: int = GENERATION_SHORT_SIDE
    progress: bool = True
    flash_guard: bool = True  # never more than 3 flashes a second (synd.flash.FlashGuard)


@dataclass(frozen=True)
class RenderResult:
    """What a render produced, and how fast."""

    path: Path
    frames: int
    seconds_of_audio: float
    seconds_taken: float
    guarded_frames: int = 0  # frames the flash guard limited

    @property
    def speed(self) -> float:
        """Multiple of real time (2.0 = a 3-minute song takes 1.5 minutes)."""
        from synd.measure import realtime_factor

        return realtime_factor(self.seconds_of_audio, max(self.seconds_taken, 1e-9))


_UNSAFE = re.compile(r'[<>:"/\\|?*\x00-\x1f]+')


def safe_stem(name: str) -> str:
    """A file-name stem that every common file system accepts (Windows' rules included)."""
    stem = _UNSAFE.sub("_", name).strip(" .")
    return stem or "video"


def output_paths(songs: list[Path], out: str | os.PathLike | None, codec: str = "h264") -> list[Path]:
    """Where each song's video goes.

    Without `out`: beside the song. With `out` a folder (an existing one, or a path ending
    in a separator: `videos/`, made when the video is written), or with several songs:
    inside it. Otherwise `out` is the one video's file. Default names are the song's name
    with .mp4 (.mov for ProRes); a name that would collide with the song itself or with
    another song's video gets a suffix.
    """
    suffix = ".mov" if codec == "prores" else ".mp4"
    as_dir = out is not None and (names_folder(out) or len(songs) > 1)
    folder_out = Path(out) if out is not None else None
    if folder_out is not None and not as_dir:
        if not folder_out.suffix:
            raise ValueError(
                f"'{folder_out}' is neither a video file nor a folder: end it with "
                f"{', '.join(CONTAINER_SUFFIXES)}, or with a slash for a folder ('{folder_out}/')"
            )
        if folder_out.suffix.lower() not in CONTAINER_SUFFIXES:
            raise ValueError(
                f"unknown video type '{folder_out.suffix}' for '{folder_out}': use "
                f"{', '.join(CONTAINER_SUFFIXES)}, or a folder"
            )
        return [folder_out]
    if folder_out is not None and folder_out.exists() and not folder_out.is_dir():
        raise ValueError(f"'{folder_out}' is a file; several songs need a folder for -o")
    taken = {s.resolve() for s in songs}
    paths = []
    for song in songs:
        folder = folder_out if folder_out is not None else song.parent
        stem = safe_stem(song.stem)
        path, n = folder / f"{stem}{suffix}", 1
        while path.resolve() in taken:
            n += 1
            path = folder / (f"{stem}.synd{suffix}" if n == 2 else f"{stem}.synd-{n - 1}{suffix}")
        taken.add(path.resolve())
        paths.append(path)
    return paths


def check_size(size: tuple[int, int], codec: str = "h264") -> None:
    """Refuse, before any work, a video size the encoder would refuse; the message names
    the nearest size it takes.

    The encoders store colour at half resolution (4:2:0, or 4:2:2 for ProRes: see
    `VideoWriter`), so a subsampled side must be even. ValueError (one line)."""
    import av

    pix_fmt = "yuv422p10le" if CODECS.get(codec, codec) == "prores_ks" else "yuv420p"
    fmt, probe = av.VideoFormat(pix_fmt), 64
    step_w = probe // max(1, fmt.chroma_width(probe))
    step_h = probe // max(1, fmt.chroma_height(probe))
    w, h = size
    if w % step_w == 0 and h % step_h == 0:
        return
    need = "width and height" if step_w > 1 and step_h > 1 else "width" if step_w > 1 else "height"
    nearest = f"{w - w % step_w}x{h - h % step_h}"
    raise ValueError(
        f"size {w}x{h}: {codec} video needs an even {need} ({pix_fmt}); the nearest that works: {nearest}"
    )


class _Encoder:
    """Encodes frames on its own thread; `put` re-raises the thread's error, if any.

    Frames are (1, 3, H, W) tensors from the frame loop: the conversion to 8-bit RGB and
    the flash guard (`guard`, if any) happen here too, off the generator's thread.
    """

    _STOP = None

    def __init__(self, writer: VideoWriter, depth: int = 6, guard=None):
        self.writer = writer
        self.guard = guard
        self.error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="synd-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self._queue.get()
            if frame is self._STOP:
                return
            if self.error is None:
                try:
                    rgb = to_rgb_uint8(frame)
                    self.writer.write(self.guard(rgb) if self.guard is not None else rgb)
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.error = exc

    def put(self, frame: torch.Tensor) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._queue.put(frame, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        """Wait until every frame is encoded; raise the encoder's error, if any."""
        self._queue.put(self._STOP)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        """Drop what is queued and end the thread (after an error or an interruption)."""
        self.error = self.error or RuntimeError("stopped")
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(self._STOP)
        self._thread.join(timeout=10)


@contextmanager
def encoder_friendly_threads(device: torch.device):
    """Leave half the CPU cores to the encoder while a render runs on the CPU.

    The generator's OpenMP threads spin-wait for each other; when the encoder thread
    takes one of their cores they stall, and the overlapped pipeline ends up slower than
    the generator alone. With half the cores each, the two run side by side.
    """
    before = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def song_features(
    song: Path, bundle: ModelBundle, fps: float, start: float = 0.0, duration: float | None = None
) -> np.ndarray:
    """Raw feature rows of (an excerpt of) a song at `fps` frames per second."""
    cfg = replace(bundle.features, fps=fps)
    samples = load_audio(song, cfg.sample_rate, start=start, duration=duration)
    return FeatureExtractor(cfg).offline(samples)


def render_loop(
    bundle: ModelBundle,
    look: Look,
    size: tuple[int, int],
    seed: int = 0,
    detail: int = GENERATION_SHORT_SIDE,
    fps: float = 30.0,
) -> FrameLoop:
    """The frame loop that paints frames for a video of `size` (at generation size) at `fps`."""
    gw, gh = generation_size(*size, short=detail)
    return FrameLoop(
        bundle, gh, gw, look=look, seed=seed, device=next(bundle.generator.parameters()).device, fps=fps
    )


def render_frames(
    bundle: ModelBundle,
    look: Look,
    features: np.ndarray,
    size: tuple[int, int],
    seed: int = 0,
    detail: int = GENERATION_SHORT_SIDE,
) -> Iterable[np.ndarray]:
    """The frames (uint8 RGB at generation size) a render or the daemon shows for `features`."""
    for frame in render_loop(bundle, look, size, seed, detail).run(features):
        yield to_rgb_uint8(frame)


def render_song(
    song: Path, out: Path, bundle: ModelBundle, look: Look, options: RenderOptions = RenderOptions()
) -> RenderResult:
    """Render `song` to the video `out`, written atomically (its folder made if missing);
    see the module docstring."""
    began = time.perf_counter()
    check_size(options.size, options.codec)
    width, height = options.size
    features = song_features(song, bundle, options.fps, options.start, options.duration)
    with warnings_said():  # the features' decoding already warned about this file
        audio = load_audio(song, MUX_RATE, start=options.start, duration=options.duration, stereo=True)
    seconds = len(features) / options.fps
    gw, gh = generation_size(width, height, options.detail)
    log.info(
        "rendering %s: %d frames at %dx%d (painted at %dx%d), %.1f s of audio -> %s",
        song.name,
        len(features),
        width,
        height,
        gw,
        gh,
        seconds,
        out,
    )
    with contextlib.suppress(OSError):  # a file in the way: VideoWriter says so in one line
        make_parent(out)
    writer = VideoWriter(
        out,
        width,
        height,
        options.fps,
        codec=options.codec,
        crf=options.crf,
        preset=options.speed,
        audio=audio,
        audio_rate=MUX_RATE,
        audio_bitrate=AUDIO_BITRATE,
    )
    encoder = _Encoder(writer, guard=FlashGuard(options.fps, enabled=options.flash_guard))
    bar = Progress(len(features), song.name[:30], "frame", enabled=options.progress)
    try:
        with encoder_friendly_threads(next(bundle.generator.parameters()).device):
            loop = render_loop(bundle, look, options.size, options.seed, options.detail, options.fps)
            for i, frame in enumerate(loop.run(features), 1):
                encoder.put(frame)
                bar.update()
                if i % 30 == 0 and bar.rate:
                    bar.set_postfix_str(f"{bar.rate / options.fps:.2f}x real time", refresh=False)
            encoder.finish()
        path = writer.close()
    except BaseException:
        encoder.stop()
        writer.abort()
        raise
    finally:
        bar.close()
    return RenderResult(path, len(features), seconds, time.perf_counter() - began, encoder.guard.changed)
