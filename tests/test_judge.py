"""The judge (synd.judge) and `synd eval --video`, on synthetic videos with known answers.

Every clip is encoded to a real file (H.264 and AAC through synd's writer, or another
codec written straight with PyAV: "another program") and decoded back.
"""

import json
import subprocess
import sys

import av
import numpy as np
import pytest

from synd.judge import JUDGE_KEYS, JUDGE_RATE, judge_video
from synd.video import VideoWriter

FPS = 30
W, H = 320, 180
SECONDS = 12.0
N = int(SECONDS * FPS)


def noise_music(seconds: float = SECONDS, seed: int = 0) -> np.ndarray:
    """A mono signal at JUDGE_RATE with some sound in it (irrelevant to the picture)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * JUDGE_RATE)) / JUDGE_RATE
    return (0.1 * np.sin(2 * np.pi * 220 * t) + rng.normal(0, 0.02, len(t))).astype(np.float32)


def encode(path, frames, audio=None, fps=FPS):
    """Frames (an iterable of (H, W, 3) uint8) and mono audio at JUDGE_RATE -> H.264/AAC."""
    frames = list(frames)
    h, w = frames[0].shape[:2]
    with VideoWriter(
        path, w, h, fps, crf=12, preset="ultrafast", audio=audio, audio_rate=JUDGE_RATE
    ) as writer:
        for f in frames:
            writer.write(f)
    return path


def solid(value) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def judged(tmp_path, frames, audio=None, name="clip.mp4"):
    audio = noise_music() if audio is None else audio
    return judge_video(encode(tmp_path / name, frames, audio)).numbers


def strobe(hz: float, patch: tuple[float, float] | None = None):
    """Black/white square wave at `hz`; only inside a centred patch (w, h fractions) if given."""
    for i in range(N):
        on = int(i * 2 * hz / FPS) % 2 == 1
        frame = solid(40)
        if patch is None:
            frame[:] = 255 if on else 0
        else:
            pw, ph = int(W * patch[0]), int(H * patch[1])
            y0, x0 = (H - ph) // 2, (W - pw) // 2
            frame[y0 : y0 + ph, x0 : x0 + pw] = 255 if on else 0
        yield frame


def test_a_still_picture_neither_moves_nor_swings(tmp_path):
    yy, xx = np.mgrid[:H, :W]
    picture = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, 90)], -1).astype(np.uint8)
    n = judged(tmp_path, [picture] * N)
    assert n["motion_de"] < 0.2 and n["swing_de"] < 0.3
    assert n["flashes_max"] == 0 and n["flash_hazard_s"] == 0
    assert n["sound_frac"] < 0.05
    assert n["spread_de"] > 20  # a picture, not a flat field


def test_a_full_screen_10_hz_strobe_is_a_hazard_the_whole_time(tmp_path):
    n = judged(tmp_path, strobe(10))
    assert n["flashes_max"] >= 9.5
    assert n["flash_hazard_s"] >= hazard_from(10)
    assert n["motion_de"] > 50  # black <-> white is 100 delta-E


def test_a_2_hz_strobe_is_no_hazard(tmp_path):
    n = judged(tmp_path, strobe(2))
    assert 1.5 <= n["flashes_max"] <= 2.5
    assert n["flash_hazard_s"] == 0


def test_only_a_quarter_of_the_screen_or_more_makes_a_hazard(tmp_path):
    small = judged(tmp_path, strobe(10, patch=(0.4, 0.5)), name="small.mp4")  # 20 % of the screen
    assert small["flash_hazard_s"] == 0 and small["flashes_max"] == 0
    large = judged(tmp_path, strobe(10, patch=(0.6, 0.6)), name="large.mp4")  # 36 %
    assert large["flash_hazard_s"] >= hazard_from(10)


def hazard_from(hz: float) -> float:
    """Seconds of hazard in a clip strobing at `hz` from its start: from the 7th transition."""
    return SECONDS - 7 / (2 * hz) - 0.1


def test_a_saturated_red_flash_counts_where_luminance_alone_would_not(tmp_path):
    """Dark red <-> black changes Y by less than 0.1 but is a red flash (5 Hz); a grey of
    the same luminance flashing the same way is no hazard."""

    def frames(colour):
        for i in range(N):
            yield solid(colour) if int(i * 10 / FPS) % 2 else solid(0)

    assert judged(tmp_path, frames((150, 0, 0)), name="red.mp4")["flash_hazard_s"] >= hazard_from(5)
    grey = judged(tmp_path, frames(72), name="grey.mp4")
    assert grey["flash_hazard_s"] == 0 and grey["flashes_max"] == 0


def test_a_checkerboard_tiles_and_a_gradient_does_not(tmp_path):
    yy, xx = np.mgrid[:H, :W]
    checker = (((yy // 20 + xx // 20) % 2) * 255).astype(np.uint8)[..., None].repeat(3, -1)
    assert judged(tmp_path, [checker] * N, name="checker.mp4")["tiling"] > 0.9
    for gradient in (
        xx * 255 // W,
        (xx + yy) * 255 // (W + H),
        255 - np.hypot(xx - W / 2, yy - H / 2) * 255 // np.hypot(W / 2, H / 2),
    ):
        picture = gradient.astype(np.uint8)[..., None].repeat(3, -1)
        assert judged(tmp_path, [picture] * N, name="gradient.mp4")["tiling"] < 0.1


def test_a_flat_colour_has_no_spread(tmp_path):
    n = judged(tmp_path, [solid((200, 60, 120))] * N)
    assert n["spread_de"] < 0.5 and n["tiling"] == 0


def _band_song(seconds: float, seed: int):
    """Tones in 6 bands whose loudness drifts independently; their log levels per frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * JUDGE_RATE)) / JUDGE_RATE
    frames = int(seconds * FPS)
    # Smooth random walks of each band's level in dB, one value per video frame.
    steps = rng.normal(0, 1.0, (frames, 6))
    levels = np.cumsum(steps, axis=0)
    levels = (levels - levels.mean(0)) / levels.std(0) * 6.0 - 20.0
    per_sample = np.repeat(levels, JUDGE_RATE // FPS, axis=0)[: len(t)]
    audio = np.zeros(len(t))
    for b, f in enumerate((80, 250, 600, 1500, 3500, 8000)):
        audio += 10 ** (per_sample[:, b] / 20) * np.sin(2 * np.pi * f * t + b)
    return audio.astype(np.float32), levels


def srgb_from_lab(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65) -> sRGB on the 0-1 scale (clipped): the inverse of synd.judge.lab."""
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], -1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * [0.95047, 1.0, 1.08883]
    rgb = (
        xyz
        @ np.linalg.inv(
            [
                [0.4124564, 0.3575761, 0.1804375],
                [0.2126729, 0.7151522, 0.0721750],
                [0.0193339, 0.1191920, 0.9503041],
            ]
        ).T
    )
    rgb = np.clip(rgb, 0, 1)
    return np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * rgb ** (1 / 2.4) - 0.055)


def test_a_picture_made_from_the_band_energies_is_explained_by_the_sound(tmp_path):
    """Each 16x9 cell's L*, a*, b* is a fixed linear mix of the six bands' levels (dB)."""
    seconds = 40.0
    audio, levels = _band_song(seconds, seed=3)
    rng = np.random.default_rng(4)
    weights = rng.normal(0, 1, (6, 9 * 16 * 3)) * np.tile([6.0, 5.0, 5.0], 9 * 16)
    unit = (levels - levels.mean(0)) / levels.std(0)
    lab = (np.tile([55.0, 0.0, 0.0], 9 * 16) + unit @ weights / np.sqrt(6)).reshape(-1, 9, 16, 3)
    pictures = srgb_from_lab(lab)
    frames = (np.kron(pictures, np.ones((1, H // 9, W // 16, 1))) * 255).round().astype(np.uint8)
    n = judge_video(encode(tmp_path / "bands.mp4", frames, audio)).numbers
    assert n["sound_frac"] > 0.8
    assert n["sound_de"] > 0.75 * n["swing_de"]  # nearly all of each cell's swing


def test_a_picture_driven_by_a_clock_is_not_explained_by_the_sound(tmp_path):
    seconds = 40.0
    audio, _ = _band_song(seconds, seed=3)
    rng = np.random.default_rng(5)
    phase = rng.uniform(0, 2 * np.pi, (9, 16, 3))
    t = np.arange(int(seconds * FPS))[:, None, None, None] / FPS
    pictures = 0.5 + 0.3 * np.sin(2 * np.pi * t / 7.3 + phase)
    frames = (np.kron(pictures, np.ones((1, H // 9, W // 16, 1))) * 255).astype(np.uint8)
    n = judge_video(encode(tmp_path / "clock.mp4", frames, audio)).numbers
    assert n["sound_frac"] < 0.1
    assert n["swing_de"] > 20 and n["variety_de"] > 10  # it moves, just not with the music


def test_motion_that_follows_the_onsets_syncs_and_a_steady_drift_does_not(tmp_path):
    """Clicks at irregular times; the picture jumps on each click (then rests) or drifts."""
    rng = np.random.default_rng(6)
    audio = np.zeros(int(SECONDS * JUDGE_RATE), np.float32)
    hits = np.sort(rng.choice(np.arange(FPS, N - 5), 25, replace=False))
    for h in hits:
        a = int(h * JUDGE_RATE / FPS)
        audio[a : a + 2000] += rng.normal(0, 0.5, 2000) * np.linspace(1, 0, 2000)
    level = np.zeros(N)
    for h in hits:
        level[h:] += 1
    jumping = [solid(int(40 + 150 * ((v * 0.37) % 1.0))) for v in level]
    drifting = [solid(int(40 + 150 * (i / N))) for i in range(N)]
    jump = judged(tmp_path, jumping, audio, "jump.mp4")
    drift = judged(tmp_path, drifting, audio, "drift.mp4")
    assert jump["onset_sync"] > 0.5 and jump["beat_sync"] > 0.6
    assert drift["onset_sync"] < 0.2 and drift["beat_sync"] < 0.2


def _write_with_pyav(path, frames, audio):
    """A video written straight by PyAV (VP9 and Opus in WebM): not synd's writer."""
    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx-vp9", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = out.add_stream("libopus", rate=48000)
        sound.layout = "mono"
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(f, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        pcm = np.repeat(audio, 2)[None, :]  # 24 kHz -> 48 kHz, float planar
        for a in range(0, pcm.shape[1], 960):
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, a : a + 960]), format="flt", layout="mono"
            )
            chunk.sample_rate = 48000
            chunk.pts = a
            out.mux(sound.encode(chunk))
        out.mux(sound.encode(None))
    return path


