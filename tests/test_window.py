"""The control window and the tray menu (pytest-qt, offscreen) on a real engine: every
control sends its command and every change from OSC shows up in the window, in the
daemon's process (LocalLink) and attached over OSC (OscLink)."""

import copy
import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest
from PyQt6.QtCore import Qt

from synd.audio import write_wav
from synd.bridges.base import OutputRunner
from synd.capture import FileInput
from synd.control import Controller
from synd.engine import Engine, EngineOptions
from synd.link import LocalLink, OscLink
from synd.osc import OscServer
from synd.presets import Look
from synd.tray import NO_TRAY_NOTE, Tray
from synd.window import ControlWindow
from tests.helpers.audio import music_clip
from tests.helpers.engine import Collect
from tests.helpers.models import other_model
from tests.helpers.osc import oscsend

WAIT_MS = 5000


class Show:
    """A running engine (tiny models, a looping song, a collecting output) with its
    Controller: what `synd run` has, for a LocalLink (`control`, `engine`, `status()`)."""

    def __init__(self, bundle, song):
        self.models = {"first": bundle, "second": other_model(bundle, 2), "third": other_model(bundle, 3)}
        self.source = FileInput(song, rate=24000, loop=True)
        self.out = Collect(fps=30.0)
        self.runner = OutputRunner(self.out)
        self.engine = Engine(
            bundle, Look(), self.source, [self.runner], EngineOptions(size=(64, 48)), model_name="first"
        )
        self.control = Controller(self.engine, list(self.models), self._load, current="first")
        self.learned: list[str] = []
        self.control.subscribe("learn", self.learned.append)

    def _load(self, name):
        if name not in self.models:
            raise FileNotFoundError(f"no model {name!r}")
        return copy.deepcopy(self.models[name]), Look()

    def status(self):
        return self.engine.status()

    def start(self):
        self.source.start()
        self.runner.start()
        self.engine.start()

    def stop(self):
        self.engine.stop()
        self.runner.stop(1.0)
        self.source.stop()


@pytest.fixture
def show(tiny_bundle, tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(5, seconds=4.0), 24000)
    s = Show(tiny_bundle, song)
    s.start()
    yield s
    s.stop()


@pytest.fixture
def local_window(qtbot, show):
    link = LocalLink(show)
    link.start()
    window = ControlWindow(link)
    qtbot.addWidget(window)
    window.show()
    yield window
    link.stop()


@pytest.fixture
def osc_server(show):
    server = OscServer(show.control, port=0)
    server.start()
    yield server
    server.stop()


def test_every_control_sends_its_command(qtbot, local_window, show):
    w = local_window
    w.intensity.setValue(40)
    assert show.control.get("intensity") == pytest.approx(0.4)
    qtbot.waitUntil(lambda: show.engine.look.intensity == pytest.approx(0.4), timeout=WAIT_MS)

    w.transition.setValue(0.0)
    assert show.control.get("transition_time") == 0.0
    item = w.presets.findItems("second", Qt.MatchFlag.MatchExactly)[0]
    w.presets.itemClicked.emit(item)
    assert show.control.preset == "second"
    qtbot.waitUntil(lambda: show.engine.model_name == "second", timeout=WAIT_MS)

    w.freeze.click()
    qtbot.waitUntil(lambda: show.engine.flags["freeze"], timeout=WAIT_MS)
    w.freeze.click()
    qtbot.waitUntil(lambda: not show.engine.flags["freeze"], timeout=WAIT_MS)
    w.blackout.click()
    qtbot.waitUntil(lambda: show.engine.flags["blackout"], timeout=WAIT_MS)
    n = len(show.out.frames)
    qtbot.waitUntil(lambda: len(show.out.frames) > n + 3, timeout=WAIT_MS)
    assert not show.out.frames[-1].rgb.any()  # black frames go out
    w.blackout.click()

    box = w.output_boxes["collect"]
    box.click()
    assert show.runner.enabled is False
    box.click()
    assert show.runner.enabled is True

    picker = w.slot_pickers["b"]
    picker.setCurrentText("third")
    picker.activated.emit(picker.currentIndex())
    qtbot.waitUntil(lambda: show.engine.mix_state()["b"] == "third", timeout=WAIT_MS)
    w.crossfade.setValue(1000)
    qtbot.waitUntil(lambda: show.engine.mix_state()["crossfade"] == 1.0, timeout=WAIT_MS)

    w.learn_target.setCurrentText("hue")
    w.learn.click()
    assert show.learned == ["hue"]
    assert "hue" in w.statusBar().currentMessage()


