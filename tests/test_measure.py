"""The benchmark's arithmetic, checked on fake workloads whose answers are known.

Nothing here asserts that anything is fast: the machine-limit measurements only have to
run and return sane numbers.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from synd import measure
from synd.measure import generator_macs
from synd.model import FoldedGenerator, Generator, ModelConfig, make_coords


def scripted_clock(times):
    """A clock that returns `times`, one per reading, and fails if read too often."""
    readings = iter(times)
    return lambda: next(readings)


@pytest.fixture
def cfg():
    return ModelConfig(feature_dim=10, width=4, res_blocks=1, cond_dim=16, decoder_width=8)


# --- timing -----------------------------------------------------------------------------


def test_timed_runs_times_each_call_after_untimed_warmup():
    calls = []
    clock = scripted_clock([0.0, 0.5, 1.0, 1.25, 2.0, 2.125])
    seconds = measure.timed_runs(lambda: calls.append(1), repeats=3, warmup=2, clock=clock)
    assert seconds == [0.5, 0.25, 0.125]  # a warm-up that read the clock would shift these
    assert len(calls) == 5
    with pytest.raises(ValueError):
        measure.timed_runs(lambda: None, repeats=0)


def test_median_and_summary_on_known_lists():
    assert measure.median([3.0, 1.0, 2.0]) == 2.0
    assert measure.median([4.0, 1.0, 2.0, 3.0]) == 2.5
    s = measure.summary(list(range(11, 0, -1)))  # 1..11, any order
    assert s == {"median": 6.0, "p10": 2.0, "p90": 10.0, "min": 1.0, "max": 11.0, "n": 11}
    # Linear interpolation between order statistics: p10 of (0, 10) is 1, p90 is 9.
    two = measure.summary([10.0, 0.0])
    assert two["p10"] == pytest.approx(1.0) and two["p90"] == pytest.approx(9.0)
    assert measure.summary([7.0]) == {"median": 7.0, "p10": 7.0, "p90": 7.0, "min": 7.0, "max": 7.0, "n": 1}
    with pytest.raises(ValueError):
        measure.summary([])
    with pytest.raises(ValueError):
        measure.median([])


# --- machine limits ----------------------------------------------------------------------


def test_gemm_flops():
    assert measure.gemm_flops(1024) == 2 * 1024**3
    assert measure.gemm_flops(2, m=3, k=5) == 60


def test_gemm_gflops_runs_and_restores_the_thread_count():
    before = torch.get_num_threads()
    result = measure.gemm_gflops(n=64, repeats=3, threads=1)
    assert torch.get_num_threads() == before
    assert result["n"] == 64 and result["threads"] == 1
    assert math.isfinite(result["gflops"]) and result["gflops"] > 0
    assert result["runs"]["n"] == 3 and result["runs"]["min"] > 0
    # The rate is the FLOPs of one product over the median seconds.
    assert result["gflops"] == pytest.approx(measure.gemm_flops(64) / 1e9 / result["runs"]["median"])
    assert measure.gemm_gflops(n=32, repeats=1)["threads"] == before


def test_gemm_gflops_onnx_reports_the_rate_of_its_runs():
    result = measure.gemm_gflops_onnx(n=64, repeats=3, threads=1)
    assert result["n"] == 64 and result["threads"] == 1 and result["runs"]["n"] == 3
    assert result["gflops"] == pytest.approx(measure.gemm_flops(64) / 1e9 / result["runs"]["median"])


def test_memcopy_gbps_counts_reads_and_writes():
    assert measure.copy_bytes(1000) == 2000
    before = torch.get_num_threads()
    result = measure.memcopy_gbps(mb=1, repeats=2, threads=1)
    assert torch.get_num_threads() == before
    assert result["mb"] == 1 and result["threads"] == 1 and result["runs"]["n"] == 2
    assert math.isfinite(result["gbps"]) and result["gbps"] > 0
    assert result["gbps"] == pytest.approx(2 * 2**20 / 1e9 / result["runs"]["median"])


# --- FLOP counts -------------------------------------------------------------------------


def test_count_flops_of_a_linear_layer():
    batch, a, b = 3, 5, 7
    assert measure.count_flops(nn.Linear(a, b), torch.zeros(batch, a)) == 2 * batch * a * b
    # The bias is an addition per output: not counted, as for every layer.
    assert measure.count_flops(nn.Linear(a, b, bias=False), torch.zeros(batch, a)) == 2 * batch * a * b
    assert measure.count_flops(torch.bmm, torch.zeros(2, 3, 4), torch.zeros(2, 4, 5)) == 2 * 2 * 3 * 4 * 5


def test_count_flops_of_convolutions():
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1, padding_mode="replicate")
    x = torch.zeros(2, 3, 9, 10)
    out_numel = conv(x).numel()  # 2 x 5 x 5 x 5
    assert measure.count_flops(conv, x) == 2 * out_numel * 3 * 3 * 3
    grouped = nn.Conv2d(4, 6, 3, padding=1, groups=2)
    x = torch.zeros(1, 4, 8, 8)
    assert measure.count_flops(grouped, x) == 2 * grouped(x).numel() * (4 // 2) * 3 * 3


def test_count_flops_of_a_transposed_convolution():
    # A transposed convolution scatters every input pixel through every weight once:
    # 2 x batch x input pixels x in x out channels x kernel area. Here 2 x 2 x (6 x 7) x
    # 3 x 5 x 16 = 40320; counting by the 12 x 14 output would give 4x that.
    up = nn.ConvTranspose2d(3, 5, 4, stride=2, padding=1)
    x = torch.zeros(2, 3, 6, 7)
    assert up(x).shape == (2, 5, 12, 14)
    assert measure.count_flops(up, x) == 2 * 2 * (6 * 7) * 3 * 5 * 16 == 40320


def test_rearranging_and_elementwise_work_count_nothing():
    conv = nn.Conv2d(3, 8, 3, padding=1)
    x = torch.zeros(1, 3, 8, 8)
    shuffled = nn.Sequential(
        conv, nn.PixelShuffle(2), nn.Upsample(scale_factor=2, mode="bilinear"), nn.Sigmoid()
    )
    assert measure.count_flops(shuffled, x) == measure.count_flops(conv, x)
    assert measure.count_flops(lambda t: F.pixel_shuffle(t, 2) + 1.0, torch.zeros(1, 8, 4, 4)) == 0


def test_flops_by_op_and_the_operator_filter():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    x = torch.zeros(1, 3, 4, 4)
    by_op = measure.flops_by_op(net, x)
    assert by_op == {"convolution": 2 * 64 * 3 * 9, "addmm": 2 * 64 * 2}
    assert measure.count_flops(net, x, ops=measure.CONVOLUTION_OPS) == by_op["convolution"]
    assert measure.count_flops(net, x) == sum(by_op.values())
    with torch.inference_mode():  # as the frame loop runs: counting works there too
        assert measure.count_flops(net, x) == sum(by_op.values())


def test_generator_macs_counts_the_convolutions(cfg):
    """The same number as hooks on every Conv2d give: multiply-accumulates of the
    convolutions only, the sound network's products left out."""
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1]
        total += output.numel() * module.in_channels * k // module.groups

    torch.manual_seed(0)
    g = Generator(cfg)
    for m in g.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(count)
    with torch.no_grad():
        g(torch.zeros(1, 3, 48, 80), torch.zeros(1, 10), make_coords(48, 80, cfg.native_size))
    assert generator_macs(cfg, 48, 80) == total


