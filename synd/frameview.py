"""`FrameView`: a Qt widget showing RGB frames scaled to fit, with black bars.

Shared by the preview output (`synd.bridges.preview`, whose window is a FrameView with
keys and full screen) and the control window (`synd.window`). Frames are scaled in one
swscale pass by `synd.video.FrameScaler`, straight into the 32-bit layout Qt paints
fastest, and wrapped in a QImage without copying. The class is defined on first use,
so that PyQt6 loads only then.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from synd.video import FrameScaler

__all__ = ["frame_view_class", "guarded"]

# 32-bit pixels as Qt's Format_RGB32 (0xffRRGGBB in native byte order) lays them out.
_PIX_FMT = "bgra" if sys.byteorder == "little" else "argb"
_CLASSES: dict[str, Any] = {}


def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
    """A Qt virtual method whose exceptions go to `self.failed(exc)`: an exception
    escaping a Qt virtual method makes PyQt abort the process."""

    def wrapper(self: Any, *args: Any) -> Any:
        try:
            return method(self, *args)
        except BaseException as exc:  # noqa: BLE001 - PyQt would abort the process on it
            self.failed(exc)

    wrapper.__name__ = method.__name__
    return wrapper


def frame_view_class() -> Any:
    """`FrameView`, a QWidget showing (h, w, 3) uint8 RGB frames (`show_frame`) scaled to
    fit with the aspect kept; `failed(exc)` is called for an exception in a Qt callback."""
    _define()
    return _CLASSES["FrameView"]


def _define() -> None:
    if _CLASSES:
        return

    from PyQt6 import sip
    from PyQt6.QtCore import QPointF, QRectF, Qt
    from PyQt6.QtGui import QImage, QPainter
    from PyQt6.QtWidgets import QWidget

    class FrameView(QWidget):
        """Shows (h, w, 3) uint8 RGB frames, scaled to the widget with the aspect kept."""

        def __init__(self, parent: Any = None) -> None:
            super().__init__(parent)
            self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
            self._rgb: np.ndarray | None = None
            self._scaler: FrameScaler | None = None
            self._pixels: np.ndarray | None = None  # the memory the QImage points into
            self._image: QImage | None = None

        def failed(self, exc: BaseException) -> None:
            """An exception inside a Qt callback: logged (PyQt would abort the process)."""
            logging.getLogger(__name__).error("picture view: %s: %s", type(exc).__name__, exc)

        def show_frame(self, rgb: np.ndarray) -> None:
            self._rgb = rgb
            self._convert()
            self.update()

        def _convert(self) -> None:
            """Scale the frame to fit the widget (device pixels) in one pass."""
            rgb = self._rgb
            if rgb is None:
                return
            h, w = rgb.shape[:2]
            dpr = self.devicePixelRatioF()
            room_w, room_h = max(1, round(self.width() * dpr)), max(1, round(self.height() * dpr))
            scale = min(room_w / w, room_h / h)
            tw, th = max(1, round(w * scale)), max(1, round(h * scale))
            if self._scaler is None or (self._scaler.width, self._scaler.height) != (tw, th):
                self._scaler = FrameScaler(tw, th, _PIX_FMT)
            pixels = self._scaler.array(rgb)  # rows may be padded: use its strides
            image = QImage(  # type: ignore[call-overload]  # PyQt takes any buffer; stubs say bytes
                sip.voidptr(pixels.ctypes.data), tw, th, pixels.strides[0], QImage.Format.Format_RGB32
            )
            image.setDevicePixelRatio(dpr)
            self._pixels, self._image = pixels, image

        @guarded
        def paintEvent(self, event: Any) -> None:
            painter = QPainter(self)
            try:
                painter.fillRect(self.rect(), Qt.GlobalColor.black)
                image = self._image
                if image is None:
                    return
                size = image.deviceIndependentSize()
                scale = min(self.width() / size.width(), self.height() / size.height())
                tw, th = size.width() * scale, size.height() * scale
                x, y = (self.width() - tw) / 2, (self.height() - th) / 2
                if abs(tw - size.width()) < 0.5 and abs(th - size.height()) < 0.5:
                    painter.drawImage(QPointF(round(x), round(y)), image)
                else:  # the widget changed size since the frame was converted
                    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                    painter.drawImage(QRectF(x, y, tw, th), image)
            finally:
                painter.end()

        @guarded
        def resizeEvent(self, event: Any) -> None:
            self._convert()

    _CLASSES["FrameView"] = FrameView
