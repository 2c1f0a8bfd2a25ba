"""The looks' blur (synd.blur): the fast slice-sum form paints what torch's own pooling,
convolution and interpolation would."""

import pytest
import torch
import torch.nn.functional as F

from synd.blur import ShrunkBlur, gaussian_kernel, grow, shrink, slope, slope_squared


def reference_blur(x: torch.Tensor, sigma: float, k: int) -> torch.Tensor:
    """Box average, separable Gaussian with the edge replicated, bilinear growth: in
    torch's own operators."""
    n, c, h, w = x.shape
    kernel = gaussian_kernel(sigma / k)
    r = len(kernel) // 2
    y = F.avg_pool2d(x, k).reshape(n * c, 1, h // k, w // k)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), kernel.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), kernel.view(1, 1, -1, 1))
    return F.interpolate(y.reshape(n, c, h // k, w // k), size=(h, w), mode="bilinear", align_corners=False)


@pytest.mark.parametrize(
    ("size", "sigma", "k"), [((72, 128), 1.8, 2), ((216, 384), 6.0, 4), ((36, 60), 3.0, 3)]
)
def test_the_blur_is_pooling_gaussian_and_bilinear_growth(size, sigma, k):
    x = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(1))
    got = ShrunkBlur(sigma, shrink=k)(x)
    assert got.shape == x.shape
    assert torch.allclose(got, reference_blur(x, sigma, k), atol=1e-5)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_growth_is_bilinear_interpolation(k):
    x = torch.rand(1, 3, 9, 14, generator=torch.Generator().manual_seed(2))
    expected = F.interpolate(x, scale_factor=k, mode="bilinear", align_corners=False)
    assert torch.allclose(grow(x, k), expected, atol=1e-6)


def test_sizes_that_are_not_multiples_are_pooled_with_the_edge_replicated():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 2, 5)
    assert shrink(x, 2).flatten().tolist() == [0.5, 2.5, 4.0]
    assert ShrunkBlur(1.0)(torch.rand(1, 3, 37, 61)).shape == (1, 3, 37, 61)


def test_slope_is_the_root_of_its_square_with_a_floor():
    ramp = torch.linspace(0, 1, 11).view(1, 1, 1, 11).expand(1, 1, 5, 11)
    assert torch.allclose(slope_squared(ramp)[..., 1:-1], torch.full((1, 1, 5, 9), 0.01))
    assert torch.allclose(slope(ramp), slope_squared(ramp).sqrt() + 1e-4)
    assert torch.all(slope(torch.zeros(1, 1, 4, 4)) > 0)
