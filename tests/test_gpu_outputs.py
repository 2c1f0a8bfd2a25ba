"""The Syphon, Spout and virtual camera outputs.

Syphon (macOS) and Spout (Windows) cannot run here, so their libraries are replaced by
fakes installed in ``sys.modules`` (and ``sys.platform`` is patched). The fakes follow
the real APIs as read from the libraries' sources:

- syphon-python 0.2.0 (cansik/syphon-python): ``syphon/server.py``
  (``SyphonMetalServer(name, device=None, command_queue=None, *, is_private=False)``,
  ``publish_frame_texture(texture, region=None, size=None, is_flipped=False,
  command_buffer=None, auto_commit=True)``, ``has_clients``, ``stop()``),
  ``syphon/utils/raw.py`` (``create_mtl_texture(device, width, height, pixel_format)``,
  ``copy_bytes_to_mtl_texture``), ``syphon/utils/numpy.py``
  (``copy_image_to_mtl_texture(image, texture)``), plus PyObjC's ``Metal`` and ``objc``.
- SpoutGL 0.1.1 (jlai/Python-SpoutGL): ``src/PySpoutGL.cpp`` (pybind11; the methods
  name no arguments, so they take them by position only: ``sendImage(buffer, width,
  height, glFormat, invert, hostFbo)``, with the binding's buffer checks), and Spout's
  rule that it does nothing without a current OpenGL context (``createOpenGL``).

The real code of each output runs against them. pyvirtualcam is the real package: on a
machine without a v4l2loopback device its real failure is tested; frames are checked
with its ``Camera`` replaced by a fake of the same signature.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest

from synd.bridges import virtualcam as vcam_bridge
from synd.bridges.base import Frame, OutputRunner, OutputSpecError, create_output, parse_outputs
from synd.bridges.spout import SpoutOutput
from synd.bridges.syphon import SyphonOutput
from synd.bridges.virtualcam import VirtualCamOutput

RED, BLUE = (255, 0, 0), (0, 0, 255)


def banded(seq: int = 0, w: int = 384, h: int = 216) -> Frame:
    """A frame whose top quarter is red and the rest blue (the generator's size)."""
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[:] = BLUE
    rgb[: h // 4] = RED
    return Frame(seq=seq, audio_time=(seq + 1) / 30, captured_at=time.monotonic(), rgb=rgb)


def module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__spec__ = importlib.machinery.ModuleSpec(name, None)  # find_spec() reads it
    mod.__dict__.update(attrs)
    return mod


def run(out, frames) -> OutputRunner:
    """Feed every frame through a real runner (none dropped) once the output opened, then
    stop it."""
    runner = OutputRunner(out).start()
    if runner.wait_open(10):
        for f in frames:
            assert runner.offer(f)
            assert runner.flush(10)
    assert runner.stop(10)
    return runner


def count_closes(out) -> list[int]:
    calls: list[int] = []
    real = out.close

    def close() -> None:
        calls.append(1)
        real()

    out.close = close
    return calls


# -- fake syphon-python (+ PyObjC's Metal and objc) ------------------------------------------


class FakeTexture:
    """An MTLTexture as syphon.utils.raw uses it."""

    def __init__(self, device, pixel_format: int, width: int, height: int) -> None:
        self.device, self._format, self._w, self._h = device, pixel_format, width, height
        self.data = bytes(width * height * 4)

    def width(self) -> int:
        return self._w

    def height(self) -> int:
        return self._h

    def pixelFormat(self) -> int:
        return self._format

    def replaceRegion_mipmapLevel_withBytes_bytesPerRow_(self, region, level, data, row_bytes):
        assert region == ((0, 0, 0), (self._w, self._h, 1)) and level == 0
        assert row_bytes == self._w * 4 and len(data) >= self._w * self._h * 4
        self.data = bytes(data[: self._w * self._h * 4])

    def image(self) -> np.ndarray:
        return np.frombuffer(self.data, np.uint8).reshape(self._h, self._w, 4).copy()


class FakeSyphon:
    """syphon-python 0.2.0's server side as the output uses it, recording every call."""

    MTLPixelFormatRGBA8Unorm = 70
    MTLPixelFormatBGRA8Unorm = 80

    def __init__(self) -> None:
        self.log: list[str] = []
        self.servers: list = []
        self.textures: list[FakeTexture] = []
        self.published: list[tuple[FakeTexture, np.ndarray, bool]] = []
        self.device: object | None = object()  # MTLCreateSystemDefaultDevice()
        self.clients = True
        self.server_error: Exception | None = None
        self.pool_depth = 0
        lib = self

        class SyphonMetalServer:
            def __init__(self, name, device=None, command_queue=None, *, is_private=False):
                if lib.server_error is not None:
                    raise lib.server_error
                assert isinstance(name, str) and device is lib.device and not is_private
                self.name, self.device, self.stopped = name, device, 0
                lib.servers.append(self)
                lib.log.append("server")

            @property
            def has_clients(self) -> bool:
                return lib.clients

            def publish_frame_texture(
                self, texture, region=None, size=None, is_flipped=False, command_buffer=None, auto_commit=True
            ):
                assert lib.pool_depth > 0, "Metal call outside an autorelease pool"
                assert not self.stopped and texture.device is self.device
                assert region is None and size is None and command_buffer is None and auto_commit
                lib.published.append((texture, texture.image(), is_flipped))
                lib.log.append("publish")

            def stop(self) -> None:
                self.stopped += 1
                lib.log.append("stop")

        def create_mtl_texture(device, width, height, pixel_format=self.MTLPixelFormatRGBA8Unorm):
            texture = FakeTexture(device, pixel_format, width, height)
            lib.textures.append(texture)
            lib.log.append("texture")
            return texture

        def copy_image_to_mtl_texture(image, texture):
            assert len(image.shape) == 3, "Image has to be of shape (m, n, 4)"
            assert image.shape[2] == 4, "Image has to be of shape (m, n, 4)"
            data = image.tobytes()  # as syphon.utils.numpy does, then copy_bytes_to_mtl_texture
            region = ((0, 0, 0), (texture.width(), texture.height(), 1))
            texture.replaceRegion_mipmapLevel_withBytes_bytesPerRow_(region, 0, data, texture.width() * 4)

        @contextlib.contextmanager
        def autorelease_pool():
            lib.pool_depth += 1
            try:
                yield
            finally:
                lib.pool_depth -= 1

        raw = module("syphon.utils.raw", create_mtl_texture=create_mtl_texture)
        npy = module("syphon.utils.numpy", copy_image_to_mtl_texture=copy_image_to_mtl_texture)
        utils = module("syphon.utils", raw=raw, numpy=npy)
        self.modules = {
            "syphon": module("syphon", SyphonMetalServer=SyphonMetalServer, utils=utils),
            "syphon.utils": utils,
            "syphon.utils.raw": raw,
            "syphon.utils.numpy": npy,
            "Metal": module(
                "Metal",
                MTLCreateSystemDefaultDevice=lambda: lib.device,
                MTLPixelFormatRGBA8Unorm=self.MTLPixelFormatRGBA8Unorm,
                MTLPixelFormatBGRA8Unorm=self.MTLPixelFormatBGRA8Unorm,
            ),
            "objc": module("objc", autorelease_pool=autorelease_pool),
        }


def syphon_client_view(texture_image: np.ndarray, is_flipped: bool) -> np.ndarray:
    """The picture a Syphon client shows, top row first. A Syphon surface follows OpenGL
    (its first row is the bottom of the picture); SyphonMetalServer copies an unflipped
    texture row for row into it and a flipped one upside down."""
    surface = texture_image[::-1] if is_flipped else texture_image
    return surface[::-1]


@pytest.fixture
def fake_syphon(monkeypatch) -> FakeSyphon:
    lib = FakeSyphon()
    monkeypatch.setattr(sys, "platform", "darwin")
    for name, mod in lib.modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return lib


def test_syphon_publishes_bgra_at_its_own_size_upright_for_clients(fake_syphon):
    assert SyphonOutput.available() is None
    out = SyphonOutput(size=(1920, 1080), fps=1000.0)
    closes = count_closes(out)
    runner = run(out, [banded(seq) for seq in range(3)])
    assert runner.failed is None and runner.stats()["sent"] == 3 and closes == [1]
    (server,) = fake_syphon.servers
    assert server.name == "synd" and server.stopped == 1
    assert fake_syphon.log == ["server", "texture", "texture", "publish", "publish", "publish", "stop"]
    bgra = FakeSyphon.MTLPixelFormatBGRA8Unorm
    assert [(t.width(), t.height(), t.pixelFormat()) for t in fake_syphon.textures] == [
        (1920, 1080, bgra)
    ] * 2
    used = [texture for texture, _, _ in fake_syphon.published]
    assert used[0] is not used[1] and used[2] is used[0]  # two textures in turn
    for _, image, is_flipped in fake_syphon.published:
        assert image.shape == (1080, 1920, 4)
        assert (image[..., 3] == 255).all()
        seen = syphon_client_view(image, is_flipped)  # B G R A, top row first
        np.testing.assert_array_equal(seen[0], np.tile([0, 0, 255, 255], (1920, 1)))  # red top
        np.testing.assert_array_equal(seen[-1], np.tile([255, 0, 0, 255], (1920, 1)))  # blue bottom


def test_syphon_skips_the_work_while_no_client_watches(fake_syphon):
    fake_syphon.clients = False
    runner = run(SyphonOutput(fps=1000.0), [banded(seq) for seq in range(3)])
    assert runner.failed is None and runner.stats()["sent"] == 3
    assert fake_syphon.published == []
    assert all(not any(t.data) for t in fake_syphon.textures)  # nothing copied either


def test_syphon_server_names(fake_syphon):
    run(create_output("syphon", dict(parse_outputs("syphon")[0][1]), 30.0), [banded()])
    ((_, options),) = parse_outputs("syphon@640x360: VJ Main ✨ ")
    out = create_output("syphon", options, 30.0)
    run(out, [banded()])
    assert [s.name for s in fake_syphon.servers] == ["synd", "VJ Main ✨"]
    assert out.size == (640, 360) and fake_syphon.published[-1][1].shape == (360, 640, 4)
    assert SyphonOutput(source_name="x" * 255).source_name == "x" * 255


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "a\x00b", "a\u200bb", "x" * 256])
def test_syphon_rejects_bad_names_with_one_line(name):
    with pytest.raises(OutputSpecError) as spec_error:
        parse_outputs(f"syphon:{name}", check_available=False)
    with pytest.raises(ValueError) as error:
        SyphonOutput(source_name=name)
    for message in (str(spec_error.value), str(error.value)):
        assert "Syphon server name" in message and "\n" not in message


