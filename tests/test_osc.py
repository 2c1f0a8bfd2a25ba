"""OSC control (synd.osc): a real `Controller`, a real UDP server, and two independent
senders: liblo's `oscsend`/`oscdump` (another OSC implementation) and raw sockets."""

import contextlib
import logging
import random
import shutil
import socket
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pythonosc")
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage

from synd.control import Controller
from synd.osc import OscServer, check_bind
from synd.presets import Look
from synd.ratelimit import MAX_LINE, RateLimiter, Tally
from tests.helpers.osc import PRESETS, Client, OscDump, RecordingEngine, free_udp_port, osc, oscsend
from tests.helpers.wait import wait_for

IMMEDIATE_TAG = (1).to_bytes(8, "big")
liblo = pytest.mark.skipif(
    not (shutil.which("oscsend") and shutil.which("oscdump")),
    reason="liblo-tools (oscsend, oscdump) not installed",
)


@pytest.fixture
def rig():
    """A Controller on a recording engine; `rig.serve(**kw)` starts an OscServer on a free port."""
    engine = RecordingEngine()
    controller = Controller(engine, PRESETS, load=lambda name: (None, None), rng=random.Random(0))
    servers, clients = [], []

    def serve(**kw):
        server = OscServer(controller, port=0, **kw)
        server.start()
        servers.append(server)
        return server

    def client(server, **kw):
        c = Client(server, **kw)
        clients.append(c)
        return c

    yield SimpleNamespace(engine=engine, controller=controller, serve=serve, client=client)
    for c in clients:
        c.close()
    for s in servers:
        s.stop()


# -- an independent implementation: liblo -------------------------------------------------------


@liblo
def test_liblo_sends_commands_and_receives_status_beats_and_changes(rig):
    dump = OscDump()
    try:
        server = rig.serve(feedback=("127.0.0.1", dump.port), status_every=0.2)
        port = server.address[1]
        oscsend(port, "/synd/preset", "s", "storm")
        oscsend(port, "/synd/intensity", "f", 0.8)
        oscsend(port, "/synd/crossfade", "i", 1)  # an int where a float is expected
        oscsend(port, "/synd/blackout", "T")
        wait_for(lambda: rig.controller.get("blackout") is True, what="blackout")
        assert rig.controller.preset == "storm"
        assert rig.engine.recorded("switch_to") == [("storm", 2.0)]
        assert rig.controller.get("intensity") == pytest.approx(0.8)
        assert rig.engine.look.intensity == pytest.approx(0.8)
        assert rig.engine.recorded("set_crossfade") == [(1.0,)]
        assert rig.engine.recorded("set_flag") == [("blackout", True)]

        # Feedback: the changes come back (TouchOSC faders follow), including one made
        # by another surface (as MIDI would), and beats from the engine.
        rig.controller.set("hue", 0.25)
        rig.engine.on_beat(0.7)
        wait_for(
            lambda: (
                dump.messages("/synd/beat")
                and dump.messages("/synd/hue")
                and len(dump.messages("/synd/status")) >= 2
            ),
            what="feedback in oscdump",
        )
        assert dump.messages("/synd/preset") == [("s", ["storm"])]
        [(types, [value])] = dump.messages("/synd/intensity")
        assert types == "f" and float(value) == pytest.approx(0.8, abs=1e-6)
        assert dump.messages("/synd/blackout") == [("i", ["1"])]
        assert dump.messages("/synd/crossfade") == [("f", ["1.000000"])]
        assert [(t, float(v)) for t, [v] in dump.messages("/synd/hue")] == [("f", 0.25)]
        assert [(t, float(v)) for t, [v] in dump.messages("/synd/beat")] == [("f", 0.7)]
        types, values = dump.messages("/synd/status")[-1]
        assert types == "ffsssfii"
        fps, latency, preset, a, b, crossfade, dropped, guarded = values
        assert int(guarded) == 0
        assert float(fps) == 29.5 and float(latency) == 12.5 and int(dropped) == 0
        assert (preset, a, b, float(crossfade)) == ("storm", "calm", "", 1.0)
    finally:
        dump.close()


# -- queries -----------------------------------------------------------------------------------


