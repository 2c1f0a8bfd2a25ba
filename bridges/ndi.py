"""``ndi``: the live frames as an NDI source (Resolume, OBS, TouchDesigner, vMix, ...).

Built on ndi-python (``pip install 'synethesia[ndi]'``, import ``NDIlib``), the pybind11
wrapper of the NDI SDK, whose wheel bundles the NDI runtime (libndi). On Linux the
runtime needs Avahi's client library at load time (Debian/Ubuntu ``libavahi-client3``,
with ``libdbus-1-3``). The calls, as the SDK defines them::

    NDIlib.initialize()
    sender = NDIlib.send_create(NDIlib.SendCreate(p_ndi_name=NAME, clock_video=False))
    video = NDIlib.VideoFrameV2()
    video.data = bgra                     # sets xres, yres, line_stride_in_bytes
    video.FourCC = NDIlib.FOURCC_VIDEO_TYPE_BGRA
    video.frame_rate_N, video.frame_rate_D = 30000, 1001
    video.timecode = ...                  # 100 ns units
    NDIlib.send_send_video_async_v2(sender, video)   # per frame
    NDIlib.send_destroy(sender); NDIlib.destroy()

Pixels: BGRA with alpha 255, at this output's own size, from :meth:`Output.pixels`.
NDI compresses every frame (SpeedHQ, 4:2:2), so receivers get the colours back within
a few levels; alpha comes back exact.

Asynchronous send: ``send_send_video_async_v2`` returns at once and NDI converts,
compresses and sends the frame on its own threads, while this output's thread scales
the next one; a 1080p BGRA frame costs NDI several milliseconds to compress, and the
runner's thread need not wait for that. The SDK reads the frame's memory until the next
send call or ``send_destroy``, so the array of the previous frame is kept alive until
then (:meth:`Output.pixels` returns a new array each call, so it is never overwritten
meanwhile), and ``close`` destroys the sender before letting the last array go.

``clock_video=False``: the engine has its own frame clock and the runner already feeds
this output at most ``fps`` frames a second on the engine's frame grid. With
``clock_video=True`` NDI would sleep inside the send call to pace frames by its own
clock, a second clock beating against the engine's: the runner's thread would be blocked
for up to a frame, frames would leave late (latency) and the mailbox would count drops
whenever the two clocks drift apart. The NDI SDK recommends unclocked sending for
sources that are already clocked, as live video is.

Frame rate metadata: this output's fps as an exact rational, the broadcast rates as
receivers expect them (29.97 is 30000/1001, not 2997/100); see :func:`frame_rate`.

Timecode: each frame carries the audio time it was painted from
(``round(frame.audio_time * 1e7)``, NDI's 100 ns units), so a receiver can line pictures
up with the sound, and tests can tell which engine frame a received picture is.

Source names: NDI publishes a source as ``HOST (NAME)`` and receivers list it so. What
is allowed and why (:func:`check_source_name`):

* leading and trailing spaces are dropped; the rest must not be empty (an empty name
  makes NDI pick the program's name, "python3");
* no control or other invisible characters (tabs, newlines, format and unassigned
  characters), which would be published as they are and show up garbled in receivers;
* none of ``\\ / : * ? " < > |``, which NDI silently replaces with spaces, so a receiver
  set up for "Stage:Left" would never find it;
* at most 186 bytes in UTF-8: NDI names (``HOST (NAME)``) are limited to 253 bytes, and
  a host name may take 64 of them, the parentheses and space 3 more.

Any other Unicode text is fine (NDI names are UTF-8), parentheses included. Two senders
on one machine cannot share a name: NDI refuses the second one, and ``open`` says so.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from fractions import Fraction
from typing import Any

import numpy as np

from synd.bridges.base import Frame, Output
from synd.errors import error_line

__all__ = ["NdiOutput", "check_source_name", "frame_rate", "ndi_problem"]

log = logging.getLogger("synd.bridges")

DEFAULT_NAME = "synd"
#: NDI names are "HOST (NAME)", at most 253 bytes; a host name takes up to 64.
MAX_NAME_BYTES = 253 - 64 - len(" ()")  # 186
#: Characters NDI replaces with a space in source names (Windows file-name rules).
RESERVED = '\\/:*?"<>|'
#: Debian/Ubuntu packages of the system libraries the NDI runtime loads.
_LIBRARY_PACKAGES = {
    "libavahi-client": "libavahi-client3",
    "libavahi-common": "libavahi-client3",
    "libdbus-1": "libdbus-1-3",
}
_INSTALL_HINT = "pip install 'synethesia[ndi]'"


def check_source_name(name: Any) -> str:
    """The NDI source name with outer spaces removed, or ValueError (one line) when NDI
    would not publish it as given (see the module docstring)."""
    if not isinstance(name, str):
        raise ValueError(f"NDI source name must be text, got {type(name).__name__}")
    name = name.strip()
    if not name:
        raise ValueError(f"NDI source name is empty (use ndi:NAME, or no ':' for '{DEFAULT_NAME}')")
    for ch in name:
        if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp"):
            raise ValueError(
                f"NDI source name must not contain control or invisible characters (found {ch!r})"
            )
    reserved = sorted({ch for ch in name if ch in RESERVED}, key=RESERVED.index)
    if reserved:
        raise ValueError(
            f"NDI source name must not contain {' '.join(reserved)} "
            f"(NDI turns {' '.join(RESERVED)} into spaces)"
        )
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ValueError(
            f"NDI source name is {size} bytes long in UTF-8; at most "
            f"{MAX_NAME_BYTES} fit in NDI's 'HOST (NAME)'"
        )
    return name


def frame_rate(fps: float) -> tuple[int, int]:
    """``fps`` as NDI's (frame_rate_N, frame_rate_D).

    Whole rates are N/1 (30 -> 30/1); the NTSC rates are N*1000/1001 (29.97 ->
    30000/1001, 59.94 -> 60000/1001, 23.976 -> 24000/1001); any other rate is the
    nearest fraction with a denominator up to 1000 (12.5 -> 25/2).
    """
    value = float(fps)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    whole = round(value)
    if whole >= 1 and abs(value - whole) < 1e-6:
        return whole, 1
    ntsc = round(value * 1.001)
    if ntsc >= 1 and abs(value - ntsc * 1000 / 1001) < 1e-3:
        return ntsc * 1000, 1001
    rational = Fraction(value).limit_denominator(1000)
    if rational.numerator <= 0:  # slower than one frame in 1000 s
        rational = Fraction(1, 1000)
    return rational.numerator, rational.denominator


def ndi_problem() -> str | None:
    """None when the NDI runtime loads and initializes here, else a one-line reason."""
    try:
        import NDIlib
    except ImportError as exc:
        return _import_problem(exc)
    except Exception as exc:  # noqa: BLE001 - a broken install must not break `synd info`
        return f"Python module 'NDIlib' cannot load: {error_line(exc)}"
    try:
        ok = NDIlib.initialize()
    except Exception as exc:  # noqa: BLE001 - any failure is the one-line reason returned
        return f"the NDI runtime cannot start: {error_line(exc)}"
    if not ok:
        return "the NDI runtime does not support this CPU (it needs SSE4.2)"
    # Balanced with initialize(); the SDK reference-counts both, so this is harmless
    # even while a sender runs.
    NDIlib.destroy()
    return None


def _import_problem(exc: ImportError) -> str:
    text = error_line(exc)
    missing = re.search(r"(lib[\w.+-]*?\.so[\d.]*): cannot open shared object file", text)
    if missing:
        library = missing.group(1)
        package = next(
            (p for prefix, p in _LIBRARY_PACKAGES.items() if library.startswith(prefix + ".")), None
        )
        hint = f"apt install {package}" if package else "install the package that provides it"
        return f"the NDI runtime needs the system library {library} ({hint})"
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == "NDIlib":
        return f"Python module 'NDIlib' is not installed ({_INSTALL_HINT})"
    return f"Python module 'NDIlib' cannot load: {text}"


class NdiOutput(Output):
    """Sends frames as the NDI source ``source_name`` (shown as ``HOST (NAME)``).

    Options:
        source_name: the source's name (default "synd"); the spec's ``ndi:NAME``.
    """

    name = "ndi"
    argument = "source_name"
    default_size = (1280, 720)

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        fps: float = 30.0,
        *,
        source_name: str = DEFAULT_NAME,
        **options: Any,
    ) -> None:
        super().__init__(size, fps, **options)
        self.source_name = check_source_name(source_name)
        self.frame_rate = frame_rate(self.fps)
        self._lib: Any = None  # the NDIlib module, once initialized
        self._sender: Any = None
        self._video: Any = None  # the VideoFrameV2 reused for every frame
        self._in_flight: np.ndarray | None = None  # the frame NDI may still be reading
        self._lock = threading.Lock()  # connections() from other threads vs. close()

    @classmethod
    def available(cls) -> str | None:
        return ndi_problem()

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if "source_name" in options:
            check_source_name(options["source_name"])

    def open(self) -> None:
        try:
            import NDIlib
        except ImportError as exc:
            raise RuntimeError(f"NDI cannot start: {_import_problem(exc)}") from exc
        if not NDIlib.initialize():
            raise RuntimeError("NDI cannot start: the NDI runtime does not support this CPU")
        self._lib = NDIlib
        settings = NDIlib.SendCreate(p_ndi_name=self.source_name, clock_video=False, clock_audio=False)
        sender = NDIlib.send_create(settings)
        if sender is None:
            raise RuntimeError(
                f"NDI sender '{self.source_name}' could not be created "
                f"(is another NDI source on this machine called that?)"
            )
        video = NDIlib.VideoFrameV2()
        video.FourCC = NDIlib.FOURCC_VIDEO_TYPE_BGRA
        video.frame_format_type = NDIlib.FRAME_FORMAT_TYPE_PROGRESSIVE
        self._video = video
        with self._lock:
            self._sender = sender
        log.info(
            "output ndi: sending %dx%d at %d/%d fps as NDI source '%s'",
            *self.size,
            *self.frame_rate,
            self.source_name,
        )

    def send(self, frame: Frame) -> None:
        lib, sender, video = self._lib, self._sender, self._video
        assert sender is not None, "send() before open()"
        pixels = self.pixels(frame, "bgra")
        if pixels.dtype != np.uint8 or not pixels.flags.c_contiguous:
            # The binding keeps only a pointer: give it memory that we keep alive.
            pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        h, w = pixels.shape[:2]
        # Setting data also sets xres, yres, line_stride_in_bytes and the aspect ratio.
        video.data = pixels
        video.picture_aspect_ratio = w / h  # square pixels
        video.frame_rate_N, video.frame_rate_D = self.frame_rate
        video.timecode = round(frame.audio_time * 1e7)
        lib.send_send_video_async_v2(sender, video)
        # NDI reads `pixels` until the next send or send_destroy: keep it until then
        # (this drops the previous frame, which NDI has finished with by now).
        self._in_flight = pixels

    def connections(self) -> int:
        """How many NDI receivers are connected now (0 when not open); any thread."""
        with self._lock:
            if self._sender is None:
                return 0
            return int(self._lib.send_get_no_connections(self._sender, 0))

    def close(self) -> None:
        """Destroy the sender (this waits for a frame still being sent), then release
        the library; safe after a failed open."""
        with self._lock:
            lib, sender = self._lib, self._sender
            self._lib = self._sender = self._video = None
        try:
            if sender is not None:
                lib.send_destroy(sender)
        finally:
            self._in_flight = None
            if lib is not None:
                lib.destroy()