def test_syphon_failing_open_is_one_line_and_closes_once(fake_syphon):
    fake_syphon.device = None
    out = SyphonOutput()
    closes = count_closes(out)
    runner = run(out, [banded()])
    assert runner.failed == "Syphon server 'synd' could not start: this Mac reports no Metal GPU"
    assert closes == [1] and fake_syphon.servers == [] and fake_syphon.published == []

    fake_syphon.device = object()
    fake_syphon.server_error = RuntimeError("Syphon could not create the server\n(details)")
    out = SyphonOutput(source_name="VJ")
    closes = count_closes(out)
    runner = run(out, [banded()])
    assert runner.failed == (
        "Syphon server 'VJ' could not start: Syphon could not create the server (details)"
    )
    assert closes == [1]


@pytest.mark.skipif(sys.platform == "darwin", reason="checks the refusal off macOS")
def test_syphon_is_unavailable_off_macos_and_without_the_module(monkeypatch):
    assert SyphonOutput.available() == "Syphon exists only on macOS"
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setitem(sys.modules, "syphon", None)  # not installed
    assert SyphonOutput.available() == (
        "Python module 'syphon' is not installed (pip install 'synethesia[syphon]')"
    )
    with pytest.raises(RuntimeError, match=r"^Syphon cannot start: .*pip install 'synethesia\[syphon\]'"):
        SyphonOutput().open()


