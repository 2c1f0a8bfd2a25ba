"""Hostile MIDI input (synd.midi) with real parts: a JACK server, synd's rtmidi input
driving a live engine, and another JACK client, in a process of its own, sending a flood
of CCs and notes, malformed messages and large sysex as fast as JACK carries them."""

import itertools
import json
import logging
import math
import random
import subprocess
import sys
import time
from collections import Counter

import pytest

from synd import midi as M
from tests.helpers.fuzz import FPS, MIN_FRAME_SHARE, FrameCounter, rss_bytes
from tests.helpers.midi import CC, NOTE_OFF, NOTE_ON, Pads, controller, mapping, opening
from tests.helpers.wait import wait_for

#: Channel messages (CCs and notes) in the flood, and the RNG's seed.
FLOOD = 20_000
SEED = 20_240_612
#: Large sysex: many of 16 000 bytes (about the most one JACK client passes to another
#: here) and some of 64 KiB (RtMidi's JACK output drops those unsent: larger than its
#: buffer; the callback path takes them in test_the_callback_queue_is_bounded...).
SYSEX_SIZES = [16_000] * 200 + [65_536] * 20
#: RSS may grow by less than this over the fuzzing (2-3 MiB here): a leak of 1 KiB per
#: message over its ~25 000 messages would be ~24 MiB. (Sysex never reaches Python on
#: JACK: RtMidi drops it.)
RSS_GROWTH_MAX = 16 * 2**20
#: The marker that tells when synd has taken everything sent before it (an unmapped CC).
MARK_CHANNEL, MARK_CC = 16, 119

FUZZ_MAP = mapping("""
[[bind]]
cc = 21
param = "intensity"
range = [0.0, 2.0]
[[bind]]
cc = 22
param = "hue"
[[bind]]
cc = 23
param = "feedback"
[[bind]]
note = 39
trigger = "cut"
[[bind]]
note = 40
trigger = "blackout"
[[bind]]
note = 41
trigger = "freeze"
""")

#: Malformed messages, as another JACK client can send them (JACK passes any bytes).
MALFORMED = [
    [0x90],
    [0xB0],
    [0xC0],
    [0xE5],  # bare status bytes
    [0x40],
    [0x40, 0x40],
    [0x15, 0x7F, 0x00],  # data without a status
    [0xB0, 21],
    [0x90, 60],
    [0xE0, 1],  # truncated
    [0xF4],
    [0xF5, 1],
    [0xFD],
    [0xF9],
    [0xF4, 1, 2],  # undefined statuses
    [0xB0, 0x80, 0x80],
    [0x90, 0xFF, 0x01],  # data bytes above 127
    [0xC0, 1, 2],
    [0xF2, 1],
    [0xF6, 0],  # too long, too short
]
#: Well-formed but not synd's, or filtered by RtMidi (clock, sysex): ignored quietly.
IGNORED = [[0xC0, 5], [0xE0, 0, 64], [0xF7], [0xF0, 0xF7], [0xF8], [0xF8, 1], [0xFE], [0xF2, 1, 2]]


#: The flooding JACK client, run as `python -c FLOODER CONFIG.json`: it connects to the
#: input port ending in config["to"], says "ready", sends config["messages"] and sysex of
#: config["sysex"] sizes at "go", prints when (monotonic), then sends the marker until
#: told "done" (its events must all leave before it does). A process of its own: rtmidi
#: holds the interpreter lock while JACK takes a large sysex (a period, ~21 ms, each),
#: which in the test's process would stall the engine being measured. It sends as fast
#: as JACK takes the messages (here ~100 000 a second) with a 1 ms breath every 200: when
#: its buffer is full RtMidi spins on the CPU until JACK's next period, and on two busy
#: cores that made JACK skip the periods of the clients listening (events lost).
FLOODER = """
import json, select, sys, time
import rtmidi

config = json.load(open(sys.argv[1]))
for attempt in range(5):  # a busy JACK server now and then refuses a client
    try:
        out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name="flood")
        break
    except Exception:
        time.sleep(0.2)
ports = out.get_ports()
out.open_port(next(i for i, p in enumerate(ports) if p.endswith(config["to"])), "flood to synd")
print("ready", flush=True)
sys.stdin.readline()
began = time.monotonic()
for i, message in enumerate(config["messages"]):
    out.send_message(message)
    if i % 200 == 199:  # a breath: a full buffer makes RtMidi spin (see FLOODER)
        time.sleep(0.001)
flood_sent = time.monotonic()
for size in config["sysex"]:
    out.send_message([0xF0] + [size % 128] * (size - 2) + [0xF7])
print(json.dumps({"began": began, "flood_sent": flood_sent}), flush=True)
while not select.select([sys.stdin], [], [], 0.5)[0]:
    out.send_message(config["marker"])
out.close_port()
out.delete()
"""


