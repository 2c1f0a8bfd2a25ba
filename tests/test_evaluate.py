"""`synd eval`: metrics measured on the frames that render makes, JSON and HTML out."""

import json
import subprocess
import sys

import numpy as np
import pytest

from synd.audio import write_wav
from synd.evaluate import TARGETS, WARMUP_FRAMES, evaluate, evaluate_track, silence_flicker, summarize
from synd.features import FeatureExtractor
from synd.presets import Look
from synd.quality import frame_change
from synd.render import render_frames
from tests.helpers.audio import music_clip

SYND = [sys.executable, "-m", "synd"]


def test_track_measurements_are_those_of_the_rendered_frames(tiny_bundle):
    raw = FeatureExtractor(tiny_bundle.features).offline(music_clip(2, seconds=2.0))
    look = Look(feedback=0.5, smoothing=0.0)
    track = evaluate_track(tiny_bundle, look, raw, (96, 64), seed=1)
    frames = np.stack(list(render_frames(tiny_bundle, look, raw, (96, 64), seed=1)))
    assert track.given.shape == track.decoded.shape == (len(raw), tiny_bundle.features.dim)
    np.testing.assert_allclose(track.change, frame_change(frames), atol=1e-9)
    np.testing.assert_allclose(track.given, tiny_bundle.stats.normalize(raw), atol=1e-5)
    assert track.thumbs.shape == (len(raw), 16 * 16 * 3)
    assert np.array_equal(track.onset, raw[:, tiny_bundle.features.names.index("onset")])


def test_a_turned_hue_is_undone_before_the_decoder_reads(tiny_bundle):
    raw = FeatureExtractor(tiny_bundle.features).offline(music_clip(3, seconds=1.0))
    plain = evaluate_track(tiny_bundle, Look(), raw, (64, 64))
    turned = evaluate_track(tiny_bundle, Look(hue=0.25), raw, (64, 64))
    assert np.abs(turned.colour - plain.colour).max() > 0.5  # the colours did change
    # Only 8-bit rounding and clipping differ.
    assert np.abs(turned.decoded - plain.decoded).mean() < 0.05 * np.abs(plain.decoded).mean()


def test_silence_without_feedback_is_perfectly_still(tiny_bundle):
    assert silence_flicker(tiny_bundle, Look(feedback=0.0), (64, 64), 30.0) == 0.0


def test_summary_combines_tracks(tiny_bundle):
    raws = [FeatureExtractor(tiny_bundle.features).offline(music_clip(k, seconds=2.0)) for k in (4, 5)]
    tracks = [evaluate_track(tiny_bundle, Look(), r, (64, 64)) for r in raws]
    result = summarize(tracks, 0.001, 30.0)
    for key in TARGETS:
        assert np.isfinite(result[key]), key
    assert -15 <= result["sync_lag_frames"] <= 15 and len(result["sync_curve"]) == 31
    expected_colour = np.median(np.concatenate([t.colour for t in tracks]))
    assert result["colorfulness"] == pytest.approx(expected_colour, abs=0.01)
    with pytest.raises(ValueError, match="too short"):
        summarize([evaluate_track(tiny_bundle, Look(), raws[0][:WARMUP_FRAMES], (64, 64))], 0.0, 30.0)


def test_with_intensity_zero_nothing_can_read_the_sound(tiny_bundle, tmp_path):
    """With intensity 0 the generator never hears the sound: nothing can read it back."""
    song = tmp_path / "s.wav"
    write_wav(song, music_clip(6, seconds=3.0), 24000)
    deaf, _ = evaluate(tiny_bundle, Look(intensity=0.0, feedback=0.0), [song], (64, 64), progress=False)
    assert deaf["probe_r2"] <= 0.05
    assert abs(deaf["sync_corr"]) < 1e-6 and deaf["flicker_silence"] == 0.0


def test_cli_eval_writes_json_keys_at_top_level_and_a_report(tiny_bundle, tmp_path):
    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    songs = []
    for k in range(2):
        songs.append(tmp_path / f"s{k}.wav")
        write_wav(songs[-1], music_clip(k, seconds=2.0), 24000)
    out, report = tmp_path / "eval.json", tmp_path / "report"
    proc = subprocess.run(
        [
            *SYND,
            "eval",
            *map(str, songs),
            "--model",
            str(model),
            "--size",
            "96x64",
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
    for key in TARGETS:
        assert isinstance(result[key], (int, float)) and key in proc.stdout
    assert result["painted_at"] == "96x64" and result["seconds"] == pytest.approx(4.0, abs=0.1)
    page = (report / "index.html").read_text()
    for png in ("features.png", "contact_sheet.png", "sync_curve.png"):
        assert png in page and (report / png).stat().st_size > 1000
    assert "sound_r2" in page and "s0.wav" in page


def test_cli_eval_of_unreadable_audio_is_one_line(tiny_bundle, tmp_path):
    model = tmp_path / "tiny.safetensors"
    tiny_bundle.save(model)
    bad = tmp_path / "bad.flac"
    bad.write_bytes(b"\x00" * 100)
    proc = subprocess.run(
        [*SYND, "eval", str(bad), "--model", str(model), "--json", str(tmp_path / "e.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "bad.flac" in proc.stderr
    assert not (tmp_path / "e.json").exists()
