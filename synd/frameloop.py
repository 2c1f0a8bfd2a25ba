"""The frame loop shared by training, render and live: features in, frames out.

Every frame's base image is a blend of the previous output and a pattern:
`base = feedback * previous + (1 - feedback) * pattern`. The generator paints the
current sound onto it. The pattern is a fixed, seeded one; with `Look.flow` a smooth
field that moves in the music's own time (`synd.flow`); or for a model with a scene
(`synd.model.SceneHead`) the colour field the scene paints from the sound now and its
slow average over `SLOW_SECONDS`. The frame shown may be destriped (`synd.destripe`,
`Look.destripe`), folded or wrapped into a tunnel (`synd.polar`), inked (`synd.ink`) or
drawn as glowing contour lines (`synd.lines`, `Look.lines`), and is then lit by the
stage (`synd.stage`, `Look.stage`): sound-driven light and colour over broad areas.
Render and live run this same loop, so a render shows what the daemon would show for
the same audio.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from synd.bundle import ModelBundle
from synd.destripe import Destripe
from synd.flow import Flow
from synd.ink import Ink
from synd.lines import ContourLines
from synd.model import FoldedGenerator, make_coords, scene_basis
from synd.polar import TUNNEL_PER_SOUND_S, TURN_PER_SOUND_S, Polar
from synd.presets import Look
from synd.stage import Stage

#: Time constant of the slow average of the features that steers a scene (seconds).
SLOW_SECONDS = 2.0


def slow_decay(fps: float) -> float:
    """Per-frame decay of the slow average at `fps`: slow = d * slow + (1 - d) * now."""
    return math.exp(-1.0 / (fps * SLOW_SECONDS))


def slow_average(features: np.ndarray, fps: float) -> np.ndarray:
    """The slow average of every row of `features` (n, F), started at the first row: what
    the frame loop keeps while it plays them (for training on whole tracks)."""
    from scipy.signal import lfilter

    x = np.asarray(features, dtype=np.float64)
    if not len(x):
        return x.astype(np.float32)
    d = slow_decay(fps)
    out, _ = lfilter([1.0 - d], [1.0, -d], x, axis=0, zi=d * x[:1])
    return out.astype(np.float32)


def smooth_pattern(
    n: int, height: int, width: int, generator: torch.Generator, cells: int = 4
) -> torch.Tensor:
    """Seeded, smooth random colour fields in [0, 1], shape (n, 3, height, width)."""
    grid = torch.randn(n, 3, cells, cells, generator=generator) * 2.0
    up = F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=False)
    return torch.sigmoid(up)


def hue_rotation(turns: float) -> torch.Tensor:
    """3x3 matrix rotating RGB colours about the grey axis by `turns` of a full circle."""
    a = 2.0 * math.pi * turns
    c, s = math.cos(a), math.sin(a)
    k = 1.0 / 3.0
    r = math.sqrt(k)
    return torch.tensor(
        [
            [c + (1 - c) * k, k * (1 - c) - r * s, k * (1 - c) + r * s],
            [k * (1 - c) + r * s, c + k * (1 - c), k * (1 - c) - r * s],
            [k * (1 - c) - r * s, k * (1 - c) + r * s, c + k * (1 - c)],
        ],
        dtype=torch.float32,
    )


def to_rgb_uint8(frame: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [0, 1] -> (H, W, 3) uint8 RGB, the one conversion."""
    if frame.dim() == 4:
        frame = frame[0]
    # One new tensor, then in place: this runs on every frame (clamped to [0, 1] first).
    rounded = frame.mul(255.0).add_(0.5).clamp_(0.5, 255.5)
    return rounded.to(torch.uint8).permute(1, 2, 0).contiguous().cpu().numpy()


