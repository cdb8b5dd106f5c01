"""exposure: a gain in linear light, held to colour-science's sRGB transfer functions, and auto.

Tolerances: against colour-science's IEC 61966-2-1 decoding and encoding, within 1 level on 8-bit
and on 16-bit output (both round; the tables are computed in float64).
"""

from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
from helpers import run_with_report

from imgenh.ops.contract import Stats
from imgenh.ops.tone import AUTO_EXPOSURE_CLIPPED, exposure_curve
from imgenh.pipeline import run_op

_PRINT_OPTIONS = np.get_printoptions()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour warns that matplotlib is missing
    import colour
np.set_printoptions(**_PRINT_OPTIONS)  # colour switches numpy to legacy printing


def _reference(img: np.ndarray, stops: float) -> np.ndarray:
    top = np.iinfo(img.dtype).max
    lin = colour.cctf_decoding(img.astype(np.float64) / top, function="sRGB") * 2.0**stops
    out = colour.cctf_encoding(np.clip(lin, 0.0, 1.0), function="sRGB")
    return np.rint(out * top)


@pytest.mark.parametrize("stops", [-2.0, -0.5, 0.7, 1.5])
def test_exposure_is_a_gain_in_linear_light_like_colour_science(photo8, photo16, stops):
    for img in (photo8, photo16):
        out = run_op(img, "exposure", stops=stops)
        assert np.abs(out.astype(np.int64) - _reference(img, stops)).max() <= 1, (img.dtype, stops)
    assert np.array_equal(run_op(photo8, "exposure", stops=0), photo8)


def _overexposed(img: np.ndarray, gain: float = 2.5) -> np.ndarray:
    """+log2(gain) stops, as a camera JPEG (quality 92) holds them."""
    lin = colour.cctf_decoding(img / 255.0, function="sRGB") * gain
    seen = np.rint(colour.cctf_encoding(np.clip(lin, 0, 1), function="sRGB") * 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", seen, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """scikit-image's astronaut, 256 px wide, BGR: a portrait with skin, a white suit and a flag."""
    data = pytest.importorskip("skimage.data")
    rgb = cv2.resize(data.astronaut(), (256, 256), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb[..., ::-1])


def test_exposure_auto_pulls_an_overexposed_photo_back(astronaut):
    seen = _overexposed(astronaut)
    out, report = run_with_report(seen, "exposure", stops="auto")
    assert report["clipped"] > AUTO_EXPOSURE_CLIPPED[1] and report["strength"] == 1.0
    assert -1.6 < report["stops"] < -0.5  # +1.3 stops were added
    err_before = np.abs(seen.astype(float) - astronaut).mean()
    err_after = np.abs(out.astype(float) - astronaut).mean()
    assert err_after < 0.6 * err_before, (err_before, err_after)
    # What clipped stays the brightest part: white in, brighter out than anything unclipped.
    white, unclipped = seen.min(axis=2) == 255, seen.max(axis=2) < 250
    assert white.any() and out[white].min() > out[unclipped].max()


def test_over_exposure_reads_the_sample_as_the_whole_frame(astronaut):
    # stops: auto reads shares of the frame from every 4th pixel of every 4th row (1/16 of the cost).
    seen = _overexposed(cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_CUBIC))
    stats = Stats(seen)
    for channel in range(3):
        (levels, full), (sampled_levels, sampled) = stats.histogram(channel), stats.sampled_histogram(channel)
        assert np.array_equal(levels, sampled_levels) and sampled.sum() == full.sum() // 16
        for level in (0.5, 217 / 255, 1 - 1.5 / 255):
            share_full = full[levels >= level].sum() / full.sum()
            assert abs(sampled[levels >= level].sum() / sampled.sum() - share_full) < 0.01, (channel, level)