def test_the_window_shows_the_picture_and_the_live_numbers(qtbot, local_window, show):
    w = local_window
    qtbot.waitUntil(lambda: w.preview._image is not None, timeout=WAIT_MS)
    shown = w.preview.grab().toImage()
    arr = np.frombuffer(shown.constBits().asstring(shown.sizeInBytes()), np.uint8)
    assert arr.reshape(shown.height(), -1)[:, : shown.width() * 4].std() > 3  # a picture, not flat
    qtbot.waitUntil(
        lambda: "fps" in w.readout.text() and not w.readout.text().startswith("0.0"), timeout=WAIT_MS
    )
    fps = float(w.readout.text().split()[0])
    assert 5 < fps < 40
    assert "dropped" in w.readout.text()


def test_changes_over_osc_show_up_in_the_window(qtbot, local_window, show, osc_server):
    """liblo's oscsend changes the show; the window follows within a moment."""
    w = local_window
    port = osc_server.address[1]
    oscsend(port, "/synd/intensity", "f", 0.3)
    qtbot.waitUntil(lambda: w.intensity.value() == 30, timeout=WAIT_MS)
    assert w.intensity_label.text() == "30%"
    oscsend(port, "/synd/transition_time", "f", 0.5)
    qtbot.waitUntil(lambda: w.transition.value() == 0.5, timeout=WAIT_MS)
    oscsend(port, "/synd/preset", "s", "third")
    qtbot.waitUntil(
        lambda: w.presets.currentItem() is not None and w.presets.currentItem().text() == "third",
        timeout=WAIT_MS,
    )
    assert w.presets.currentItem().font().bold()
    oscsend(port, "/synd/freeze", "i", 1)
    qtbot.waitUntil(lambda: w.freeze.isChecked(), timeout=WAIT_MS)
    oscsend(port, "/synd/output/collect", "i", 0)
    qtbot.waitUntil(lambda: not w.output_boxes["collect"].isChecked(), timeout=WAIT_MS)
    # A fade sends no change events: the crossfader follows the status.
    oscsend(port, "/synd/fade", "ff", 1.0, 0.3)
    qtbot.waitUntil(lambda: w.crossfade.value() == 1000, timeout=WAIT_MS)
    # The window did not echo the changes back as commands of its own.
    assert show.control.get("intensity") == pytest.approx(0.3)


def test_a_held_slider_is_not_moved_under_the_hand(qtbot, local_window, show):
    w = local_window
    w.intensity.setSliderDown(True)
    w.intensity.setValue(150)
    show.control.set("intensity", 0.2)
    qtbot.wait(600)
    assert w.intensity.value() == 150
    w.intensity.setSliderDown(False)
    show.control.set("intensity", 0.7)
    qtbot.waitUntil(lambda: w.intensity.value() == 70, timeout=WAIT_MS)