class FrameLoop:
    """Turns a stream of raw feature vectors into a chain of frames with feedback."""

    def __init__(
        self,
        bundle: ModelBundle,
        height: int,
        width: int,
        look: Look | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        paint=None,
        fps: float = 30.0,
    ):
        """`paint(base, features) -> frame` paints the frames: by default the bundle's
        generator folded for this frame size (`FoldedGenerator`, a snapshot of its weights
        now); the live engine may pass a `synd.onnxgen.OnnxGenerator`. `fps` is the rate
        the frames are shown at (it sets the scene's slow average)."""
        self.bundle = bundle
        self.look = look or Look()
        self.device = torch.device(device)
        self.height, self.width = height, width
        g = torch.Generator().manual_seed(seed)
        # Channels-last (NHWC) images make the CPU convolutions about twice as fast for
        # these few-channel layers; every frame after the first inherits the layout.
        nhwc = torch.channels_last
        self.pattern = smooth_pattern(1, height, width, g).to(self.device, memory_format=nhwc)
        self.paint = paint or FoldedGenerator(bundle.generator, height, width).to(self.device).eval()
        self.previous = self.pattern.clone()
        self._smoothed: np.ndarray | None = None
        #: The normalised (and smoothed) features the last frame was painted from, (F,).
        self.given: torch.Tensor | None = None
        self._hue: tuple[float, torch.Tensor | None] = (0.0, None)
        self._mean = torch.as_tensor(bundle.stats.mean, device=self.device)
        self._std = torch.as_tensor(bundle.stats.std, device=self.device)
        self.scene = bundle.generator.scene
        if self.scene is not None:
            coords = make_coords(height, width, bundle.config.native_size).to(self.device)
            self._basis = scene_basis(coords)
            self._decay = slow_decay(fps)
            self._slow: torch.Tensor | None = None
        self.stage = self._make_stage(fps)
        self.flow = self._make_flow(fps, seed)
        # Built the first time the look asks for them.
        self._lines: ContourLines | None = None
        self._destripe: Destripe | None = None
        self._ink: Ink | None = None
        self._polar: Polar | None = None

    def _make_stage(self, fps: float) -> Stage | None:
        """The stage (`synd.stage`) when the features have bands to drive it, else None."""
        features = self.bundle.features
        if features.kind == "wave" or features.bands < 3:
            return None
        n = len(self.bundle.stats.mean)
        size = (self.height, self.width)
        return Stage(n, features.bands, *size, self.bundle.config.native_size, fps, self.device)

    def _make_flow(self, fps: float, seed: int) -> Flow | None:
        """The flowing pattern (`synd.flow`) for a model without a scene whose features
        have bands and a loudness, else None (a scene is its own moving pattern)."""
        features = self.bundle.features
        if self.scene is not None or features.kind == "wave" or features.bands < 3 or not features.loudness:
            return None
        names = features.names
        return Flow(names, features.bands, self.height, self.width, fps, self.device, seed)

    def condition(self, raw: np.ndarray) -> torch.Tensor:
        """Normalise, smooth and scale one raw feature vector -> (1, F) tensor."""
        a = float(self.look.smoothing)
        raw = np.asarray(raw, dtype=np.float32)
        self._smoothed = raw if self._smoothed is None else a * self._smoothed + (1 - a) * raw
        f = (torch.as_tensor(self._smoothed, device=self.device) - self._mean) / self._std
        self.given = f
        return (f * float(self.look.intensity)).unsqueeze(0)

    def condition_numpy(self) -> np.ndarray:
        """The normalised features of the last `condition()` as a numpy vector (F,): what
        the flow and the stage follow (one copy from the device a frame, shared)."""
        assert self.given is not None, "condition() first"
        return self.given.cpu().numpy()

    def scene_field(self, cond: torch.Tensor) -> torch.Tensor:
        """The scene's colour field for conditioned features `cond` (1, F), updating the
        slow average."""
        assert self.scene is not None, "scene_field() needs a generator with a scene"
        if self._slow is None:
            self._slow = cond.clone()
        else:
            self._slow = self._decay * self._slow + (1.0 - self._decay) * cond
        return self.scene(cond, self._slow, self._basis).contiguous(memory_format=torch.channels_last)

    def _pattern(self, raw: np.ndarray, given: np.ndarray) -> torch.Tensor:
        """The pattern this frame starts from: flowing with the music (`Look.flow`) or
        the fixed one. The flow's running range follows the sound even while it is off."""
        if self.flow is None:
            return self.pattern
        rate = float(self.look.flow)
        self.flow.advance(np.asarray(raw, np.float32), given, rate, float(self.look.loudness_pace))
        return self.flow.pattern() if rate > 0 else self.pattern

    @torch.inference_mode()
    def paint_next(self, raw: np.ndarray) -> torch.Tensor:
        """The generator's picture (1, 3, H, W) for one raw feature vector, which the
        feedback keeps (`previous`): `step` without the look's shown-frame effects (the
        destriping, fold, tunnel, ink, lines, light and hue turn), for readers of the
        painted picture (`synd.readback`). The loop's state moves on exactly as in `step`."""
        return self._paint(raw)[0]

    def _paint(self, raw: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
        """`paint_next`'s picture and the normalised features it was painted from."""
        fb = float(self.look.feedback)
        cond = self.condition(raw)
        given = self.condition_numpy()
        pattern = self.scene_field(cond) if self.scene is not None else self._pattern(raw, given)
        # In the generator's own output layout (channels-last for torch, plain for ONNX
        # Runtime, which would otherwise copy it): a mixed-layout blend is several times slower.
        base = torch.lerp(self.previous, pattern, 1.0 - fb)
        frame = self.paint(base, cond)
        self.previous = frame  # feedback takes the generator's own picture, never the lit one
        return frame, given

    @torch.inference_mode()
    def step(self, raw: np.ndarray) -> torch.Tensor:
        """One frame (1, 3, H, W) in [0, 1] for one raw feature vector."""
        frame, given = self._paint(raw)
        if self.look.destripe > 0:
            if self._destripe is None:
                self._destripe = Destripe(self.height, self.width, self.device)
            frame = self._destripe.draw(frame, float(self.look.destripe))
        if self.look.mirror > 0 or self.look.tunnel > 0:
            if self._polar is None:
                self._polar = Polar(self.height, self.width, self.device)
            tau = self.flow.tau if self.flow is not None else 0.0
            frame = self._polar.fold(frame, float(self.look.mirror), TURN_PER_SOUND_S * tau)
            frame = self._polar.tunnel(frame, float(self.look.tunnel), TUNNEL_PER_SOUND_S * tau)
        if self.look.ink > 0:
            if self._ink is None:
                self._ink = Ink(self.height, self.device)
            frame = self._ink.draw(frame, float(self.look.ink))
        if self.look.lines > 0:
            if self._lines is None:
                self._lines = ContourLines(self.height, self.device)
            frame = self._lines.draw(frame, float(self.look.lines))
        if self.stage is not None:
            look = self.look
            frame = self.stage.light(frame, given, look.stage, look.intensity)
        hue = self.hue()
        if hue:
            if self._hue[0] != hue:  # rebuilt only when the hue changes
                self._hue = (hue, hue_rotation(hue).to(self.device))
            frame = torch.einsum("ij,bjhw->bihw", self._hue[1], frame).clamp(0, 1)
        return frame

    def hue(self) -> float:
        """The hue turn of this frame: the look's own, turned with the song's passages
        (`Look.sections` times a soft-limited `Flow.section`) when the loop has a flow."""
        turn = float(self.look.hue)
        if self.look.sections and self.flow is not None:
            turn += float(self.look.sections) * math.tanh(self.flow.section)
        return turn

    def run(self, features: np.ndarray):
        """Yield one frame per row of `features` (n, F)."""
        for row in features:
            yield self.step(row)