# -- fake SpoutGL ------------------------------------------------------------------------------


class FakeSpout:
    """SpoutGL 0.1.1's sender as the output uses it, recording every call."""

    GL_RGBA, GL_BGRA_EXT, GL_RGB, GL_BGR_EXT = 0x1908, 0x80E1, 0x1907, 0x80E0

    def __init__(self) -> None:
        self.log: list[str] = []
        self.senders: list = []
        self.images: list[tuple[np.ndarray, int, bool, int]] = []
        self.threads: set[int] = set()
        self.gl_ok = True
        self.results: list[bool] = []  # sendImage's answers, then True
        lib = self
        bpp = {self.GL_RGBA: 4, self.GL_BGRA_EXT: 4, self.GL_RGB: 3, self.GL_BGR_EXT: 3}

        class SpoutSender:
            def __init__(self, /) -> None:
                self.name: str | None = None
                self.gl_thread: int | None = None
                lib.senders.append(self)

            def _call(self, what: str) -> None:
                lib.log.append(what)
                lib.threads.add(threading.get_ident())

            def createOpenGL(self, /) -> bool:
                self._call("createOpenGL")
                if lib.gl_ok:
                    self.gl_thread = threading.get_ident()
                return lib.gl_ok

            def closeOpenGL(self, /) -> bool:
                self._call("closeOpenGL")
                self.gl_thread = None
                return True

            def setSenderName(self, arg0, /) -> None:
                self._call("setSenderName")
                self.name = arg0

            def sendImage(self, arg0, arg1, arg2, arg3, arg4, arg5, /) -> bool:
                buffer, width, height, gl_format, invert, host_fbo = arg0, arg1, arg2, arg3, arg4, arg5
                self._call("sendImage")
                if gl_format not in bpp:
                    raise ValueError("Unknown GL format")
                view = memoryview(buffer)
                if view.nbytes < width * height * bpp[gl_format]:
                    raise BufferError("Buffer not large enough")
                if not view.c_contiguous:
                    raise BufferError("Buffer must be contiguous")
                if self.gl_thread != threading.get_ident():
                    return False  # Spout 2.007 does nothing without a current OpenGL context
                pixels = np.frombuffer(view.tobytes(), np.uint8)[: width * height * bpp[gl_format]]
                image = pixels.reshape(height, width, bpp[gl_format])
                lib.images.append((image, gl_format, invert, host_fbo))
                return lib.results.pop(0) if lib.results else True

            def setFrameSync(self, arg0, /) -> None:
                self._call(f"setFrameSync {arg0}")

            def releaseSender(self, /) -> None:
                self._call("releaseSender")

        enums = module(
            "SpoutGL.enums",
            GL_RGBA=self.GL_RGBA,
            GL_BGRA_EXT=self.GL_BGRA_EXT,
            GL_RGB=self.GL_RGB,
            GL_BGR_EXT=self.GL_BGR_EXT,
        )
        self.modules = {
            "SpoutGL": module("SpoutGL", SpoutSender=SpoutSender, enums=enums),
            "SpoutGL.enums": enums,
        }


