"""``syphon``: the live frames as a Syphon server on macOS (Resolume, MadMapper, VDMX, ...).

Built on syphon-python (``pip install 'synethesia[syphon]'``, import ``syphon``) and its
**Metal** server, not the OpenGL one:

- OpenGL is deprecated on macOS since 10.14, and ``SyphonOpenGLServer`` needs a CGL
  context current on the calling thread (a hidden GLFW window or the like), which this
  output's thread does not have. ``SyphonMetalServer`` only needs a Metal device.
- The Metal path needs no PyOpenGL (syphon-python's ``[opengl]`` extra).
- Syphon converts between the two: OpenGL clients receive a Metal server's frames.

Each frame is scaled to the output's size as BGRA (the server's own surface format,
``MTLPixelFormatBGRA8Unorm``), copied into a Metal texture with
``syphon.utils.numpy.copy_image_to_mtl_texture`` and published with
``server.publish_frame_texture(texture, is_flipped=True)``.

Orientation: a Syphon surface follows OpenGL, whose first row is the bottom of the
picture. ``SyphonMetalServer`` copies an unflipped texture row for row (Syphon-Framework,
``SyphonMetalServer.m``/``SyphonServerRendererMetal.m``), so a texture whose first row is
the top of the picture, as our arrays are, is published with ``is_flipped=True``, as
syphon-python's own ``examples/MetalServerVideoExample.py`` does with video frames.

Two textures are used in turn: ``publish_frame_texture`` returns once its command buffer
is submitted, not executed, so the next frame is written into the other texture rather
than into one the GPU may still be reading. Frames are scaled and published only while a
client is connected (``has_clients``), as Syphon's header suggests. Every call runs in an
``objc.autorelease_pool()``: Metal hands back autoreleased objects, and nothing else
drains a pool on this thread.

Not verified here (no Mac): clients that start *after* synd find a server by asking for
announcements through distributed notifications, which Cocoa delivers through a run
loop; synd's threads run none (unless the Qt preview runs on the main thread), so such a
client might only list the server after synd restarts.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from synd.bridges.base import Frame, Output
from synd.bridges.registry import OUTPUTS
from synd.errors import error_line

__all__ = ["SyphonOutput", "check_server_name"]

DEFAULT_NAME = "synd"
#: Syphon itself sets no limit (the name is an NSString); this keeps names usable in
#: receivers' menus and refuses pasted garbage early.
MAX_NAME_CHARS = 255

# Unicode categories that have no place in a name shown in another program's menu:
# control and format characters, surrogates, private use, unassigned, line/paragraph
# separators.
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def check_server_name(name: Any) -> str:
    """The Syphon server name, or ValueError (one line) when it cannot be one."""
    if not isinstance(name, str):
        raise ValueError(f"Syphon server name must be text, got {type(name).__name__}")
    if not name.strip():
        raise ValueError(f"Syphon server name is empty (use syphon:NAME, or no ':' for '{DEFAULT_NAME}')")
    bad = next((ch for ch in name if unicodedata.category(ch) in _BAD_CATEGORIES), None)
    if bad is not None:
        raise ValueError(f"Syphon server name must not contain control characters (found {bad!r})")
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"Syphon server name is {len(name)} characters long; at most {MAX_NAME_CHARS}")
    return name


class SyphonOutput(Output):
    """Publishes frames as a Syphon server named ``source_name`` (macOS only).

    Options:
        source_name: the server's name as receivers list it (default "synd", the same
            name the NDI output uses); the spec's ``syphon:NAME``.
    """

    name = "syphon"
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
        self.source_name = check_server_name(source_name)
        self._server: Any = None
        self._textures: list[Any] = []
        self._next = 0
        self._copy: Any = None  # syphon.utils.numpy.copy_image_to_mtl_texture
        self._pool: Any = None  # objc.autorelease_pool

    @classmethod
    def available(cls) -> str | None:
        # Platform first, then the module (with the pip extra): both from the registry.
        return OUTPUTS["syphon"].check()

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        if "source_name" in options:
            check_server_name(options["source_name"])

    def open(self) -> None:
        try:
            import Metal
            import objc
            import syphon
            from syphon.utils.numpy import copy_image_to_mtl_texture
            from syphon.utils.raw import create_mtl_texture
        except ImportError as exc:
            raise RuntimeError(
                f"Syphon cannot start: {error_line(exc)} (pip install 'synethesia[syphon]')"
            ) from exc
        self._copy, self._pool = copy_image_to_mtl_texture, objc.autorelease_pool
        w, h = self.size
        try:
            with self._pool():
                device = Metal.MTLCreateSystemDefaultDevice()
                if device is None:
                    raise RuntimeError("this Mac reports no Metal GPU")
                self._server = syphon.SyphonMetalServer(self.source_name, device=device)
                self._textures = [
                    create_mtl_texture(device, w, h, Metal.MTLPixelFormatBGRA8Unorm) for _ in range(2)
                ]
                if any(t is None for t in self._textures):
                    raise RuntimeError(f"Metal could not make a {w}x{h} texture")
        except Exception as exc:
            raise RuntimeError(
                f"Syphon server {self.source_name!r} could not start: {error_line(exc)}"
            ) from exc

    def send(self, frame: Frame) -> None:
        server = self._server
        assert server is not None, "send() before open()"
        with self._pool():
            if not server.has_clients:
                return  # nobody watches: skip the scaling and the GPU copy
            texture = self._textures[self._next]
            self._next = 1 - self._next
            self._copy(self.pixels(frame, "bgra"), texture)
            server.publish_frame_texture(texture, is_flipped=True)

    def close(self) -> None:
        server, self._server = self._server, None
        self._textures = []
        if server is not None:
            with self._pool():
                server.stop()
