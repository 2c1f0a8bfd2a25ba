"""Real NDI in a loopback-only network namespace: `drive` runs ndi_driver.py (next to this
module) in one, `namespace_problem` says why that cannot be done here and
`requires_namespace` skips a test then (and marks it slow); `unique` makes a source name
no other test run on the machine uses."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: The end-to-end tests' driver, run in the namespace (its modes: see its docstring).
DRIVER = Path(__file__).resolve().parent / "ndi_driver.py"


@functools.cache
def namespace_problem() -> str | None:
    """Why the end-to-end tests cannot run here, or None."""
    from synd.bridges.ndi import NdiOutput

    for module, hint in (
        ("NDIlib", "pip install 'synethesia[ndi]'"),
        ("cyndilib", "pip install cyndilib, the test receiver"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"Python module '{module}' is not installed ({hint})"
    reason = NdiOutput.available()
    if reason is not None:
        return reason
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (Debian package {package})"
    try:
        probe = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot make a network namespace: {exc}"
    if probe.returncode != 0:
        return f"cannot make a network namespace (unshare -n needs root): {probe.stderr.strip()}"
    return None


def requires_namespace(test):
    """Skip `test` when `namespace_problem()` finds one; marks it slow."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        reason = namespace_problem()
        if reason is not None:
            pytest.skip(f"real NDI test needs NDI and a private network namespace: {reason}")
        return test(*args, **kwargs)

    return pytest.mark.slow(wrapper)


def drive(mode: str, tmp_path: Path, *args: str, timeout: float = 150.0) -> dict:
    """Run ndi_driver.py MODE in a new loopback-only network namespace; its result
    (result.json), which must hold no "error", with "dir" the folder it wrote."""
    out = tmp_path / mode
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [
        "unshare",
        "-n",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" "$@"',
        sys.executable,
        str(DRIVER),
        mode,
        "--out",
        str(out),
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    result_file = out / "result.json"
    assert result_file.exists(), f"driver failed ({proc.returncode}): {proc.stderr[-3000:]}"
    result = json.loads(result_file.read_text())
    assert "error" not in result, json.dumps(result, indent=1)[-4000:]
    result["dir"] = out
    return result


def unique(name: str) -> str:
    """`name` made unique on this machine (pid and clock): NDI refuses a second source
    of the same name on the machine (even in another network namespace), so tests
    running side by side must not collide."""
    return f"{name} {os.getpid()}-{time.monotonic_ns() % 100000}"
