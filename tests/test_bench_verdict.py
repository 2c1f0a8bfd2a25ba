"""`synd bench`'s verdicts on scripted timings: paired ratios measured in alternating
rounds, their spread, and "noisy: rerun on an idle machine" instead of a verdict when the
rounds cannot decide or other processes kept the machine busy (issue 20, item 7).

No test here times anything real: every clock is scripted.
"""

import math

import pytest

from synd import measure
from synd.benchsuite import format_suite, headline_checks, judge

NOISY = "noisy: rerun on an idle machine"


def scripted_clock(times):
    """A clock that returns `times`, one per reading, and fails if read too often."""
    readings = iter(times)
    return lambda: next(readings)


def clock_for(durations):
    """A clock whose readings, taken in pairs around each timed call, make the calls last
    `durations` in turn."""
    now, times = 0.0, []
    for d in durations:
        times += [now, now + d]
        now += d + 1.0
    return scripted_clock(times)


def stats_of(ratios):
    return measure.ratio_summary(ratios)


# --- interleaving ----------------------------------------------------------------------------


def test_rounds_alternate_the_two_sides_abba():
    calls = []
    # a takes 1 s, b takes 2 s, read in the order the calls happen: a b, b a, a b, b a
    clock = clock_for([1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 1.0])
    paired = measure.paired_ratios(
        lambda: calls.append("a"), lambda: calls.append("b"), rounds=4, warmup=1, clock=clock
    )
    assert "".join(calls) == "ab" + "abbaabba"  # one untimed warm-up of each, then ABBA
    assert paired["a_s"] == [1.0, 1.0, 1.0, 1.0]
    assert paired["b_s"] == [2.0, 2.0, 2.0, 2.0]
    assert paired["ratios"] == [2.0, 2.0, 2.0, 2.0]  # a's rate over b's: twice as fast


def test_a_round_ratio_is_of_rates_with_the_work_each_call_does():
    # A painter bursts 10 frames of 2 GFLOP in 0.5 s; a GEMM does 2 products of 17 GFLOP
    # in 0.25 s: 40 GFLOP/s against 136 GFLOP/s.
    clock = clock_for([0.5, 0.25])
    paired = measure.paired_ratios(
        lambda: None, lambda: None, rounds=1, work_a=10 * 2e9, work_b=2 * 17e9, warmup=0, clock=clock
    )
    assert paired["ratios"] == [pytest.approx(40 / 136)]
    with pytest.raises(ValueError):
        measure.paired_ratios(lambda: None, lambda: None, rounds=0)


def test_a_drift_slowing_both_sides_leaves_the_ratio_alone():
    # The machine slows down steadily (each call 10% slower than the one before); timed
    # side by side, every round still finds a twice as fast as b, give or take the drift
    # within the round, which ABBA turns one way and then the other.
    durations, slow = [], 1.0
    for r in range(6):
        pair = [("a", 1.0), ("b", 2.0)] if r % 2 == 0 else [("b", 2.0), ("a", 1.0)]
        for _, base in pair:
            durations.append(base * slow)
            slow *= 1.1
    paired = measure.paired_ratios(lambda: None, lambda: None, rounds=6, warmup=0, clock=clock_for(durations))
    assert paired["b_s"][-1] > 2 * paired["b_s"][0]  # the speeds themselves drifted a lot
    assert measure.median(paired["ratios"]) == pytest.approx(2.0, rel=0.06)
    assert measure.decide(stats_of(paired["ratios"]), ">=", 1.5) == "ok"


# --- the spread and the verdict ---------------------------------------------------------


def test_the_spread_is_p10_to_p90_over_the_median():
    s = stats_of([0.9, 1.0, 1.1])
    assert s["median"] == 1.0 and s["n"] == 3
    assert s["spread"] == pytest.approx((s["p90"] - s["p10"]) / 1.0)
    assert stats_of([5.0])["spread"] == 0.0 and stats_of([0.0, 0.0])["spread"] == 0.0
    assert stats_of([0.0, 1.0, -1.0])["spread"] == math.inf


