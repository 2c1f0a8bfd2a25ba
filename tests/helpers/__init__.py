"""What the tests share: every helper function, class and fixture that more than one test
module uses, each written once, and the programs some tests run in processes of their own.

Test modules import helpers from here (``from tests.helpers.osc import oscsend``) and
never from one another. Fixtures come through ``pytest_plugins`` in tests/conftest.py,
so a test just names them as arguments.

Modules:
    audio    generated sound: music_clip, tone, beats, dominant_hz, encode; fixture clip_dir
    daemon   `synd run` in a process of its own: start_daemon, stop_daemon, SYND
    engine   the live engine in process: Collect (an output keeping its frames),
             run_engine, stop_all
    fuzz     the flood tests' frame rate and share, FrameCounter, rss_bytes
    midi     JACK and MIDI: Jack, Pads, opening, controller (a FakeEngine), mapping, CC,
             NOTE_ON, NOTE_OFF; fixture jack
    models   tiny models: make_tiny_bundle, other_model, TINY_PRESET; fixture tiny_bundle
    ndi      real NDI in a network namespace: drive, namespace_problem,
             requires_namespace, unique
    osc      OSC: osc, Client, oscsend, OscDump, free_udp_port, RecordingEngine, PRESETS
    pulse    a private PulseAudio server: requires_pulse, pulse_server; fixture pulse
    tmpfs    mounted_tmpfs, a small real file system that fills up
    wait     wait_for, wait_until
    xserver  real X11 (Xvfb, trayer, Qt apps on xcb); fixtures xvfb, fresh_xvfb, trayer,
             qt_app

Programs (run as ``python tests/helpers/NAME.py ...``; they import no test code):
    ndi_driver    the NDI end-to-end scenarios, inside a loopback-only network namespace
    ndi_receiver  an independent NDI receiver (cyndilib)
    oscflood      the OSC flood's sender (the standard library only)
"""