def test_keyboard_shortcuts(qtbot, local_window, show):
    w = local_window
    show.control.set("transition_time", 0.0)
    qtbot.keyClick(w, Qt.Key.Key_PageDown)
    assert show.control.preset == "second"
    qtbot.keyClick(w, Qt.Key.Key_PageUp)
    assert show.control.preset == "first"
    qtbot.keyClick(w, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert show.control.preset == "third"
    before = show.control.get("intensity")
    qtbot.keyClick(w, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert show.control.get("intensity") == pytest.approx(before + 0.1)
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert show.control.get("blackout") is True
    qtbot.keyClick(w, Qt.Key.Key_B)
    assert show.control.get("blackout") is False
    qtbot.keyClick(w, Qt.Key.Key_F)
    assert show.control.get("freeze") is True
    quits = []
    w.on_quit = lambda: quits.append(1)
    qtbot.keyClick(w, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    assert quits == [1]


def test_refused_commands_are_one_line_in_the_status_bar(qtbot, local_window, show):
    w = local_window
    w.link.send("/synd/preset", "no-such-look")
    assert "no preset or model named 'no-such-look'" in w.statusBar().currentMessage()
    w.link.send("/synd/intensity", "loud")
    assert "/synd/intensity" in w.statusBar().currentMessage()
    assert "\n" not in w.statusBar().currentMessage()
    assert show.control.get("intensity") == pytest.approx(1.0)


def test_attached_over_osc_the_window_follows_and_commands(qtbot, show, osc_server):
    """`synd tray`'s link: subscribes, gets the lists, values, status and pictures, and
    sends the same commands; a daemon that goes away is reported, and found again."""
    port = osc_server.address[1]
    link = OscLink("127.0.0.1", port)
    window = ControlWindow(link)
    qtbot.addWidget(window)
    link.start()
    window.show()
    try:
        qtbot.waitUntil(lambda: window.presets.count() == 3, timeout=WAIT_MS)
        assert link.state["preset"] == "first" and link.state["outputs"] == ["collect"]
        qtbot.waitUntil(lambda: window.preview._image is not None, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: "fps" in window.readout.text(), timeout=WAIT_MS)

        window.intensity.setValue(55)
        qtbot.waitUntil(lambda: show.control.get("intensity") == pytest.approx(0.55), timeout=WAIT_MS)
        oscsend(port, "/synd/intensity", "f", 1.25)  # another surface moves it
        qtbot.waitUntil(lambda: window.intensity.value() == 125, timeout=WAIT_MS)
        oscsend(port, "/synd/blackout", "i", 1)
        qtbot.waitUntil(lambda: window.blackout.isChecked(), timeout=WAIT_MS)

        osc_server.stop()
        qtbot.waitUntil(lambda: "not connected" in window.windowTitle(), timeout=WAIT_MS)
        assert "no answer" in window.statusBar().currentMessage()
        again = OscServer(show.control, port=port)
        again.start()
        try:
            qtbot.waitUntil(lambda: link.connected, timeout=WAIT_MS)
            assert window.windowTitle() == "synd control"
        finally:
            again.stop()
    finally:
        link.stop()


def test_the_tray_menu_offers_the_show_and_sends_commands(qtbot, show):
    link = LocalLink(show)
    link.start()
    quits = []
    tray = Tray(link, on_quit=lambda: quits.append(1))
    tray.menu.aboutToShow.emit()
    menus = {a.text().replace("&", ""): a for a in tray.menu.actions()}
    assert {
        "Presets",
        "Input",
        "Outputs",
        "Intensity",
        "Freeze picture",
        "Blackout",
        "Open control window",
        "Quit synd",
    } <= set(menus)
    presets = {a.text(): a for a in menus["Presets"].menu().actions() if a.isCheckable()}
    assert list(presets) == ["first", "second", "third"]
    assert presets["first"].isChecked() and not presets["second"].isChecked()
    show.control.set("transition_time", 0.0)
    presets["second"].trigger()
    assert show.control.preset == "second"
    qtbot.waitUntil(lambda: show.engine.model_name == "second", timeout=WAIT_MS)

    steps = [a for a in menus["Intensity"].menu().actions()]
    assert [a.text() for a in steps] == ["0%", "25%", "50%", "75%", "100%", "125%", "150%", "200%"]
    assert [a.text() for a in steps if a.isChecked()] == ["100%"]
    steps[2].trigger()
    assert show.control.get("intensity") == 0.5
    menus["Freeze picture"].trigger()
    assert show.control.get("freeze") is True
    outputs = menus["Outputs"].menu().actions()
    assert [a.text() for a in outputs] == ["collect"] and outputs[0].isChecked()
    outputs[0].trigger()
    assert show.runner.enabled is False
    # The menu is rebuilt from the latest state each time it opens.
    tray.menu.aboutToShow.emit()
    menus = {a.text().replace("&", ""): a for a in tray.menu.actions()}
    checked = [a.text() for a in menus["Presets"].menu().actions() if a.isChecked()]
    assert checked == ["second"]
    assert menus["Freeze picture"].isChecked()
    menus["Quit synd"].trigger()
    assert quits == [1]
    tray.hide()
    link.stop()


def test_without_a_system_tray_the_window_opens_with_a_note(qtbot, show, caplog):
    """Offscreen Qt has no system tray: the control window stands in, and closing it quits."""
    link = LocalLink(show)
    link.start()
    quits = []
    tray = Tray(link, on_quit=lambda: quits.append(time.monotonic()))
    assert tray.has_tray is False
    with caplog.at_level("WARNING"):
        tray.show()
    assert tray.window is not None and tray.window.isVisible()
    qtbot.addWidget(tray.window)
    assert tray.window.statusBar().currentMessage() == NO_TRAY_NOTE
    assert [r.getMessage() for r in caplog.records if "system tray" in r.getMessage()] == [NO_TRAY_NOTE]
    tray.window.close()
    assert len(quits) == 1
    link.stop()