SYND = [sys.executable, "-m", "synd"]


def test_synd_eval_video_scores_another_programs_video_with_json_and_report(tmp_path):
    clip = _write_with_pyav(tmp_path / "other.webm", strobe(10), noise_music())
    calm = encode(tmp_path / "calm.mp4", strobe(1), noise_music())
    out = tmp_path / "eval.json"
    report = tmp_path / "report"
    proc = subprocess.run(
        [
            *SYND,
            "eval",
            "--video",
            str(clip),
            "--video",
            str(calm),
            "--json",
            str(out),
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.read_text())
    for key in JUDGE_KEYS:
        assert key in result, key
        assert result["tracks"]["other.webm"][key] is not None or key == "variety_de"
    assert result["tracks"]["other.webm"]["flash_hazard_s"] >= hazard_from(10)
    assert result["tracks"]["calm.mp4"]["flash_hazard_s"] == 0
    assert result["flash_hazard_s"] == pytest.approx(
        result["tracks"]["other.webm"]["flash_hazard_s"], abs=0.05
    )
    assert result["passed"]["flash_hazard_s"] is False
    # The side-by-side table names both videos; the report has each one's plot and sheet.
    assert "other.webm" in proc.stdout and "calm.mp4" in proc.stdout
    page = (report / "index.html").read_text()
    for k in (0, 1):
        assert (report / f"judge_motion_{k}.png").stat().st_size > 1000
        assert (report / f"judge_sheet_{k}.png").stat().st_size > 1000
        assert f"judge_sheet_{k}.png" in page
    assert "What a viewer sees: other.webm" in page


def test_synd_eval_video_without_sound_needs_audio(tmp_path):
    silent = tmp_path / "silent.mp4"
    encode(silent, [solid(90)] * N)
    proc = subprocess.run(
        [*SYND, "eval", "--video", str(silent)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "--audio" in proc.stderr
    song = tmp_path / "song.wav"
    from synd.audio import write_wav

    write_wav(song, noise_music(), JUDGE_RATE)
    proc = subprocess.run(
        [*SYND, "eval", "--video", str(silent), "--audio", str(song)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "motion_de" in proc.stdout


def test_synd_eval_refuses_a_file_that_is_not_a_video(tmp_path):
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    proc = subprocess.run([*SYND, "eval", "--video", str(bogus)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("synd: error:") and proc.stderr.strip().count("\n") == 0