def test_folded_flops_scale_with_pixels(cfg):
    g = Generator(cfg).eval()
    small, large, larger = (measure.folded_flops(g, s, s) for s in (32, 64, 128))
    # Only the sound-to-FiLM products (5440 FLOPs here) do not grow with the frame, so
    # the count is affine in the pixel count: exactly so while every stage halves evenly.
    # Measured against the 4x pixel ratio: 1.5% under at 16 -> 32, 0.4% at 32 -> 64, 0.1%
    # at 64 -> 128; 3% at 36 x 60 -> 72 x 120, whose odd 1/8 stage at 36 x 60 is upsampled
    # and convolved the plain way instead of by phases.
    assert larger - large == 4 * (large - small)
    assert large / small == pytest.approx(4.0, rel=0.01)
    constant = small - (large - small) / 3
    assert constant == measure.flops_by_op(g.cond, torch.zeros(1, 10))["addmm"] == 5440
    # The folded frame does less than the generator's own forward pass.
    unfolded = measure.count_flops(
        g, torch.zeros(1, 3, 64, 64), torch.zeros(1, 10), make_coords(64, 64, cfg.native_size)
    )
    assert large < unfolded


def test_folded_flops_takes_a_bundle_or_a_generator(cfg):
    g = Generator(cfg).eval()

    class Bundle:
        generator = g

    folded = FoldedGenerator(g, 32, 48).eval()
    direct = measure.count_flops(folded, torch.zeros(1, 3, 32, 48), torch.zeros(1, 10))
    assert measure.folded_flops(Bundle(), 32, 48) == measure.folded_flops(g, 32, 48) == direct


