"""Measurements for `synd bench`: timing, the machine's limits, FLOP counts and ratios.

Speeds mean little on their own across machines, so the benchmark reads them as fractions
of limits measured in the same run: the matrix-multiply rate (`gemm_gflops`) and the
memory-copy rate (`memcopy_gbps`). `folded_flops` counts the arithmetic of one frame as
the frame loop paints it, and `achieved_fraction` turns frames per second into a share
of the multiply rate. A ratio of two speeds is measured with both interleaved, round
after round (`paired_ratios`), and held to its goal by `decide`, which says `NOISY`
instead of "ok" or "MISSED" when the rounds disagree too much or other processes kept
the machine busy (`busy_machine`, `others_cores`). Everything else here is plain
arithmetic on timestamps, kept apart from the clock so that the tests check it with
scripted times.

How it differs from its neighbours: this measures speed and cost; `synd.quality`
measures whether synd's pictures carry the sound, `synd.judge` what a viewer sees in
any video, and `synd.evaluate` runs a model over songs for both.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import torch

Size = TypeVar("Size")

#: The FlopCounterMode operators that are convolutions (every name torch registers a
#: convolution formula under), for counts that mean "convolutions only".
CONVOLUTION_OPS = frozenset(
    {"convolution", "_convolution", "cudnn_convolution", "convolution_overrideable", "_slow_conv2d_forward"}
)


# --- timing -----------------------------------------------------------------------------


def timed_runs(
    fn: Callable[[], object],
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> list[float]:
    """Seconds taken by each of `repeats` calls of `fn()`, after `warmup` untimed calls.

    The warm-up calls absorb one-off costs (allocation, kernel selection, page faults of
    fresh buffers). `clock` is read right before and right after each timed call; a
    caller timing asynchronous work (a GPU) makes `fn` wait for it.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for _ in range(warmup):
        fn()
    seconds = []
    for _ in range(repeats):
        began = clock()
        fn()
        seconds.append(clock() - began)
    return seconds


def median(xs: Sequence[float]) -> float:
    """The median of `xs` (the mean of the middle two for an even count)."""
    if not len(xs):
        raise ValueError("median of no samples")
    return float(statistics.median(xs))


def summary(xs: Sequence[float]) -> dict:
    """{median, p10, p90, min, max, n} of `xs`.

    p10 and p90 interpolate linearly between the two nearest order statistics, the
    sample's minimum and maximum being p0 and p100 (`statistics.quantiles` "inclusive",
    the same as numpy's default percentile): for 1..11, p10 = 2 and p90 = 10. A single
    sample is all of its percentiles.
    """
    if not len(xs):
        raise ValueError("summary of no samples")
    xs = [float(x) for x in xs]
    if len(xs) == 1:
        p10 = p90 = xs[0]
    else:
        deciles = statistics.quantiles(xs, n=10, method="inclusive")
        p10, p90 = deciles[0], deciles[-1]
    return {"median": median(xs), "p10": p10, "p90": p90, "min": min(xs), "max": max(xs), "n": len(xs)}


# --- paired measurements, verdicts and a busy machine -----------------------------------
#
# Two speeds measured a minute apart on a shared machine differ by whatever else ran in
# between, and so does their ratio. So a ratio is measured in rounds that time both sides
# back to back, and a verdict is given only when the rounds agree well enough to decide.

#: What a verdict says instead of "ok" or "MISSED" when the numbers cannot decide.
NOISY = "noisy: rerun on an idle machine"
#: Rounds within this relative spread ((p90 - p10) / median) decide by their median even
#: when they straddle the goal: the number is near the goal but measured well.
NARROW_SPREAD = 0.10
#: Rounds wider apart than this decide nothing, even on one side of the goal: something
#: else ran on the machine while they were measured.
TOO_WIDE_SPREAD = 0.50
#: Other processes using more than this share of the cores make the machine busy: they
#: take cores the measured work needs, and no ratio measured then holds on a quiet one.
BUSY_SHARE = 0.25


