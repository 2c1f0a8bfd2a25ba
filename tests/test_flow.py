"""The flow: a base pattern that moves in the music's own time (synd.flow)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from synd.flow import BASE_SPEED, CELLS, SILENT_DB, Flow, bicubic_weights
from synd.frameloop import FrameLoop
from synd.judge import _autocorrelation, lab
from synd.presets import Look

BANDS = 8
NAMES = [f"mel{i}" for i in range(BANDS)] + ["loudness", "onset"]
FPS = 30.0
#: The flow's share of the loudness in a look that does not set its own.
PACE = Look().loudness_pace


def make_flow(height=72, width=128, seed=0) -> Flow:
    return Flow(NAMES, BANDS, height, width, FPS, torch.device("cpu"), seed=seed)


def frame(level: float, db: float = -20.0, onset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Raw and normalised features of one frame whose bands all sit at `level` and whose
    loudness is `db` (raw) and `level` (normalised)."""
    raw = np.r_[np.full(BANDS, level), db, onset]
    return raw, np.r_[np.full(BANDS, level), level, onset]


def speeds(flow: Flow, frames) -> np.ndarray:
    return np.array([flow.speed(*f, PACE) for f in frames])


@pytest.mark.parametrize("size", [(72, 128), (37, 61), (216, 384)])
def test_the_pattern_is_the_bicubic_upsampling_of_its_cells(size):
    """The separable upsampling paints exactly what `F.interpolate` would, at any size
    (odd ones too), in channels-last layout."""
    flow = Flow(NAMES, BANDS, *size, FPS, torch.device("cpu"), seed=3)
    flow.tau = 7.3
    cells = flow.amplitude * torch.sin(flow.freq * flow.tau + flow.phase).sum(0, keepdim=True)
    expected = torch.sigmoid(F.interpolate(cells, size=size, mode="bicubic", align_corners=False))
    got = flow.pattern()
    assert got.shape == (1, 3, *size) and got.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(got, expected, atol=1e-5)
    assert bicubic_weights(CELLS, size[0]).shape == (size[0], CELLS)


def test_loud_passages_flow_faster_than_quiet_ones_and_onsets_push():
    rng = np.random.default_rng(0)
    flow = make_flow()
    song = [frame(rng.normal(0.0, 0.3)) for _ in range(int(20 * FPS))]
    usual = speeds(flow, song).mean()
    assert 0.7 * BASE_SPEED < usual < 1.5 * BASE_SPEED
    loud = speeds(flow, [frame(1.0 + rng.normal(0.0, 0.1)) for _ in range(30)]).mean()
    quiet = speeds(flow, [frame(-1.0 + rng.normal(0.0, 0.1)) for _ in range(30)]).mean()
    assert loud > 2.0 * quiet
    steady = speeds(flow, [frame(0.0) for _ in range(60)])
    hit = flow.speed(*frame(0.0, onset=5.0), PACE)
    assert hit > 1.5 * steady[-1]


def test_the_flow_follows_the_loudness_and_slows_between_the_hits():
    rng = np.random.default_rng(1)
    flow = make_flow()

    def noted(level, loudness, onset):
        raw, normalised = frame(level, onset=onset)
        normalised[BANDS] = loudness
        return raw, normalised

    for _ in range(int(20 * FPS)):  # a song: loudness and onsets vary, the bands do not
        flow.speed(*noted(0.0, rng.normal(0.0, 1.0), rng.normal(0.0, 1.0)), PACE)
    # Loud against the song with the same bands: faster; quiet: slower.
    assert flow.speed(*noted(0.0, 2.0, 0.0), PACE) > 1.3 * flow.speed(*noted(0.0, -2.0, 0.0), PACE)
    # Between the hits (onsets weaker than usual) the flow slows below its usual pace.
    assert flow.speed(*noted(0.0, 0.0, -2.0), PACE) < 0.5 * BASE_SPEED


@pytest.mark.parametrize("pace", [0.0, 0.25, 0.5, 1.0])
def test_the_looks_loudness_pace_sets_how_much_a_loud_passage_speeds_the_flow(pace):
    """The same song heard by flows that give the loudness different shares: the speed
    gained by a passage two standard deviations louder than the song's usual is 2 x pace
    for every pace, and none without one."""
    rng = np.random.default_rng(3)
    flow = make_flow()
    for _ in range(int(20 * FPS)):
        raw, normalised = frame(0.0, onset=rng.normal(0.0, 1.0))
        normalised[BANDS] = rng.normal(0.0, 1.0)
        flow.speed(raw, normalised, pace)
    raw, normalised = frame(0.0)
    normalised[BANDS] = 0.0
    # Each call moves the running range on by one frame: after 600 frames one more moves
    # the usual and the spread by about 1/600, a 2-sigma passage's measure by ~0.3 %.
    usual = flow.speed(raw, normalised, pace)
    normalised[BANDS] = 2.0
    loud = flow.speed(raw, normalised, pace)
    assert loud - usual == pytest.approx(2.0 * pace, rel=0.05, abs=0.01)


def test_digital_silence_holds_the_pattern_still():
    flow = make_flow()
    for _ in range(300):
        flow.advance(*frame(0.0), rate=1.0, loudness=PACE)
    moving = flow.tau
    assert moving > 0.8 * BASE_SPEED * 10.0  # 10 s of music at its usual level
    before = flow.pattern()
    for _ in range(600):  # 20 s of silence: the running range forgets the music, still no flow
        flow.advance(*frame(-3.0, db=-100.0), rate=1.0, loudness=PACE)
    assert flow.tau == moving
    assert torch.equal(flow.pattern(), before)
    assert flow.speed(*frame(0.0, db=SILENT_DB), PACE) == 0.0


