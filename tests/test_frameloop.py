"""The frame loop's one conversion to 8-bit pictures (synd.frameloop.to_rgb_uint8)."""

import numpy as np
import torch

from synd.frameloop import to_rgb_uint8


def test_frames_become_rounded_clamped_rgb_rows():
    frame = torch.zeros(1, 3, 2, 4)
    frame[0, 0] = torch.tensor([[-0.5, 0.0, 0.5, 1.0], [1.7, 0.999, 0.001, 0.2]])
    frame[0, 1] = 0.25
    frame[0, 2, 1, 3] = 1.0
    rgb = to_rgb_uint8(frame)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 4, 3) and rgb.flags["C_CONTIGUOUS"]
    assert rgb[..., 0].tolist() == [[0, 0, 128, 255], [255, 255, 0, 51]]
    assert (rgb[..., 1] == 64).all()
    assert rgb[1, 3, 2] == 255 and rgb[0, 0, 2] == 0
    # A (3, H, W) frame and a channels-last one convert the same.
    assert np.array_equal(to_rgb_uint8(frame[0]), rgb)
    assert np.array_equal(to_rgb_uint8(frame.contiguous(memory_format=torch.channels_last)), rgb)