def paired_ratios(
    a: Callable[[], object],
    b: Callable[[], object],
    rounds: int = 7,
    work_a: float = 1.0,
    work_b: float = 1.0,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict:
    """The ratio of a's rate to b's, measured `rounds` times with the two interleaved.

    Each round times one call of `a` and one of `b` back to back, so that both see the
    same machine, in the order a b, b a, a b, ... (ABBA): a slow drift (clock speed, heat,
    another program's load) slows both sides of a round alike, and alternating which goes
    first cancels what a steady drift leaves over each pair of rounds. `warmup` untimed
    calls of each come first. A round's ratio is (work_a / a's seconds) / (work_b / b's
    seconds), the work being what one call does (frames, FLOPs). Returns {"a_s": seconds
    of a by round, "b_s": those of b, "ratios": the ratio of each round}.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    for _ in range(warmup):
        a()
        b()
    a_s: list[float] = []
    b_s: list[float] = []
    sides = [(a, a_s), (b, b_s)]
    for r in range(rounds):
        for fn, seconds in sides if r % 2 == 0 else sides[::-1]:
            began = clock()
            fn()
            seconds.append(clock() - began)
    return {"a_s": a_s, "b_s": b_s, "ratios": [(work_a / sa) / (work_b / sb) for sa, sb in zip(a_s, b_s)]}


def ratio_summary(values: Sequence[float]) -> dict:
    """`summary` of per-round values (ratios) plus their relative "spread": (p90 - p10)
    over the median (0 for values all alike, such as a single one; infinite for values
    that differ around a median that is not positive)."""
    stats = summary(values)
    width = stats["p90"] - stats["p10"]
    if width == 0:
        stats["spread"] = 0.0
    else:
        stats["spread"] = width / stats["median"] if stats["median"] > 0 else math.inf
    return stats


def decide(
    stats: dict,
    op: str,
    goal: float,
    busy: bool = False,
    narrow: float = NARROW_SPREAD,
    too_wide: float = TOO_WIDE_SPREAD,
) -> str:
    """ "ok", "MISSED" or `NOISY` for per-round values (`ratio_summary`) held to `op goal`
    (op ">=" or "<=").

    The values decide when their whole p10..p90 range lies on one side of the goal, or,
    straddling it, when their spread is narrow (`narrow`: the median decides). A range
    that straddles the goal with a wider spread, a spread beyond `too_wide`, or a `busy`
    machine (`busy_machine`) decide nothing: `NOISY`. One value is `ratio_summary([x])`.
    """
    if op not in (">=", "<="):
        raise ValueError(f"op must be '>=' or '<=', got {op!r}")

    def met(x: float) -> bool:
        return x >= goal if op == ">=" else x <= goal

    spread = stats["spread"]
    if busy or not spread <= too_wide:  # NaN spreads decide nothing either
        return NOISY
    low, high = met(stats["p10"]), met(stats["p90"])
    if low and high:
        return "ok"
    if not low and not high:
        return "MISSED"
    if spread <= narrow:
        return "ok" if met(stats["median"]) else "MISSED"
    return NOISY


def busy_machine(load: float, cores: int, share: float = BUSY_SHARE) -> bool:
    """Whether other work keeps the machine busy: `load`, in cores' worth (the CPU other
    processes used while measuring, `others_cores`, or else the 1-minute load average
    read before measuring), above `share` of the machine's `cores`."""
    return load > share * max(cores, 1)


def busy_cpu_seconds(proc_stat: str, ticks_per_s: float) -> float:
    """CPU seconds all cores have spent busy since boot, from the text of Linux's
    /proc/stat (its first line: user nice system idle iowait irq softirq steal ..., in
    ticks): everything but idle and iowait, steal (time the hypervisor gave to other
    machines) included. The guest columns after steal are already counted in user."""
    fields = proc_stat.split("\n", 1)[0].split()
    if not fields or fields[0] != "cpu":
        raise ValueError("not /proc/stat: its first line is the 'cpu' total")
    ticks = [int(v) for v in fields[1:9]]
    idle = sum(ticks[3:5])
    return (sum(ticks) - idle) / ticks_per_s


def cpu_sample() -> dict:
    """Now, for `others_cores`: {"wall": monotonic seconds, "busy_s": the machine's busy
    CPU seconds (None where /proc/stat cannot be read), "own_s": CPU seconds of this
    process and of its children that have ended}."""
    import os

    try:
        with open("/proc/stat") as f:
            busy = busy_cpu_seconds(f.read(), os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError):
        busy = None
    own = os.times()
    return {
        "wall": time.monotonic(),
        "busy_s": busy,
        "own_s": own.user + own.system + own.children_user + own.children_system,
    }


def others_cores(before: dict, after: dict) -> float | None:
    """Cores' worth of CPU the rest of the machine used between two `cpu_sample`s: busy
    CPU seconds less this process's own, over the wall seconds between them; None when
    the machine's busy time is unknown."""
    wall = after["wall"] - before["wall"]
    if before["busy_s"] is None or after["busy_s"] is None or wall <= 0:
        return None
    others = (after["busy_s"] - before["busy_s"]) - (after["own_s"] - before["own_s"])
    return max(0.0, others) / wall


def load_average() -> float | None:
    """The 1-minute load average (runnable processes, this one included), None where
    the system has none."""
    import os

    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


# --- machine limits ----------------------------------------------------------------------


