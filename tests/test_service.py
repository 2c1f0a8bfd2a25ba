"""`synd service install`: a systemd user unit that runs the daemon.

systemd itself does not run in this container; `systemctl` is a stand-in script that
records its arguments, the unit file is checked as systemd would read it.
"""

import configparser
import os
import shlex
import subprocess
import sys

SYND = [sys.executable, "-m", "synd"]


def test_install_writes_a_unit_that_runs_synd_run_with_the_arguments(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": "/nonexistent"}
    proc = subprocess.run(
        [*SYND, "service", "install", "--", "--input", "mic", "--output", "record:/tmp/my set.mp4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "cfg" / "systemd" / "user" / "synd.service"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(unit.read_text())
    command = shlex.split(parser["Service"]["ExecStart"])
    assert command == [
        sys.executable,
        "-m",
        "synd",
        "run",
        "--input",
        "mic",
        "--output",
        "record:/tmp/my set.mp4",
    ]
    assert parser["Service"]["Restart"] == "on-failure"
    assert parser["Install"]["WantedBy"] == "default.target"
    assert "systemctl not found" in proc.stderr


def test_install_enables_and_starts_it_with_systemctl(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([*SYND, "service", "install"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == ["--user daemon-reload", "--user enable --now synd.service"]


def test_a_failing_systemctl_is_one_line(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run([*SYND, "service", "install"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Failed to connect to bus" in proc.stderr
