"""Streaming video output: RGB frames go straight into the encoder (PyAV/FFmpeg).

No temporary image files are ever written. The video is encoded into a hidden temporary
file next to the destination and atomically renamed into place on success, so an
interrupted or failed render never leaves a truncated video behind and never clobbers an
existing file.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

from synd.errors import one_line
from synd.files import fsync_file, fsync_folder, remove_orphans

__all__ = [
    "CODECS",
    "FrameScaler",
    "VideoError",
    "VideoWriter",
    "codec_available",
    "read_audio",
    "read_frames",
    "read_timed_frames",
    "read_video_info",
]

#: Short codec names accepted by :class:`VideoWriter` -> FFmpeg encoder.
CODECS: dict[str, str] = {
    "h264": "libx264",
    "hevc": "libx265",
    "av1": "libsvtav1",
    "prores": "prores_ks",
}

# File extension -> FFmpeg muxer. Chosen explicitly because the temporary file name
# must not decide the container.
_CONTAINERS: dict[str, str] = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Audio codec per container. AAC is what every player expects in MP4/MOV. In Matroska
# FLAC is used instead: Matroska cannot store AAC's trailing padding, so AAC there would
# run up to 1024 samples longer than the video; FLAC's last block can be short.
_AUDIO_CODECS: dict[str, str] = {"mp4": "aac", "mov": "aac", "matroska": "flac"}

# x264/x265 preset names -> SVT-AV1 numeric presets (higher is faster).
# (SVT-AV1 warns that presets >= 10 may show artifacts, so veryfast stops at 9.)
_SVT_PRESETS: dict[str, int] = {
    "ultrafast": 12,
    "superfast": 10,
    "veryfast": 9,
    "faster": 8,
    "fast": 7,
    "medium": 6,
    "slow": 4,
    "slower": 3,
    "veryslow": 2,
    "placebo": 0,
}

# NTSC-style rates (24000/1001, 30000/1001, 60000/1001, ...) written as decimals.
_NTSC_TOLERANCE = 2e-3

# Every this many frames the writer checks that its temporary file still exists (a
# removed folder is otherwise noticed only at the end, after encoding everything).
_CHECK_EVERY = 32

#: The tag every video synd writes carries (container metadata "comment").
MADE_BY = "made by synd"


# Packed formats that FrameScaler.array makes with OpenCV: pixel format -> cvtColor code
# from RGB (-1: none needed). OpenCV's own thread pool is switched off: the live engine
# and the outputs already keep both cores busy, and its workers would fight them.
_CV2_CONVERSIONS: dict[str, int] = {
    "rgb24": -1,
    "bgr24": cv2.COLOR_RGB2BGR,
    "rgba": cv2.COLOR_RGB2RGBA,
    "bgra": cv2.COLOR_RGB2BGRA,
}
cv2.setNumThreads(1)


class FrameScaler:
    """Converts RGB uint8 frames of any size to one size and pixel format in one pass.

    FFmpeg's swscale scales (bicubic) and converts the colours together: upscaling a
    456x256 frame straight into 1080p YUV costs about 2 ms, a tenth of scaling the RGB
    image first. RGB -> YUV uses BT.709 with limited range, the HD standard that players
    assume for HD video. One converter is kept, so its swscale context is reused.
    """

    def __init__(self, width: int, height: int, pix_fmt: str = "rgb24") -> None:
        self.width, self.height, self.pix_fmt = int(width), int(height), pix_fmt
        self._yuv = not (pix_fmt.startswith(("rgb", "bgr", "argb", "abgr", "gbr")))
        self._reformatter = VideoReformatter()

    @staticmethod
    def _check(rgb: np.ndarray) -> np.ndarray:
        arr = np.asarray(rgb)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
            raise ValueError(f"frame must be (height, width, 3) uint8 RGB, got {arr.shape} {arr.dtype}")
        return np.ascontiguousarray(arr)

    def frame(self, rgb: np.ndarray) -> av.VideoFrame:
        """(h, w, 3) uint8 RGB -> a VideoFrame of this scaler's size and format."""
        vf = av.VideoFrame.from_ndarray(self._check(rgb), format="rgb24")
        extra = {"dst_colorspace": Colorspace.ITU709, "dst_color_range": ColorRange.MPEG} if self._yuv else {}
        # One swscale thread: scaling a small frame takes ~2 ms, and extra threads would
        # only fight the generator's threads for the cores.
        return self._reformatter.reformat(
            vf,
            width=self.width,
            height=self.height,
            format=self.pix_fmt,
            interpolation="BICUBIC",
            threads=1,
            **extra,
        )

    def array(self, rgb: np.ndarray) -> np.ndarray:
        """Like :meth:`frame`, as a (height, width, channels) array for packed formats such
        as rgb24 or bgra (what live outputs send).

        RGB, BGR, RGBA and BGRA go through OpenCV: its SIMD bicubic resize writes a 720p
        BGRA frame in about 1 ms, where swscale's packed-RGB writer takes 8 ms. Each call
        returns a new array, so an output may keep sending the previous one meanwhile.
        Other formats come from :meth:`frame`, as a view of the frame's memory (copying a
        1080p frame would hold Python's lock for milliseconds and stall the engine).
        """
        conversion = _CV2_CONVERSIONS.get(self.pix_fmt)
        if conversion is not None:
            arr = self._check(rgb)
            if conversion >= 0:
                arr = cv2.cvtColor(arr, conversion)  # at the small size: cheaper than after
            return cv2.resize(arr, (self.width, self.height), interpolation=cv2.INTER_CUBIC)
        vf = self.frame(rgb)
        plane = vf.planes[0]
        channels = len(vf.format.components)
        data = np.frombuffer(plane, np.uint8)  # type: ignore[call-overload]  # a buffer; numpy's stubs take Buffer from 3.12
        packed = not vf.format.is_planar and plane.line_size >= self.width * channels
        if packed and data.size == plane.line_size * self.height:
            rows = data.reshape(self.height, plane.line_size)
            return rows[:, : self.width * channels].reshape(self.height, self.width, channels)
        return vf.to_ndarray()


