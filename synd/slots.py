"""The live engine's two model slots, the crossfade between them, and beat detection.

Each slot holds a model with its own streaming feature extractor and its own frame loop
(its own feedback chain), built off the engine thread, so putting a model in a slot
costs the engine thread nothing but an assignment.

Crossfading (`Mixer`):

* ``image``: both slots paint and their pictures are blended; works for any two models.
* ``weights``: the two generators' weights are blended and one network paints, with the
  two models' feature normalisations blended the same way: a morph between looks rather
  than a dissolve. Needs the same architecture and features in both slots; otherwise
  the image blend is used (logged once). The blended network runs in torch and is
  re-mixed when the crossfader moves by more than 1/64.
"""

from __future__ import annotations

import copy
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from synd.bundle import ModelBundle
from synd.features import StreamingExtractor
from synd.frameloop import FrameLoop
from synd.model import FoldedGenerator
from synd.presets import Look

log = logging.getLogger(__name__)

MIX_MODES = ("image", "weights")
#: Weight blends are rebuilt at this resolution of the crossfader.
WEIGHT_STEPS = 64


@dataclass
class Slot:
    """A model ready to paint: its extractor, its frame loop and its newest features."""

    name: str
    bundle: ModelBundle
    loop: FrameLoop
    extractor: StreamingExtractor
    last_row: np.ndarray
    runtime: str
    #: The generator folded in torch, and a spare copy to mix weights into, for weight
    #: blends (both built off the engine thread).
    folded: FoldedGenerator | None = None
    spare: FoldedGenerator | None = None
    #: The preset's own hue turn (its palette); the performer's hue turns it further.
    own_hue: float = 0.0

    def hear(self, samples: np.ndarray) -> np.ndarray:
        """Push audio through this slot's extractor; returns the new feature rows."""
        rows = self.extractor.push(samples)
        if len(rows):
            self.last_row = rows[-1]
        return rows


def same_shape(a: ModelBundle, b: ModelBundle) -> bool:
    """Whether two models' weights and features can be blended."""
    return a.config == b.config and a.features == b.features


class Mixer:
    """Paints one frame from the slots at crossfader position x (0 = A, 1 = B)."""

    def __init__(self, mode: str = "image"):
        if mode not in MIX_MODES:
            raise ValueError(f"mix must be image or weights, got {mode!r}")
        self.mode = mode
        # (a, b, step), the mixed network, the two folded ends, the blended (mean, std)
        self._blend: tuple | None = None
        self._warned = False
        self._worker: ThreadPoolExecutor | None = None

    def paint(self, a: Slot, b: Slot | None, x: float) -> torch.Tensor:
        """The frame (1, 3, H, W) in [0, 1]."""
        if b is None or x <= 0.0:
            return a.loop.step(a.last_row)
        if x >= 1.0 and self.mode == "image":
            return b.loop.step(b.last_row)
        if self.mode == "weights":
            if same_shape(a.bundle, b.bundle):
                return self._weights(a, b, x)
            if not self._warned:
                log.warning(
                    "mix weights: %s and %s differ in architecture or features; "
                    "blending their pictures instead",
                    a.name,
                    b.name,
                )
                self._warned = True
        # B paints on a second thread meanwhile (torch and ONNX Runtime release Python's
        # lock while they compute), so a fade costs about one frame's time on two cores.
        later = self._pool().submit(_step_in_inference_mode, b)
        fa = a.loop.step(a.last_row)
        fb = later.result()
        return torch.lerp(fa.float(), fb.float(), float(x))

    def _pool(self) -> ThreadPoolExecutor:
        if self._worker is None:
            # Made on the engine thread: B paints with the torch threads A paints with.
            threads = torch.get_num_threads()
            self._worker = ThreadPoolExecutor(
                1, thread_name_prefix="synd-mix", initializer=torch.set_num_threads, initargs=(threads,)
            )
        return self._worker

    def _weights(self, a: Slot, b: Slot, x: float) -> torch.Tensor:
        """Slot A's frame loop (its feedback chain) painting with blended weights."""
        step = round(x * WEIGHT_STEPS)
        pair = (id(a.bundle), id(b.bundle))
        if self._blend is None or self._blend[0][:2] != pair:
            # Everything a FoldedGenerator holds is linear in the generator's weights, so
            # a blend of two folded networks is the folded blend: built once per pair,
            # then each crossfader step is a cheap in-place mix of their tensors.
            h, w = a.loop.height, a.loop.width
            ends = [s.folded or FoldedGenerator(s.bundle.generator, h, w).eval() for s in (a, b)]
            mixed = b.spare or a.spare or copy.deepcopy(ends[0])
            self._blend = ((*pair, None), mixed, ends, None)
        key, mixed, ends, stats = self._blend
        t = step / WEIGHT_STEPS
        if key[2] != step:
            with torch.no_grad():
                tensors = [dict(m.state_dict(keep_vars=True)) for m in (mixed, *ends)]
                for name, target in tensors[0].items():
                    target.copy_(torch.lerp(tensors[1][name], tensors[2][name], t))
            # The two models' feature normalisations, blended the same way.
            stats = tuple(
                torch.lerp(sa, sb, t)
                for sa, sb in zip((a.loop._mean, a.loop._std), (b.loop._mean, b.loop._std))
            )
            self._blend = ((*pair, step), mixed, ends, stats)
        loop = a.loop
        saved = (loop.paint, loop._mean, loop._std)
        mean, std = stats
        loop.paint, loop._mean, loop._std = mixed, mean, std
        try:
            return loop.step(a.last_row * (1 - t) + b.last_row * t)
        finally:
            loop.paint, loop._mean, loop._std = saved