def gemm_flops(n: int, m: int | None = None, k: int | None = None) -> int:
    """Floating-point operations of an (n x k) @ (k x m) matrix product (one multiply and
    one add per term: 2 n m k); `m` and `k` default to `n`, a square product."""
    m = n if m is None else m
    k = n if k is None else k
    return 2 * n * m * k


def gemm_product(
    device: str | torch.device = "cpu", n: int = 1024, dtype: torch.dtype = torch.float32
) -> Callable[[], None]:
    """One `torch.mm` of two n x n matrices on `device`, as a call (with torch's threads
    at the time of the call); on a GPU it waits for the product, so that a clock read
    around it sees the work."""
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda and not torch.cuda.is_available():
        raise RuntimeError("gemm_gflops: CUDA was asked for but is not available")
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=generator).to(device, dtype)
    b = torch.rand(n, n, generator=generator).to(device, dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)

    def product() -> None:
        torch.mm(a, b, out=out)
        if cuda:  # kernels are queued: wait so the clock sees the work
            torch.cuda.synchronize(device)

    if cuda:
        torch.cuda.synchronize(device)
    return product


def gemm_gflops(
    device: str | torch.device = "cpu",
    n: int = 1024,
    repeats: int = 5,
    threads: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict:
    """The matrix-multiply rate: `torch.mm` of two n x n matrices (`gemm_product`), timed.

    On the CPU it uses all of torch's threads, or `threads` (torch's thread count is put
    back afterwards). Returns {"gflops": GFLOP/s of the median run, "n", "threads" (None
    on a GPU), "runs": `summary` of the seconds per product}. At n = 1024 the operands
    (4 MiB each in float32) outgrow the caches of most CPUs, so this is the sustained rate
    of large products, the best that convolutions lowered to products can hope for.
    """
    cuda = torch.device(device).type == "cuda"
    before = torch.get_num_threads()
    try:
        if threads is not None and not cuda:
            torch.set_num_threads(threads)
        product = gemm_product(device, n, dtype)
        seconds = timed_runs(product, repeats=repeats)
        used = None if cuda else torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    return {
        "gflops": gemm_flops(n) / 1e9 / median(seconds),
        "n": n,
        "threads": used,
        "runs": summary(seconds),
    }


def gemm_product_onnx(n: int = 2048, threads: int | None = None) -> Callable[[], object] | None:
    """One MatMul of two n x n float32 matrices in ONNX Runtime's CPU kernels (the
    runtime the live generator paints in) with all cores (or `threads`), as a call; None
    without ONNX Runtime."""
    import os

    import numpy as np

    from synd.onnxgen import onnx_missing, onnx_session

    if onnx_missing():
        return None
    from onnx import TensorProto, helper

    square = [n, n]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "gemm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, square),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, square),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, square)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every ONNX Runtime release reads
    session = onnx_session(model.SerializeToString(), threads=threads or os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    feeds = {"a": rng.random(square, np.float32), "b": rng.random(square, np.float32)}
    return lambda: session.run(None, feeds)


def gemm_gflops_onnx(n: int = 2048, repeats: int = 5, threads: int | None = None) -> dict | None:
    """The matrix-multiply rate of ONNX Runtime's CPU kernels (`gemm_product_onnx`),
    timed with all cores (or `threads`). Same result keys as `gemm_gflops`; None without
    ONNX Runtime."""
    import os

    product = gemm_product_onnx(n, threads)
    if product is None:
        return None
    seconds = timed_runs(product, repeats=repeats)
    return {
        "gflops": gemm_flops(n) / 1e9 / median(seconds),
        "n": n,
        "threads": threads or os.cpu_count() or 1,
        "runs": summary(seconds),
    }


def copy_bytes(nbytes: int) -> int:
    """Bytes moved by copying `nbytes`: each is read once and written once."""
    return 2 * nbytes


def memcopy_gbps(mb: int = 256, repeats: int = 5, threads: int | None = None) -> dict:
    """The memory rate: copying a float32 buffer of `mb` MiB into another one, timed.

    Counts bytes read plus bytes written (`copy_bytes`), in GB (1e9 bytes) per second of
    the median run. 256 MiB, far beyond any CPU cache, measures main memory; the two
    buffers take 512 MiB. The copy is torch's `copy_`, which spreads a large copy over
    torch's threads, as it does any large element-wise work (or over `threads`, put back
    afterwards). Returns {"gbps", "mb", "threads", "runs": `summary` of the seconds per
    copy}.
    """
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        count = mb * 2**20 // 4
        source = torch.ones(count, dtype=torch.float32)  # written, so its pages exist
        target = torch.empty(count, dtype=torch.float32)  # the warm-up copy touches these
        seconds = timed_runs(lambda: target.copy_(source), repeats=repeats)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    nbytes = source.numel() * source.element_size()
    return {
        "gbps": copy_bytes(nbytes) / 1e9 / median(seconds),
        "mb": mb,
        "threads": used,
        "runs": summary(seconds),
    }


# --- arithmetic counts -------------------------------------------------------------------


def flops_by_op(module: Callable, *inputs) -> dict[str, int]:
    """FLOPs of `module(*inputs)` by operator name ("convolution", "addmm", ...).

    Counted by torch's `FlopCounterMode` under `torch.no_grad`: matrix products and
    convolutions (transposed ones included) at 2 FLOPs per multiply-accumulate. Bias
    additions, element-wise work, interpolation and pixel shuffles count nothing.
    """
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    counts = counter.get_flop_counts().get("Global", {})
    return {getattr(op, "__name__", str(op)).split(".")[-1]: int(n) for op, n in counts.items()}


def count_flops(module: Callable, *inputs, ops: Iterable[str] | None = None) -> int:
    """Total FLOPs of `module(*inputs)` (see `flops_by_op` for what counts); with `ops`,
    only those operators' (e.g. `CONVOLUTION_OPS`)."""
    counts = flops_by_op(module, *inputs)
    wanted = None if ops is None else set(ops)
    return sum(n for op, n in counts.items() if wanted is None or op in wanted)


def folded_flops(bundle_or_generator, height: int, width: int) -> int:
    """FLOPs of one height x width frame as the frame loop paints it.

    That is `synd.model.FoldedGenerator` (what `FrameLoop` runs live, and what the ONNX
    painter exports), called on a base image and one feature vector: its convolutions and
    the small sound-to-FiLM network. It does less than `Generator.forward`, whose count
    (`generator_macs`) the model cards quote, so the achieved share of the multiply rate
    is computed from this one. Takes a `ModelBundle` or a `Generator`.
    """
    from synd.model import FoldedGenerator

    generator = getattr(bundle_or_generator, "generator", bundle_or_generator)
    weight = generator.to_rgb.weight
    with torch.no_grad():
        folded = FoldedGenerator(generator, height, width).eval()
    base = torch.zeros(1, 3, height, width, dtype=weight.dtype, device=weight.device)
    features = torch.zeros(1, generator.cfg.feature_dim, dtype=weight.dtype, device=weight.device)
    return count_flops(folded, base, features)


def generator_macs(cfg, height: int, width: int) -> int:
    """Multiply-accumulates of one generator frame (convolutions only; the rest is small)."""
    from synd.model import Generator, make_coords

    gen = Generator(cfg)
    flops = count_flops(
        gen,
        torch.zeros(1, 3, height, width),
        torch.zeros(1, cfg.feature_dim),
        make_coords(height, width, cfg.native_size),
        ops=CONVOLUTION_OPS,
    )
    return flops // 2


def achieved_fraction(flops_per_frame: float, frames_per_s: float, gemm_gflops: float) -> float:
    """The share of the measured multiply rate a painter achieves: FLOP/s done (FLOPs a
    frame x frames a second) over `gemm_gflops` (GFLOP/s)."""
    return flops_per_frame * frames_per_s / 1e9 / gemm_gflops


# --- latency and real time ---------------------------------------------------------------


def latency_ms(captured_at: Sequence[float], published_at: Sequence[float]) -> dict:
    """`summary` of per-frame latency in milliseconds: for each frame, the seconds from
    the capture of its sound (`captured_at`) to its publication (`published_at`), both
    read from one clock and listed in the same frame order."""
    if len(captured_at) != len(published_at):
        raise ValueError(f"{len(captured_at)} capture times for {len(published_at)} frames")
    return summary([(p - c) * 1000.0 for c, p in zip(captured_at, published_at)])


def stage_ms(stage_times: dict[str, Sequence[float]]) -> dict[str, float]:
    """Median milliseconds of each pipeline stage, from its per-frame seconds."""
    return {stage: median(seconds) * 1000.0 for stage, seconds in stage_times.items()}


def realtime_factor(media_seconds: float, wall_seconds: float) -> float:
    """Seconds of media made per second of wall time: above 1 is faster than real time."""
    if wall_seconds <= 0:
        raise ValueError(f"wall time must be positive, got {wall_seconds}")
    return media_seconds / wall_seconds


def largest_size(
    measure_fps: Callable[[Size], float], sizes: Sequence[Size], target_fps: float
) -> Size | None:
    """The largest of `sizes` (ordered small to large) at which `measure_fps(size)` reaches
    `target_fps`, or None if even the smallest does not.

    The frame rate falls as the size grows, so the search stops at the first size that
    misses the target: the larger ones would miss it too, and measuring them costs the
    most time.
    """
    best = None
    for size in sizes:
        fps = measure_fps(size)
        if not fps >= target_fps:  # NaN misses too
            break
        best = size
    return best