class VideoError(Exception):
    """Writing a video failed (disk full, permission denied, encoder error, ...).

    The message is one line naming the destination and the cause.
    """


def codec_available(codec: str) -> bool:
    """Whether the bundled FFmpeg has an encoder for ``codec`` (short name or encoder name)."""
    try:
        av.codec.Codec(CODECS.get(codec, codec), "w")
    except (av.FFmpegError, ValueError):  # unknown codec names raise one of these
        return False
    return True


def _frame_rate(fps: float | Fraction) -> Fraction:
    """Exact rational frame rate; 29.97 becomes 30000/1001, 25 stays 25/1."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        fps = float(fps)
        if not np.isfinite(fps):
            raise ValueError(f"fps must be finite, got {fps}")
        ntsc = round(fps * 1.001)
        if ntsc > 0 and abs(fps - ntsc * 1000 / 1001) < _NTSC_TOLERANCE and ntsc * 1000 / 1001 != ntsc:
            rate = Fraction(ntsc * 1000, 1001)
        else:
            rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


def _cause(exc: BaseException) -> str:
    """Human cause of an OS/FFmpeg error without errno noise or file names."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return one_line(text)


class VideoWriter:
    """Encodes RGB uint8 frames to a video file with PyAV, optionally muxing mono/stereo audio.

    The file is written under a temporary name in the destination folder
    (``.name.<pid>-<random>.partial.mp4``: the real extension stays last) and atomically
    renamed on a successful :meth:`close`; a temporary file that a killed process left
    for the same destination is deleted when the next writer starts. On :meth:`abort`, or
    on an exception inside the ``with`` block, the temporary file is deleted and the
    destination is untouched (an existing file there stays as it was). A full disk, or the
    destination folder removed while writing (noticed within ``_CHECK_EVERY`` frames), is a
    one-line VideoError.

    Args:
        path: destination; the container follows the extension (.mp4, .m4v, .mov, .mkv).
        width, height: frame size in pixels (even where the pixel format subsamples chroma).
        fps: frame rate; fractional rates are kept exact (29.97 -> 30000/1001).
        codec: "h264" (libx264), "hevc" (libx265), "av1" (libsvtav1) or "prores"
            (prores_ks, .mov/.mkv only); an FFmpeg encoder name also works.
        crf: quality in the encoder's own scale (lower is better); ignored by ProRes.
        preset: x264-style speed preset; mapped to a numeric preset for SVT-AV1.
        audio: optional float32 samples, shape (n,) or (n, channels) with 1 or 2 channels,
            at ``audio_rate``. It is trimmed or zero-padded to the video's duration
            (frames / fps) and encoded alongside the frames (AAC; FLAC in .mkv).
        audio_rate: sample rate of ``audio`` in Hz.
        pix_fmt: encoder pixel format; ProRes defaults to yuv422p10le.
        threads: encoder threads, 0 lets FFmpeg choose.
        live_audio: 1 (mono) or 2 (stereo) to add an audio stream whose samples arrive
            while writing, through :meth:`write_audio` (at ``audio_rate``), instead of
            up front through ``audio``; 0 (default) for none. Like ``audio``, it is
            trimmed or zero-padded to the video's duration when the file is closed.
        audio_bitrate: audio bit rate in bit/s for lossy codecs (AAC); None keeps
            FFmpeg's default (69 kbit/s for mono AAC, which makes pure tones crackle).

    Raises:
        ValueError: bad size, fps, codec, container or audio.
        VideoError: the file cannot be created or written.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        fps: float | Fraction,
        codec: str = "h264",
        crf: int = 20,
        preset: str = "veryfast",
        audio: np.ndarray | None = None,
        audio_rate: int = 48000,
        pix_fmt: str = "yuv420p",
        threads: int = 0,
        live_audio: int = 0,
        audio_bitrate: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.width = int(width)
        self.height = int(height)
        self.rate = _frame_rate(fps)
        self.n_frames = 0
        #: Frame index (pts) after the last frame written: the video's length in frames,
        #: which is more than ``n_frames`` when :meth:`write` was given gaps.
        self.end_pts = 0
        self._live: np.ndarray | None = None  # live audio received, not yet encoded
        self._container: Any = None
        self._tmp: Path | None = None  # set once the temporary file exists
        self._done = True  # nothing to clean up until the file is created
        self._closed_ok = False

        if self.width <= 0 or self.height <= 0 or self.width != width or self.height != height:
            raise ValueError(f"video size must be positive integers, got {width}x{height}")
        fmt = _CONTAINERS.get(self.path.suffix.lower())
        if fmt is None:
            raise ValueError(
                f"unsupported video extension {self.path.suffix!r} for '{self.path}' "
                f"(use one of {', '.join(sorted(_CONTAINERS))})"
            )
        encoder = CODECS.get(codec, codec)
        if not codec_available(encoder):
            raise ValueError(f"video codec {codec!r} is not available in this FFmpeg build")
        if encoder == "prores_ks":
            if fmt == "mp4":
                raise ValueError("ProRes needs a .mov or .mkv file, not .mp4")
            if pix_fmt == "yuv420p":  # the default; ProRes has no 4:2:0 profile
                pix_fmt = "yuv422p10le"
        try:
            vformat = av.VideoFormat(pix_fmt)
        except (ValueError, av.FFmpegError) as exc:
            raise ValueError(f"unknown pixel format {pix_fmt!r}") from exc
        # Chroma subsampling needs sizes divisible by 2 in the subsampled direction(s).
        sub_w, sub_h = _chroma_subsampling(vformat)
        if self.width % sub_w or self.height % sub_h:
            need = "width and height" if sub_w > 1 and sub_h > 1 else "width" if sub_w > 1 else "height"
            raise ValueError(f"{pix_fmt} video needs an even {need}, got {self.width}x{self.height}")
        self.pix_fmt = pix_fmt
        if live_audio not in (0, 1, 2):
            raise ValueError(f"live_audio must be 0, 1 (mono) or 2 (stereo), got {live_audio!r}")
        if live_audio and audio is not None:
            raise ValueError("give audio either up front (audio=) or live (live_audio=), not both")
        self._audio = _prepare_audio(audio) if audio is not None else None
        if live_audio:
            self._live = np.zeros((live_audio, 0), np.float32)
        self.audio_rate = int(audio_rate)
        if (self._audio is not None or live_audio) and self.audio_rate <= 0:
            raise ValueError(f"audio_rate must be positive, got {audio_rate}")
        self._audio_pos = 0  # samples already handed to the audio encoder
        self._scaler = FrameScaler(self.width, self.height, pix_fmt)

        _remove_orphans(self.path)
        tmp = self.path.with_name(
            f".{self.path.stem}.{os.getpid()}-{secrets.token_hex(4)}.partial{self.path.suffix}"
        )
        try:
            # Create the file now: PyAV opens it lazily at the first packet, and a missing
            # folder or a read-only disk should fail here rather than mid-render.
            with open(tmp, "xb"):
                pass
            self._tmp, self._done = tmp, False
            self._container = av.open(str(self._tmp), "w", format=fmt)
            self._container.metadata["comment"] = MADE_BY  # what `synd listen` looks for
            self._vstream = self._add_video_stream(encoder, crf, preset, threads, fmt)
            self._astream = None
            channels = self._audio.shape[0] if self._audio is not None else live_audio
            if channels:
                self._astream = self._container.add_stream(_AUDIO_CODECS[fmt], rate=self.audio_rate)
                self._astream.layout = "mono" if channels == 1 else "stereo"
                if audio_bitrate:
                    self._astream.bit_rate = int(audio_bitrate)
                self._astream.codec_context.thread_count = max(0, int(threads))
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        except BaseException:
            self._cleanup()
            raise

    # -- setup ---------------------------------------------------------------------------

    def _add_video_stream(self, encoder: str, crf: int, preset: str, threads: int, fmt: str) -> Any:
        options: dict[str, str] = {}
        if encoder in ("libx264", "libx265"):
            options = {"crf": str(int(crf)), "preset": preset}
            if encoder == "libx265":
                options["x265-params"] = "log-level=error"  # x265 is chatty on stderr
        elif encoder == "libsvtav1":
            svt = _SVT_PRESETS.get(preset, preset)
            options = {"crf": str(int(crf)), "preset": str(svt)}
        elif encoder == "prores_ks":
            options = {"profile": "4444" if self.pix_fmt.startswith("yuv444") else "hq", "vendor": "apl0"}
        stream = self._container.add_stream(encoder, rate=self.rate, options=options)
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = self.pix_fmt
        ctx = stream.codec_context
        ctx.time_base = 1 / self.rate  # one tick per frame: pts = frame index
        ctx.thread_count = max(0, int(threads))
        # Frames are converted with BT.709 (the HD standard) and tagged as such, so players
        # do not guess BT.601 and shift the colours.
        ctx.colorspace = 1  # AVCOL_SPC_BT709
        ctx.color_primaries = 1  # AVCOL_PRI_BT709
        ctx.color_trc = 1  # AVCOL_TRC_BT709
        ctx.color_range = 1  # AVCOL_RANGE_MPEG (limited)
        if encoder == "libx265" and fmt in ("mp4", "mov"):
            ctx.codec_tag = "hvc1"  # Apple players only accept this HEVC tag
        return stream

    # -- writing -------------------------------------------------------------------------

    def write(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Encode one (h, w, 3) uint8 RGB frame; other sizes are scaled to the video's.

        Args:
            frame: the picture.
            pts: its frame index on the video's timeline (time = pts / fps); None means
                right after the previous frame. A larger index leaves a gap (the previous
                frame stays on screen longer), so frames dropped on the way here do not
                shift the time of later frames against the audio.

        Raises:
            ValueError: not (h, w, 3) uint8, a pts not after the previous frame's, or the
                writer is already closed.
            VideoError: the encoder or the disk failed (the temporary file is removed).
        """
        if self._done:
            raise ValueError(f"VideoWriter for '{self.path}' is already closed")
        if pts is None:
            pts = self.end_pts
        elif int(pts) != pts or pts < self.end_pts:
            raise ValueError(
                f"frame pts must be an integer >= {self.end_pts} (after the previous frame), got {pts}"
            )
        vf = self._scaler.frame(frame)  # raises ValueError on a bad frame
        try:
            vf.pts = int(pts)
            vf.time_base = 1 / self.rate
            self._container.mux(self._vstream.encode(vf))
            self.n_frames += 1
            self.end_pts = int(pts) + 1
            if self.n_frames % _CHECK_EVERY == 0:
                self._check_tmp()
            # Live audio that has not arrived yet is not silence (yet): only close() pads.
            self._encode_audio_until(self._audio_samples_for(self.end_pts), pad=self._live is None)
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        except BaseException:
            self.abort()
            raise

    def _audio_samples_for(self, n_frames: int) -> int:
        """Audio samples covering exactly ``n_frames`` frames (rounded to the nearest sample)."""
        return round(Fraction(n_frames) * self.audio_rate / self.rate)

    def write_audio(self, samples: np.ndarray) -> None:
        """Append live audio (writer made with ``live_audio``): float32 samples at
        ``audio_rate``, shape (n,) or (n, channels). They follow the previous ones without
        a gap; the first sample is at time 0. Audio is encoded as far as the video has
        advanced; the rest waits in memory, and what lies beyond the last frame when the
        file is closed is cut off (missing audio becomes silence).

        Raises:
            ValueError: no live audio stream, wrong channel count or non-finite samples,
                or the writer is already closed.
            VideoError: the encoder or the disk failed (the temporary file is removed).
        """
        if self._done:
            raise ValueError(f"VideoWriter for '{self.path}' is already closed")
        if self._live is None:
            raise ValueError("write_audio() needs a writer made with live_audio=1 or 2")
        arr = _prepare_audio(samples)
        if arr.shape[0] != self._live.shape[0]:
            raise ValueError(f"expected {self._live.shape[0]}-channel audio, got {arr.shape[0]} channels")
        if arr.shape[1] == 0:
            return
        self._live = np.concatenate([self._live, arr], axis=1)
        try:
            self._encode_audio_until(self._audio_samples_for(self.end_pts), pad=False)
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        except BaseException:
            self.abort()
            raise

    def _encode_audio_until(self, end: int, pad: bool = True) -> None:
        # Audio is fed as the video advances so the muxer can interleave the two streams.
        if self._astream is None:
            return
        if self._live is not None:
            # Live audio: encode what has arrived, up to `end`; pad with silence only when
            # asked to (at close, when no more will come).
            if not pad:
                end = min(end, self._audio_pos + self._live.shape[1])
            if end <= self._audio_pos:
                return
            chunk = np.zeros((self._live.shape[0], end - self._audio_pos), dtype=np.float32)
            have = self._live[:, : end - self._audio_pos]
            chunk[:, : have.shape[1]] = have
            self._live = self._live[:, have.shape[1] :]
        else:
            if end <= self._audio_pos:
                return
            audio = self._audio
            assert audio is not None
            chunk = np.zeros((audio.shape[0], end - self._audio_pos), dtype=np.float32)
            have = audio[:, self._audio_pos : min(end, audio.shape[1])]
            chunk[:, : have.shape[1]] = have  # beyond the given audio: silence
        af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self._astream.layout.name)
        af.sample_rate = self.audio_rate
        af.pts = self._audio_pos
        af.time_base = Fraction(1, self.audio_rate)
        self._container.mux(self._astream.encode(af))
        self._audio_pos = end

    # -- finishing -----------------------------------------------------------------------

    def close(self) -> Path:
        """Flush the encoders, finish the audio, and move the file into place.

        Returns:
            The final path.

        Raises:
            VideoError: nothing was written, or the disk/encoder failed; the temporary file
                is removed and the destination left untouched.
        """
        if self._done:
            if self._closed_ok:
                return self.path
            raise ValueError(f"VideoWriter for '{self.path}' was aborted")
        if self.n_frames == 0:
            self.abort()
            raise VideoError(f"cannot write '{self.path}': no frames were written")
        try:
            self._container.mux(self._vstream.encode(None))
            if self._astream is not None:
                self._encode_audio_until(self._audio_samples_for(self.end_pts))
                self._container.mux(self._astream.encode(None))
            container, self._container = self._container, None
            container.close()  # writes the trailer (MP4 index); may hit a full disk too
            self._check_tmp()
            tmp = self._tmp
            assert tmp is not None  # set until close or abort, and neither has run (not _done)
            fsync_file(tmp)
            os.replace(tmp, self.path)
            self._tmp = None
            fsync_folder(self.path.parent)
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        except BaseException:
            self.abort()
            raise
        self._done = self._closed_ok = True
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the temporary file; the destination is left untouched."""
        self._done = True
        self._cleanup()

    def _cleanup(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            try:
                # Closing writes a trailer into the file we are about to delete; errors
                # (e.g. the disk is still full) do not matter any more.
                container.close()
            except Exception:  # noqa: BLE001 - whatever failed, the file is deleted next
                pass
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass

    def _fail(self, exc: BaseException) -> None:
        cause = self._vanished() or _cause(exc)
        self.abort()
        raise VideoError(f"cannot write '{self.path}': {cause}") from exc

    def _vanished(self) -> str | None:
        """Why the temporary file is gone, or None while it is there."""
        if self._tmp is None or self._tmp.exists():
            return None
        folder = self.path.parent
        if not folder.is_dir():
            return f"folder '{folder}' was removed while writing"
        return f"its temporary file '{self._tmp.name}' was deleted while writing"

    def _check_tmp(self) -> None:
        """VideoError when the temporary file is gone (its folder was removed): the
        encoder would go on filling a file that no name leads to."""
        cause = self._vanished()
        if cause is not None:
            self.abort()
            raise VideoError(f"cannot write '{self.path}': {cause}")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._done:  # already closed or aborted inside the block
            return
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # A writer dropped without close() must not leave a hidden partial file around.
        if not getattr(self, "_done", True):
            self.abort()


def _remove_orphans(path: Path) -> None:
    """Delete temporary files that a killed writer (SIGKILL, power loss) left for `path`.

    Temporary names carry the writer's process id; a file whose process is gone is an
    orphan. Files of running processes (another render of the same name) are kept.
    """
    remove_orphans(path.parent, f".{path.stem}.", f".partial{path.suffix}")


def _chroma_subsampling(vformat: Any) -> tuple[int, int]:
    """(horizontal, vertical) chroma subsampling factors of a pixel format (2 or 1 each)."""
    probe = 64
    return probe // max(1, vformat.chroma_width(probe)), probe // max(1, vformat.chroma_height(probe))


def _prepare_audio(audio: np.ndarray) -> np.ndarray:
    """Validate audio and return it as contiguous float32 (channels, n) in [-1, 1]."""
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[None, :]
    elif arr.ndim == 2:
        arr = arr.T
    else:
        raise ValueError(f"audio must have shape (n,) or (n, channels), got {np.shape(audio)}")
    if arr.shape[0] not in (1, 2):
        raise ValueError(f"audio must be mono or stereo, got {arr.shape[0]} channels")
    if not np.all(np.isfinite(arr)):
        raise ValueError("audio contains NaN or infinite samples")
    return np.ascontiguousarray(np.clip(arr, -1.0, 1.0))


# -- reading back ----------------------------------------------------------------------------


def read_video_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a video file by demuxing it (no decoding).

    Returns:
        dict with width, height, fps (float), frame_rate (Fraction), n_frames,
        video_duration and audio_duration (seconds; audio_duration is None without audio),
        audio_rate, audio_channels, video_codec, audio_codec, pix_fmt, format, and
        made_by_synd (the file carries `MADE_BY`: synd's VideoWriter wrote it).
    """
    with av.open(str(path)) as container:
        info: dict[str, Any] = {
            "format": container.format.name,
            "made_by_synd": container.metadata.get("comment") == MADE_BY,
        }
        vstream = container.streams.video[0] if container.streams.video else None
        astream = container.streams.audio[0] if container.streams.audio else None
        if vstream is None:
            raise ValueError(f"'{path}' has no video stream")
        rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
        info.update(
            width=vstream.codec_context.width,
            height=vstream.codec_context.height,
            frame_rate=Fraction(rate) if rate else None,
            fps=float(rate) if rate else None,
            video_codec=vstream.codec_context.name,
            pix_fmt=vstream.codec_context.format.name if vstream.codec_context.format else None,
            audio_codec=astream.codec_context.name if astream is not None else None,
            audio_rate=astream.codec_context.sample_rate if astream is not None else None,
            audio_channels=astream.codec_context.channels if astream is not None else None,
        )
        spans: dict[int, list[float]] = {}
        counts: dict[int, int] = {}
        streams = [s for s in (vstream, astream) if s is not None]
        for packet in container.demux(streams):
            if packet.pts is None or packet.stream is None:
                continue
            idx = packet.stream.index
            tb = packet.time_base
            start = float(packet.pts * tb)
            end = float((packet.pts + (packet.duration or 0)) * tb)
            counts[idx] = counts.get(idx, 0) + 1
            lo_hi = spans.setdefault(idx, [start, end])
            lo_hi[0], lo_hi[1] = min(lo_hi[0], start), max(lo_hi[1], end)

        # Durations run from the file's start to each stream's end, so a stream that
        # starts late counts as longer. Negative timestamps are encoder priming (AAC)
        # that players skip.
        origin = max(0.0, min((lo for lo, _ in spans.values()), default=0.0))

        def duration(stream: Any) -> float | None:
            if stream is None or stream.index not in spans:
                return None
            return spans[stream.index][1] - origin

        info["n_frames"] = counts.get(vstream.index, 0)
        info["video_duration"] = duration(vstream)
        info["audio_duration"] = duration(astream)
    return info