def fuzz_messages(rng, n):
    """n CCs and notes on any channel but the marker's, with malformed and ignored
    messages now and then: (messages, how many are CCs or notes, how many malformed)."""
    messages, channel_messages, bad = [], n, 0
    for i in range(n):
        channel = rng.randrange(1, 16)
        if rng.random() < 0.5:
            number = rng.choice([21, 22, 23, rng.randrange(128)])
            messages.append([CC | (channel - 1), number, rng.randrange(128)])
        else:
            status = rng.choice([NOTE_ON, NOTE_OFF])
            messages.append(
                [status | (channel - 1), rng.choice([39, 40, 41, rng.randrange(128)]), rng.randrange(128)]
            )
        if i % 20 == 0:
            lead, *garbage = running_status_garbage(rng)
            messages += [lead, *garbage]
            channel_messages += 1
            bad += len(garbage)
        elif i % 10 == 0:
            messages.append(rng.choice(MALFORMED))
            bad += 1
        elif i % 5 == 0:
            messages.append(rng.choice(IGNORED))
    return messages, channel_messages, bad


class Flooder:
    """FLOODER in a process of its own, connected to synd's input."""

    def __init__(self, tmp_path, to, messages, sysex, marker):
        config = tmp_path / "flood.json"
        config.write_text(json.dumps({"to": to, "messages": messages, "sysex": sysex, "marker": marker}))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", FLOODER, str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready", "the flooder did not start"

    def go(self) -> dict:
        """Send everything; returns when (monotonic) it began and sent the last message."""
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("done\n")
            self.proc.stdin.flush()
        self.proc.wait(20)


def running_status_garbage(rng):
    """An unmapped CC, then bare data pairs as if running status applied (it does not,
    between JACK events)."""
    return [[CC | rng.randrange(16), 100, rng.randrange(128)]] + [
        [rng.randrange(128), rng.randrange(128)] for _ in range(rng.randrange(1, 6))
    ]


class Probe:
    """A JACK client listening to a sender, sysex included: what actually went through
    the graph to synd."""

    def __init__(self, jack, sender_port):
        self.midi_in = opening(
            lambda: jack.rtmidi.MidiIn(jack.rtmidi.API_UNIX_JACK, name="probe", queue_size_limit=65536)
        )
        jack.clients.append(self.midi_in)
        self.midi_in.ignore_types(sysex=False)
        ports = self.midi_in.get_ports()
        mine = [i for i, p in enumerate(ports) if p.endswith(sender_port)]
        assert mine, f"{sender_port} is not among {ports}"
        self.midi_in.open_port(mine[0], "probe")
        self.sysex = Counter()
        self.channel_messages = 0  # well-formed CCs and notes
        self.markers = 0

    def drain(self):
        while (got := self.midi_in.get_message()) is not None:
            message = got[0]
            if message[:1] == [0xF0]:
                self.sysex[len(message)] += 1
            elif message == [CC | (MARK_CHANNEL - 1), MARK_CC, 2]:
                self.markers += 1
            elif (
                len(message) == 3 and message[0] & 0xF0 in (CC, NOTE_ON, NOTE_OFF) and max(message[1:]) <= 127
            ):
                self.channel_messages += 1

    def close(self, jack):
        """Leave the graph (RtMidi's queue keeps the room the sysex took)."""
        self.drain()
        jack.clients.remove(self.midi_in)
        self.midi_in.close_port()
        self.midi_in.delete()


def resend_until(pads, message, cond, what, timeout=30.0) -> int:
    """Send `message` until `cond()` holds: one message may be lost (or, after a stray
    sysex start, swallowed until the guard ends it). Returns how often it was sent."""
    deadline = time.monotonic() + timeout
    for sent in itertools.count(1):
        pads.out.send_message(message)
        try:
            wait_for(cond, 0.3, what)
            return sent
        except AssertionError:
            assert time.monotonic() < deadline, f"timed out waiting for {what}"


def mark(pads, midi, value) -> int:
    """Send the marker CC until synd has taken it: then it has taken (or lost) all that
    pads sent before, in order. Returns how many markers were sent."""
    return resend_until(
        pads,
        [CC | (MARK_CHANNEL - 1), MARK_CC, value],
        lambda: midi._cc_seen.get((MARK_CHANNEL, MARK_CC)) == value,
        "the marker",
    )