def test_queries_return_current_values_to_the_sender(rig):
    server = rig.serve()
    c = rig.client(server)
    assert c.ask("/synd/intensity") == ("/synd/intensity", [pytest.approx(1.0)])
    rig.controller.set("intensity", 0.8)
    rig.controller.set("transition_time", 5)
    assert c.ask("/synd/intensity") == ("/synd/intensity", [pytest.approx(0.8)])
    assert c.ask("/synd/transition_time") == ("/synd/transition_time", [pytest.approx(5.0)])
    assert c.ask("/synd/preset") == ("/synd/preset", ["calm"])
    assert c.ask("/synd/blackout") == ("/synd/blackout", [0])
    rig.controller.trigger("blackout", True)
    assert c.ask("/synd/blackout") == ("/synd/blackout", [1])
    assert c.ask("/synd/model/a") == ("/synd/model/a", ["calm"])
    assert c.ask("/synd/model/b") == ("/synd/model/b", [""])  # an empty slot
    rig.controller.set_output("record", False)
    assert c.ask("/synd/output/record") == ("/synd/output/record", [0])
    assert c.ask("/synd/output/ndi") == ("/synd/output/ndi", [1])
    rig.controller.fade(0.25, 0)
    assert c.ask("/synd/fade") == ("/synd/fade", [pytest.approx(0.25)])
    address, status = c.ask("/synd/status")
    assert address == "/synd/status"
    assert status == [pytest.approx(29.5), pytest.approx(12.5), "calm", "calm", "", pytest.approx(0.25), 0, 0]
    # A second client gets its own answers, on its own port.
    other = rig.client(server)
    assert other.ask("/synd/crossfade") == ("/synd/crossfade", [pytest.approx(0.25)])


def test_commands_from_python_osc_reach_the_controller(rig):
    server = rig.serve()
    c = rig.client(server)
    c.send("/synd/model/b", "neon")
    c.send("/synd/fade", 1, 3.5)  # ints and floats both take
    c.send("/synd/gain", 2)
    c.send("/synd/rotate", 30.0)
    c.send("/synd/freeze", 1.0)  # a TouchOSC button sends floats
    c.send("/synd/lock/toggle")
    c.send("/synd/output/ndi", False)
    c.send("/synd/cut")
    c.send("/synd/preset/next", 1.0)  # press
    c.send("/synd/preset/next", 0.0)  # release: ignored
    c.send("/synd/preset/random")
    c.send("/synd/transition_time", 99)  # clamped by the controller
    wait_for(lambda: rig.controller.get("transition_time") == 60.0, what="the last message")
    e = rig.engine
    assert e.recorded("load_slot") == [("b", "neon")]
    assert e.recorded("fade") == [(1.0, 3.5)]
    assert e.recorded("set_gain") == [(2.0,)]
    assert e.recorded("set_rotation") == [(30.0,)]
    assert e.recorded("set_flag") == [("freeze", True), ("lock", True)]
    assert e.recorded("cut_on_beat") == [()]
    assert e.outputs[0].enabled is False and e.outputs[1].enabled is True
    switched = [name for name, _ in e.recorded("switch_to")]
    assert switched[0] == "storm" and len(switched) == 2 and switched[1] != "storm"


def test_learn_requests_and_address_patterns(rig):
    learned = []
    rig.controller.subscribe("learn", learned.append)
    server = rig.serve()
    c = rig.client(server)
    c.send("/synd/midi/learn", "crossfade")
    c.send("/synd/{hue,feedback}", 0.5)  # an OSC address pattern: both change
    c.send("/synd/*/toggle")  # all three toggles
    wait_for(lambda: rig.controller.get("lock"), what="the toggles")
    assert learned == ["crossfade"]
    assert rig.controller.get("hue") == 0.5 and rig.controller.get("feedback") == 0.5
    assert [rig.controller.get(t) for t in ("blackout", "freeze", "lock")] == [True] * 3
    # A query by pattern answers on each matched address.
    c.send("/synd/{gain,hue}")
    replies = {OscMessage(c.sock.recvfrom(65536)[0]).address for _ in range(2)}
    assert replies == {"/synd/gain", "/synd/hue"}


# -- bundles -----------------------------------------------------------------------------------


