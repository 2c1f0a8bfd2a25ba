"""Drives the ndi output's end-to-end tests inside a loopback-only network namespace.

    unshare -n sh -c 'ip link set lo up && exec python tests/helpers/ndi_driver.py MODE --out DIR ...'

Refuses to run when any network interface other than loopback is visible, so nothing
an NDI test sends can leave the machine. NDI discovery is pointed at 127.0.0.1 with an
ndi-config.v1.json in NDI_CONFIG_DIR (no mDNS). Every receiver is ndi_receiver.py (next
to this file) in its own process, on cyndilib. Writes DIR/result.json (and .npz files)
for the test (tests/helpers/ndi.py's `drive` runs this and reads it).

Modes:
    cli        `synd run --input AUDIO --loop --output ndi@WxH@FPS:NAME`, the real
               command as a subprocess, watched by one receiver.
    content    the engine in process (FileInput, the shipped "prism" model) feeding an
               NdiOutput and a FrameTap (every frame offered); the receiver saves what it gets, the
               engine frames with the same audio times go to DIR/engine.npz.
    reconnect  the engine in process feeding an NdiOutput; one receiver watches and
               leaves, nobody watches for a while, a second receiver comes; engine
               counters are sampled between the phases.
    receiver-killed
               the engine in process feeding an NdiOutput; a receiver watches and is
               SIGKILLed mid-stream, the engine and sender are sampled for --gap seconds,
               then a new receiver watches (tests/test_faults.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECEIVER = HERE / "ndi_receiver.py"


def die_with_parent() -> None:
    """In a child: get SIGTERM when the driver dies (e.g. killed by a test timeout), so
    no synd or receiver is left running behind it."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def loopback_only() -> list[str]:
    """The network interfaces this process sees other than loopback (must be none)."""
    return [name for _, name in socket.if_nameindex() if name != "lo"]


