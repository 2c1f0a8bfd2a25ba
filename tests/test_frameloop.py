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


def test_paint_next_paints_what_step_feeds_back_without_the_shown_frames_effects(tiny_bundle):
    """`paint_next` (what `synd train --decoder-only` paints with) moves the loop on as
    `step` does: the same generator pictures, the same flow, frame after frame, under a
    look whose every shown-frame effect is on (and changes what is shown)."""
    from synd.frameloop import FrameLoop
    from synd.presets import Look

    look = Look(
        feedback=0.7,
        flow=1.0,
        loudness_pace=0.5,
        sections=0.2,
        hue=0.3,
        destripe=1.0,
        mirror=6.0,
        ink=0.5,
        lines=0.5,
    )
    rng = np.random.default_rng(4)
    mean, std = tiny_bundle.stats.mean, tiny_bundle.stats.std
    feats = (mean + std * rng.normal(0.0, 1.0, size=(40, len(mean)))).astype(np.float32)
    shown, painter = FrameLoop(tiny_bundle, 36, 64, look=look), FrameLoop(tiny_bundle, 36, 64, look=look)
    assert shown.flow is not None
    for row in feats:
        frame = shown.step(row)
        painted = painter.paint_next(row)
        assert torch.equal(painted, shown.previous) and torch.equal(painter.previous, painted)
        assert painter.flow.tau == shown.flow.tau and painter.flow.section == shown.flow.section
    assert not torch.allclose(frame, shown.previous, atol=0.05)  # the effects were on