def test_bundles_apply_all_their_messages_including_nested_ones(rig):
    server = rig.serve()
    c = rig.client(server)
    inner = OscBundleBuilder(IMMEDIATELY)
    inner.add_content(OscMessage(osc("/synd/freeze", 1)))
    inner.add_content(OscMessage(osc("/synd/preset", "neon")))
    innermost = OscBundleBuilder(IMMEDIATELY)
    innermost.add_content(OscMessage(osc("/synd/gain", 4.0)))
    inner.add_content(innermost.build())
    outer = OscBundleBuilder(IMMEDIATELY)
    outer.add_content(OscMessage(osc("/synd/intensity", 0.3)))
    outer.add_content(inner.build())
    outer.add_content(OscMessage(osc("/synd/hue", 0.75)))
    c.raw(outer.build().dgram)
    wait_for(lambda: rig.controller.get("hue") == 0.75, what="the bundle")
    assert rig.controller.get("intensity") == pytest.approx(0.3)
    assert rig.controller.get("freeze") is True
    assert rig.controller.preset == "neon"
    assert rig.controller.get("gain") == 4.0
    # Queries inside a bundle are answered too.
    query = OscBundleBuilder(IMMEDIATELY)
    query.add_content(OscMessage(osc("/synd/gain")))
    query.add_content(OscMessage(osc("/synd/preset")))
    c.raw(query.build().dgram)
    got = [OscMessage(c.sock.recvfrom(65536)[0]) for _ in range(2)]
    assert [(m.address, m.params) for m in got] == [("/synd/gain", [4.0]), ("/synd/preset", ["neon"])]


def test_a_bundle_dated_in_the_future_does_not_stall_the_server(rig):
    """python-osc's own servers sleep until a bundle's time tag; ours applies it now."""
    server = rig.serve()
    c = rig.client(server)
    later = OscBundleBuilder(time.time() + 3600)
    later.add_content(OscMessage(osc("/synd/hue", 0.5)))
    c.raw(later.build().dgram)
    assert c.ask("/synd/hue") == ("/synd/hue", [0.5])


# -- bad input ---------------------------------------------------------------------------------


def test_malformed_packets_are_dropped_logged_once_per_kind_and_the_server_goes_on(rig, caplog):
    caplog.set_level(logging.WARNING, logger="synd.osc")
    server = rig.serve()
    c = rig.client(server)
    rng = random.Random(1)
    good = osc("/synd/preset", "storm")
    bundle = OscBundleBuilder(IMMEDIATELY)
    bundle.add_content(OscMessage(osc("/synd/hue", 0.1)))
    bundle.add_content(OscMessage(osc("/synd/gain", 2.0)))
    bundle = bundle.build().dgram
    deep = osc("/synd/hue", 0.2)
    for _ in range(40):  # bundles nested 40 deep
        deep = b"#bundle\0" + IMMEDIATE_TAG + len(deep).to_bytes(4, "big") + deep
    malformed = [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).lstrip(b"/#") or b"x"
        for _ in range(10)
    ]
    malformed += [b"", good[:5], good[:14], good[:-3], bundle[:-6], bundle[:22], deep]
    for _ in range(3):
        for packet in malformed:
            c.raw(packet)
        c.raw(b"/synd/hue\0\0\0,S\0\0abc\0")  # a symbol: python-osc cannot decode it
        c.send("/synd/nonsense", 1.0)  # unknown address
        c.send("/synd/intensity", "loud")  # wrong type
        c.send("/synd/fade", 0.5, 1.0, 2.0)  # wrong count
        c.send("/synd/preset", "")  # the controller refuses (ValueError)
        c.send("/synd/output/nope", 1)  # the controller refuses (KeyError)
        c.send("/synd/" + "*a" * 40, 1.0)  # a pathological pattern: refused, fast
    c.raw(good)
    c.send("/synd/intensity", 0.5)
    wait_for(lambda: rig.controller.get("intensity") == 0.5, what="a valid message afterwards")
    assert rig.controller.preset == "storm"
    assert rig.controller.get("hue") == 0.0 and rig.controller.get("gain") == 1.0
    assert server._thread.is_alive()
    assert server.dropped == 3 * (len(malformed) + 1)

    lines = [r.getMessage() for r in caplog.records if r.name == "synd.osc"]

    def count(text):
        return sum(text in line for line in lines)

    assert count("malformed packet") == 1, lines
    assert count("type tag S") == 1, lines
    assert count("unknown address '/synd/nonsense'") == 1, lines
    assert count("/synd/intensity expects one number, got s") == 1, lines
    assert count("/synd/fade expects") == 1, lines
    assert count("preset name is empty") == 1, lines
    assert count("no output 'nope' is running") == 1, lines
    assert count("unknown address '/synd/*a*a") == 1, lines
    assert len(lines) == 8, lines  # one line per kind of problem, not one per packet


