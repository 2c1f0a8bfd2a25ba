"""The control window: the show at a glance and every control under the mouse.

Left, the live picture with a readout of frame rate, latency and dropped frames; below
it the performance controls (intensity, the A/B crossfader, transition time, cut,
freeze, blackout). Right, the preset list, the two model slots, the audio input, the
outputs and MIDI learn. Every control sends the same OSC command a TouchOSC page would
(through a `synd.link.Link`), and every change, from wherever it came, moves the
controls within a moment; a control the user is holding is not moved under their hand.

Keyboard (see `SHORTCUTS`): PageDown/PageUp or Ctrl+Right/Left next/previous preset,
Ctrl+1..9 preset N, Ctrl+Up/Down intensity up/down, [ and ] fade to A or B, C cut on the
beat, F freeze, B blackout, Ctrl+L MIDI learn, Esc or Ctrl+W close, Ctrl+Q quit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from PyQt6.QtCore import QSignalBlocker, Qt
from PyQt6.QtGui import QFont, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from synd.control import LEARNABLE, PARAMS
from synd.frameview import frame_view_class
from synd.link import Link

log = logging.getLogger(__name__)

TITLE = "synd control"
INTENSITY_STEP = 0.1

#: (keys, what they do) for the window's shortcuts, also shown in its tooltips.
SHORTCUTS = (
    ("PgDown, Ctrl+Right", "next preset"),
    ("PgUp, Ctrl+Left", "previous preset"),
    ("Ctrl+1..9", "preset 1 to 9"),
    ("Ctrl+Up / Ctrl+Down", "intensity up / down"),
    ("[ / ]", "fade to A / B"),
    ("C", "cut to the other slot on the beat"),
    ("F", "freeze"),
    ("B", "blackout"),
    ("Ctrl+L", "MIDI learn"),
    ("Esc, Ctrl+W", "close this window"),
    ("Ctrl+Q", "quit"),
)


def _percent(value: float) -> str:
    return f"{round(value * 100)}%"


def _row(widget: QListWidget, row: int) -> QListWidgetItem:
    """`widget.item(row)` for a row in range, which always has one (PyQt's stubs allow None)."""
    item = widget.item(row)
    assert item is not None
    return item


class ControlWindow(QMainWindow):
    """The control window over `link`. `on_quit` is called for Ctrl+Q (and, with
    `quit_on_close`, when the window is closed: where there is no tray to come back to)."""

    def __init__(
        self, link: Link, on_quit: Callable[[], Any] | None = None, quit_on_close: bool = False
    ) -> None:
        super().__init__()
        self.link = link
        self.on_quit = on_quit
        self.quit_on_close = quit_on_close
        self.setWindowTitle(TITLE)
        from synd.icon import app_icon

        self.setWindowIcon(app_icon())
        self._build()
        self._shortcuts()
        link.changed.connect(self._on_changed)
        link.status.connect(self._on_status)
        link.frame.connect(self.preview.show_frame)
        link.connection.connect(self._on_connection)
        link.error.connect(lambda text: self._show_message(text, 8000))
        for name, value in list(link.state.items()):
            self._on_changed(name, value)
        if link.last_status:
            self._on_status(link.last_status)
        self.resize(1100, 640)

    # -- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        self.preview = frame_view_class()()
        self.preview.setMinimumSize(384, 216)
        self.preview.setToolTip("The picture as it goes out")
        column.addWidget(self.preview, 1)
        self.readout = QLabel("waiting for the first frame")
        self.readout.setObjectName("readout")
        column.addWidget(self.readout)
        column.addWidget(self._performance())

        right = QWidget()
        side = QVBoxLayout(right)
        side.addWidget(QLabel("Presets"))
        self.presets = QListWidget()
        self.presets.setToolTip("Click a preset to crossfade to it (PgDown/PgUp: next/previous)")
        self.presets.itemClicked.connect(lambda item: self.link.send("/synd/preset", item.text()))
        self.presets.itemActivated.connect(lambda item: self.link.send("/synd/preset", item.text()))
        side.addWidget(self.presets, 1)
        side.addWidget(self._slots())
        side.addWidget(self._io())

        splitter = QSplitter()
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)

    def _performance(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.intensity = QSlider(Qt.Orientation.Horizontal)
        self.intensity.setRange(0, round(PARAMS["intensity"].high * 100))
        self.intensity.setPageStep(10)
        self.intensity.setToolTip("How strongly the sound drives the picture (Ctrl+Up/Down)")
        self.intensity.valueChanged.connect(lambda v: self.link.send("/synd/intensity", v / 100.0))
        self.intensity_label = QLabel("100%")
        self.intensity_label.setMinimumWidth(44)
        grid.addWidget(QLabel("Intensity"), 0, 0)
        grid.addWidget(self.intensity, 0, 1, 1, 3)
        grid.addWidget(self.intensity_label, 0, 4)

        self.crossfade = QSlider(Qt.Orientation.Horizontal)
        self.crossfade.setRange(0, 1000)
        self.crossfade.setPageStep(100)
        self.crossfade.setToolTip("Slot A to slot B ([ and ] fade over the transition time)")
        self.crossfade.valueChanged.connect(lambda v: self.link.send("/synd/crossfade", v / 1000.0))
        grid.addWidget(QLabel("A"), 1, 0, alignment=Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.crossfade, 1, 1, 1, 3)
        grid.addWidget(QLabel("B"), 1, 4)

        self.transition = QDoubleSpinBox()
        self.transition.setRange(PARAMS["transition_time"].low, PARAMS["transition_time"].high)
        self.transition.setSingleStep(0.5)
        self.transition.setDecimals(1)
        self.transition.setSuffix(" s")
        self.transition.setToolTip("How long a preset change or a fade takes (0 = cut)")
        self.transition.setMaximumWidth(110)
        self.transition.valueChanged.connect(lambda v: self.link.send("/synd/transition_time", float(v)))
        self.cut = QPushButton("Cut on beat")
        self.cut.setToolTip("Switch to the other slot on the next beat (C)")
        self.cut.clicked.connect(lambda: self.link.send("/synd/cut"))
        self.freeze = self._toggle("Freeze", "Hold the picture (F)", "/synd/freeze")
        self.blackout = self._toggle("Blackout", "Black frames (B)", "/synd/blackout")
        buttons = QHBoxLayout()
        buttons.addWidget(self.transition)
        buttons.addStretch(1)
        for button in (self.cut, self.freeze, self.blackout):
            buttons.addWidget(button)
        grid.addWidget(QLabel("Transition"), 2, 0)
        grid.addLayout(buttons, 2, 1, 1, 4)
        grid.setColumnStretch(1, 1)
        return box

    def _toggle(self, text: str, tip: str, address: str) -> QPushButton:
        button = QPushButton(text)
        button.setCheckable(True)
        button.setToolTip(tip)
        button.toggled.connect(lambda on: self.link.send(address, 1 if on else 0))
        return button

    def _slots(self) -> QWidget:
        box = QGroupBox("Model slots")
        form = QFormLayout(box)
        self.slot_pickers: dict[str, QComboBox] = {}
        for slot in ("a", "b"):
            picker = QComboBox()
            picker.setToolTip(f"Load a model or preset into slot {slot.upper()} (no fade)")
            picker.activated.connect(
                lambda _i, s=slot, p=picker: self.link.send(f"/synd/model/{s}", p.currentText())
            )
            self.slot_pickers[slot] = picker
            form.addRow(f"Slot {slot.upper()}", picker)
        return box

    def _io(self) -> QWidget:
        box = QGroupBox("Input, outputs, MIDI")
        form = QFormLayout(box)
        self.input_label = QLabel("-")
        self.input_label.setWordWrap(True)
        self.input_picker = QComboBox()
        self.input_picker.setToolTip("Switch the audio input")
        self.input_picker.setPlaceholderText("choose an input")
        self.input_picker.activated.connect(
            lambda _i: self.link.send("/synd/input", self.input_picker.currentText())
        )
        form.addRow("Input", self.input_label)
        form.addRow("Switch to", self.input_picker)
        self.outputs_row = QWidget()
        self.outputs_layout = QHBoxLayout(self.outputs_row)
        self.outputs_layout.setContentsMargins(0, 0, 0, 0)
        self.output_boxes: dict[str, QCheckBox] = {}
        form.addRow("Outputs", self.outputs_row)
        learn_row = QWidget()
        learn = QHBoxLayout(learn_row)
        learn.setContentsMargins(0, 0, 0, 0)
        self.learn_target = QComboBox()
        self.learn_target.addItems(LEARNABLE)
        self.learn_target.setToolTip("What the next MIDI control you move will drive")
        self.learn = QPushButton("MIDI learn")
        self.learn.setToolTip("Bind the next MIDI control you move to the chosen control (Ctrl+L)")
        self.learn.clicked.connect(self.start_learn)
        learn.addWidget(self.learn_target, 1)
        learn.addWidget(self.learn)
        form.addRow("MIDI", learn_row)
        return box

    def _shortcuts(self) -> None:
        def key(sequence: str, action: Callable[[], Any]) -> None:
            shortcut = QShortcut(QKeySequence(sequence), self)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(action)

        for seq in ("PgDown", "Ctrl+Right"):
            key(seq, lambda: self.link.send("/synd/preset/next"))
        for seq in ("PgUp", "Ctrl+Left"):
            key(seq, lambda: self.link.send("/synd/preset/previous"))
        for n in range(1, 10):
            key(f"Ctrl+{n}", partial(self.choose_preset, n - 1))
        key("Ctrl+Up", lambda: self.step_intensity(+INTENSITY_STEP))
        key("Ctrl+Down", lambda: self.step_intensity(-INTENSITY_STEP))
        key("[", lambda: self.link.send("/synd/fade", 0.0))
        key("]", lambda: self.link.send("/synd/fade", 1.0))
        key("C", lambda: self.link.send("/synd/cut"))
        key("F", self.freeze.toggle)
        key("B", self.blackout.toggle)
        key("Ctrl+L", self.start_learn)
        for seq in ("Esc", "Ctrl+W"):
            key(seq, self.close)
        key("Ctrl+Q", self.quit)

    # -- actions ----------------------------------------------------------------------------

    def choose_preset(self, index: int) -> None:
        """Show the preset at `index` in the list (Ctrl+1..9)."""
        if 0 <= index < self.presets.count():
            self.link.send("/synd/preset", _row(self.presets, index).text())

    def step_intensity(self, delta: float) -> None:
        value = float(self.link.state.get("intensity", 1.0)) + delta
        self.link.send("/synd/intensity", round(min(PARAMS["intensity"].high, max(0.0, value)), 3))

    def start_learn(self) -> None:
        target = self.learn_target.currentText()
        self.link.send("/synd/midi/learn", target)
        self._show_message(f"MIDI learn: move a control on your MIDI device to bind it to {target}", 15000)

    def quit(self) -> None:
        if self.on_quit is not None:
            self.on_quit()

    # -- following the show ----------------------------------------------------------------

    def _on_changed(self, name: str, value: Any) -> None:
        if name == "intensity":
            self._move(self.intensity, round(float(value) * 100))
            self.intensity_label.setText(_percent(float(value)))
        elif name == "crossfade":
            self._move(self.crossfade, round(float(value) * 1000))
        elif name == "transition_time":
            if not self.transition.hasFocus():
                with QSignalBlocker(self.transition):
                    self.transition.setValue(float(value))
        elif name in ("freeze", "blackout"):
            button = self.freeze if name == "freeze" else self.blackout
            with QSignalBlocker(button):
                button.setChecked(bool(value))
        elif name == "presets":
            self._fill_presets(value)
        elif name == "preset":
            self._mark_preset(value)
        elif name == "models":
            for slot, picker in self.slot_pickers.items():
                self._fill(picker, value, self.link.state.get(f"model/{slot}"))
        elif name in ("model/a", "model/b"):
            picker = self.slot_pickers[name[-1]]
            self._fill(picker, self.link.state.get("models", []), value)
        elif name == "inputs":
            self._fill(self.input_picker, value, None)
            self.input_picker.setEnabled(bool(value))
        elif name == "input":
            self.input_label.setText(str(value) if value else "-")
        elif name == "outputs":
            self._fill_outputs(value)
        elif name.startswith("output/"):
            box = self.output_boxes.get(name[len("output/") :])
            if box is not None:
                with QSignalBlocker(box):
                    box.setChecked(bool(value))
        elif name == "midi/learn":
            self._show_message(f"MIDI learn: move a control on your MIDI device to bind it to {value}", 15000)

    @staticmethod
    def _move(slider: QSlider, position: int) -> None:
        """Move a slider to follow the show, unless the user is holding it."""
        if slider.isSliderDown() or slider.value() == position:
            return
        with QSignalBlocker(slider):
            slider.setValue(position)

    @staticmethod
    def _fill(picker: QComboBox, names: list[str], current: str | None) -> None:
        with QSignalBlocker(picker):
            items = [picker.itemText(i) for i in range(picker.count())]
            wanted = list(names)
            if current and current not in wanted:
                wanted.append(current)
            if items != wanted:
                picker.clear()
                picker.addItems(wanted)
            if current:
                picker.setCurrentText(current)
            else:
                picker.setCurrentIndex(-1)

    def _fill_presets(self, names: list[str]) -> None:
        if [_row(self.presets, i).text() for i in range(self.presets.count())] != list(names):
            with QSignalBlocker(self.presets):
                self.presets.clear()
                self.presets.addItems(names)
        self._mark_preset(self.link.state.get("preset"))

    def _mark_preset(self, current: str | None) -> None:
        with QSignalBlocker(self.presets):
            for i in range(self.presets.count()):
                item = _row(self.presets, i)
                font = QFont(item.font())
                font.setBold(item.text() == current)
                item.setFont(font)
                if item.text() == current:
                    self.presets.setCurrentRow(i)

    def _fill_outputs(self, names: list[str]) -> None:
        if list(self.output_boxes) == list(names):
            return
        for box in self.output_boxes.values():
            box.deleteLater()
        self.output_boxes = {}
        for name in names:
            box = QCheckBox(name)
            box.setToolTip(f"Send frames to {name} (unchecked: paused)")
            box.setChecked(bool(self.link.state.get(f"output/{name}", True)))
            box.toggled.connect(lambda on, n=name: self.link.send(f"/synd/output/{n}", 1 if on else 0))
            self.outputs_layout.addWidget(box)
            self.output_boxes[name] = box
        self.outputs_layout.addStretch(1)

    def _on_status(self, status: dict) -> None:
        fps = status.get("fps")
        latency = status.get("latency_ms")
        dropped = status.get("dropped")
        parts = [
            f"{fps:.1f} fps" if fps is not None else "- fps",
            f"latency {latency:.1f} ms" if latency is not None else "latency -",
            f"{dropped} dropped" if dropped is not None else "dropped -",
        ]
        self.readout.setText("   ".join(parts))

    def _on_connection(self, connected: bool, text: str) -> None:
        self.setWindowTitle(TITLE if connected else f"{TITLE} (not connected)")
        self._show_message(text, 0 if not connected else 5000)
        central = self.centralWidget()
        assert central is not None  # set once and for all by _build()
        central.setEnabled(connected)

    def _show_message(self, text: str, timeout: int) -> None:
        """`statusBar().showMessage(...)`; a QMainWindow makes its status bar on first use
        (PyQt's stubs allow None)."""
        bar = self.statusBar()
        assert bar is not None
        bar.showMessage(text, timeout)

    # -- Qt events -------------------------------------------------------------------------

    def showEvent(self, event: Any) -> None:
        self.link.want_frames(True)
        super().showEvent(event)

    def hideEvent(self, event: Any) -> None:
        self.link.want_frames(False)
        super().hideEvent(event)

    def closeEvent(self, event: Any) -> None:
        event.accept()
        self.link.want_frames(False)
        if self.quit_on_close:
            self.quit()
