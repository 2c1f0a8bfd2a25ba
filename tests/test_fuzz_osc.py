"""Hostile OSC input (synd.osc): a flood of malformed, oversized, pathological and valid
packets at full rate against a live engine and its OscServer, from another process
(tests/helpers/oscflood.py, the flood's sender: an OSC implementation of its own).

The OSC helpers (tests/helpers/osc.py, which need python-osc) are imported inside the
fixtures and tests that use them, as the engine is.
"""

import logging
import math
import random
import struct
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers.fuzz import FPS, MIN_FRAME_SHARE, FrameCounter, rss_bytes
from tests.helpers.oscflood import FAMILIES, IMMEDIATELY, bundle, message, nested, run_flood
from tests.helpers.wait import wait_for

#: The flood: at least this many packets, for at least this long, from a seeded RNG.
FLOOD_PACKETS = 100_000
FLOOD_MIN_S = 4.0
FLOOD_SEED = 20_240_611
#: RSS may grow by less than this over the flood. Whatever one packet allocates must be
#: freed: a leak of 1 KiB per packet over >= 100 000 packets is ~98 MiB and fails.
RSS_GROWTH_MAX = 64 * 2**20

# -- the live rig ------------------------------------------------------------------------------


@pytest.fixture
def live(tiny_bundle, tmp_path):
    """A real engine (tiny model, a looping file, FrameCounter) under a Controller, with
    an OscServer on a free port and a client socket."""
    import copy

    from synd.audio import write_wav
    from synd.capture import FileInput
    from synd.control import Controller
    from synd.engine import Engine, EngineOptions
    from synd.osc import OscServer
    from synd.presets import Look
    from tests.helpers.audio import music_clip
    from tests.helpers.osc import Client

    if not Path("/proc/self/status").exists():
        pytest.skip("RSS is read from /proc (Linux)")
    song = tmp_path / "song.wav"
    write_wav(song, music_clip(5, seconds=4.0), 24000)
    source = FileInput(song, rate=24000, loop=True)
    counter = FrameCounter()
    engine = Engine(
        tiny_bundle, Look(), source, [counter], EngineOptions(fps=FPS, size=(96, 64)), model_name="tiny"
    )
    controller = Controller(engine, ["tiny"], load=lambda name: (copy.deepcopy(tiny_bundle), Look()))
    server = OscServer(controller, port=0)
    source.start()
    engine.start()
    server.start()
    client = Client(server)
    try:
        wait_for(lambda: len(counter.times) > 10, 20, "the first frames")
        yield SimpleNamespace(
            engine=engine, controller=controller, server=server, client=client, counter=counter
        )
    finally:
        client.close()
        server.stop()
        engine.stop()
        source.stop()


def settle(rig) -> None:
    """Wait until the server has handled everything sent before: a query's reply comes
    after every packet queued in front of it (one socket, one thread, in order)."""
    rig.client.sock.settimeout(0.5)
    for _ in range(40):
        try:
            rig.client.ask("/synd/status")
            return
        except TimeoutError:  # the query itself was lost in a full buffer: again
            continue
    raise AssertionError("the server no longer answers")


def frame_rate(rig, frames: int = 30) -> float:
    """Frames per second over the next `frames` frames."""
    start, began = len(rig.counter.times), time.monotonic()
    wait_for(lambda: len(rig.counter.times) >= start + frames, 30, f"{frames} frames")
    return frames / (time.monotonic() - began)


# -- the flood ---------------------------------------------------------------------------------