def test_the_log_throttle_logs_again_after_the_window_with_a_count(caplog):
    caplog.set_level(logging.WARNING, logger="synd.osc")
    now = [100.0]
    throttle = RateLimiter(logging.getLogger("synd.osc"), every=10.0, per_kind=3, clock=lambda: now[0])
    for _ in range(5):
        throttle("unknown", "/a", "unknown /a")
    throttle("unknown", "/b", "unknown /b")
    throttle("unknown", "/c", "unknown /c")
    throttle("unknown", "/d", "unknown /d")  # over the kind's budget: held back
    throttle("malformed", None, "malformed")  # another kind has its own budget
    now[0] += 10.5
    throttle("unknown", "/a", "unknown /a")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "unknown /a",
        "unknown /b",
        "unknown /c",
        "malformed",
        "unknown /a (4 more like this not logged)",
    ]


def test_the_tally_sums_up_by_kind_in_one_line_per_period(caplog):
    caplog.set_level(logging.WARNING, logger="synd.osc")
    now = [100.0]
    tally = Tally(logging.getLogger("synd.osc"), "OSC: dropped or refused", every=10.0, clock=lambda: now[0])
    assert tally.due() is None and not tally.report()
    for _ in range(3):
        tally.add("malformed")
    tally.add("unknown")
    assert tally.due() == 110.0 and not tally.report()  # not yet
    now[0] = 110.0
    assert tally.report() and tally.due() is None
    tally.add("unknown", 2)
    assert tally.report(force=True)  # at stop
    assert [r.getMessage() for r in caplog.records] == [
        "OSC: dropped or refused in the last 10 s: 4 (malformed 3, unknown 1)",
        "OSC: dropped or refused in the last 1 s: 2 (unknown 2)",
    ]
    assert tally.totals == {"malformed": 3, "unknown": 3}
    # Whatever a sender puts in a message, the limiter logs one line of bounded length.
    RateLimiter(logging.getLogger("synd.osc"))("x", None, "a\nb\r\n" + "c" * 5000)
    line = caplog.records[-1].getMessage()
    assert "\n" not in line and "\r" not in line and len(line) <= MAX_LINE + 3


def test_the_allow_list_drops_other_senders(rig, caplog):
    caplog.set_level(logging.WARNING, logger="synd.osc")
    server = rig.serve(allow=["127.0.0.2"])
    try:
        allowed = rig.client(server, host="127.0.0.2")
    except OSError:
        pytest.skip("cannot send from 127.0.0.2 here")
    other = rig.client(server)  # 127.0.0.1: not in the list
    for _ in range(5):
        other.send("/synd/hue", 0.3)
    other.sock.settimeout(0.3)
    with pytest.raises(socket.timeout):
        other.ask("/synd/hue")  # not even queries are answered
    allowed.send("/synd/hue", 0.6)
    wait_for(lambda: rig.controller.get("hue") == pytest.approx(0.6), what="the allowed sender")
    assert [c for c in rig.engine.recorded("set_look") if c[0].get("hue") == 0.3] == []
    assert server.dropped == 6
    denied = [r for r in caplog.records if "not in the allow-list" in r.getMessage()]
    assert len(denied) == 1 and "127.0.0.1" in denied[0].getMessage()

    by_name = rig.serve(allow=["localhost", "10.0.0.0/8"])
    client = rig.client(by_name)
    assert client.ask("/synd/hue") == ("/synd/hue", [pytest.approx(0.6)])


def test_check_bind_refuses_remote_hosts_without_the_flag():
    for host in ("0.0.0.0", "", "::"):
        with pytest.raises(ValueError) as err:
            check_bind(host, allow_remote=False)
        assert "\n" not in str(err.value) and "127.0.0.1" in str(err.value)
        check_bind(host, allow_remote=True)
    for host in ("127.0.0.1", "localhost"):
        check_bind(host, allow_remote=False)
    with pytest.raises(ValueError, match="cannot resolve"):
        check_bind("no-such-host.invalid", allow_remote=False)