def _step_in_inference_mode(slot: Slot) -> torch.Tensor:
    with torch.inference_mode():  # per thread, as the engine thread has it
        return slot.loop.step(slot.last_row)


class BeatDetector:
    """Onsets: the onset value's rising edge above `z` standard deviations of its own
    recent history (about `memory` seconds), at most one beat every `gap` seconds.
    Measured against the music playing now, so quiet and loud sets both have beats."""

    def __init__(self, fps: float, z: float = 1.5, gap: float = 0.2, memory: float = 3.0):
        self.z, self.gap = z, gap
        self._alpha = 1.0 / max(1.0, memory * fps)
        self._mean = 0.0
        self._var = 0.0
        self._seen = 0
        self._above = False
        self._last = -1e9

    def feed(self, slot: Slot, rows: np.ndarray, now: float) -> float | None:
        """The strength of a beat in these rows (in standard deviations), or None."""
        if not len(rows) or not slot.bundle.features.onset:
            return None
        beat = None
        for onset in rows[:, slot.bundle.features.dim - 1]:  # onset is the last value
            onset = float(onset)
            z = (onset - self._mean) / math.sqrt(self._var) if self._var > 1e-12 else 0.0
            warm = self._seen >= 10
            if warm and z > self.z and not self._above and now - self._last >= self.gap:
                beat, self._last = z, now
            self._above = z > self.z
            d = onset - self._mean
            self._mean += self._alpha * d
            self._var = (1 - self._alpha) * (self._var + self._alpha * d * d)
            self._seen += 1
        return beat


def make_slot(
    bundle: ModelBundle,
    look: Look,
    name: str,
    sample_rate: int,
    fps: float,
    size: tuple[int, int],
    seed: int,
    paint,
    runtime: str,
    mix: str = "image",
) -> Slot:
    """A slot for `bundle` painting `size` (w, h) frames; call off the engine thread."""
    from dataclasses import replace

    if bundle.features.sample_rate != sample_rate:
        raise ValueError(
            f"the input delivers {sample_rate} Hz, the model hears {bundle.features.sample_rate} Hz"
        )
    features = replace(bundle.features, fps=fps)
    w, h = size
    loop = FrameLoop(
        bundle,
        h,
        w,
        look=look,
        seed=seed,
        device=next(bundle.generator.parameters()).device,
        paint=paint,
        fps=fps,
    )
    # A first run sets up kernels and memory (tens of milliseconds): done here, off the
    # engine thread, so that the slot's first live frame costs what every frame costs.
    silent = torch.zeros(1, bundle.config.feature_dim, device=loop.pattern.device)
    folded = spare = None
    with torch.inference_mode():
        loop.paint(loop.pattern, silent)
        if mix == "weights":
            folded = (
                paint
                if isinstance(paint, FoldedGenerator)
                else FoldedGenerator(bundle.generator, h, w).eval()
            )
            spare = copy.deepcopy(folded)
            folded(loop.pattern, silent)
            spare(loop.pattern, silent)
    return Slot(
        name,
        bundle,
        loop,
        StreamingExtractor(features),
        np.array(bundle.stats.mean, dtype=np.float32),
        runtime,
        folded,
        spare,
    )
