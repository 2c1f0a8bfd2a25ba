"""``spout``: the live frames as a Spout sender on Windows (Resolume, TouchDesigner, ...).

Built on SpoutGL (``pip install 'synethesia[spout]'``, import ``SpoutGL``), the pybind11
wrapper of Spout's OpenGL SDK::

    sender = SpoutGL.SpoutSender()
    sender.createOpenGL()                 # hidden window + OpenGL context, this thread
    sender.setSenderName(name)
    sender.sendImage(pixels, width, height, GL_RGBA, invert, hostFbo)   # per frame
    sender.setFrameSync(name)             # "a frame is ready", for receivers that wait
    sender.releaseSender(); sender.closeOpenGL()

``sendImage`` takes its arguments by position only (the binding names none). Spout's
OpenGL sending functions need a current OpenGL context: since version 2.007 Spout does
nothing without one. SpoutGL exposes Spout's own ``createOpenGL()``, which makes an
invisible window with a context current on the calling thread, so no GLFW or PyOpenGL
is needed. ``open``, ``send`` and ``close`` all run on the runner's thread, the one that
owns the context.

Pixels: RGBA (``GL_RGBA`` from ``SpoutGL.enums``). Spout shares a BGRA DirectX texture,
but when the graphics driver lacks the BGRA extensions Spout quietly reads
``GL_BGRA_EXT`` data as RGBA (``Spout::SendImage``), which would swap red and blue;
RGBA is right on every machine. Orientation: Spout's shared texture is a DirectX one,
first row at the top, like our arrays, so ``invert`` is False.

Sender names: Spout keeps names in 256-byte slots, renames a sender whose name is taken
to ``NAME_<n>``, and builds ``NAME_Count_Semaphore`` in a 256-byte buffer with
``sprintf_s``, which ends the process when the name does not fit. Names are therefore
at most 228 bytes (255 less 16 for the suffix and 11 for ``_<n>``) of printable ASCII
(names are 8-bit strings other programs read in their own code page), without a
backslash (which no Windows kernel object name, such as Spout's shared memory, may hold).
"""

from __future__ import annotations

import logging
from typing import Any

from synd.bridges.base import Frame, Output
from synd.bridges.registry import OUTPUTS
from synd.errors import error_line

__all__ = ["SpoutOutput", "check_sender_name"]

log = logging.getLogger("synd.bridges")

DEFAULT_NAME = "synd"
MAX_NAME_BYTES = 255 - len("_Count_Semaphore") - len("_2147483647")  # 228


def check_sender_name(name: Any) -> str:
    """The Spout sender name, or ValueError (one line) when Spout cannot carry it."""
    if not isinstance(name, str):
        raise ValueError(f"Spout sender name must be text, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"Spout sender name is empty (use spout:NAME, or no ':' for '{DEFAULT_NAME}')")
    bad = next((ch for ch in name if not " " <= ch <= "~"), None)
    if bad is not None:
        kind = "control characters" if bad.isascii() else "non-ASCII characters"
        raise ValueError(f"Spout sender name must be printable ASCII, without {kind} (found {bad!r})")
    if "\\" in name:
        raise ValueError("Spout sender name must not contain a backslash")
    if len(name) > MAX_NAME_BYTES:
        raise ValueError(
            f"Spout sender name is {len(name)} characters long; Spout takes at most {MAX_NAME_BYTES}"
        )
    return name


class SpoutOutput(Output):
    """Sends frames as a Spout sender named ``source_name`` (Windows only).

    Options:
        source_name: the sender's name as receivers list it (default "synd", the same
            name the NDI output uses); the spec's ``spout:NAME``.
    """

    name = "spout"
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
        self.source_name = check_sender_name(source_name)
        self._sender: Any = None
        self._gl = False  # createOpenGL() succeeded: closeOpenGL() is due
        self._format = 0
        self._failures = 0  # sendImage() calls in a row that returned False
        # A second of frames failing in a row disables the output; a glitch does not.
        self._max_failures = max(1, round(self.fps))

    @classmethod
    def available(cls) -> str | None:
        # Platform first, then the module (with the pip extra): both from the registry.
        return OUTPUTS["spout"].check()

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if "source_name" in options:
            check_sender_name(options["source_name"])

    def open(self) -> None:
        try:
            import SpoutGL
            from SpoutGL.enums import GL_RGBA
        except ImportError as exc:
            raise RuntimeError(
                f"Spout cannot start: {error_line(exc)} (pip install 'synethesia[spout]')"
            ) from exc
        self._format = GL_RGBA
        try:
            self._sender = SpoutGL.SpoutSender()
            self._gl = bool(self._sender.createOpenGL())
            if not self._gl:
                raise RuntimeError(
                    "Spout could not create an OpenGL context (is an OpenGL driver installed?)"
                )
            self._sender.setSenderName(self.source_name)
        except Exception as exc:
            raise RuntimeError(
                f"Spout sender {self.source_name!r} could not start: {error_line(exc)}"
            ) from exc

    def send(self, frame: Frame) -> None:
        sender = self._sender
        assert sender is not None, "send() before open()"
        w, h = self.size
        pixels = self.pixels(frame, "rgba")
        if sender.sendImage(pixels, w, h, self._format, False, 0):
            self._failures = 0
            sender.setFrameSync(self.source_name)
            return
        self._failures += 1
        if self._failures == 1:
            log.warning("output spout: Spout did not take frame %d; retrying", frame.seq)
        if self._failures >= self._max_failures:
            raise RuntimeError(
                f"Spout refused {self._failures} frames in a row "
                f"(no DirectX 11, or no GL/DX texture sharing?)"
            )

    def close(self) -> None:
        sender, self._sender = self._sender, None
        gl, self._gl = self._gl, False
        if sender is None:
            return
        try:
            sender.releaseSender()
        finally:
            if gl:
                sender.closeOpenGL()
