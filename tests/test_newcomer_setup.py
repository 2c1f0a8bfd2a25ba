"""What a newcomer meets first (issue 20, items 1 and 2): `make run`'s set-up waits for
another apt/dpkg to release its lock instead of failing, and `make run` on a headless
machine records a video beside the NDI source and says in one log line where the file
goes and how to watch the source."""

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synd.audio import write_wav
from synd.video import read_audio, read_video_info
from tests.helpers.audio import beats
from tests.helpers.ndi import requires_namespace, unique

ROOT = Path(__file__).resolve().parent.parent
APT_LOCK = ROOT / "scripts" / "apt_lock.sh"
SETUP = ROOT / "scripts" / "setup.sh"
HEADLESS = {"DISPLAY": "", "WAYLAND_DISPLAY": "", "QT_QPA_PLATFORM": ""}

needs_flock = pytest.mark.skipif(shutil.which("flock") is None, reason="flock (util-linux) is not installed")


@contextlib.contextmanager
def held_lock(path: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """A real lock on `path`, held by `flock` for `seconds` (as apt or dpkg would hold
    one), and let go at the end of the block."""
    holder = hold_lock(path, seconds)
    try:
        yield holder
    finally:
        holder.kill()
        holder.wait()


def hold_lock(path: Path, seconds: float) -> subprocess.Popen:
    """A real lock on `path`, held by `flock` for `seconds` (as apt or dpkg would hold one)."""
    path.touch()
    proc = subprocess.Popen(["flock", str(path), "sleep", str(seconds)])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # flock has the file open (and locked) once this fails
        if subprocess.run(["flock", "-n", str(path), "true"]).returncode != 0:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("flock did not take the lock")


def wait_for_apt(lock: Path, limit: float) -> tuple[subprocess.CompletedProcess, float]:
    """Run setup.sh's wait for the apt lock (scripts/apt_lock.sh) on `lock`, with `limit` s."""
    env = {**os.environ, "SYND_APT_LOCKS": str(lock), "SYND_APT_WAIT": str(limit)}
    began = time.monotonic()
    done = subprocess.run(
        [
            "bash",
            "-c",
            f'set -euo pipefail; source "{APT_LOCK}"; wait_for_apt_lock; echo "left $apt_lock_left"',
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=limit + 60,
    )
    return done, time.monotonic() - began


@needs_flock
def test_set_up_waits_for_a_held_apt_lock_and_gives_up_at_its_limit(tmp_path):
    lock = tmp_path / "lock-frontend"
    with held_lock(lock, 120) as holder:
        done, took = wait_for_apt(lock, limit=3)
    assert done.returncode != 0, done.stdout + done.stderr
    assert 2.5 <= took < 30, took
    assert (
        f"waiting for another package manager to finish: process {holder.pid} (flock) holds {lock}"
        in done.stderr
    ), done.stderr
    assert "up to 3 s" in done.stderr and "SYND_APT_WAIT" in done.stderr
    assert f"gave up after 3 s: process {holder.pid} (flock) holds {lock}" in done.stderr, done.stderr
    assert "run make again" in done.stderr and "left" not in done.stdout


@needs_flock
def test_set_up_goes_on_once_the_apt_lock_is_released(tmp_path):
    lock = tmp_path / "lock-frontend"
    with held_lock(lock, 2):
        done, took = wait_for_apt(lock, limit=60)
    assert done.returncode == 0, done.stderr
    assert 1.0 <= took < 30, took
    assert "waiting for another package manager" in done.stderr
    assert "the package manager is free after" in done.stderr
    left = int(done.stdout.split()[-1])  # for apt-get -o DPkg::Lock::Timeout=
    assert 30 <= left <= 60


def test_set_up_with_no_lock_held_does_not_wait(tmp_path):
    (tmp_path / "lock").touch()
    done, took = wait_for_apt(tmp_path / "lock", limit=60)
    assert done.returncode == 0 and done.stderr == "" and took < 10, (done.stderr, took)
    assert done.stdout.strip() == "left 60"


def test_setup_sh_waits_before_every_apt_get():
    """setup.sh itself: the wait is sourced, and every apt-get comes right after a wait
    and has apt's own lock timeout (for a process that takes the lock in between)."""
    lines = [line.strip() for line in SETUP.read_text().splitlines()]
    assert "source scripts/apt_lock.sh" in lines
    runs = [i for i, line in enumerate(lines) if line.startswith("apt-get ")]
    assert len(runs) >= 2  # update and install
    for i in runs:
        assert lines[i - 1] == "wait_for_apt_lock", lines[i - 1]
        assert '-o DPkg::Lock::Timeout="$apt_lock_left"' in lines[i]
    assert subprocess.run(["bash", "-n", str(SETUP)]).returncode == 0


def ndi_here() -> str | None:
    from synd.bridges.ndi import ndi_problem

    return ndi_problem()


def test_headless_auto_outputs_publish_ndi_and_record_and_say_where(monkeypatch, tmp_path, caplog):
    """`make run`'s outputs on a machine with no display and NDI installed."""
    from synd.config import RunConfig
    from synd.daemon import auto_outputs

    if ndi_here() is not None:
        pytest.skip(f"NDI is not available here: {ndi_here()}")
    for key in HEADLESS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    with caplog.at_level("INFO", logger="synd.daemon"):
        chosen = auto_outputs().split(",")
    assert chosen[0] == "ndi" and len(chosen) == 2, chosen
    path = Path(chosen[1].removeprefix("record:"))
    assert chosen[1].startswith("record:") and path.parent == tmp_path / "synd" / "recordings"
    assert path.suffix == ".mp4" and path.parent.is_dir()
    lines = [r.getMessage() for r in caplog.records if r.name == "synd.daemon"]
    assert len(lines) == 1, lines  # one line says it all
    line = lines[0]
    assert f"recording to {path}" in line, line
    assert "NDI source 'synd'" in line and "OBS" in line and "NDI Studio Monitor" in line, line
    assert re.search(r"about \d+ MB a minute", line) and "no size limit" in line, line

    caplog.clear()
    with caplog.at_level("INFO", logger="synd.daemon"):
        auto_outputs(run=RunConfig(ndi_name="Stage Left", size="1920x1080", fps=60))
    line = caplog.records[-1].getMessage()
    assert "NDI source 'Stage Left'" in line and "(Stage Left)" in line, line
    assert "about 202 MB a minute" in line, line  # 4.5x the pixels a second of 1280x720 at 30


def test_with_a_display_auto_outputs_stay_the_window_and_ndi(monkeypatch, tmp_path, caplog, xvfb):
    """Where there is a display, nothing is recorded (as before)."""
    from synd.bridges.preview import display_problem
    from synd.daemon import auto_outputs

    monkeypatch.setenv("DISPLAY", xvfb.display)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    if display_problem() is not None:
        pytest.skip(f"the preview window cannot open on Xvfb here: {display_problem()}")
    with caplog.at_level("INFO", logger="synd.daemon"):
        chosen = auto_outputs()
    assert chosen == ("preview,ndi" if ndi_here() is None else "preview"), chosen
    assert not (tmp_path / "synd").exists() and not caplog.records


#: Run in a loopback-only network namespace: `synd run` with no --output, headless, on a
#: looping song; an NDI receiver (synd.bridges.ndi_watch) looks for the source the log
#: names; then SIGTERM.
SCRIPT = r"""
ip link set lo up
"$PY" -m synd run --input "$SONG" --loop --size 160x96 --ndi-name "$NAME" -o status_every=0 \
  2> "$OUT/daemon.log" &
pid=$!
for i in $(seq 240); do grep -q "outputs:" "$OUT/daemon.log" && break; sleep 0.5; done
"$PY" -m synd.bridges.ndi_watch "$NAME" --seconds 2 --timeout 30 > "$OUT/watch.json" || true
sleep 2
kill -TERM $pid
wait $pid
echo $? > "$OUT/rc"
"""


@requires_namespace
def test_synd_run_headless_records_a_readable_video_and_names_the_ndi_source(tmp_path):
    song = tmp_path / "song.wav"
    write_wav(song, beats(6.0), 48000)
    (tmp_path / "ndi").mkdir()
    (tmp_path / "ndi" / "ndi-config.v1.json").write_text(
        json.dumps({"ndi": {"networks": {"ips": "127.0.0.1", "discovery": ""}}})
    )
    name = unique("newcomer")
    env = {
        **os.environ,
        **HEADLESS,
        "PY": sys.executable,
        "SONG": str(song),
        "NAME": name,
        "OUT": str(tmp_path),
        "NDI_CONFIG_DIR": str(tmp_path / "ndi"),
        "HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "PYTHONUNBUFFERED": "1",
    }
    subprocess.run(["unshare", "-n", "bash", "-c", SCRIPT], env=env, timeout=240, check=True)
    log = (tmp_path / "daemon.log").read_text()
    assert (tmp_path / "rc").read_text().strip() == "0", log
    assert "Traceback" not in log, log
    recordings = list((tmp_path / "data" / "synd" / "recordings").glob("synd-*.mp4"))
    assert len(recordings) == 1, log
    said = [line for line in log.splitlines() if "no display" in line]
    assert len(said) == 1, log
    assert f"recording to {recordings[0]}" in said[0] and "MB a minute" in said[0], said
    assert f"NDI source '{name}'" in said[0] and "OBS" in said[0], said
    assert re.search(r"outputs: ndi 160x96 at 30 fps, record 160x96 at 30 fps", log), log
    # The source is there as the log says it is listed ("HOST (NAME)"), and frames arrive.
    watched = json.loads((tmp_path / "watch.json").read_text())
    assert f"listed as '{watched['source']}'" in said[0], (said, watched)
    assert watched["frames"] > 10, watched
    # A readable video with the song's sound.
    info = read_video_info(recordings[0])
    assert info["n_frames"] > 60 and (info["width"], info["height"]) == (160, 96), info
    audio, rate = read_audio(recordings[0])
    assert len(audio) > rate and float(abs(audio).max()) > 0.05
