"""Each loss, followed downhill for a few gradient steps, changes an image the way its name says."""

import torch

from synd import losses as L


def descend(image: torch.Tensor, loss_fn, steps: int = 20, lr: float = 0.05) -> torch.Tensor:
    """Gradient descent on the pixels (kept in [0, 1] through a logit parametrisation)."""
    logits = torch.logit(image.clamp(1e-3, 1 - 1e-3)).clone().requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(torch.sigmoid(logits)).backward()
        opt.step()
    return torch.sigmoid(logits).detach()


def rand_image(seed: int, shape=(2, 3, 32, 32)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_sound_loss_moves_prediction_to_target():
    target = torch.randn(4, 10)
    pred = torch.zeros(4, 10, requires_grad=True)
    before = L.sound_loss(pred, target).item()
    L.sound_loss(pred, target).backward()
    with torch.no_grad():
        pred -= 5.0 * pred.grad
    assert L.sound_loss(pred, target).item() < before * 0.9


def test_image_loss_pulls_towards_base_beyond_hinge_only():
    base = torch.full((1, 3, 16, 16), 0.2)
    far = torch.full((1, 3, 16, 16), 0.9)
    moved = descend(far, lambda x: L.image_loss(x, base, hinge=0.2))
    assert (moved - base).abs().mean() < (far - base).abs().mean() - 0.1
    near = base + 0.1  # inside the hinge: no pull at all
    assert L.image_loss(near, base, hinge=0.2).item() == 0.0


def test_noise_loss_smooths_the_image():
    img = rand_image(0)
    out = descend(img, L.noise_loss)
    assert L.noise_loss(out) < 0.6 * L.noise_loss(img)


def test_stripes_loss_finds_a_stripe_lattice_not_soft_fields():
    y, x = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    fields = 0.5 + 0.3 * torch.sin(6 * x + 4 * torch.sin(5 * y))  # soft, curving shapes
    stripes = 0.5 + 0.3 * torch.sin(2 * torch.pi * x * 64 / 6)  # vertical, 6 px apart
    gradient = x  # a broad ramp: no fine structure at all
    as_image = lambda t: t.expand(1, 3, 64, 64)  # noqa: E731
    faint = as_image(fields + 0.1 * (stripes - 0.5))  # the fields with faint stripes over them
    assert L.stripes_loss(as_image(gradient)).item() < 1e-6
    assert L.stripes_loss(faint).item() > 5 * L.stripes_loss(as_image(fields)).item()
    # Turned a quarter: horizontal stripes cost the same.
    assert abs(L.stripes_loss(faint.transpose(-1, -2)).item() - L.stripes_loss(faint).item()) < 1e-6
    out = descend(faint, L.stripes_loss, steps=60, lr=0.05)
    assert L.stripes_loss(out) < 0.5 * L.stripes_loss(faint)


def distinct_colours(img: torch.Tensor, bins: int = 4) -> int:
    q = (img.clamp(0, 0.999) * bins).long()
    codes = q[:, 0] * bins * bins + q[:, 1] * bins + q[:, 2]
    return len(torch.unique(codes))


def test_colorfulness_loss_adds_colours():
    # A nearly grey image: few colour cells used.
    img = 0.5 + 0.05 * (rand_image(1) - 0.5)
    out = descend(img, L.colorfulness_loss, steps=60, lr=0.1)
    assert L.colorfulness_loss(out) < L.colorfulness_loss(img) - 0.2
    assert distinct_colours(out) > distinct_colours(img) + 10


def test_colorfulness_loss_prefers_many_colours_to_one():
    one = torch.full((1, 3, 32, 32), 0.3)
    many = rand_image(2, (1, 3, 32, 32))
    assert L.colorfulness_loss(many) < L.colorfulness_loss(one) - 0.5


def test_color_variance_loss_spreads_channels():
    img = 0.5 + 0.02 * (rand_image(3) - 0.5)
    out = descend(img, L.color_variance_loss)
    assert out.flatten(2).std(dim=2).mean() > 3 * img.flatten(2).std(dim=2).mean()


def test_temporal_loss_reduces_change():
    prev = rand_image(4)
    img = rand_image(5)
    out = descend(img, lambda x: L.temporal_loss(x, prev))
    assert (out - prev).abs().mean() < 0.7 * (img - prev).abs().mean()


def test_motion_loss_increases_change_up_to_target():
    prev = rand_image(6)
    still = (prev + 0.01 * (rand_image(7) - 0.5)).clamp(0, 1)  # |x - prev| has no slope at 0
    out = descend(still, lambda x: L.motion_loss(x, prev, target=0.1), steps=40)
    change = (out - prev).abs().mean().item()
    assert change > 0.05
    assert L.motion_loss(out, prev, target=0.1) < L.motion_loss(still, prev, target=0.1)
