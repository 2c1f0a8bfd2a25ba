"""``record``: the live show as a video file with the captured audio.

The file is written through :class:`synd.video.VideoWriter`: under a hidden temporary
name, renamed into place only when the output is closed (so stopping the daemon, Ctrl-C
included, leaves a complete file and a crash leaves none).

Timing: a frame's place in the video comes from ``Frame.seq`` counted from the first
recorded frame, so frames the mailbox dropped leave a gap (the previous picture stays on
screen longer) instead of pulling later pictures earlier. The audio is the frames'
audio, gapless (the runner carries the audio of dropped frames), written as it arrives
and resampled to 48 kHz when captured at another rate. The audio starts one engine frame
before the first recorded frame's ``audio_time``, so every picture is on screen while
the sound it was painted from plays.

The frames' audio can run ahead of or behind their pictures: a capture starved on a
busy machine brings no sound for a while (the engine paints silence meanwhile) and then
its backlog at once, the engine skips a backlog longer than half a second, and a sound
card's clock can drift against the computer's. The audio written
through frame `seq` should end where that frame's display interval ends; when it is off
by more than `SYNC_TOLERANCE_S` the recorder puts it back in step, dropping the oldest
part of the block (sound that came late) or padding silence before it (sound that was
lost), and says at the end how much it dropped and added.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from synd.audio import StreamResampler
from synd.bridges.base import Frame, Output
from synd.files import make_parent
from synd.video import CODECS, VideoWriter, codec_available

__all__ = ["RecordOutput", "SYNC_TOLERANCE_S"]

log = logging.getLogger("synd.bridges")

#: How far the recorded sound may run ahead of or behind its pictures before the
#: recorder puts it back in step: well above the engine's per-frame jitter (a capture
#: block or two), below what a viewer notices as out of sync (about 0.1 s).
SYNC_TOLERANCE_S = 0.08

_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv")


class RecordOutput(Output):
    """Records frames and audio to ``path`` (.mp4, .m4v, .mov or .mkv).

    Options:
        path: the video file (required; the spec's ``record:PATH``).
        codec: "h264" (default), "hevc", "av1" or "prores" (.mov/.mkv).
        crf: quality, lower is better (default 20).
        preset: encoder speed preset; "ultrafast" by default so that a 720p recording
            keeps up beside the engine on a small CPU (bigger files than "veryfast").
    """

    name = "record"
    argument = "path"
    default_size = (1280, 720)
    AUDIO_RATE = 48000
    AUDIO_BITRATE = 160_000  # mono AAC; FFmpeg's default 69 kbit/s crackles on clean tones

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        fps: float = 30.0,
        *,
        path: str | Path,
        codec: str = "h264",
        crf: int = 20,
        preset: str = "ultrafast",
        **options: Any,
    ) -> None:
        super().__init__(size, fps, **options)
        self.check_options({"path": path, "size": self.size})
        self.path = Path(path).expanduser()
        self.codec, self.crf, self.preset = codec, int(crf), preset
        self._writer: VideoWriter | None = None
        self._broken = False
        self._seq0: int | None = None
        self._last_pts = -1
        self._resampler: StreamResampler | None = None
        self._written = 0  # audio samples (at AUDIO_RATE) handed to the writer
        self._dropped = 0  # ... and dropped or padded to keep them in step with the pictures
        self._padded = 0

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        path = options.get("path")
        if not path:
            raise ValueError("needs a file to record to: record:FILE.mp4")
        if Path(str(path)).suffix.lower() not in _EXTENSIONS:
            raise ValueError(f"record file must end in {', '.join(_EXTENSIONS)}, got '{path}'")
        w, h = options.get("size") or cls.default_size
        if w % 2 or h % 2:
            raise ValueError(f"record size must be even, got {w}x{h}")
        codec = options.get("codec", "h264")
        if not codec_available(CODECS.get(codec, codec)):
            raise ValueError(f"video codec {codec!r} is not available")

    def open(self) -> None:
        w, h = self.size
        # record:shows/tonight.mp4 makes shows/, as render -o does; when it cannot (a file
        # in the way), VideoWriter says why in one line.
        with contextlib.suppress(OSError):
            make_parent(self.path)
        self._writer = VideoWriter(
            self.path,
            w,
            h,
            self.fps,
            codec=self.codec,
            crf=self.crf,
            preset=self.preset,
            live_audio=1,
            audio_rate=self.AUDIO_RATE,
            audio_bitrate=self.AUDIO_BITRATE,
        )

    def send(self, frame: Frame) -> None:
        writer = self._writer
        assert writer is not None, "send() before open()"
        audio = _mono(frame.audio)
        if self._seq0 is None:
            self._seq0 = frame.seq
            # Audio time 0 of the file is one engine frame before this frame's audio_time:
            # keep that much of its audio (older audio, carried from frames dropped before
            # the file began, would put the sound late), pad with silence if there is less.
            want = round(frame.sample_rate / self.engine_fps)
            audio = audio[-want:] if want else audio[:0]
            if audio.size < want:
                audio = np.concatenate([np.zeros(want - audio.size, np.float32), audio])
        # The slot on the file's frame grid whose display interval ends where this frame's
        # audio ends (at equal rates simply seq - seq0).
        pts = math.floor((frame.seq - self._seq0) * self.fps / self.engine_fps + 1e-6)
        try:
            writer.write_audio(self._in_step(self._resample(audio, frame.sample_rate), frame.seq))
            if pts > self._last_pts:  # a frame of a faster engine may share a slot: skip it
                writer.write(frame.rgb, pts=pts)
                self._last_pts = pts
        except BaseException:
            self._broken = True
            raise

    def _resample(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """The engine's audio at the file's 48 kHz (a streaming filter, state kept)."""
        if rate == self.AUDIO_RATE:
            return audio
        if self._resampler is None or self._resampler.rate != rate:
            self._resampler = StreamResampler(rate, self.AUDIO_RATE)
        return self._resampler(audio)

    def close(self) -> None:
        """Finish the file and move it into place (nothing written: no file, an error)."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        if self._broken:
            writer.abort()
            return
        writer.close()  # raises VideoError when no frame was written
        if self._dropped or self._padded:
            log.info(
                "record: kept the sound in step with the pictures (%.2f s of late sound dropped, "
                "%.2f s of silence added for lost sound)",
                self._dropped / self.AUDIO_RATE,
                self._padded / self.AUDIO_RATE,
            )

    def _in_step(self, audio: np.ndarray, seq: int) -> np.ndarray:
        """`audio` (at AUDIO_RATE), trimmed or padded so that the sound written so far ends
        where engine frame `seq`'s interval ends, when it is off by more than
        `SYNC_TOLERANCE_S`."""
        assert self._seq0 is not None
        due = round((seq - self._seq0 + 1) * self.AUDIO_RATE / self.engine_fps)
        off = self._written + audio.size - due
        if abs(off) > SYNC_TOLERANCE_S * self.AUDIO_RATE:
            if off > 0:  # ahead: the oldest samples came late
                cut = min(off, audio.size)
                audio = audio[cut:]
                self._dropped += cut
            else:  # behind: sound was lost on the way
                audio = np.concatenate([np.zeros(-off, np.float32), audio])
                self._padded += -off
        self._written += audio.size
        return audio


def _mono(audio: np.ndarray) -> np.ndarray:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim == 2:  # (n, channels): mix down, never interleave
        arr = arr.mean(axis=1, dtype=np.float32)
    return arr.reshape(-1)