@pytest.fixture
def live(jack, tiny_bundle, tmp_path):
    """A live engine (tiny model, a looping file, FrameCounter) and its Controller, synd's
    MIDI input on JACK with FUZZ_MAP, and the test's own sender (Pads)."""
    from synd.audio import write_wav
    from synd.capture import FileInput
    from synd.control import Controller
    from synd.engine import Engine, EngineOptions
    from synd.presets import Look
    from tests.helpers.audio import music_clip

    song = tmp_path / "song.wav"
    write_wav(song, music_clip(4, seconds=3.0), 24000)
    source = FileInput(song, rate=24000, loop=True)
    counter = FrameCounter()
    engine = Engine(
        tiny_bundle, Look(), source, [counter], EngineOptions(fps=FPS, size=(64, 48)), model_name="tiny"
    )
    ctl = Controller(engine, ["tiny"], lambda name: (tiny_bundle, Look()), current="tiny")
    source.start()
    engine.start()
    try:
        midi = jack.surface(ctl, mapping=FUZZ_MAP)
        pads = Pads(jack, midi)
        wait_for(lambda: len(counter.times) > 5, 20, "frames")
        yield engine, ctl, midi, pads, counter
    finally:
        engine.stop()
        source.stop()


def test_floods_malformed_messages_and_sysex_stop_neither_the_input_nor_the_engine(
    jack, live, caplog, tmp_path
):
    engine, ctl, midi, pads, counter = live
    caplog.set_level(logging.WARNING, logger="synd.midi")
    rng = random.Random(SEED)
    send = pads.out.send_message
    for message in fuzz_messages(rng, 2000)[0]:  # warm-up: one-time allocations come first
        send(message)
    mark(pads, midi, 1)
    messages, channel_messages, bad = fuzz_messages(rng, FLOOD)
    marker = [CC | (MARK_CHANNEL - 1), MARK_CC, 2]
    flooder = Flooder(tmp_path, f":{midi.client_name}", messages, SYSEX_SIZES, marker)
    del messages  # in the flooder's hands now
    try:
        probe = Probe(jack, ":flood to synd")
        rss_before = rss_bytes()  # the test's own allocations are made
        received_before, complaints_before = midi.received, midi.complaints.count
        sent = flooder.go()
        wait_for(lambda: midi._cc_seen.get((MARK_CHANNEL, MARK_CC)) == 2, 60, "the marker")
        ended = time.monotonic()
    finally:
        flooder.close()
    began, flood_sent = sent["began"], sent["flood_sent"]
    during = counter.between(began, ended)
    expected = FPS * (ended - began)
    marks = mark(pads, midi, 3)  # the flooder's last markers are in too
    probe.drain()
    probe_channel = probe.channel_messages
    taken = midi.received - received_before - probe.markers - marks
    refused = midi.complaints.count - complaints_before
    assert midi._worker.is_alive() and engine.running and engine.error is None

    # A stray sysex start (a bare F0, one cut short) does not leave the input deaf.
    send([0xF0])
    send([0xF0, 1, 2, 3])
    resend_until(
        pads,
        [CC, 21, 5],
        lambda: engine.look.intensity == pytest.approx(2.0 * 5 / 127),
        "intensity after a stray sysex start",
        timeout=10,
    )
    pads.cc(22, 127)
    # A full turn of the performer's hue (the picture's hue wraps round to the preset's own).
    wait_for(lambda: engine.hue_turn == pytest.approx(1.0), 10, "hue in the engine")
    after_start, after_frames = time.monotonic(), len(counter.times)
    wait_for(lambda: len(counter.times) >= after_frames + 30, 20, "frames after")
    after = 30 / (time.monotonic() - after_start)
    probe.close(jack)
    rss_after = rss_bytes()

    lines = [r for r in caplog.records if r.name == "synd.midi" and r.levelno >= logging.WARNING]
    midi.stop()  # the summary line of what is left
    summaries = [r for r in caplog.records if hasattr(r, "tally")]
    by_kind = Counter(getattr(r, "ratelimit_kind", "summary") for r in lines)
    delivered = sum(probe.sysex.values())
    print(
        f"\nMIDI flood: {FLOOD} CCs and notes in {flood_sent - began:.2f} s, {bad} malformed "
        f"messages, {len(SYSEX_SIZES)} sysex sent ({sum(SYSEX_SIZES) / 2**20:.1f} MiB); "
        f"the probe got {delivered} sysex through JACK, by size {dict(probe.sysex)}"
    )
    print(
        f"  synd took {taken} of {channel_messages} channel messages (the probe got "
        f"{probe_channel}), refused {refused} "
        f"of {bad} malformed (by kind, since the start: {midi.complaints.tally.totals})"
    )
    print(
        f"  frames published {during} in {ended - began:.1f} s (expected {expected:.0f} at "
        f"{FPS:g} fps), after it {after:.1f} fps"
    )
    print(
        f"  RSS before {rss_before / 2**20:.1f} MiB, after {rss_after / 2**20:.1f} MiB "
        f"(+{(rss_after - rss_before) / 2**20:.1f}, bound {RSS_GROWTH_MAX / 2**20:.0f})"
    )
    print(f"  log lines: {len(lines)}, by kind {dict(by_kind)}; {len(summaries)} summary lines")

    # The flood went through the graph (all of it here; on a loaded machine JACK now and
    # then skips the period of a late client, and its events), and synd took what reached
    # it. Each malformed one that arrived is refused, nothing else.
    assert probe_channel >= 0.5 * channel_messages
    assert taken >= 0.75 * probe_channel
    assert 0.5 * bad <= refused <= bad
    assert during >= MIN_FRAME_SHARE * expected, (during, expected)
    assert after >= MIN_FRAME_SHARE * FPS
    assert rss_after - rss_before < RSS_GROWTH_MAX
    periods = math.ceil((time.monotonic() - began) / M.LOG_EVERY_S) + 1
    for kind, n in by_kind.items():
        assert n <= periods, (kind, n)  # one line per kind per period
    totals = Counter()
    for record in summaries:
        totals.update(record.tally)
    assert dict(totals) == midi.complaints.tally.totals
    assert sum(totals.values()) == midi.complaints.count


