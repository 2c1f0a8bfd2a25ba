"""The stage: sound-driven light and colour over the generator's picture.

A generator paints texture; what a viewer reads from across the room is the large-scale
light and colour. The stage makes that part a plain, steady function of the sound:

* Three **drives** from the model's normalised band features, each a fixed linear mix:
  *level* (the mean of the bands: how loud), *tilt* (high bands minus low bands: how
  bright the timbre) and *middle* (the middle bands minus both ends).
* Each drive is **standardised against the song itself**: a running mean and spread over
  the last `MEMORY_S` seconds (a plain average of everything heard until then, so the
  first seconds already use the song's own range). A quiet ballad and a loud track both
  use the whole range of light and colour, and a song's sections still differ.
* The 12 broad blobs of the scene grid (`synd.model.scene_basis`) each take a CIELAB
  offset from the drives: lightness mostly from the level, smoothed over `LIGHT_S`
  (1 s: a full-screen brightness change never flickers at the beat), colour from all
  three drives smoothed over `TINT_S` (0.3 s: the colours answer the beat), each blob
  its own fixed mix, so the colour composition changes with the music.
* The frame shown is ``0.5 + contrast * (picture - 0.5) + offset(x, y)`` in sRGB, where
  `offset` blends the blobs' offsets (converted from CIELAB around mid-grey) and the
  contrast leaves headroom for the light: the texture stays, lit and tinted by the song.

`Look.stage` (0-1) sets the strength; 0 leaves the picture as the generator painted it.
The look's intensity scales the drives (0: no sound, a neutral stage). On digital
silence the drives stop moving and so does the stage; after a long silence the running
range forgets the music and the stage settles to neutral. Only the shown frame is lit:
the generator's feedback takes its own unlit picture, so the light never accumulates.
About 1 ms a frame at 384x216.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from synd.model import SCENE_CENTRES, make_coords, scene_basis

#: Seconds of sound the drives are standardised against.
MEMORY_S = 20.0
#: Smoothing (exponential time constants, seconds) of the lightness and colour drives.
LIGHT_S = 1.0
TINT_S = 0.3
#: CIELAB lightness and chroma swing per unit (standardised) drive at full strength.
LIGHTNESS = 30.0
CHROMA = 16.8
#: The picture's own contrast around mid-grey at full strength (headroom for the light).
CONTRAST_AT_FULL = 0.6
#: How much of each blob's lightness follows the level (the rest: its own mix).
LEVEL_SHARE = 0.8
#: Standardised drives are clipped here: a sudden silence darkens, it does not blind.
CLIP = 3.0
_SEED = 0


def drive_matrix(n_features: int, bands: int) -> np.ndarray:
    """(3, n_features) weights of level, tilt and middle over the first `bands` columns
    (the band energies; loudness, onset and the rest get no weight)."""
    if bands < 3 or bands > n_features:
        raise ValueError(f"the stage needs at least 3 band features, got {bands} of {n_features}")
    i = np.arange(bands) / (bands - 1)
    m = np.zeros((3, n_features))
    m[0, :bands] = 1.0 / bands
    m[1, :bands] = (i - 0.5) / bands
    middle = 0.25 - np.abs(i - 0.5)
    m[2, :bands] = (middle - middle.mean()) / bands
    return m


def blob_mix(blobs: int) -> np.ndarray:
    """(3 drives, blobs, 3 Lab channels) fixed mix, each blob channel of unit norm over
    the drives; lightness mostly follows the level (`LEVEL_SHARE`)."""
    mix = np.random.default_rng(_SEED).normal(size=(3, blobs, 3))
    mix /= np.sqrt((mix**2).sum(0, keepdims=True))
    mix[:, :, 0] *= 1.0 - LEVEL_SHARE
    mix[0, :, 0] += LEVEL_SHARE
    mix /= np.sqrt((mix**2).sum(0, keepdims=True))
    return mix


class RunningRange:
    """Standardises a stream of vectors against its own recent mean and spread.

    Weight of the newest sample: 1/n for the first `memory` samples (a plain mean of all
    so far), then 1/`memory` (an exponential average over about `memory` samples).
    """

    def __init__(self, size: int, memory: float, floor: float = 1e-3):
        self.memory = max(1.0, float(memory))
        self.floor = floor
        self.n = 0
        self.mean = np.zeros(size)
        self.var = np.zeros(size)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.n += 1
        w = max(1.0 / self.n, 1.0 / self.memory)
        d = x - self.mean
        self.mean = self.mean + w * d
        self.var = (1.0 - w) * (self.var + w * d * d)
        return np.clip((x - self.mean) / np.sqrt(self.var + self.floor), -CLIP, CLIP)


def lab_offsets_to_srgb(lab: np.ndarray) -> np.ndarray:
    """(..., 3) CIELAB offsets around mid-grey (L* 50) -> sRGB offsets (0-1 scale)."""
    grey = np.array([50.0, 0.0, 0.0], np.float32)
    flat = (np.asarray(lab, np.float32).reshape(-1, 1, 3) + grey).astype(np.float32)
    flat[..., 0] = flat[..., 0].clip(0.0, 100.0)
    rgb = cv2.cvtColor(flat, cv2.COLOR_Lab2RGB).clip(0.0, 1.0)
    mid = cv2.cvtColor(grey.reshape(1, 1, 3), cv2.COLOR_Lab2RGB)[0, 0]
    return (rgb.reshape(np.shape(lab)) - mid).astype(np.float32)


class Stage:
    """The stage for one frame loop (its own running range: one per model slot)."""

    def __init__(
        self,
        n_features: int,
        bands: int,
        height: int,
        width: int,
        native_size: int,
        fps: float,
        device: torch.device,
    ):
        self.drives = drive_matrix(n_features, bands)
        self.shape = (height, width)
        self.native_size = native_size
        self.device = device
        self._basis: torch.Tensor | None = None  # (K, HW), built on the first lit frame
        self.mix = blob_mix(len(SCENE_CENTRES))
        self.light_decay = math.exp(-1.0 / (fps * LIGHT_S))
        self.tint_decay = math.exp(-1.0 / (fps * TINT_S))
        memory = MEMORY_S * fps
        self.light_range = RunningRange(3, memory)
        self.tint_range = RunningRange(3, memory)
        self._light: np.ndarray | None = None
        self._tint: np.ndarray | None = None

    def advance(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take normalised features (F,): the standardised light and tint drives (3,) each."""
        d = self.drives @ np.asarray(features, np.float64)
        if self._light is None or self._tint is None:
            self._light, self._tint = d.copy(), d.copy()
        self._light = self.light_decay * self._light + (1.0 - self.light_decay) * d
        self._tint = self.tint_decay * self._tint + (1.0 - self.tint_decay) * d
        return self.light_range(self._light), self.tint_range(self._tint)

    def offsets(self, features: np.ndarray, gain: float) -> np.ndarray:
        """(K, 3) sRGB offsets of the blobs for normalised features (F,), advancing the
        running state; `gain` scales the swing (strength times intensity)."""
        light, tint = self.advance(features)
        lab = np.stack(
            [
                LIGHTNESS * light @ self.mix[:, :, 0],
                CHROMA * tint @ self.mix[:, :, 1],
                CHROMA * tint @ self.mix[:, :, 2],
            ],
            axis=-1,
        )
        return lab_offsets_to_srgb(gain * lab)

    def light(
        self, frame: torch.Tensor, features: np.ndarray, strength: float, intensity: float
    ) -> torch.Tensor:
        """The frame (1, 3, H, W) in [0, 1] lit by the stage. Off (strength 0), only the
        drives advance, so turning the stage up mid-song starts from the song's range."""
        if strength <= 0.0:
            self.advance(features)
            return frame
        offsets = self.offsets(features, strength * intensity)
        if self._basis is None:  # 12 weights a pixel: not kept for a stage that stays off
            coords = make_coords(*self.shape, self.native_size).to(self.device)
            self._basis = scene_basis(coords)[0].reshape(len(SCENE_CENTRES), -1)
        field = torch.from_numpy(offsets.T.copy()).to(self._basis) @ self._basis  # (3, HW)
        contrast = 1.0 - (1.0 - CONTRAST_AT_FULL) * min(1.0, strength)
        lit = 0.5 + contrast * (frame - 0.5) + field.view(1, 3, *self.shape)
        return lit.clamp(0.0, 1.0)