def test_stop_is_prompt_idempotent_and_frees_the_port(rig):
    server = rig.serve(feedback=("127.0.0.1", free_udp_port()), status_every=30)
    host, port = server.address
    assert host == "127.0.0.1" and port > 0
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 1.5  # it does not wait for the 30 s status timer
    assert not server._thread.is_alive()
    server.stop()
    rig.engine.on_beat(1.0)  # events after stop are ignored, not errors
    rig.controller.set("hue", 0.1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, port))  # the port is free again
    with pytest.raises(RuntimeError):
        server.start()
    never_started = OscServer(rig.controller, port=0)
    never_started.stop()
    with pytest.raises(RuntimeError):
        _ = never_started.address


def test_a_taken_port_fails_at_start(rig):
    server = rig.serve()
    with pytest.raises(OSError):
        OscServer(rig.controller, port=server.address[1]).start()


def test_status_feedback_survives_a_failing_status_source_and_refuses_a_loop(rig, caplog):
    caplog.set_level(logging.WARNING, logger="synd.osc")
    target = rig.client(SimpleNamespace(address=("127.0.0.1", 9)))  # only its socket is used
    calls = []

    def status():
        calls.append(1)
        if len(calls) <= 3:
            raise RuntimeError("engine busy")
        return {"fps": 30.0, "latency_ms_median": None}

    rig.serve(feedback=target.sock.getsockname(), status=status, status_every=0.05)
    msg = OscMessage(target.sock.recvfrom(65536)[0])  # after three failures, a status
    assert msg.address == "/synd/status" and msg.params[:2] == [30.0, -1.0]
    failures = [r for r in caplog.records if "engine busy" in r.getMessage()]
    assert len(failures) == 1  # logged once, not on every tick

    loop = OscServer(rig.controller, port=0)
    loop.start()
    port = loop.address[1]
    loop.stop()
    with pytest.raises(ValueError, match="own OSC port"):
        OscServer(rig.controller, port=port, feedback=("127.0.0.1", port)).start()


# -- a real engine -----------------------------------------------------------------------------


def test_osc_reaches_a_real_engine_pictures_and_state(tiny_bundle, tmp_path):
    """A real Engine (tiny model, file input, a collecting output) driven over OSC:
    blackout blackens the pictures, a model loaded into slot B and a fade show up in the
    engine's state, queries and status report the engine's numbers, beats come back."""
    import copy

    from synd.audio import write_wav
    from synd.bridges.base import OutputRunner
    from synd.capture import FileInput
    from synd.engine import Engine, EngineOptions
    from tests.helpers.audio import music_clip
    from tests.helpers.engine import Collect

    song = tmp_path / "song.wav"
    write_wav(song, music_clip(3, seconds=8.0), 24000)
    source = FileInput(song, rate=24000)
    out = Collect()
    runner = OutputRunner(out)
    engine = Engine(tiny_bundle, Look(), source, [runner], EngineOptions(size=(96, 64)), model_name="tiny")
    controller = Controller(
        engine, ["tiny", "other"], load=lambda name: (copy.deepcopy(tiny_bundle), Look(hue=0.5))
    )
    feedback = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    feedback.bind(("127.0.0.1", 0))
    feedback.settimeout(5.0)
    server = OscServer(controller, port=0, feedback=feedback.getsockname(), status_every=0.2)
    source.start()
    runner.start()
    engine.start()
    server.start()
    c = Client(server)
    try:
        wait_for(lambda: len(out.frames) > 10, what="frames")
        assert any(f.rgb.any() for f in out.frames[-5:])  # a picture, not black
        c.send("/synd/blackout", 1)
        wait_for(lambda: engine.flags["blackout"], what="blackout in the engine")
        n = len(out.frames)
        wait_for(lambda: len(out.frames) > n + 5, what="frames after blackout")
        assert not any(f.rgb.any() for f in out.frames[n + 2 :])
        c.send("/synd/blackout", False)
        n = len(out.frames)
        wait_for(lambda: len(out.frames) > n + 5, what="frames after release")
        assert out.frames[-1].rgb.any()

        c.send("/synd/model/b", "other")
        wait_for(lambda: engine.mix_state()["b"] == "other", what="slot B loaded")
        c.send("/synd/fade", 1.0, 0.0)
        wait_for(lambda: engine.mix_state()["crossfade"] == 1.0, what="the fade")
        assert c.ask("/synd/crossfade") == ("/synd/crossfade", [1.0])
        assert c.ask("/synd/model/b") == ("/synd/model/b", ["other"])
        c.send("/synd/intensity", 0.25)
        wait_for(lambda: engine.look.intensity == 0.25, what="intensity on the slot on screen")

        address, status = c.ask("/synd/status")
        assert address == "/synd/status"
        fps, latency, preset, a, b, crossfade, dropped, guarded = status
        assert fps > 5 and latency >= 0 and dropped >= 0 and guarded >= 0
        assert (preset, a, b, crossfade) == ("tiny", "tiny", "other", 1.0)

        seen = set()
        deadline = time.monotonic() + 10
        while not {"/synd/status", "/synd/beat", "/synd/intensity"} <= seen:
            assert time.monotonic() < deadline, f"feedback seen: {seen}"
            seen.add(OscMessage(feedback.recvfrom(65536)[0]).address)
    finally:
        c.close()
        server.stop()
        engine.stop()
        runner.stop(2.0)
        source.stop()
        feedback.close()
    assert engine.error is None


