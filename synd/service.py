"""`synd service install`: run the daemon as a systemd user service.

Writes ``$XDG_CONFIG_HOME/systemd/user/synd.service`` (default ``~/.config/...``) that
starts `synd run` with this Python and the given arguments, restarts it if it fails and
stops it with SIGTERM (which `synd run` handles within two seconds). Then, unless told
not to, reloads systemd and enables and starts the unit (`systemctl --user enable --now`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from synd.errors import one_line
from synd.files import atomic_write_bytes

UNIT_NAME = "synd.service"


def unit_path() -> Path:
    """Where systemd looks for the user's own units."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user" / UNIT_NAME


def unit_text(run_args: list[str], python: str = sys.executable) -> str:
    """The unit file: `python -m synd run ARGS`, restarted on failure."""
    command = shlex.join([python, "-m", "synd", "run", *run_args])
    return f"""[Unit]
Description=synd, the SyNEThesia daemon (live music visuals)
After=sound.target pipewire-pulse.service pulseaudio.service

[Service]
Type=simple
ExecStart={command}
Restart=on-failure
RestartSec=3
KillSignal=SIGTERM
TimeoutStopSec=5

[Install]
WantedBy=default.target
"""


def install(run_args: list[str], enable: bool = True) -> tuple[Path, list[str]]:
    """Write the unit; with `enable`, reload systemd and enable/start it.

    Returns (unit path, what happened, one line each). Without systemctl the unit is
    still written and the lines say how to start it.
    """
    path = unit_path()
    atomic_write_bytes(path, unit_text(run_args).encode("utf-8"))
    notes = [f"wrote {path}"]
    systemctl = shutil.which("systemctl")
    if not enable:
        notes.append("start it with: systemctl --user enable --now synd")
    elif systemctl is None:
        notes.append("systemctl not found: start `synd run` another way (e.g. launchd, a login item)")
    else:
        for args in (["daemon-reload"], ["enable", "--now", UNIT_NAME]):
            proc = subprocess.run([systemctl, "--user", *args], capture_output=True, text=True)
            if proc.returncode != 0:
                reason = one_line(proc.stderr or proc.stdout) or f"exit {proc.returncode}"
                raise RuntimeError(f"systemctl --user {' '.join(args)} failed: {reason}")
        notes.append("enabled and started: journalctl --user -u synd -f shows its log")
    return path, notes