def test_a_flood_of_hostile_packets_stops_neither_the_engine_nor_the_server(live, caplog):
    from tests.helpers.osc import oscsend

    caplog.set_level(logging.WARNING, logger="synd.osc")
    server, engine = live.server, live.engine
    port = server.address[1]
    run_flood(port, FLOOD_SEED + 1, 3000, 0.0)  # warm-up: one-time allocations come first
    settle(live)
    rss_before = rss_bytes()
    received_before, dropped_before = server.received, server.dropped
    refused_before = server.refused

    report = run_flood(port, FLOOD_SEED, FLOOD_PACKETS, FLOOD_MIN_S)
    began, ended = report["began"], report["ended"]
    during = live.counter.between(began, ended)
    expected = FPS * (ended - began)
    settle(live)
    assert server._thread.is_alive() and engine.running and engine.error is None
    after = frame_rate(live)

    # Valid commands still act, from python-osc and from liblo's oscsend.
    live.client.send("/synd/freeze", 0)
    live.client.send("/synd/blackout", 0)
    live.client.send("/synd/intensity", 0.25)
    wait_for(lambda: engine.look.intensity == pytest.approx(0.25), 10, "intensity 0.25")
    assert not engine.flags["freeze"] and not engine.flags["blackout"]
    if liblo_tools():
        oscsend(port, "/synd/hue", "f", 0.625)
        wait_for(lambda: live.controller.get("hue") == pytest.approx(0.625), 10, "hue")
        oscsend(port, "/synd/flow", "f", 1.5)
        wait_for(lambda: engine.look.flow == pytest.approx(1.5), 10, "flow")
        oscsend(port, "/synd/lines", "f", 0.75)
        wait_for(lambda: engine.look.lines == pytest.approx(0.75), 10, "lines")
        oscsend(port, "/synd/sections", "f", 0.25)
        wait_for(lambda: engine.look.sections == pytest.approx(0.25), 10, "sections")
    assert live.client.ask("/synd/intensity") == ("/synd/intensity", [pytest.approx(0.25)])
    rss_after = rss_bytes()

    sent = sum(report["sent"].values())
    dropped = server.dropped - dropped_before
    taken = server.received - received_before + dropped
    lines = [r for r in caplog.records if r.name == "synd.osc" and r.levelno >= logging.WARNING]
    server.stop()  # reports what was dropped since the last summary line
    summaries = [r for r in caplog.records if hasattr(r, "tally")]
    by_kind = Counter(getattr(r, "ratelimit_kind", "summary") for r in lines)
    print(
        f"\nOSC flood: {sent} packets in {ended - began:.1f} s "
        f"({report['bytes'] / 2**20:.0f} MiB), by family {report['sent']}, "
        f"send errors {report['errors']}"
    )
    print(
        f"  server: read {taken}, dropped {dropped} of them as bad, took {taken - dropped} "
        f"(refusing {server.refused - refused_before} messages in them); the kernel dropped "
        f"{sent - taken} (socket buffer full)"
    )
    print(f"  dropped or refused by kind, warm-up included: {server.tally.totals}")
    print(
        f"  frames published during the flood {during} (expected {expected:.0f} at "
        f"{FPS:g} fps), after it {after:.1f} fps"
    )
    print(
        f"  RSS before {rss_before / 2**20:.1f} MiB, after {rss_after / 2**20:.1f} MiB "
        f"(+{(rss_after - rss_before) / 2**20:.1f}, bound {RSS_GROWTH_MAX / 2**20:.0f})"
    )
    print(
        f"  log lines: {len(lines)} while flooding, by kind {dict(by_kind)}; "
        f"{len(summaries)} summary lines in all"
    )

    assert sent >= FLOOD_PACKETS and set(report["sent"]) == set(FAMILIES)
    assert during >= MIN_FRAME_SHARE * expected, (during, expected)
    assert after >= MIN_FRAME_SHARE * FPS
    assert rss_after - rss_before < RSS_GROWTH_MAX
    # The server took its share of the flood and refused the bad part of it.
    assert taken > 10_000 and dropped > 1000
    # Logging: per kind at most LOG_KINDS_MAX lines per LOG_EVERY_S, and a summary line
    # per period whose counts add up to everything dropped or refused.
    from synd.osc import LOG_EVERY_S, LOG_KINDS_MAX

    periods = math.ceil((time.monotonic() - began) / LOG_EVERY_S) + 1
    for kind, n in by_kind.items():
        assert n <= (LOG_KINDS_MAX + 1) * periods, (kind, n)
    assert len(lines) < 200
    assert summaries and summaries[-1].getMessage().startswith("OSC: dropped or refused")
    totals = Counter()
    for record in summaries:
        totals.update(record.tally)
    assert dict(totals) == server.tally.totals
    assert sum(totals[k] for k in ("malformed", "unsupported", "denied")) == server.dropped


# -- the limits, without a network -------------------------------------------------------------


@pytest.fixture
def commands():
    from synd.control import Controller
    from synd.osc import Commands
    from tests.helpers.osc import PRESETS, RecordingEngine

    return Commands(
        Controller(RecordingEngine(), PRESETS, load=lambda name: (None, None), rng=random.Random(0))
    )