# -- subscriptions (the tray of `synd tray`, a second TouchOSC) --------------------------------


def _receive_until(client, done, timeout=5.0):
    """Messages the client gets until `done(messages)` holds: [(address, params)]."""
    got = []
    deadline = time.monotonic() + timeout
    while not done(got):
        assert time.monotonic() < deadline, f"got only {[a for a, _ in got]}"
        client.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            msg = OscMessage(client.sock.recvfrom(65536)[0])
        except TimeoutError:
            continue
        got.append((msg.address, msg.params))
    return got


def test_a_subscriber_gets_the_state_then_changes_and_status(rig):
    server = rig.serve()
    c = rig.client(server)
    c.send("/synd/subscribe", 5.0)
    got = dict(_receive_until(c, lambda m: any(a == "/synd/status" for a, _ in m)))
    assert got["/synd/presets"] == PRESETS
    assert got["/synd/models"] == PRESETS  # no model list given: the presets
    assert got["/synd/outputs"] == ["ndi", "record"]
    assert got["/synd/inputs"] == []  # this controller cannot switch inputs
    assert got["/synd/intensity"] == [pytest.approx(1.0)]
    assert got["/synd/output/ndi"] == [1] and got["/synd/blackout"] == [0]
    assert got["/synd/preset"] == ["calm"] and got["/synd/model/b"] == [""]
    # Changes from anywhere follow, and status four times a second.
    rig.controller.set("hue", 0.5)
    later = _receive_until(
        c, lambda m: ("/synd/hue", [0.5]) in m and sum(a == "/synd/status" for a, _ in m) >= 3
    )
    assert len([a for a, _ in later if a == "/synd/presets"]) == 0  # no second snapshot
    # Renewing sends no snapshot again; unsubscribing ends the flow.
    c.send("/synd/subscribe", 5.0)
    c.send("/synd/subscribe", 0)
    time.sleep(0.3)
    c.sock.settimeout(0.05)
    while True:  # drain what was in flight
        try:
            c.sock.recvfrom(65536)
        except TimeoutError:
            break
    rig.controller.set("hue", 0.25)
    c.sock.settimeout(0.6)
    with pytest.raises(socket.timeout):
        c.sock.recvfrom(65536)


def test_subscriptions_expire_and_are_limited(rig, caplog):
    server = rig.serve()
    first = rig.client(server)
    first.send("/synd/subscribe", 0.3)
    _receive_until(first, lambda m: any(a == "/synd/status" for a, _ in m))
    time.sleep(0.5)  # expired: no more status
    first.sock.settimeout(0.05)
    while True:
        try:
            first.sock.recvfrom(65536)
        except TimeoutError:
            break
    first.sock.settimeout(0.6)
    with pytest.raises(socket.timeout):
        first.sock.recvfrom(65536)
    clients = [rig.client(server) for _ in range(9)]
    for c in clients:
        c.send("/synd/subscribe", 5.0)
    for c in clients[:8]:
        _receive_until(c, lambda m: any(a == "/synd/status" for a, _ in m))
    last = clients[8]
    last.sock.settimeout(0.6)
    with caplog.at_level(logging.WARNING):
        with pytest.raises(socket.timeout):
            last.sock.recvfrom(65536)
    assert any("already 8 subscribers" in r.getMessage() for r in caplog.records)
    clients[0].send("/synd/subscribe", "soon")  # wrong type: refused, still subscribed
    wait_for(
        lambda: any("/synd/subscribe expects" in r.getMessage() for r in caplog.records), what="the refusal"
    )