@pytest.fixture
def fake_spout(monkeypatch) -> FakeSpout:
    lib = FakeSpout()
    monkeypatch.setattr(sys, "platform", "win32")
    for name, mod in lib.modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return lib


def test_spout_sends_rgba_top_row_first_at_its_own_size(fake_spout):
    assert SpoutOutput.available() is None
    out = SpoutOutput(size=(1920, 1080), fps=1000.0)
    closes = count_closes(out)
    runner = run(out, [banded(seq) for seq in range(3)])
    assert runner.failed is None and runner.stats()["sent"] == 3 and closes == [1]
    assert fake_spout.log == (
        ["createOpenGL", "setSenderName"]
        + ["sendImage", "setFrameSync synd"] * 3
        + ["releaseSender", "closeOpenGL"]
    )
    assert fake_spout.senders[0].name == "synd"
    assert len(fake_spout.threads) == 1 and threading.get_ident() not in fake_spout.threads
    assert len(fake_spout.images) == 3
    for image, gl_format, invert, host_fbo in fake_spout.images:
        assert image.shape == (1080, 1920, 4) and gl_format == FakeSpout.GL_RGBA
        assert invert is False and host_fbo == 0
        assert (image[..., 3] == 255).all()
        # Spout's shared texture is DirectX's: its first row is the top of the picture.
        np.testing.assert_array_equal(image[0, :, :3], np.tile(RED, (1920, 1)))
        np.testing.assert_array_equal(image[-1, :, :3], np.tile(BLUE, (1920, 1)))


