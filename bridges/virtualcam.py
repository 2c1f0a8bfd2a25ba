"""``virtualcam``: the live frames as a webcam (OBS, Zoom, browsers, VJ tools).

Built on pyvirtualcam (``pip install 'synethesia[virtualcam]'``)::

    cam = pyvirtualcam.Camera(width, height, fps, fmt=PixelFormat.RGB, device=device)
    cam.send(frame)          # (height, width, 3) uint8 RGB, per frame
    cam.close()

Backends: v4l2loopback on Linux (a kernel module that makes ``/dev/videoN`` loopback
devices: ``sudo modprobe v4l2loopback exclusive_caps=1``; ``exclusive_caps=1`` makes
Chrome and other programs list it as a camera), the OBS virtual camera on Windows and
macOS (install OBS and start its virtual camera once).

The runner paces the frames at the output's fps, so ``Camera.sleep_until_next_frame`` is
never called. pyvirtualcam converts RGB to the device's format (I420 on v4l2loopback).

The spec's argument is the device: ``virtualcam:/dev/video10`` on Linux, or a camera
name (``virtualcam:OBS Virtual Camera``); without it pyvirtualcam takes the first free
loopback device.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import Any

from synd.bridges.base import Frame, Output
from synd.bridges.registry import OUTPUTS
from synd.errors import error_line

__all__ = ["VirtualCamOutput", "loopback_devices"]

MODPROBE = "sudo modprobe v4l2loopback exclusive_caps=1"
MAX_DEVICE_CHARS = 255
#: Where Linux lists video devices and loaded modules (tests point these elsewhere).
SYSFS_VIDEO = Path("/sys/class/video4linux")
SYSFS_MODULE = Path("/sys/module/v4l2loopback")
DEV = Path("/dev")

_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def loopback_devices(sysfs: Path | None = None) -> list[str] | None:
    """The v4l2loopback devices (``/dev/videoN``, in order), or None when sysfs does not
    list video devices here (so nothing can be told without opening them).

    A v4l2loopback device is the one whose sysfs entry has the driver's own
    ``max_openers`` attribute; its name (``card_label``) is whatever the user chose.
    """
    root = SYSFS_VIDEO if sysfs is None else sysfs
    try:
        entries = list(root.iterdir())
    except OSError:
        return None
    found = [e.name for e in entries if e.name.startswith("video") and (e / "max_openers").exists()]
    return [f"/dev/{name}" for name in sorted(found, key=lambda n: (len(n), n))]


def check_device(device: Any, platform: str | None = None) -> str | None:
    """The device option, or ValueError (one line) when it cannot name a camera."""
    if device is None:
        return None
    if not isinstance(device, str):
        raise ValueError(f"virtual camera device must be text, got {type(device).__name__}")
    plat = sys.platform if platform is None else platform
    example = "/dev/video10" if plat.startswith("linux") else "OBS Virtual Camera"
    if not device.strip():
        raise ValueError(
            f"virtual camera device is empty (use virtualcam:{example}, or no ':' for the first free one)"
        )
    bad = next((ch for ch in device if unicodedata.category(ch) in _BAD_CATEGORIES), None)
    if bad is not None:
        raise ValueError(f"virtual camera device must not contain control characters (found {bad!r})")
    if len(device) > MAX_DEVICE_CHARS:
        raise ValueError(
            f"virtual camera device is {len(device)} characters long; at most {MAX_DEVICE_CHARS}"
        )
    if plat.startswith("linux") and not device.startswith("/"):
        raise ValueError(f"virtual camera device must be a device path like /dev/video10, got '{device}'")
    return device


class VirtualCamOutput(Output):
    """Sends frames to a virtual camera device.

    Options:
        device: the camera (``/dev/videoN`` on Linux, a camera name elsewhere), or None
            for the first free one; the spec's ``virtualcam:DEVICE``.
    """

    name = "virtualcam"
    argument = "device"
    default_size = (1280, 720)

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        fps: float = 30.0,
        *,
        device: str | None = None,
        **options: Any,
    ) -> None:
        super().__init__(size, fps, **options)
        self.device = check_device(device)
        self._cam: Any = None

    @classmethod
    def available(cls) -> str | None:
        if not sys.platform.startswith(("linux", "win", "darwin")):
            return "virtual cameras exist only on Linux (v4l2loopback), Windows and macOS (OBS)"
        missing = OUTPUTS["virtualcam"].check()
        if missing or not sys.platform.startswith("linux"):
            return missing  # OBS's camera cannot be looked for cheaply: open() says
        devices = loopback_devices()
        if devices is None and any(DEV.glob("video*")):
            return None  # no sysfs to tell: opening will
        if devices:
            return None
        if SYSFS_MODULE.exists():
            return (
                f"the v4l2loopback module is loaded but made no device "
                f"(reload it: sudo modprobe -r v4l2loopback && {MODPROBE})"
            )
        return f"no v4l2loopback virtual camera device: load the kernel module ({MODPROBE})"

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        check_device(options.get("device"))

    def open(self) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise RuntimeError(
                f"virtual camera cannot start: {error_line(exc)} (pip install 'synethesia[virtualcam]')"
            ) from exc
        w, h = self.size
        try:
            self._cam = pyvirtualcam.Camera(
                w, h, self.fps, fmt=pyvirtualcam.PixelFormat.RGB, device=self.device
            )
        except Exception as exc:
            # pyvirtualcam raises one line per backend it tried: keep them on one line.
            reason = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            reason = reason or type(exc).__name__
            no_device = "loopback" in reason or "does not exist" in reason
            if sys.platform.startswith("linux") and no_device:
                reason += f" (make a device: {MODPROBE})"
            target = self.device or "the first free device"
            raise RuntimeError(f"virtual camera {target} could not be opened: {reason}") from exc

    def send(self, frame: Frame) -> None:
        cam = self._cam
        assert cam is not None, "send() before open()"
        cam.send(self.pixels(frame, "rgb24"))

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            cam.close()
