"""The flow: a base pattern that moves in the music's own time.

Every frame starts from a base image, the previous frame blended with a pattern
(`synd.frameloop`); the generator paints the sound onto it. A fixed pattern gives a fixed
composition: the picture changes colour with the music but never moves. With
`Look.flow` above 0 the pattern flows instead:

* The pattern is the same kind of smooth random colour field as the fixed one (a few
  cells per side, bicubic, through a sigmoid), but each cell's value is a sum of
  `SINES` slow sines of **sound time** `tau`, with random frequencies and phases: a
  smooth, never-repeating change with no lattice in it.
* `tau` advances with the music, not the clock: at `BASE_SPEED` per second for a song at
  its usual loudness and onset strength, faster when it is loud against itself (by
  `Look.loudness_pace` per standard deviation) and surging on every hit (loudness and
  onset strength standardised over the last `synd.stage.MEMORY_S` seconds, as the
  stage does), slower between the hits, and not at all on digital silence
  (`SILENT_DB`), so a silent input holds a still picture.
  `Look.flow` multiplies the speed.

So loud passages flow, quiet ones drift, hits push the shapes along and the song's
course shows as a composition that keeps changing. The flow also keeps `section`, how
loud the passage is against the song's recent past (averaged over a few seconds of sound
time), which turns the palette with the song's passages (`Look.sections`). The cost is
one bicubic upsampling of a 4x4 field a frame (about 1 ms at 384x216).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from synd.stage import MEMORY_S, RunningRange, drive_matrix

#: Sines per cell value; their frequencies (cycles per unit of sound time).
SINES = 3
FREQUENCIES = (0.15, 0.45)
#: Sound time per second at the song's usual loudness and onset strength, and how much the
#: onset strength (standardised against the song, per unit) adds to it. The onset counts
#: down to `ONSET_FLOOR`, so the flow slows between the hits. What the loudness adds is
#: the look's (`Look.loudness_pace`, 0.25 unless a preset says otherwise).
BASE_SPEED = 1.0
ONSET_SPEED = 2.0
ONSET_FLOOR = -0.5
#: Below this loudness (dBFS) the flow stands still (digital silence, a muted input);
#: it reaches full speed `GATE_DB` above it.
SILENT_DB = -60.0
GATE_DB = 20.0
#: Time constant of `Flow.section` in sound time without the loudness's part (about 3 s
#: of music, less with many hits; held between the weakest): a passage, not a bar.
SECTION_TAU = 2.0
#: The shortest time constant of `Flow.section`, in seconds of wall time: a hit starts
#: the palette's turn and the turn glides, where the hardest hits would otherwise turn
#: it within 2-3 frames.
SECTION_GLIDE_S = 1.0
#: The cells of the pattern along its shorter side (the fixed pattern's 4).
CELLS = 4
#: Spread of the cell values before the sigmoid (the fixed pattern's).
SPREAD = 2.0


class Flow:
    """The flowing pattern of one frame loop (its own sound time and running range)."""

    def __init__(
        self,
        names: list[str],
        bands: int,
        height: int,
        width: int,
        fps: float,
        device: torch.device,
        seed: int = 0,
    ):
        """`names` are the model's feature names (`FeatureConfig.names`): the flow needs
        `bands` band columns and a `loudness` column; an `onset` column adds pushes."""
        if "loudness" not in names:
            raise ValueError("the flow needs a loudness feature")
        self.level = drive_matrix(len(names), bands)[0]
        self.loudness = names.index("loudness")
        self.onset = names.index("onset") if "onset" in names else None
        self.fps = float(fps)
        self.device = device
        self.range = RunningRange(3, MEMORY_S * fps)
        g = np.random.default_rng(seed)
        cells = (CELLS, CELLS)
        shape = (SINES, 3, *cells)
        self.freq = torch.tensor(2 * math.pi * g.uniform(*FREQUENCIES, size=shape), dtype=torch.float32)
        self.phase = torch.tensor(g.uniform(0, 2 * math.pi, size=shape), dtype=torch.float32)
        # Each value is a sum of SINES unit-amplitude sines: scaled to a spread of SPREAD.
        self.amplitude = SPREAD * math.sqrt(2.0 / SINES)
        self._rows = bicubic_weights(CELLS, height).to(device)
        self._columns = bicubic_weights(CELLS, width).to(device)
        #: Sound time: seconds of music at its usual level since the start.
        self.tau = 0.0
        #: How loud the passage is against the song's recent past (standardised level,
        #: averaged over SECTION_TAU of sound time; held on digital silence), about -2..2.
        self.section = 0.0

    def speed(self, raw: np.ndarray, normalised: np.ndarray, loudness: float) -> float:
        """Sound time per second for one frame's raw and normalised features (advancing
        the running range and `section`): 0 on digital silence, `BASE_SPEED` at the song's
        usual loudness and onset strength, a surge on each hit, slower between them, and
        `loudness` more per standard deviation the passage is louder than the song's usual."""
        level = float(self.level @ normalised)
        onset = float(normalised[self.onset]) if self.onset is not None else 0.0
        lz, oz, loud = self.range(np.array([level, onset, normalised[self.loudness]]))
        gate = float(np.clip((raw[self.loudness] - SILENT_DB) / GATE_DB, 0.0, 1.0))
        pace = BASE_SPEED + (ONSET_SPEED * max(oz, ONSET_FLOOR) if self.onset is not None else 0.0)
        # `section` moves on the hits (a palette turning between them would be motion out
        # of time with the music) and holds still in silence; not faster when loud, or
        # loud frames would weigh more in its average than quiet ones.
        rate = min(gate * max(0.0, pace) / SECTION_TAU, 1.0 / SECTION_GLIDE_S)
        keep = math.exp(-rate / self.fps)
        self.section = keep * self.section + (1.0 - keep) * float(lz)
        # The loudness (the judge's and a viewer's sense of a loud passage), not the band
        # level: a wall of guitars is loud though its bands sit where a drum break's do.
        return gate * max(0.0, pace + loudness * float(loud))

    def advance(self, raw: np.ndarray, normalised: np.ndarray, rate: float, loudness: float) -> None:
        """Move sound time on by one frame at `rate` times the music's speed (`speed`,
        with `loudness` its share of the loudness)."""
        self.tau += rate * self.speed(raw, normalised, loudness) / self.fps

    def pattern(self) -> torch.Tensor:
        """The pattern at the current sound time: (1, 3, H, W) in (0, 1), channels-last."""
        cells = self.amplitude * torch.sin(self.freq * self.tau + self.phase).sum(0)
        # Bicubic upsampling is separable: rows, then columns, straight into (H, W, 3).
        up = torch.einsum("hi,cij->hjc", self._rows, cells.to(self.device))
        up = torch.einsum("hjc,wj->hwc", up, self._columns).contiguous()
        return torch.sigmoid_(up).unsqueeze(0).permute(0, 3, 1, 2)  # channels-last (1, 3, H, W)


def bicubic_weights(cells: int, size: int) -> torch.Tensor:
    """(size, cells): row k holds the weights `F.interpolate(..., mode="bicubic",
    align_corners=False)` gives each of `cells` values at output position k."""
    eye = torch.eye(cells).view(cells, 1, cells, 1)
    return F.interpolate(eye, size=(size, 1), mode="bicubic", align_corners=False)[:, 0, :, 0].T.contiguous()
