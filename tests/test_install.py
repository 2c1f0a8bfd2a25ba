"""A non-editable install carries the shipped presets and models and finds them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_install_finds_shipped_presets_and_models(tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--target",
            str(target),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not (target / "bridges").exists(), "bridges/ must not install as a top-level package"
    assert (target / "synd" / "bridges" / "registry.py").is_file()
    code = (
        "import synd.paths as p, synd.presets as s, synd.info as i;"
        "print(p.shipped_dir('presets'));"
        "print(sorted(x.name for x in s.list_presets(retired=True)));"
        "print(sorted(m['name'] for m in i.list_models() if 'error' not in m))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(target),
        "XDG_CONFIG_HOME": str(tmp_path),
        "XDG_DATA_HOME": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert out.returncode == 0, out.stderr
    where, presets, models = out.stdout.splitlines()
    assert where.startswith(str(target))
    for name in ("classic", "sharp", "prism", "lava"):
        assert name in presets and name in models
    assert "tide" in presets  # a look on lava's model