def test_spout_sender_names(fake_spout):
    ((_, options),) = parse_outputs("spout:Resolume In")
    run(create_output("spout", options, 30.0), [banded()])
    run(create_output("spout", {}, 30.0), [banded()])
    assert [s.name for s in fake_spout.senders] == ["Resolume In", "synd"]
    assert "setFrameSync Resolume In" in fake_spout.log
    assert SpoutOutput(source_name="x" * 228).source_name == "x" * 228


@pytest.mark.parametrize("name", ["", "  ", "a\tb", "a\x7fb", "Sÿnd", "a\\b", "x" * 229])
def test_spout_rejects_names_spout_cannot_carry(name):
    with pytest.raises(OutputSpecError) as spec_error:
        parse_outputs(f"spout:{name}", check_available=False)
    with pytest.raises(ValueError) as error:
        SpoutOutput(source_name=name)
    for message in (str(spec_error.value), str(error.value)):
        assert "Spout sender name" in message and "\n" not in message


def test_spout_failing_open_is_one_line_and_closes_once(fake_spout):
    fake_spout.gl_ok = False
    out = SpoutOutput()
    closes = count_closes(out)
    runner = run(out, [banded()])
    assert runner.failed == (
        "Spout sender 'synd' could not start: Spout could not create an "
        "OpenGL context (is an OpenGL driver installed?)"
    )
    assert closes == [1] and fake_spout.images == []
    assert fake_spout.log == ["createOpenGL", "releaseSender"]  # no context to close