def test_pathological_patterns_are_refused_or_matched_in_bounded_steps(commands):
    """Matching walks each part of the pattern once per character of an address: the
    work is bounded by (characters + 1) x (tokens + alternatives + 1) per part, counted
    in steps (not timed). python-osc's regular expressions backtracked on these."""
    from synd.osc import MAX_WILDCARDS, AddressPattern

    routes = list(commands._routes)

    def steps(pattern: str) -> tuple[int, list[str]]:
        compiled = AddressPattern.parse(pattern)
        assert compiled is not None, pattern
        matched = [r for r in routes if compiled.match(r)]
        bound = 0  # each distinct name at each level is matched at most once
        for level, tokens in enumerate(compiled.parts):
            names = {r.split("/")[level + 1] for r in routes if r.count("/") > level}
            alternatives = sum(len(arg) for kind, arg in tokens if kind == "{")
            bound += sum(len(name) + 1 for name in names) * (len(tokens) + 1 + alternatives)
        assert compiled.steps <= bound, (pattern, compiled.steps, bound)
        return compiled.steps, matched

    n, matched = steps("/synd/" + "*" * MAX_WILDCARDS + "x")
    assert matched == []
    n4, _ = steps("/synd/" + "*a" * 4 + "x")
    n8, _ = steps("/synd/" + "*a" * 8 + "x")
    assert n8 <= 3 * n4  # twice the pattern, about twice the work: not exponential
    _, matched = steps("/synd/{" + ",".join(["hue", "gain"] + ["q" * 8] * 20) + "}")
    assert matched == ["/synd/hue", "/synd/gain"]
    _, matched = steps("/*/*")
    assert len(matched) > 10 and all(r.count("/") == 2 for r in matched)
    _, matched = steps("/synd/[!a-z]*")
    assert matched == []
    _, matched = steps("/synd/*/t?gg[l-m]e")
    assert matched == ["/synd/blackout/toggle", "/synd/freeze/toggle", "/synd/lock/toggle"]
    # Refused without matching: too many wildcards, malformed, `//`, too long.
    for pattern in [
        "/synd/" + "*a" * (MAX_WILDCARDS + 1),
        "/*" * 100,
        "/synd/[abc",
        "/synd/{hue,gain",
        "/synd/hue}",
        "/synd//toggle",
        "//",
        "/synd/" + "?" * 300,
    ]:
        assert AddressPattern.parse(pattern) is None, pattern
        assert commands.handlers(pattern) == []


def test_scan_refuses_deep_wide_and_lying_packets():
    from synd.osc import (
        MAX_ARGS,
        MAX_ARRAY_DEPTH,
        MAX_BUNDLE_DEPTH,
        MAX_MESSAGES,
        MAX_PACKET,
        _Malformed,
        _scan,
        _Unsupported,
    )

    hue = message("/synd/hue", "f", 0.5)
    assert _scan(nested(hue, MAX_BUNDLE_DEPTH)) == 1
    assert _scan(bundle(*[hue] * MAX_MESSAGES)) == MAX_MESSAGES
    assert _scan(message("/synd/hue", "f" * MAX_ARGS, *[0.5] * MAX_ARGS)) == 1
    depth = MAX_ARRAY_DEPTH
    assert _scan(message("/synd/hue", "[" * depth + "f" + "]" * depth, 0.5)) == 1
    bad = {
        "bundles nested deeper": nested(hue, MAX_BUNDLE_DEPTH + 1),
        "nested deeper than": nested(hue, 500),
        "more than": bundle(*[hue] * (MAX_MESSAGES + 1)),
        "arguments": message("/synd/hue", "f" * (MAX_ARGS + 1), *[0.5] * (MAX_ARGS + 1)),
        "arrays nested": message("/synd/hue", "[" * (depth + 1) + "f" + "]" * (depth + 1), 0.5),
        "truncated bundle element": bundle(hue)[:-4],
        "size -8": b"#bundle\0" + bytes(8) + struct.pack(">i", -8) + hue,
        "no time tag": b"#bundle\0" + bytes(4),
        "address longer": message("/synd/" + "a" * 300, "f", 0.5),
        "unterminated type tags": b"/synd/hue\0\0\0,ff",
        "neither": bundle(hue, b"junk"),
        "empty packet": b"",
        f"at most {MAX_PACKET}": message("/synd/preset", "s", "x" * MAX_PACKET),
    }
    for what, packet in bad.items():
        with pytest.raises(_Malformed, match=what):
            _scan(packet)
    with pytest.raises(_Unsupported, match=r"'/synd/hue' uses type tag \\x01,S$"):
        _scan(b"/synd/hue\0\0\0,S\x01f\0")


