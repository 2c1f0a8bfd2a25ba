"""Training losses. Each takes images in [0, 1] shaped (batch, 3, height, width).

Weights come from the preset's [loss] table; a weight of 0 switches a term off.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from synd.tables import reject_unknown


@dataclass(frozen=True)
class LossWeights:
    """How much each term counts; stored in the checkpoint."""

    sound: float = 1.0  # decoder must read the features back out of the picture
    image: float = 0.5  # stay near the seeded base pattern (hinged), as the original
    noise: float = 0.0  # total variation: flat regions, sharp edges
    stripes: float = 0.0  # fine structure along whole rows or columns (a stripe lattice)
    colorfulness: float = 0.0  # soft-histogram entropy: many different colours
    color_variance: float = 0.0  # spread within each colour channel
    temporal: float = 0.0  # frame-to-frame consistency (penalises change)
    motion: float = 0.0  # rewards frame-to-frame change up to `motion_target`
    scene_swing: float = 0.0  # the scene's colours must differ between sounds
    scene_spread: float = 0.0  # ... and across the frame (a picture, not a wash)
    scene_calm: float = 0.0  # ... and move smoothly from frame to frame
    composition: float = 0.0  # the picture keeps the scene's large-scale colours
    texture_calm: float = 0.0  # the texture over the scene moves only where the scene does
    image_hinge: float = 0.2
    motion_target: float = 0.08
    swing_target: float = 0.25  # std of a scene pixel over different sounds (0-1 scale)
    spread_target: float = 0.2  # std of a scene's pixels within one frame
    calm_margin: float = 0.02  # mean change of the scene per frame allowed for free

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> LossWeights:
        reject_unknown(cls, d, "loss")
        try:
            return cls(**{k: float(v) for k, v in d.items()})
        except (TypeError, ValueError):
            bad = next(k for k, v in d.items() if not isinstance(v, (int, float)) or isinstance(v, bool))
            raise ValueError(f"loss.{bad} must be a number, got {d[bad]!r}") from None


def sound_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the decoded and the true (normalised) features."""
    return F.mse_loss(predicted, target)


def image_loss(image: torch.Tensor, base: torch.Tensor, hinge: float = 0.2) -> torch.Tensor:
    """Squared distance to the base image beyond a per-pixel allowance of `hinge`."""
    return F.relu((image - base).abs() - hinge).pow(2).mean()


def noise_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: mean absolute difference between neighbouring pixels."""
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs().mean()
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs().mean()
    return dx + dy


def stripes_loss(image: torch.Tensor) -> torch.Tensor:
    """Fine stripes: the mean absolute second difference of the picture's column profile
    (its mean over rows) plus that of its row profile. A stripe keeps its sign down the
    whole column, so it survives the mean; the edges of soft fields curve and average
    away, and second differences leave broad gradients alone."""

    def curvature(profile: torch.Tensor) -> torch.Tensor:
        return (profile[..., 2:] - 2.0 * profile[..., 1:-1] + profile[..., :-2]).abs().mean()

    return curvature(image.mean(dim=-2)) + curvature(image.mean(dim=-1))


def soft_color_histogram(
    image: torch.Tensor, bins: int = 4, stride: int = 4, sharpness: float = 5.0
) -> torch.Tensor:
    """Differentiable RGB histogram with bins**3 cells, one per image (rows sum to 1).

    Each pixel spreads its weight over nearby cells with a Gaussian kernel, so moving a
    colour changes the histogram smoothly. Only every `stride`-th pixel is used: the
    full-resolution version costs as much as the generator step.
    """
    pixels = image[..., ::stride, ::stride].flatten(2)  # (B, 3, N)
    centres = (torch.arange(bins, device=image.device, dtype=image.dtype) + 0.5) / bins
    # Per-channel memberships (B, 3, N, bins), combined into (B, N, bins^3).
    d = (pixels.unsqueeze(-1) - centres) * bins
    member = torch.softmax(-sharpness * d * d, dim=-1)
    r, g, b = member[:, 0], member[:, 1], member[:, 2]
    joint = (
        r.unsqueeze(-1).unsqueeze(-1) * g.unsqueeze(-2).unsqueeze(-1) * b.unsqueeze(-2).unsqueeze(-2)
    ).flatten(2)  # (B, N, bins^3)
    return joint.mean(dim=1)


def colorfulness_loss(image: torch.Tensor, bins: int = 4) -> torch.Tensor:
    """Negative normalised entropy of the colour histogram of the whole batch, as the
    original computed it: lower when more colours are used across the batch.

    Pooling over the batch rewards pictures that differ in colour from place to place and
    moment to moment, not a fine rainbow lattice inside every crop. Ranges from -1 (every
    colour cell equally used) to 0 (a single colour).
    """
    hist = soft_color_histogram(image, bins=bins).mean(dim=0)
    entropy = -(hist * torch.log(hist + 1e-8)).sum()
    return -entropy / torch.log(torch.tensor(float(bins**3)))


def color_variance_loss(image: torch.Tensor) -> torch.Tensor:
    """Negative standard deviation of each colour channel over the image."""
    return -image.flatten(2).std(dim=2).mean()


def temporal_loss(image: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame consistency: mean squared change from the previous frame."""
    return F.mse_loss(image, previous)


def motion_loss(image: torch.Tensor, previous: torch.Tensor, target: float = 0.08) -> torch.Tensor:
    """Rewards mean absolute frame-to-frame change up to `target` (the original's
    'consecutive change' loss, capped so that it cannot ask for pure noise)."""
    return F.relu(target - (image - previous).abs().mean())


def scene_swing_loss(fields: torch.Tensor, target: float = 0.25) -> torch.Tensor:
    """Per pixel, the standard deviation over the batch (different sounds) of the scene
    fields (B, 3, h, w), hinged below `target`: what a viewer sees must change with the
    music by much more than a just-visible step."""
    return F.relu(target - fields.std(dim=0)).mean()


def scene_spread_loss(fields: torch.Tensor, target: float = 0.2) -> torch.Tensor:
    """Each field's spatial standard deviation per channel, hinged below `target`."""
    return F.relu(target - fields.flatten(2).std(dim=2)).mean()


def scene_calm_loss(field: torch.Tensor, previous: torch.Tensor, margin: float = 0.02) -> torch.Tensor:
    """Mean absolute change of the field from the previous frame beyond `margin`."""
    return F.relu((field - previous).abs().mean(dim=(1, 2, 3)) - margin).mean()


def composition_loss(image: torch.Tensor, scene: torch.Tensor, scale: int = 8) -> torch.Tensor:
    """Mean squared difference of the picture and the scene seen from afar (both averaged
    over `scale` x `scale` blocks): the texture is free, the composition is the scene's."""
    return F.mse_loss(F.avg_pool2d(image, scale), F.avg_pool2d(scene, scale))


def texture_calm_loss(
    image: torch.Tensor, scene: torch.Tensor, previous_image: torch.Tensor, previous_scene: torch.Tensor
) -> torch.Tensor:
    """Mean absolute change of the texture (picture minus scene) from one frame to the
    next: a still sound gives a still picture, and motion comes from the music's scene."""
    return ((image - scene) - (previous_image - previous_scene)).abs().mean()