# -- without JACK ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        [CC, 21, 5],
        [NOTE_ON | 9, 60, 0],
        [NOTE_OFF, 60, 64],
        [0xC0, 5],
        [0xE0, 0, 64],
        [0xF0, 1, 2, 0xF7],
        [0xF0, 0xF7],
        [0xF7],
        [0xF8],
        [0xF2, 1, 2],
        [0xFF],
        [0xF0] + [0x7F] * 65_534 + [0xF7],
    ],
)
def test_well_formed_messages_parse_or_are_ignored_quietly(message):
    event = M.parse_message(message)
    assert (event is not None) == (message[0] & 0xF0 in (CC, NOTE_ON, NOTE_OFF))


@pytest.mark.parametrize("message", MALFORMED + [[], [0xF0], [0xF0, 1, 2], [0xF8, 1]])
def test_malformed_messages_are_refused_in_one_line(message):
    with pytest.raises(ValueError, match="^malformed message: ") as err:
        M.parse_message(message)
    assert "\n" not in str(err.value)


def test_a_flooded_knob_is_applied_once_with_its_last_value_and_no_press_is_lost():
    """What piles up between two reads of the input: CCs that only drive parameters are
    coalesced per control (channel and number), the last value winning; presses stay."""
    ctl = controller()
    midi = M.MidiControl(ctl, mapping=FUZZ_MAP)
    rng = random.Random(SEED)
    batch = [
        M._Event("cc", rng.randrange(1, 17), rng.choice([21, 22, 50]), rng.randrange(128))
        for _ in range(5000)
    ]
    batch[100:100] = [M._Event("note", 1, 41, 100), M._Event("note", 1, 41, 0)] * 3
    kept = midi._coalesce(batch)
    knobs = [e for e in kept if e.kind == "cc" and e.number in (21, 22)]
    assert len({(e.channel, e.number) for e in knobs}) == len(knobs) <= 32
    assert sum(e.number == 50 for e in kept) == sum(e.number == 50 for e in batch)  # unmapped
    assert [e.value for e in kept if e.kind == "note"] == [100, 0] * 3
    for item in kept:
        midi._handle(item)
    last = [e for e in batch if e.kind == "cc" and e.number == 21][-1]
    assert ctl.get("intensity") == pytest.approx(2.0 * last.value / 127)
    assert ctl.get("freeze") is True  # three presses of a toggle
    assert midi.received == len(batch) - len(kept)  # the coalesced ones count as taken


def test_the_callback_queue_is_bounded_and_complaints_are_rate_limited(caplog):
    """The driver's callback (ALSA, CoreMIDI, Windows MM) queues at most MAX_QUEUED
    messages for the worker; the rest of a flood is refused, and logged in one line."""
    caplog.set_level(logging.WARNING, logger="synd.midi")
    midi = M.MidiControl(None, mapping=FUZZ_MAP)  # not started: nothing takes from the queue
    big = [0xF0] + [0x7F] * 65_534 + [0xF7]
    for i in range(3 * M.MAX_QUEUED):
        midi._on_message(([CC, 21, i % 128], 0.0))
        midi._on_message(([0xF4], 0.0))
        if i % 64 == 0:
            midi._on_message((big, 0.0))  # a 64 KiB sysex: ignored, never queued
    assert midi._queue.qsize() == M.MAX_QUEUED
    assert midi.complaints.count == 2 * M.MAX_QUEUED + 3 * M.MAX_QUEUED
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines  # one per kind: overflow, input
    midi.complaints.tally.report(force=True)
    summary = caplog.records[-1]
    assert summary.tally == {"overflow": 2 * M.MAX_QUEUED, "input": 3 * M.MAX_QUEUED}
    assert summary.getMessage().startswith("MIDI: messages refused or commands failed")