def test_met_when_every_round_clears_the_goal():
    rounds = [0.46, 0.47, 0.45, 0.48, 0.46]  # GEMM share; the goal is >= 0.40
    assert measure.decide(stats_of(rounds), ">=", 0.40) == "ok"
    assert measure.decide(stats_of([18.0, 17.5, 18.2]), "<=", 25.0) == "ok"  # latency ms


def test_missed_when_every_round_falls_short():
    rounds = [7.4, 7.5, 7.3, 7.6, 7.45]  # ours / baseline; the goal is >= 8
    assert measure.decide(stats_of(rounds), ">=", 8.0) == "MISSED"
    assert measure.decide(stats_of([30.0, 31.0, 29.5]), "<=", 25.0) == "MISSED"


def test_noisy_when_the_rounds_straddle_the_goal_widely():
    # The two runs, 27% and 45%, as rounds of one run: no verdict either way.
    rounds = [0.27, 0.45, 0.33, 0.41, 0.38]
    assert measure.decide(stats_of(rounds), ">=", 0.40) == NOISY
    assert measure.decide(stats_of([7.45, 12.4, 9.0, 8.2, 7.9]), ">=", 8.0) == NOISY


def test_a_narrow_straddle_is_decided_by_the_median():
    # Measured well, just around the goal: the median says which side it is on.
    assert measure.decide(stats_of([7.95, 8.05, 8.1, 8.08, 8.02]), ">=", 8.0) == "ok"
    assert measure.decide(stats_of([7.9, 7.95, 8.02, 7.97, 7.93]), ">=", 8.0) == "MISSED"


def test_a_wide_spread_on_one_side_still_decides_but_a_scatter_does_not():
    assert measure.decide(stats_of([0.20, 0.30, 0.25, 0.28, 0.22]), ">=", 0.40) == "MISSED"
    # Rounds a factor of three apart say the machine was doing something else.
    assert measure.decide(stats_of([0.10, 0.30, 0.20, 0.15, 0.25]), ">=", 0.40) == NOISY


def test_a_busy_machine_gets_no_verdict():
    clear = stats_of([0.46, 0.47, 0.45])
    assert measure.decide(clear, ">=", 0.40, busy=True) == NOISY
    assert measure.decide(clear, ">=", 0.40, busy=False) == "ok"
    with pytest.raises(ValueError):
        measure.decide(clear, ">", 0.40)


# --- a busy machine ---------------------------------------------------------------------------


def test_a_busy_machine_from_its_load_average():
    assert measure.busy_machine(1.9, cores=2)  # others keep a core and more busy
    assert measure.busy_machine(0.6, cores=2)
    assert not measure.busy_machine(0.3, cores=2)
    assert not measure.busy_machine(0.0, cores=2)
    assert not measure.busy_machine(1.9, cores=16)  # the same load on a big machine is little
    assert measure.busy_machine(4.1, cores=16)


def test_the_cores_other_processes_used_while_measuring():
    text = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n"
    assert measure.busy_cpu_seconds(text, 100) == pytest.approx(1.5)  # user + system
    with_steal = "cpu  100 0 50 800 50 10 5 35 7 0\n"  # irq, softirq and steal count; guest not
    assert measure.busy_cpu_seconds(with_steal, 100) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        measure.busy_cpu_seconds("intr 1 2 3\n", 100)
    before = {"wall": 10.0, "busy_s": 100.0, "own_s": 5.0}
    # In 4 s the machine was busy 7.2 CPU seconds, 4 of them ours: others used 0.8 cores.
    after = {"wall": 14.0, "busy_s": 107.2, "own_s": 9.0}
    assert measure.others_cores(before, after) == pytest.approx(0.8)
    assert measure.busy_machine(measure.others_cores(before, after), cores=2)
    quiet = {"wall": 14.0, "busy_s": 104.2, "own_s": 9.0}
    assert measure.others_cores(before, quiet) == pytest.approx(0.05)
    assert not measure.busy_machine(measure.others_cores(before, quiet), cores=2)
    assert measure.others_cores({**before, "busy_s": None}, after) is None
    sample = measure.cpu_sample()
    assert sample["own_s"] >= 0 and sample["wall"] > 0