# -- well-formed traffic from other implementations --------------------------------------------


def liblo_tools() -> bool:
    import shutil

    return bool(shutil.which("oscsend"))


def test_well_formed_traffic_from_python_osc_and_liblo_is_never_refused(caplog):
    """The limits refuse nothing a control surface sends: python-osc's builders (all the
    types it has, arrays, bundles nested up to the limit, many messages a packet) and
    liblo's oscsend, at full rate, are all taken."""
    pytest.importorskip("pythonosc")
    from pythonosc.osc_bundle_builder import OscBundleBuilder
    from pythonosc.osc_message import OscMessage
    from pythonosc.osc_message_builder import OscMessageBuilder

    from synd.control import Controller
    from synd.osc import MAX_BUNDLE_DEPTH, MAX_MESSAGES, OscServer
    from tests.helpers.osc import PRESETS, Client, RecordingEngine, oscsend

    caplog.set_level(logging.WARNING, logger="synd.osc")
    engine = RecordingEngine()
    controller = Controller(engine, PRESETS, load=lambda name: (None, None), rng=random.Random(0))
    server = OscServer(controller, port=0)
    server.start()
    client = Client(server)
    rng = random.Random(7)

    def built(address, *args):
        builder = OscMessageBuilder(address=address)
        for arg in args:
            builder.add_arg(arg)
        return builder.build()

    def sample():
        choice = rng.randrange(6)
        if choice == 0:
            return built("/synd/hue", rng.random())
        if choice == 1:
            return built("/synd/gain", rng.randrange(9))
        if choice == 2:
            return built("/synd/{feedback,hue}", rng.random())
        if choice == 3:
            return built("/synd/crossfade", rng.random())
        if choice == 4:
            return built("/synd/freeze", rng.choice([True, False]))
        return built("/synd/intensity", rng.uniform(0, 2))

    try:
        sent = 0
        for i in range(3000):
            kind = i % 4
            if kind == 3:
                outer = OscBundleBuilder(IMMEDIATELY)
                for _ in range(rng.randrange(1, MAX_MESSAGES // 2)):
                    outer.add_content(sample())
                packet = outer.build()
                for _ in range(rng.randrange(0, MAX_BUNDLE_DEPTH)):
                    wrap = OscBundleBuilder(IMMEDIATELY)
                    wrap.add_content(packet)
                    packet = wrap.build()
            else:
                packet = sample()
            client.raw(packet.dgram)
            sent += 1
            if i % 200 == 0:  # every type python-osc builds, to an address that takes none
                client.raw(
                    built(
                        "/synd/cut", 0, 0.0, "s", b"blob", True, False, None, 2**40, [1, [2.0, ["x"]]]
                    ).dgram
                )
                sent += 1
        for value in (0.25, 0.5, 0.75):
            if liblo_tools():
                oscsend(server.address[1], "/synd/hue", "f", value)
                oscsend(server.address[1], "/synd/blackout/toggle")
            else:
                client.send("/synd/hue", value)
            sent += 2 if liblo_tools() else 1
        for _ in range(50):  # the flood may have filled the socket's buffer: resend
            client.send("/synd/intensity", 1.5)
            sent += 1
            try:
                wait_for(lambda: controller.get("intensity") == 1.5, 0.2, "the last message")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError("/synd/intensity 1.5 never arrived")
        reply = OscMessage(osc_reply(client, "/synd/hue"))
        assert reply.params == [pytest.approx(0.75)]
    finally:
        client.close()
        server.stop()
    bad = [
        r.getMessage()
        for r in caplog.records
        if getattr(r, "ratelimit_kind", None) in ("malformed", "unsupported")
    ]
    print(
        f"\nwell-formed: {sent} packets sent, {server.received} taken, {server.dropped} dropped, "
        f"{server.refused} messages refused ({server.tally.totals})"
    )
    assert server.dropped == 0 and bad == []
    assert set(server.tally.totals) <= {"arguments"}  # /synd/cut with arguments it does not take


def osc_reply(client, address) -> bytes:
    client.send(address)
    return client.sock.recvfrom(65536)[0]