def test_achieved_fraction():
    # 0.5 GFLOP a frame at 40 frames a second is 20 GFLOP/s: a quarter of 80.
    assert measure.achieved_fraction(0.5e9, 40.0, 80.0) == pytest.approx(0.25)


# --- latency and real time ---------------------------------------------------------------


def test_latency_ms_on_scripted_timestamps():
    captured = [10.0, 10.1, 10.2, 10.3, 10.4]
    delays_ms = [20.0, 30.0, 25.0, 100.0, 40.0]
    published = [c + d / 1000 for c, d in zip(captured, delays_ms)]
    lat = measure.latency_ms(captured, published)
    assert lat["median"] == pytest.approx(30.0)
    assert lat["max"] == pytest.approx(100.0) and lat["min"] == pytest.approx(20.0)
    # 90th percentile of 20, 25, 30, 40, 100: 0.6 of the way from 40 to 100.
    assert lat["p90"] == pytest.approx(76.0) and lat["n"] == 5
    with pytest.raises(ValueError):
        measure.latency_ms([1.0, 2.0], [1.5])


def test_stage_ms_and_realtime_factor():
    stages = measure.stage_ms({"features": [0.001, 0.003, 0.002], "paint": [0.010, 0.020]})
    assert stages == pytest.approx({"features": 2.0, "paint": 15.0})
    assert measure.realtime_factor(60.0, 40.0) == 1.5
    with pytest.raises(ValueError):
        measure.realtime_factor(60.0, 0.0)


def test_largest_size_stops_at_the_first_miss():
    sizes = [(320, 180), (640, 360), (1280, 720), (1920, 1080)]
    measured = []

    def fps(size):  # 1e6 pixels a second: 17.4, 4.3, 1.1, 0.5 fps
        measured.append(size)
        return 1e6 / (size[0] * size[1])

    assert measure.largest_size(fps, sizes, target_fps=4.0) == (640, 360)
    assert measured == sizes[:3]  # the miss at 1280 x 720 ends it: 1920 x 1080 is not measured
    assert measure.largest_size(fps, sizes, target_fps=0.1) == (1920, 1080)
    assert measure.largest_size(fps, sizes, target_fps=30.0) is None
    assert measure.largest_size(fps, [], target_fps=1.0) is None
    # A frame rate that rises past a miss is not believed: the search has stopped.
    assert measure.largest_size(lambda s: {1: 60.0, 2: 20.0, 3: 90.0}[s], [1, 2, 3], 30.0) == 1