# --- the report ---------------------------------------------------------------------------------


def result_with(share_rounds, ratio_rounds, busy_sections=()):
    """A made-up `run_suite` result whose headline ratios were measured in these rounds."""
    share, ratio = stats_of(share_rounds), stats_of(ratio_rounds)
    return {
        "machine": "test machine",
        "device": "cpu",
        "quick": True,
        "preset": "prism",
        "generator": [
            {
                "preset": "prism",
                "size": "256x256",
                "fps": 170.0,
                "ms_median": 5.9,
                "gflop_per_frame": 0.53,
                "gemm_fraction": round(share["median"], 3),
                "gemm_fraction_stats": share,
            }
        ],
        "baseline": {
            "sizes": [
                {
                    "size": "256x256",
                    "fps": 20.0,
                    "gflop_per_frame": 9.6,
                    "ours_fps": 170.0,
                    "speed_ratio": round(ratio["median"], 2),
                    "speed_ratio_stats": ratio,
                }
            ]
        },
        "generator_gemm_fraction": round(share["median"], 3),
        "baseline_speed_ratio": round(ratio["median"], 2),
        "load": {
            "cores": 2,
            "load_average_start": 0.4,
            "sections": {
                name: {"others_cores": 1.2 if name in busy_sections else 0.02, "busy": name in busy_sections}
                for name in ("generator", "baseline")
            },
        },
    }


def headline_lines(result):
    return {line.split()[0]: line for line in format_suite(result).splitlines() if line.strip()}


def test_the_report_says_noisy_instead_of_a_verdict_the_rounds_cannot_give():
    result = result_with([0.27, 0.45, 0.33, 0.41, 0.38], [7.45, 12.4, 9.0, 8.2, 7.9])
    lines = headline_lines(result)
    assert lines["generator_gemm_fraction"].endswith(NOISY)
    assert lines["baseline_speed_ratio"].endswith(NOISY)
    assert "0.29-0.43 (5)" in lines["generator_gemm_fraction"]  # the rounds' p10-p90
    checks = headline_checks(result)
    assert checks["generator_gemm_fraction"]["verdict"] == NOISY
    assert checks["generator_gemm_fraction"]["rounds"] == 5
    assert checks["baseline_speed_ratio"]["spread"] > measure.NARROW_SPREAD


def test_the_report_decides_when_the_rounds_agree_and_not_on_a_busy_machine():
    agreeing = ([0.46, 0.47, 0.45, 0.48, 0.46], [7.4, 7.5, 7.3, 7.6, 7.45])
    lines = headline_lines(result_with(*agreeing))
    assert lines["generator_gemm_fraction"].endswith("ok")
    assert lines["baseline_speed_ratio"].endswith("MISSED")
    assert "quiet enough to decide" in format_suite(result_with(*agreeing))
    busy = result_with(*agreeing, busy_sections=("baseline",))
    lines = headline_lines(busy)
    assert lines["generator_gemm_fraction"].endswith("ok")
    assert lines["baseline_speed_ratio"].endswith(NOISY)
    assert "busy during baseline:" in lines["busy"]
    assert headline_checks(busy)["baseline_speed_ratio"] == {
        "verdict": NOISY,
        "busy": True,
        "p10": pytest.approx(7.34),
        "p90": pytest.approx(7.56),
        "spread": pytest.approx(0.22 / 7.45),
        "rounds": 5,
    }


def test_a_number_measured_once_is_judged_by_its_value_unless_the_machine_was_busy():
    assert judge("live_dropped", 0) == "ok" and judge("live_dropped", 2) == "MISSED"
    assert judge("live_dropped", 0, busy=True) == NOISY
    assert judge("gemm_gflops", 100.0, busy=True) == ""  # reported only
    assert judge("render_rtf_720p30", 1.6, stats_of([1.2, 1.6, 2.1])) == NOISY