def test_spout_survives_a_refused_frame_but_not_a_second_of_them(fake_spout, caplog):
    out = SpoutOutput(fps=4.0)
    out.open()
    fake_spout.results = [False, True, False, False, False]
    out.send(banded(0))  # refused once: retried with the next frame
    out.send(banded(1))
    assert fake_spout.log.count("setFrameSync synd") == 1
    out.send(banded(2))
    out.send(banded(3))
    out.send(banded(4))
    with pytest.raises(RuntimeError, match=r"^Spout refused 4 frames in a row"):
        fake_spout.results = [False]
        out.send(banded(5))
    out.close()
    assert fake_spout.log[-2:] == ["releaseSender", "closeOpenGL"]
    assert any("Spout did not take frame 0" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(sys.platform.startswith("win"), reason="checks the refusal off Windows")
def test_spout_is_unavailable_off_windows_and_without_the_module(monkeypatch):
    assert SpoutOutput.available() == "Spout exists only on Windows"
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setitem(sys.modules, "SpoutGL", None)
    assert SpoutOutput.available() == (
        "Python module 'SpoutGL' is not installed (pip install 'synethesia[spout]')"
    )
    with pytest.raises(RuntimeError, match=r"^Spout cannot start: .*pip install 'synethesia\[spout\]'"):
        SpoutOutput().open()


# -- virtualcam: the real pyvirtualcam -------------------------------------------------------


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2loopback is Linux's")


@pytest.fixture
def sysfs(tmp_path, monkeypatch) -> Path:
    """An empty /sys/class/video4linux, no v4l2loopback module and an empty /dev."""
    root = tmp_path / "video4linux"
    root.mkdir()
    (tmp_path / "dev").mkdir()
    monkeypatch.setattr(vcam_bridge, "SYSFS_VIDEO", root)
    monkeypatch.setattr(vcam_bridge, "SYSFS_MODULE", tmp_path / "module" / "v4l2loopback")
    monkeypatch.setattr(vcam_bridge, "DEV", tmp_path / "dev")
    return tmp_path


@linux_only
def test_virtualcam_says_how_to_make_a_loopback_device(sysfs):
    pytest.importorskip("pyvirtualcam")
    hint = "sudo modprobe v4l2loopback exclusive_caps=1"
    assert VirtualCamOutput.available() == (
        f"no v4l2loopback virtual camera device: load the kernel module ({hint})"
    )
    (sysfs / "video4linux" / "video0").mkdir()  # a webcam: no max_openers
    (sysfs / "video4linux" / "video0" / "name").write_text("Integrated Camera\n")
    assert "no v4l2loopback virtual camera device" in VirtualCamOutput.available()
    (sysfs / "module" / "v4l2loopback").mkdir(parents=True)
    assert VirtualCamOutput.available() == (
        f"the v4l2loopback module is loaded but made no device "
        f"(reload it: sudo modprobe -r v4l2loopback && {hint})"
    )
    for n in (10, 2):
        (sysfs / "video4linux" / f"video{n}").mkdir()
        (sysfs / "video4linux" / f"video{n}" / "max_openers").write_text("10\n")
    assert VirtualCamOutput.available() is None
    assert vcam_bridge.loopback_devices() == ["/dev/video2", "/dev/video10"]


@linux_only
def test_virtualcam_without_sysfs_leaves_it_to_opening(sysfs, monkeypatch):
    pytest.importorskip("pyvirtualcam")
    monkeypatch.setattr(vcam_bridge, "SYSFS_VIDEO", sysfs / "missing")
    assert vcam_bridge.loopback_devices() is None
    assert "no v4l2loopback" in VirtualCamOutput.available()
    (sysfs / "dev" / "video3").touch()
    assert VirtualCamOutput.available() is None


@linux_only
def test_virtualcam_reports_this_machines_missing_device():
    pytest.importorskip("pyvirtualcam")
    if vcam_bridge.loopback_devices():
        pytest.skip("this machine has a v4l2loopback device")
    reason = VirtualCamOutput.available()
    assert reason is not None and "v4l2loopback" in reason and "\n" not in reason
    assert "sudo modprobe v4l2loopback exclusive_caps=1" in reason
    with pytest.raises(OutputSpecError, match="output 'virtualcam' is not available: .*v4l2loopback"):
        parse_outputs("virtualcam")


@linux_only
def test_real_pyvirtualcam_open_fails_with_one_line_and_closes_once(tmp_path):
    pytest.importorskip("pyvirtualcam")
    device = str(tmp_path / "video99")
    out = VirtualCamOutput(size=(640, 360), device=device)
    closes = count_closes(out)
    runner = run(out, [banded()])
    assert runner.failed == (
        f"virtual camera {device} could not be opened: 'v4l2loopback' backend: Device {device} "
        f"does not exist. (make a device: sudo modprobe v4l2loopback exclusive_caps=1)"
    )
    assert closes == [1]
    if not vcam_bridge.loopback_devices() and not any(Path("/dev").glob("video*")):
        out = VirtualCamOutput(size=(640, 360))
        runner = run(out, [banded()])
        assert runner.failed.startswith(
            "virtual camera the first free device could not be opened: "
            "'v4l2loopback' backend: No v4l2 loopback device found"
        )
        assert "\n" not in runner.failed


# -- virtualcam: frames, with pyvirtualcam's Camera replaced -----------------------------------


@pytest.fixture
def fake_camera(monkeypatch):
    pyvirtualcam = pytest.importorskip("pyvirtualcam")
    PixelFormat = pyvirtualcam.PixelFormat
    made: list = []

    class Camera:
        """pyvirtualcam.Camera's signature and frame checks (camera.py)."""

        def __init__(
            self,
            width: int,
            height: int,
            fps: float,
            *,
            fmt=PixelFormat.RGB,
            device=None,
            backend=None,
            print_fps=False,
            **kw,
        ) -> None:
            self.width, self.height, self.fps = width, height, fps
            self.fmt, self.device, self.backend, self.kw = fmt, device, backend, kw
            self.frames: list[np.ndarray] = []
            self.closed = 0
            self.thread = threading.get_ident()
            made.append(self)

        def send(self, frame: np.ndarray) -> None:
            if frame.dtype != np.uint8:
                raise TypeError(f"unexpected frame dtype: {frame.dtype} != uint8")
            if frame.shape != (self.height, self.width, 3):
                want = (self.height, self.width, 3)
                raise ValueError(f"unexpected frame shape: {frame.shape} != {want}")
            assert threading.get_ident() == self.thread
            self.frames.append(frame.copy())

        def sleep_until_next_frame(self) -> None:
            raise AssertionError("the runner paces the frames")

        def close(self) -> None:
            self.closed += 1

    monkeypatch.setattr(pyvirtualcam, "Camera", Camera)
    return made


def test_virtualcam_sends_every_frame_as_rgb_at_its_own_size(fake_camera):
    ((_, options),) = parse_outputs("virtualcam@1920x1080@30:/dev/video10", check_available=False)
    out = create_output("virtualcam", options, 60.0)
    closes = count_closes(out)
    runner = OutputRunner(out).start()
    for seq in range(4):  # one frame per output period: none is skipped
        assert runner.offer(banded(seq))
        assert runner.flush(10)
    assert runner.stop(10)
    assert runner.failed is None and closes == [1]
    (cam,) = fake_camera
    import pyvirtualcam

    assert (cam.width, cam.height, cam.fps) == (1920, 1080, 30.0)
    assert cam.fmt is pyvirtualcam.PixelFormat.RGB and cam.device == "/dev/video10"
    assert cam.backend is None and cam.kw == {} and cam.closed == 1
    assert len(cam.frames) == 4 == runner.stats()["sent"]
    for image in cam.frames:
        np.testing.assert_array_equal(image[0], np.tile(RED, (1920, 1)))
        np.testing.assert_array_equal(image[-1], np.tile(BLUE, (1920, 1)))


def test_virtualcam_without_device_takes_the_first_free_one(fake_camera):
    run(VirtualCamOutput(fps=1000.0), [banded()])
    (cam,) = fake_camera
    assert cam.device is None and (cam.width, cam.height) == (1280, 720) and len(cam.frames) == 1


def test_virtualcam_joins_the_backends_failures_on_one_line(fake_camera, monkeypatch):
    import pyvirtualcam

    def refuse(*args, **kwargs):  # what Camera raises after trying two backends (Windows)
        raise RuntimeError(
            "'obs' backend: OBS Virtual Camera is not installed.\n"
            "'unitycapture' backend: Unity Video Capture is not installed."
        )

    monkeypatch.setattr(pyvirtualcam, "Camera", refuse)
    monkeypatch.setattr(sys, "platform", "win32")
    out = VirtualCamOutput(fps=1000.0)
    closes = count_closes(out)
    runner = run(out, [banded()])
    assert runner.failed == (
        "virtual camera the first free device could not be opened: 'obs' backend: OBS Virtual "
        "Camera is not installed.; 'unitycapture' backend: Unity Video Capture is not installed."
    )
    assert closes == [1]


@pytest.mark.parametrize(
    "spec, platform, message",
    [
        ("virtualcam:", "linux", "virtual camera device is empty (use virtualcam:/dev/video10"),
        ("virtualcam:video10", "linux", "must be a device path like /dev/video10"),
        ("virtualcam:/dev/video1\x07", "linux", "must not contain control characters"),
        ("virtualcam:/dev/" + "v" * 251, "linux", "at most 255"),
        ("virtualcam:", "win32", "(use virtualcam:OBS Virtual Camera"),
    ],
)
def test_virtualcam_checks_the_device_option(monkeypatch, spec, platform, message):
    monkeypatch.setattr(sys, "platform", platform)
    with pytest.raises(OutputSpecError) as error:
        parse_outputs(spec, check_available=False)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_camera_name_is_fine_off_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "win32")
    assert parse_outputs("virtualcam:OBS Virtual Camera", check_available=False) == [
        ("virtualcam", {"device": "OBS Virtual Camera"})
    ]
    monkeypatch.setattr(sys, "platform", "sunos5")
    assert VirtualCamOutput.available() == (
        "virtual cameras exist only on Linux (v4l2loopback), Windows and macOS (OBS)"
    )
