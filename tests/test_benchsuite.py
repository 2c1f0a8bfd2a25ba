"""`synd bench`: how the suite reads its numbers, with known answers (no speed is asserted:
speed targets live in the benchmark itself)."""

import json
import subprocess
import sys

import pytest

from synd.benchsuite import (
    HEADLINE,
    SuiteOptions,
    baseline_section,
    format_suite,
    headline,
    train_section,
    verdict,
)


def made_up_result():
    """A result as run_suite makes it, with numbers chosen by hand."""
    return {
        "machine": "test machine",
        "device": "cpu",
        "quick": False,
        "preset": "prism",
        "limits": {"gemm": {"gflops": 100.04, "n": 1024, "threads": 2}, "memcopy": {"gbps": 10.0, "mb": 256}},
        "generator": [
            {
                "preset": "prism",
                "size": "256x256",
                "fps": 100.0,
                "ms_median": 10.0,
                "gflop_per_frame": 0.5,
                "gemm_fraction": 0.5,
            },
            {
                "preset": "drift",
                "size": "256x256",
                "fps": 50.0,
                "ms_median": 20.0,
                "gflop_per_frame": 0.5,
                "gemm_fraction": 0.25,
            },
            {
                "preset": "prism",
                "size": "512x512",
                "fps": 25.0,
                "ms_median": 40.0,
                "gflop_per_frame": 2.0,
                "gemm_fraction": 0.5,
            },
        ],
        "baseline": {
            "sizes": [
                {"size": "256x256", "fps": 10.0, "gflop_per_frame": 9.6, "speed_ratio": 10.0},
                {"size": "512x512", "fps": 2.5, "gflop_per_frame": 38.4, "speed_ratio": 10.0},
            ],
            "sound_r2": {"ours": 0.95, "baseline": 0.9, "audio": "a track"},
        },
        "live": {
            "painted_at": "256x256",
            "size": "1280x720",
            "target_fps": 60.0,
            "runtime": "onnxruntime",
            "engine_fps": 59.9,
            "engine_dropped": 2,
            "latency_ms_median": 17.0,
            "latency_ms_p90": 20.0,
            "cpu_percent": 80,
            "stage_ms": {"features": 0.4, "generate": 10.0},
        },
        "render": [
            {
                "size": "1280x720",
                "painted_at": "384x216",
                "generate_fps": 120.0,
                "encode_fps": 80.0,
                "pipeline_fps": 55.0,
                "x_real_time": 1.83,
                "goal_x_real_time": 1.5,
            },
            {
                "size": "1920x1080",
                "painted_at": "384x216",
                "generate_fps": 100.0,
                "encode_fps": 40.0,
                "pipeline_fps": 30.0,
                "x_real_time": 0.99,
                "goal_x_real_time": 1.0,
            },
        ],
        "train": {"steps_per_s": 0.5, "ms_per_step": 2000.0, "batch": 16, "crop": 64, "unroll": 3},
        "guard": {
            "moving picture": {"ms_median": 0.2, "changed_share": 0.0},
            "10 Hz strobe": {"ms_median": 0.6, "changed_share": 0.3},
        },
        "judge": {"clip_s": 20.0, "took_s": 2.0, "s_for_4min": 24.0},
        "capacity": [{"preset": "prism", "60fps": {"size": "384x216"}, "30fps": {"size": "640x360"}}],
    }


def test_the_headline_numbers_come_from_the_default_preset_and_the_right_sizes():
    result = made_up_result()
    found = headline(result, "prism")
    assert found == {
        "gemm_gflops": 100.0,
        "generator_gemm_fraction": 0.5,
        "live_fps": 59.9,
        "live_dropped": 2,
        "latency_ms_median": 17.0,
        "render_rtf_720p30": 1.83,
        "render_rtf_1080p30": 0.99,
        "baseline_speed_ratio": 10.0,
        "train_steps_per_s": 0.5,
        "flash_guard_ms": 0.6,
        "judge_s_4min_640x360": 24.0,
    }
    assert set(found) == set(HEADLINE)
    assert headline(result, "drift")["generator_gemm_fraction"] == 0.25
    assert "live_fps" not in headline({"limits": result["limits"]}, "prism")


def test_verdicts_against_the_targets():
    assert verdict("live_dropped", 0) == "ok" and verdict("live_dropped", 2) == "MISSED"
    assert verdict("generator_gemm_fraction", 0.4) == "ok"
    assert verdict("generator_gemm_fraction", 0.39) == "MISSED"
    assert verdict("latency_ms_median", 25.1) == "MISSED"
    assert verdict("baseline_speed_ratio", 8.0) == "ok"
    assert verdict("gemm_gflops", 1.0) == ""  # reported only
    assert verdict("latency_ms_median", None) == ""


def test_the_table_shows_every_section_and_the_verdicts():
    result = made_up_result()
    result.update(headline(result, "prism"))
    text = format_suite(result)
    for needle in (
        "generator alone",
        "baseline: the original SyNEThesia generator",
        "sound-recovery R^2 on a track: ours 0.95, baseline 0.9",
        "features 0.4 ms, generate 10.0 ms",
        "training: 0.5 steps/s",
        "384x216",
        "640x360",
        "render_rtf_1080p30",
        "10 Hz strobe: 0.6 ms, 30% of frames limited",
        "4 minutes in about 24.0 s",
        "flash_guard_ms",
    ):
        assert needle in text, needle
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert lines["live_dropped"].endswith("MISSED")
    assert lines["render_rtf_1080p30"].endswith("MISSED")
    assert lines["baseline_speed_ratio"].endswith("ok")


def test_quick_limits_from_the_command_line_write_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "synd", "bench", "--quick", "limits", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["quick"] is True and data["gemm_gflops"] > 0
    assert data["limits"]["memcopy"]["gbps"] > 0
    assert "gemm_gflops" in done.stdout
    # How busy the machine was: before the run, and while the section was measured.
    assert data["load"]["cores"] >= 1 and set(data["load"]["sections"]) == {"limits"}
    assert "machine load: " in done.stdout


def test_the_baseline_ratio_is_ours_over_theirs_at_equal_size_in_alternating_rounds():
    result = baseline_section(SuiteOptions(quick=True))
    (row,) = result["sizes"]
    assert row["size"] == "256x256" and row["fps"] > 0 and row["ours_fps"] > 0
    rounds = row["speed_ratio_stats"]
    assert row["rounds"] == rounds["n"] == 5
    assert row["speed_ratio"] == pytest.approx(rounds["median"], abs=0.01)  # the rounds' median
    # Each round's ratio bounds ours over theirs: the ratio of the two sides' medians lies
    # between the smallest and the largest of the rounds' ratios.
    assert rounds["min"] * 0.98 <= row["ours_fps"] / row["fps"] <= rounds["max"] * 1.02
    # Counted at the size measured: twice the work of the original 256x128 frame.
    import torch

    from synd.baseline import BaselineGenerator
    from synd.measure import count_flops

    native = count_flops(BaselineGenerator(), torch.rand(1, 3, 256, 128), torch.zeros(1, 41))
    assert row["gflop_per_frame"] == pytest.approx(2 * native / 1e9, rel=0.01)


@pytest.mark.slow
def test_training_steps_are_timed_after_warm_up():
    result = train_section(SuiteOptions(quick=True))
    assert result["steps_timed"] == 3  # 6 steps, the first two are warm-up
    assert result["steps_per_s"] == pytest.approx(1000.0 / result["ms_per_step"], rel=0.01)
    assert (result["batch"], result["crop"]) == (16, 64)