def read_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Decode the first video stream of ``path`` into (height, width, 3) uint8 RGB frames."""
    for _, frame in read_timed_frames(path):
        yield frame


def read_timed_frames(path: str | os.PathLike[str]) -> Iterator[tuple[float, np.ndarray]]:
    """Decode the first video stream of ``path`` into (time in seconds, RGB frame) pairs.

    The time is the frame's place on the file's timeline: a live recording leaves a gap
    where frames were dropped (see `VideoWriter.write`), so the n-th frame need not be at
    n / fps.
    """
    with av.open(str(path)) as container:
        container.streams.video[0].thread_type = "AUTO"  # frame threads: ~2x on 2 cores
        for frame in container.decode(video=0):
            yield float(frame.time or 0.0), frame.to_ndarray(format="rgb24")


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of ``path``, placed on the file's timeline.

    Samples are put where their timestamps say (a stream starting late is preceded by
    silence, encoder priming before time 0 is dropped), and encoder padding after the
    end (AAC pads its last frame) is cut off using the packet durations.

    Returns:
        (samples, rate): float32 array of shape (n, channels), and the sample rate.
    """
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise ValueError(f"'{path}' has no audio stream")
        stream = container.streams.audio[0]
        ctx = stream.codec_context
        rate, channels = ctx.sample_rate, ctx.channels
        tick = float(stream.time_base or 0)
        pieces: list[tuple[int, np.ndarray]] = []
        end, pos = 0.0, 0
        for packet in container.demux(stream):
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
            for frame in packet.decode():
                if frame.pts is not None and frame.time_base is not None:
                    pos = round(float(frame.pts * frame.time_base) * rate)
                data = _audio_frame_to_float(frame)
                pieces.append((pos, data))
                pos += data.shape[0]
    total = max((start + data.shape[0] for start, data in pieces), default=0)
    keep = round(end * rate)
    # Coarse time bases (Matroska counts milliseconds) cannot express the exact end:
    # only cut what is clearly padding, i.e. more than one timestamp tick.
    if total - keep > tick * rate:
        total = keep
    samples = np.zeros((max(0, total), channels), np.float32)
    for start, data in pieces:
        lo, hi = max(start, 0), min(start + data.shape[0], total)
        if hi > lo:
            samples[lo:hi] = data[lo - start : hi - start]
    return samples, rate


def _audio_frame_to_float(frame: Any) -> np.ndarray:
    """Decoded audio frame -> float32 (n, channels) in [-1, 1]."""
    arr = frame.to_ndarray()
    channels = len(frame.layout.channels)
    arr = arr.T if frame.format.is_planar else arr.reshape(-1, channels)
    if arr.dtype.kind == "i":
        arr = arr / float(2 ** (8 * arr.dtype.itemsize - 1))
    elif arr.dtype.kind == "u":
        arr = (arr - 128.0) / 128.0
    return arr.astype(np.float32, copy=False)
