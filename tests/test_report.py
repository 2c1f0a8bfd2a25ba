import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from synd import report
from synd.quality import frame_change, sync
from synd.report import ReportData, check_target, parse_target, write_report

EVIL = "<script>alert(1)</script>"


def sample_data(n: int = 120) -> ReportData:
    rng = np.random.default_rng(0)
    names = ["mel00", "mel01", EVIL, r"cost $\frac$", "loudness", "onset"]
    targets = rng.standard_normal((n, len(names)))
    decoded = targets + 0.3 * rng.standard_normal(targets.shape)
    frames = rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8)
    onset = np.abs(rng.standard_normal(n))
    change = frame_change(frames)
    _, _, curve = sync(onset, change, max_lag=5)
    return ReportData(
        targets=targets,
        decoded=decoded,
        feature_names=names,
        sync_curve=curve,
        frames_for_sheet=list(frames[::20]),
        sheet_labels=[f"{i / 30:.1f}s" for i in range(0, n, 20)],
        onset=onset,
        change=change,
        fps=30.0,
        title="eval of <b>model</b>",
        notes=["audio: a&b.wav"],
    )


def sample_result() -> dict:
    return {
        "sound_r2": 0.8125,
        "probe_r2": 0.4,
        "sync_corr": float("nan"),
        "sync_lag_frames": 2,
        "flicker_silence": 0.05,
        "files": ["x.wav"],
        "targets": {
            "sound_r2": 0.5,
            "flicker_silence": "<= 0.02",
            "sync_corr": ">= 0.3",
            "colorfulness": [">=", 20],
        },
    }


def row(page: str, name: str) -> str:
    match = re.search(r"<tr><th>" + re.escape(name) + r"</th>.*?</tr>", page, re.S)
    assert match, f"no table row for {name}"
    return match.group(0)


def test_report_writes_page_and_referenced_plots(tmp_path):
    out = tmp_path / "report"
    index = write_report(out, sample_result(), sample_data())
    assert index == out / "index.html"
    page = index.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert set(sources) == {
        "features.png",
        "feature_lines.png",
        "contact_sheet.png",
        "sync_curve.png",
        "sync_time.png",
    }
    for src in sources:
        with Image.open(out / src) as im:
            assert im.format == "PNG" and im.width > 40 and im.height > 40
    assert not list(out.glob("*.partial"))


def test_report_table_shows_values_targets_and_verdicts(tmp_path):
    page = write_report(tmp_path, sample_result(), sample_data()).read_text(encoding="utf-8")
    assert "0.8125" in row(page, "sound_r2") and "pass" in row(page, "sound_r2")
    assert ">0.4<" in row(page, "probe_r2")
    assert ">2<" in row(page, "sync_lag_frames")
    flick = row(page, "flicker_silence")
    assert "0.05" in flick and "&lt;= 0.02" in flick and "miss" in flick
    assert "n/a" in row(page, "sync_corr")  # nan neither passes nor misses
    assert "not measured" in row(page, "colorfulness")  # a target without a value
    assert "x.wav" in row(page, "files")
    assert "<th>targets</th>" not in page


def test_report_escapes_all_text(tmp_path):
    result = {EVIL: 1.0, "sound_r2": 0.5}
    page = write_report(tmp_path, result, sample_data()).read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert row(page, "&lt;script&gt;alert(1)&lt;/script&gt;")  # the feature's own row
    assert "<b>model</b>" not in page and "eval of &lt;b&gt;model&lt;/b&gt;" in page
    assert "a&amp;b.wav" in page


def test_report_without_plot_data_has_only_the_table(tmp_path):
    page = write_report(tmp_path, {"flicker_silence": 0.01}, None).read_text(encoding="utf-8")
    assert "<img" not in page and "flicker_silence" in page
    assert not list(tmp_path.glob("*.png"))


def test_failed_report_keeps_the_previous_index(tmp_path, monkeypatch):
    index = write_report(tmp_path, {"sound_r2": 0.1}, sample_data())
    before = index.read_bytes()

    def broken(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report, "_plot_sync", broken)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(tmp_path, {"sound_r2": 0.9}, sample_data())
    assert index.read_bytes() == before
    assert not list(tmp_path.glob(".*partial"))


def test_bad_input_is_rejected_before_writing(tmp_path):
    data = sample_data()
    data.decoded = data.decoded[:, :3]
    with pytest.raises(ValueError, match="one shape"):
        write_report(tmp_path / "a", {}, data)
    with pytest.raises(ValueError, match="feature names"):
        write_report(
            tmp_path / "b",
            {},
            ReportData(targets=np.zeros((5, 2)), decoded=np.zeros((5, 2)), feature_names=["x"]),
        )
    with pytest.raises(ValueError, match="target"):
        write_report(tmp_path / "c", {"a": 1, "targets": {"a": "about 3"}})
    assert not any((tmp_path / d).exists() for d in "abc")


def test_parse_and_check_target():
    assert parse_target(0.5) == (">=", 0.5)
    assert parse_target("<=0.02") == ("<=", 0.02)
    assert parse_target(" > 3 ") == (">", 3.0)
    assert parse_target(["<", 1]) == ("<", 1.0)
    for bad in ("= 3", "<=", True, ["!=", 1], None):
        with pytest.raises(ValueError):
            parse_target(bad)
    assert check_target(0.6, 0.5) is True
    assert check_target(0.4, 0.5) is False
    assert check_target(0.02, "<= 0.02") is True
    assert check_target(0.02, "< 0.02") is False
    assert check_target(float("nan"), 0.5) is None
    assert check_target(None, 0.5) is None
    assert parse_target("|x| <= 1") == ("<=", 1.0)
    assert check_target(-1, "|x| <= 1") is True and check_target(-2, "|x| <= 1") is False
    assert check_target(-2, "<= 1") is True


def test_import_is_cheap():
    code = "import sys, synd.report; assert 'matplotlib' not in sys.modules, 'matplotlib'"
    subprocess.run([sys.executable, "-c", code], check=True)