def test_exposure_auto_max_stops_caps_the_pull_and_headroom_keeps_clipped_white(astronaut):
    seen = _overexposed(astronaut)
    out, report = run_with_report(seen, "exposure", stops="auto", max_stops=0.3, headroom=1.0)
    assert report["strength"] == 1.0 and report["stops"] == pytest.approx(-0.3, abs=1e-4)
    # Below the shoulder's knee (linear 0.6) the levels are those of a 0.3-stop exposure change.
    plain = run_op(seen, "exposure", stops=-0.3)
    below = seen.max(axis=2) < 190  # linear 0.51
    assert np.abs(out[below].astype(int) - plain[below]).max() <= 1
    # headroom 1: the shoulder ends at white, so what clipped stays white.
    white = seen.min(axis=2) == 255
    assert white.any() and out[white].min() >= 254
    default_top, _ = run_with_report(seen, "exposure", stops="auto", max_stops=0.3)
    assert default_top[white].max() < 250  # the default headroom lands them below white
    with pytest.raises(ValueError, match="max_stops"):
        run_op(seen, "exposure", stops=-1.0, max_stops=0.3)


def _clip_channels(img: np.ndarray, channels: tuple[int, ...], share: float) -> np.ndarray:
    """``img`` with each of ``channels`` scaled so that ``share`` of the frame clips in it."""
    out = img.copy()
    for c in channels:
        plane = img[..., c].astype(float)
        gain = 255.0 / np.percentile(plane, 100 * (1 - share))
        out[..., c] = np.clip(plane * gain, 0, 255).astype(np.uint8)
    return out


def test_exposure_auto_leaves_a_well_exposed_photo_and_a_one_channel_clip_alone(photo8):
    out, report = run_with_report(photo8, "exposure", stops="auto")
    assert np.array_equal(out, photo8) and report["stops"] == 0.0
    # A warm cast that clips red alone is no over-exposure, however much clips: red clipped on 35%
    # of the frame (averaged over the channels, more than the full correction's share).
    warm = _clip_channels(photo8, (2,), 0.35)
    red_clipped = (warm[..., 2] == 255).mean()
    assert red_clipped > 0.3 and red_clipped / 3 > AUTO_EXPOSURE_CLIPPED[1]
    out, report = run_with_report(warm, "exposure", stops="auto")
    assert np.array_equal(out, warm) and report["strength"] == 0.0
    # The same share clipped in two channels, as an over-exposure of a coloured light clips, is read
    # and pulled back.
    yellow = _clip_channels(photo8, (1, 2), 0.35)
    out, report = run_with_report(yellow, "exposure", stops="auto")
    assert report["clipped"] > AUTO_EXPOSURE_CLIPPED[1]
    assert report["strength"] > 0.0 and report["stops"] < 0.0 and out.mean() < yellow.mean()


def test_exposure_auto_leaves_a_product_shot_on_white_alone(astronaut):
    # Half the frame pure white: as much clipped as an over-exposure, but no run-up of near-whites.
    canvas = np.full((362, 362, 3), 255, np.uint8)
    canvas[53:309, 53:309] = astronaut
    out, report = run_with_report(canvas, "exposure", stops="auto")
    assert report["clipped"] > AUTO_EXPOSURE_CLIPPED[1]
    assert report["strength"] == 0.0 and np.array_equal(out, canvas)


def test_exposure_shoulder_is_monotone_and_ends_above_the_gain():
    x = np.linspace(0.0, 1.0, 4097)
    for gain in (0.35, 0.6, 0.9):
        y = exposure_curve(x, gain, shoulder=True)
        assert np.all(np.diff(y) >= 0)
        plain = exposure_curve(x, gain)
        assert y[-1] > plain[-1] and np.allclose(y[x < 0.7], plain[x < 0.7])
    assert np.allclose(exposure_curve(x, 1.0, shoulder=True), x, atol=1e-12)


def test_exposure_rejects_a_word_it_does_not_know(photo8):
    with pytest.raises(ValueError, match="stops"):
        run_op(photo8, "exposure", stops="bright")
