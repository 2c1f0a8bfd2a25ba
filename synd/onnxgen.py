"""The generator run through ONNX Runtime: the live engine's fast path on the CPU.

For batch-1 frames of these small networks, ONNX Runtime is about 1.5x faster than eager
torch on a 2-core CPU (it fuses the convolution, FiLM and activation steps and has less
per-operator overhead). The frame loop's `FoldedGenerator` is exported in memory when a
model is loaded, so the model file stays the one safetensors checkpoint and torch stays
the reference: `OnnxGenerator` is called like `FoldedGenerator` and paints the same
pictures (within float rounding; tests compare them).

Thread spinning is switched off: ONNX Runtime's default busy-waiting threads starve the
output threads that scale and send frames on the same cores.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from synd.errors import error_line
from synd.files import atomic_write_bytes
from synd.model import FoldedGenerator, Generator
from synd.paths import cache_dir

log = logging.getLogger(__name__)


def onnx_missing() -> str | None:
    """Why the ONNX Runtime path cannot be used here, or None when it can."""
    try:
        import onnx  # noqa: F401 - the exporter needs it; only whether it imports matters here
        import onnxruntime  # noqa: F401 - only whether it imports matters here
    except ImportError as exc:
        return f"{exc.name} is not installed (pip install 'synethesia[live]')"
    return None


def export_generator(generator: Generator, height: int, width: int) -> bytes:
    """The generator's `FoldedGenerator` for height x width frames as an ONNX model (bytes):
    inputs "base" (1, 3, height, width) and "features" (1, F), output "frame"."""
    folded = FoldedGenerator(generator, height, width).eval()
    example = (torch.rand(1, 3, height, width), torch.zeros(1, generator.cfg.feature_dim))
    return export_module(folded, example, ["base", "features"], ["frame"])


#: Part of every cache key: bump it when the exported graph changes.
EXPORT_VERSION = 2


def generator_key(generator: Generator, height: int, width: int) -> str:
    """A name for this generator's export at this size: a hash of its weights, the size,
    and the torch and export versions."""
    digest = hashlib.sha256(f"{EXPORT_VERSION}-{torch.__version__}-{height}x{width}".encode())
    for name, tensor in generator.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def export_cache_path(generator: Generator, height: int, width: int) -> Path:
    return cache_dir() / "onnx" / f"{generator_key(generator, height, width)}.onnx"


def cached_export(generator: Generator, height: int, width: int) -> bytes:
    """`export_generator`, kept in the cache folder. Exporting traces the network in
    Python for a fraction of a second, and while it runs the live engine thread waits
    for Python's lock (frames of 70 ms and more were measured): a preset switch reads
    the cached file instead. An ONNX file is a graph of operators, not code."""
    path = export_cache_path(generator, height, width)
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = export_generator(generator, height, width)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)
    except OSError as exc:  # a read-only cache only costs speed
        log.debug("cannot cache %s: %s", path, exc)
    return data


def painting_threads() -> int:
    """ONNX Runtime's threads for the live engine: one core fewer than the machine has.

    On 2 cores a second painting thread gained little on average and made every tenth
    frame late, waiting for a worker that the other threads had descheduled; the free
    core is for audio capture and the outputs."""
    return max(1, (os.cpu_count() or 2) - 1)


def onnx_session(model: bytes, threads: int | None = None):
    """An ONNX Runtime CPU session for `model` (bytes) with `threads` painting threads
    (default: `painting_threads()`) and no spinning workers."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or painting_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # notes about unused initializers are noise
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def export_module(
    module: torch.nn.Module, example: tuple, input_names: list[str], output_names: list[str]
) -> bytes:
    """`module` traced on `example` inputs as an ONNX model (bytes)."""
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python control flow
        torch.onnx.export(
            module.eval(),
            example,
            buf,  # type: ignore[arg-type]  # dynamo=False writes to a file object too; the annotation names paths
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
        )
    return buf.getvalue()


class OnnxGenerator:
    """A generator's forward pass for one frame size in ONNX Runtime; called like
    `FoldedGenerator`: (base, features) -> frame."""

    def __init__(self, generator: Generator, height: int, width: int, threads: int | None = None):
        self.height, self.width = height, width
        generator = generator.cpu().eval()
        try:
            self.session = onnx_session(cached_export(generator, height, width), threads)
        except Exception as exc:  # noqa: BLE001 - a damaged cache file: export afresh
            log.warning("cached ONNX export unusable (%s): exporting again", error_line(exc))
            export_cache_path(generator, height, width).unlink(missing_ok=True)
            self.session = onnx_session(cached_export(generator, height, width), threads)

    @staticmethod
    def _array(t: torch.Tensor) -> np.ndarray:
        return t.detach().to("cpu", torch.float32).contiguous().numpy()

    def __call__(self, base: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        if base.shape[-2:] != (self.height, self.width):
            raise ValueError(
                f"this painter is built for {self.width}x{self.height} frames, "
                f"got {base.shape[-1]}x{base.shape[-2]}"
            )
        (frame,) = self.session.run(None, {"base": self._array(base), "features": self._array(features)})
        return torch.from_numpy(frame)


RUNTIMES = ("auto", "onnx", "torch")


def live_painter(
    generator: Generator, height: int, width: int, runtime: str = "auto", threads: int | None = None
):
    """What the live engine paints height x width frames with: ONNX Runtime on the CPU when
    it is installed (`runtime` "auto" or "onnx"), else the torch `FoldedGenerator` (always
    on a GPU).

    Raises ValueError when `runtime` is "onnx" and ONNX Runtime cannot be used.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    on_cpu = next(generator.parameters()).device.type == "cpu"
    missing = onnx_missing()
    if runtime == "onnx" and (missing or not on_cpu):
        raise ValueError(f"runtime onnx: {missing or 'the model runs on a GPU; use torch'}")
    if runtime == "torch" or missing or not on_cpu:
        return FoldedGenerator(generator, height, width).eval()
    return OnnxGenerator(generator, height, width, threads)


def runtime_name(paint) -> str:
    """ "onnxruntime" or "torch": what a painter from `live_painter` runs on, for logs."""
    return "onnxruntime" if isinstance(paint, OnnxGenerator) else "torch"