def test_the_pattern_changes_smoothly_with_sound_time_and_has_no_lattice():
    flow = make_flow()
    pictures = []
    for tau in np.arange(0.0, 30.0, 1 / FPS):
        flow.tau = float(tau)
        pictures.append(flow.pattern()[0].permute(1, 2, 0).numpy())
    pictures = np.stack(pictures)
    step = np.abs(np.diff(pictures, axis=0)).mean(axis=(1, 2, 3))
    # One frame at the usual speed: a small move (about 4 of 255), and never a jump.
    assert step.max() < 0.04 and step.max() < 2.0 * np.median(step)
    far = np.abs(pictures[::90][1:] - pictures[::90][:-1]).mean(axis=(1, 2, 3))
    assert far.mean() > 10 * step.mean()  # ...while seconds apart the composition differs
    luma = lab(pictures[::60].astype(np.float64))[..., 0]
    ac = _autocorrelation()
    assert max(ac.tiling(x) for x in luma) < 0.4


def test_the_rate_scales_the_flow_and_zero_stops_it():
    a, b, still = make_flow(), make_flow(), make_flow()
    for _ in range(90):
        f = frame(0.0)
        a.advance(*f, rate=1.0, loudness=PACE)
        b.advance(*f, rate=2.0, loudness=PACE)
        still.advance(*f, rate=0.0, loudness=PACE)
    assert b.tau == 2.0 * a.tau and still.tau == 0.0


def test_in_the_frame_loop_the_flow_moves_the_picture_and_off_it_is_the_fixed_pattern(tiny_bundle):
    rng = np.random.default_rng(2)
    mean, std = tiny_bundle.stats.mean, tiny_bundle.stats.std
    level = rng.normal(0.0, 0.5, size=(150, 1))
    feats = (mean + std * (level + 0.2 * rng.normal(size=(150, len(mean))))).astype(np.float32)
    fixed, flowing = FrameLoop(tiny_bundle, 36, 64), FrameLoop(tiny_bundle, 36, 64, look=Look(flow=1.0))
    assert flowing.flow is not None

    def drift(loop) -> float:
        with torch.inference_mode():
            frames = [loop.step(row) for row in feats]
        return float((frames[-1] - frames[60]).abs().mean())

    assert drift(flowing) > 3.0 * drift(fixed)
    assert torch.equal(fixed.pattern, FrameLoop(tiny_bundle, 36, 64).pattern)


def test_section_follows_the_passage_level_slowly_and_holds_on_silence():
    rng = np.random.default_rng(3)
    flow = make_flow()
    for _ in range(int(20 * FPS)):  # a verse at the song's usual level
        flow.advance(*frame(rng.normal(0.0, 0.3)), rate=1.0, loudness=PACE)
    verse = flow.section
    assert abs(verse) < 0.5
    flow.advance(*frame(1.5), rate=1.0, loudness=PACE)  # one loud frame is a hit, not a section
    assert abs(flow.section - verse) < 0.1
    for _ in range(int(4 * FPS)):  # 4 s of a loud chorus
        flow.advance(*frame(1.5 + rng.normal(0.0, 0.1)), rate=1.0, loudness=PACE)
    assert flow.section > verse + 1.0
    for _ in range(int(8 * FPS)):  # a quiet bridge turns it the other way
        flow.advance(*frame(-1.5 + rng.normal(0.0, 0.1)), rate=1.0, loudness=PACE)
    bridge = flow.section
    assert bridge < verse - 0.5
    for _ in range(int(10 * FPS)):  # silence: the palette holds where the music left it
        flow.advance(*frame(-3.0, db=-100.0), rate=1.0, loudness=PACE)
    assert flow.section == bridge


def test_on_the_strongest_hits_section_glides_instead_of_snapping():
    rng = np.random.default_rng(4)
    flow = make_flow()
    for _ in range(int(20 * FPS)):  # a quiet verse with small hits...
        flow.advance(
            *frame(-1.0 + rng.normal(0.0, 0.3), onset=abs(rng.normal(0.0, 1.0))), rate=1.0, loudness=PACE
        )
    before = flow.section
    path = []
    for _ in range(int(FPS)):  # ...then a loud passage that enters on huge ones
        flow.advance(*frame(2.0, onset=8.0), rate=1.0, loudness=PACE)
        path.append(flow.section)
    turn = path[-1] - before
    assert turn > 1.5  # it gets there within the second...
    # ...but glides (a time constant of SECTION_GLIDE_S at least, 1 s: about 15% of the
    # turn in the first 3 frames); without that floor they would make about 40% of it, a
    # snap of the palette on the hit.
    assert path[2] - before < 0.3 * turn
    assert np.all(np.diff(path) > 0)  # one way, no overshoot back


def test_in_the_frame_loop_sections_turn_the_palette_around_the_looks_own_hue(tiny_bundle):
    look = Look(flow=1.0, hue=0.3, sections=0.2)
    loop, fixed = (
        FrameLoop(tiny_bundle, 36, 64, look=look),
        FrameLoop(tiny_bundle, 36, 64, look=Look(hue=0.3)),
    )
    assert loop.hue() == fixed.hue() == 0.3  # the song has not been heard yet
    loop.flow.section = 1.0
    assert 0.3 + 0.1 < loop.hue() < 0.3 + 0.2  # soft-limited: never beyond look.sections
    loop.flow.section = -50.0
    assert abs(loop.hue() - 0.1) < 1e-3
    loop.step(tiny_bundle.stats.mean.astype(np.float32))
    assert abs(loop._hue[0] - loop.hue()) < 1e-6  # the frame was turned by that hue