def test_preview_pictures_are_small_jpegs_of_the_newest_frame(rig):
    """A subscriber asking for pictures gets the engine's newest frame as a JPEG that
    fits 320x180 (aspect kept), and only when there is a new frame."""
    import cv2

    from synd.bridges.base import Frame

    yy, xx = np.mgrid[0:360, 0:640]
    rgb = np.stack([xx * 255 // 639, yy * 255 // 359, np.full_like(xx, 90)], -1).astype(np.uint8)
    rig.engine.last_frame = Frame(
        seq=1, audio_time=0.0, captured_at=0.0, rgb=rgb, audio=np.zeros(0, np.float32), sample_rate=24000
    )
    server = rig.serve()
    c = rig.client(server)
    c.send("/synd/subscribe", 5.0, 1)
    got = _receive_until(c, lambda m: any(a == "/synd/preview" for a, _ in m))
    jpeg = [p for a, p in got if a == "/synd/preview"][0][0]
    picture = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert picture.shape == (180, 320, 3)
    small = cv2.resize(rgb, (320, 180), interpolation=cv2.INTER_AREA)
    assert np.abs(picture.astype(int) - small).mean() < 4  # the frame, not something else
    # The same frame is not sent twice.
    time.sleep(0.3)
    later = _receive_until(c, lambda m: sum(a == "/synd/status" for a, _ in m) >= 2)
    assert not any(a == "/synd/preview" for a, _ in later)
    # A subscriber that did not ask gets no pictures.
    other = rig.client(server)
    other.send("/synd/subscribe", 5.0)
    rig.engine.last_frame = Frame(
        seq=2, audio_time=0.0, captured_at=0.0, rgb=rgb, audio=np.zeros(0, np.float32), sample_rate=24000
    )
    seen = _receive_until(other, lambda m: sum(a == "/synd/status" for a, _ in m) >= 3)
    assert not any(a == "/synd/preview" for a, _ in seen)
    assert any(
        a == "/synd/preview" for a, _ in _receive_until(c, lambda m: any(a == "/synd/preview" for a, _ in m))
    )


def test_list_queries_and_the_input_address(rig, caplog):
    server = rig.serve()
    c = rig.client(server)
    assert c.ask("/synd/presets") == ("/synd/presets", PRESETS)
    assert c.ask("/synd/outputs") == ("/synd/outputs", ["ndi", "record"])
    with caplog.at_level(logging.WARNING):
        c.send("/synd/input", "/etc/passwd")  # this controller cannot switch inputs at all
        c.send("/synd/presets", 1)
        wait_for(
            lambda: (
                sum(
                    "/synd/input" in r.getMessage() or "/synd/presets" in r.getMessage()
                    for r in caplog.records
                )
                >= 2
            ),
            what="two refusals",
        )
    assert any("cannot be switched" in r.getMessage() for r in caplog.records)


def test_one_packet_gets_at_most_max_replies(rig, caplog):
    """A forged sender must not turn one small packet into a stream aimed at someone
    else: "/*/*" matches every address and each query would reply."""
    from synd.osc import MAX_REPLIES

    server = rig.serve()
    client = rig.client(server)
    client.send("/*/*")
    client.sock.settimeout(0.5)
    replies = []
    with contextlib.suppress(socket.timeout):
        while True:
            replies.append(OscMessage(client.sock.recvfrom(65536)[0]).address)
    assert len(replies) == MAX_REPLIES
    assert server.tally.totals.get("replies", 0) >= 1  # one per query route past the cap
    assert any("more than" in r.getMessage() for r in caplog.records)
    # A packet of a few queries is answered in full.
    client.sock.settimeout(5.0)
    queries = OscBundleBuilder(IMMEDIATELY)
    for address in ("/synd/intensity", "/synd/hue"):
        queries.add_content(OscMessage(osc(address)))
    client.raw(queries.build().dgram)
    got = {OscMessage(client.sock.recvfrom(65536)[0]).address for _ in range(2)}
    assert got == {"/synd/intensity", "/synd/hue"}