def ndi_config() -> str:
    """A fresh NDI_CONFIG_DIR: discovery and sending on 127.0.0.1 only, no mDNS server."""
    folder = tempfile.mkdtemp(prefix="synd-ndi-config-")
    config = {"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}}}
    Path(folder, "ndi-config.v1.json").write_text(json.dumps(config))
    return folder


class Receiver:
    """ndi_receiver.py in a subprocess; its JSON lines are collected as they come."""

    def __init__(
        self,
        name: str,
        seconds: float,
        save: Path | None = None,
        max_save: int = 60,
        find_timeout: float = 60.0,
        fmt: str = "bgra",
    ) -> None:
        cmd = [
            sys.executable,
            str(RECEIVER),
            "--name",
            name,
            "--seconds",
            str(seconds),
            "--find-timeout",
            str(find_timeout),
            "--format",
            fmt,
        ]
        if save is not None:
            cmd += ["--save", str(save), "--max-save", str(max_save)]
        self.events: list[dict] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent
        )
        self._stderr: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._err_reader = threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True)
        self._err_reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "noise", "line": line.strip()})

    def event(self, kind: str) -> dict | None:
        return next((e for e in self.events if e.get("event") == kind), None)

    def wait_event(self, kind: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (found := self.event(kind)) is not None:
                return found
            if self.proc.poll() is not None:
                self._reader.join(2)
                return self.event(kind)
            time.sleep(0.02)
        return None

    def finish(self, timeout: float) -> dict:
        """Wait for the receiver to end (SIGTERM after `timeout`); its summary."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self._err_reader.join(5)
        done = self.event("done") or {"error": "receiver printed no summary"}
        return {
            **done,
            "returncode": self.proc.returncode,
            "found": self.event("found"),
            "first": self.event("frame"),
            "stderr": "".join(self._stderr)[-2000:],
        }


def synd_command() -> list[str]:
    script = Path(sys.executable).with_name("synd")
    return [str(script)] if script.exists() else [sys.executable, "-m", "synd"]


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # SIGINT may be ignored in background runs
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


# -- modes ------------------------------------------------------------------------------------


def mode_cli(args, out: Path) -> dict:
    w, h = args.size
    log = open(out / "synd.log", "w")
    cmd = [
        *synd_command(),
        "run",
        "--input",
        args.audio,
        "--loop",
        "--size",
        f"{w}x{h}",
        "--fps",
        f"{args.fps:g}",
        "--output",
        f"ndi@{w}x{h}@{args.fps:g}:{args.name}",
    ]
    began = time.monotonic()
    synd = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True, preexec_fn=die_with_parent)
    try:
        receiver = Receiver(args.name, args.seconds, find_timeout=args.startup)
        received = receiver.finish(args.startup + args.seconds + 30)
        # synd's own monitor (ndi-python's receiver), which `synd bench ndi` relies on.
        watch = subprocess.run(
            [sys.executable, "-m", "synd.bridges.ndi_watch", args.name, "--seconds", "2"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        alive = synd.poll() is None
    finally:
        code = stop_process(synd)
        log.close()
    return {
        "command": cmd,
        "received": received,
        "synd_alive_while_watched": alive,
        "watch": {"returncode": watch.returncode, "stdout": watch.stdout, "stderr": watch.stderr[-2000:]},
        "synd_returncode": code,
        "seconds": round(time.monotonic() - began, 2),
        "synd_log": (out / "synd.log").read_text()[-4000:],
    }


def make_engine(args, outputs, taps=()):
    """An engine on `args.audio` feeding `outputs` (each behind its own OutputRunner)
    and `taps` (objects with `offer`, `stats`, `start`, `stop`, called on the engine's
    own thread)."""
    from synd.bridges.base import OutputRunner
    from synd.capture import FileInput
    from synd.catalog import resolve_look
    from synd.engine import Engine, EngineOptions

    bundle, look = resolve_look("prism", None)
    bundle.generator.eval()
    source = FileInput(args.audio, rate=bundle.features.sample_rate, loop=True)
    runners = [OutputRunner(o) for o in outputs] + list(taps)
    engine = Engine(
        bundle, look, source, runners, EngineOptions(fps=args.fps, size=tuple(args.size), detail=args.detail)
    )
    return engine, runners, source


class FrameTap:
    """Keeps every frame the engine offers, by timecode (its audio time), on the engine's
    own thread: unlike an output behind a mailbox it cannot miss a frame on a busy
    machine. Two frames share a timecode only when no audio arrived between them; the
    newer is kept."""

    name = "tap"

    def __init__(self):
        self.frames = {}

    def offer(self, frame):
        self.frames[round(frame.audio_time * 1e7)] = frame

    def stats(self):
        return {"kept": len(self.frames)}

    def start(self):
        pass

    def stop(self, timeout=None):
        pass


def start(engine, runners, source) -> None:
    source.start()
    for runner in runners:
        runner.start()
    engine.start()


def stop(engine, runners, source) -> None:
    engine.stop()
    for runner in runners:
        runner.stop(5.0)
    source.stop()


def snapshot(engine, runner) -> dict:
    stats = runner.stats()
    return {
        "t": time.monotonic(),
        "frames": engine.frames,
        "dropped": engine.dropped,
        "sent": stats["sent"],
        "output_dropped": stats["dropped"],
        "failed": stats["failed"],
        "running": stats["running"],
        "connections": runner.output.connections(),
    }


def wait_connections(output, want: int, timeout: float) -> bool:
    """Wait until the sender counts `want` receivers (a receiver that exits is seen
    leaving when its connection closes)."""
    deadline = time.monotonic() + timeout
    while output.connections() != want:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def mode_content(args, out: Path) -> dict:
    import numpy as np

    from synd.bridges.ndi import NdiOutput

    ndi = NdiOutput(size=tuple(args.size), fps=args.fps, source_name=args.name)
    collect = FrameTap()
    engine, runners, source = make_engine(args, [ndi], taps=[collect])
    start(engine, runners, source)
    try:
        if not runners[0].wait_open(10):
            return {"error": f"ndi output did not open: {runners[0].failed}"}
        received = Receiver(
            args.name, args.seconds, save=out / "received.npz", max_save=args.max_save, fmt=args.format
        ).finish(args.seconds + 60)
    finally:
        stop(engine, runners, source)
    saved = np.load(out / "received.npz") if (out / "received.npz").exists() else None
    matched = []
    if saved is not None:
        for tc in saved["timecodes"].tolist():
            frame = collect.frames.get(tc)
            matched.append(None if frame is None else frame)
    found = [f for f in matched if f is not None]
    if found:
        np.savez(
            out / "engine.npz",
            rgb=np.stack([f.rgb for f in found]),
            timecodes=np.array([round(f.audio_time * 1e7) for f in found], np.int64),
            seqs=np.array([f.seq for f in found], np.int64),
        )
    return {
        "received": received,
        "ndi_stats": runners[0].stats(),
        "engine": {
            "frames": engine.frames,
            "dropped": engine.dropped,
            "error": None if engine.error is None else str(engine.error),
        },
        "collected": len(collect.frames),
        "matched": len(found),
        "unmatched": len(matched) - len(found),
        "size": list(ndi.size),
    }


def with_ndi_sender(args, scenario) -> dict:
    """Run `scenario(ndi, engine, runner, phases)` (a dict of results) while the engine
    feeds an NdiOutput named `args.name`; snapshots go into `phases`. The result adds
    the phases, the output's stats and the engine's counts."""
    from synd.bridges.ndi import NdiOutput

    ndi = NdiOutput(size=tuple(args.size), fps=args.fps, source_name=args.name)
    engine, runners, source = make_engine(args, [ndi])
    runner = runners[0]
    phases: dict[str, dict] = {}
    start(engine, runners, source)
    try:
        if not runner.wait_open(10):
            return {"error": f"ndi output did not open: {runner.failed}"}
        result = scenario(ndi, engine, runner, phases)
    finally:
        stop(engine, runners, source)
    return {
        **result,
        "phases": phases,
        "ndi_stats": runner.stats(),
        "engine": {
            "frames": engine.frames,
            "dropped": engine.dropped,
            "error": None if engine.error is None else str(engine.error),
        },
    }


def mode_reconnect(args, out: Path) -> dict:
    def scenario(ndi, engine, runner, phases) -> dict:
        time.sleep(1.0)  # the engine settles (first frames, ONNX warm-up)
        first = Receiver(args.name, args.seconds)
        if first.wait_event("frame", 60) is None:
            return {"error": "first receiver got no frame", "first": first.finish(5)}
        phases["first_watching"] = snapshot(engine, runner)
        first_result = first.finish(args.seconds + 30)  # it disconnects by exiting
        first_result["left"] = wait_connections(ndi, 0, 10)
        phases["first_gone"] = snapshot(engine, runner)
        time.sleep(args.gap)  # nobody watches
        phases["nobody"] = snapshot(engine, runner)
        second = Receiver(args.name, args.seconds)
        if second.wait_event("frame", 60) is None:
            return {
                "error": "second receiver got no frame",
                "first": first_result,
                "second": second.finish(5),
            }
        phases["second_watching"] = snapshot(engine, runner)
        second_result = second.finish(args.seconds + 30)
        phases["second_gone"] = snapshot(engine, runner)
        return {"first": first_result, "second": second_result}

    return with_ndi_sender(args, scenario)


def mode_receiver_killed(args, out: Path) -> dict:
    def scenario(ndi, engine, runner, phases) -> dict:
        first = Receiver(args.name, 600)  # would watch for ten minutes: it is killed
        if first.wait_event("frame", 60) is None:
            return {"error": "first receiver got no frame", "first": first.finish(5)}
        time.sleep(0.5)  # mid-stream
        phases["watching"] = snapshot(engine, runner)
        first.proc.kill()
        first_result = first.finish(10)
        phases["killed"] = snapshot(engine, runner)
        first_result["left"] = wait_connections(ndi, 0, 10)
        time.sleep(max(0.0, args.gap - (time.monotonic() - phases["killed"]["t"])))
        phases["after"] = snapshot(engine, runner)
        second = Receiver(args.name, args.seconds)
        if second.wait_event("frame", 60) is None:
            return {"error": "second receiver got no frame", "second": second.finish(5)}
        second_result = second.finish(args.seconds + 30)
        phases["second_done"] = snapshot(engine, runner)
        return {"first": first_result, "second": second_result}

    return with_ndi_sender(args, scenario)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["check", "cli", "content", "reconnect", "receiver-killed"])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--audio")
    p.add_argument("--name", default="synd test")
    p.add_argument("--size", type=lambda t: [int(v) for v in t.split("x")], default=[320, 180])
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--detail", type=int, default=96)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--startup", type=float, default=60.0, help="cli: seconds synd may take to start")
    p.add_argument(
        "--gap",
        type=float,
        default=1.5,
        help="reconnect: seconds with no receiver; receiver-killed: seconds watched after the kill",
    )
    p.add_argument("--max-save", type=int, default=60)
    p.add_argument(
        "--format",
        choices=["bgra", "uyva"],
        default="bgra",
        help="content: how the receiver reads frames (see ndi_receiver.py)",
    )
    args = p.parse_args(argv)

    def work(args, out: Path) -> dict:
        if args.mode == "check":
            from synd.bridges.ndi import NdiOutput

            return {"available": NdiOutput.available()}
        return {
            "cli": mode_cli,
            "content": mode_content,
            "reconnect": mode_reconnect,
            "receiver-killed": mode_receiver_killed,
        }[args.mode](args, out)

    return run_in_namespace(work, args)


def run_in_namespace(work, args) -> int:
    """`work(args, args.out)` with a private NDI configuration, refused unless this is a
    loopback-only network namespace; its result goes to OUT/result.json. 0 unless the
    result holds an "error"."""
    args.out.mkdir(parents=True, exist_ok=True)
    if others := loopback_only():
        result = {
            "error": f"refusing to run NDI outside a loopback-only network namespace "
            f"(interfaces: {', '.join(others)})"
        }
    else:
        config = ndi_config()
        os.environ["NDI_CONFIG_DIR"] = config
        try:
            result = work(args, args.out)
        finally:
            shutil.rmtree(config, ignore_errors=True)
    (args.out / "result.json").write_text(json.dumps(result, indent=1, default=str))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
