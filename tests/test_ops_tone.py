"""Tone and contrast operators held to their references.

Tolerances, stated per test:
- against the documented formula: exact on 8 and 16 bit (the same curve rounded once), unless noted;
- against ImageMagick 6.9 (Q16 HDRI): within 1 LSB on 8-bit output (its 8-bit PNG writer truncates
  where we round, so about half the values sit exactly 1 below ours) and within 1 LSB of 16 bits on
  16-bit output, where both round;
- against OpenCV equalizeHist / CLAHE: exact; against scikit-image adjust_log: exact on float,
  within 1 LSB on integers (it truncates).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from helpers import assert_images_close, fused_and_sequential, magick, requires_magick, run_with_report

from imgenh.ops.tone import (
    auto_gamma_value,
    clahe_levels,
    equalize_lut,
    linear_stretch,
    pchip_slopes,
    sigmoid_curve,
    stretch_points,
)
from imgenh.pipeline import run_op

LUMA_RGB = (0.212656, 0.715158, 0.072186)


def levels_of(img: np.ndarray) -> np.ndarray:
    """Image levels as float64 in [0, 1]."""
    return img.astype(np.float64) / np.iinfo(img.dtype).max


def quantise(f: np.ndarray, dtype) -> np.ndarray:
    """Levels in [0, 1] -> ``dtype``, rounded to nearest."""
    top = np.iinfo(dtype).max
    return np.clip(np.rint(np.asarray(f) * top), 0, top).astype(dtype)


def assert_rounds_to(actual: np.ndarray, f: np.ndarray, name: str) -> None:
    """Assert ``actual`` is ``f`` (levels in [0, 1]) rounded to the image depth: exact, except that a
    value within 1e-6 of a half-way tie may round either way (float error decides those)."""
    top = np.iinfo(actual.dtype).max
    s = np.clip(np.asarray(f, np.float64) * top, 0, top)
    lo, hi = np.floor(s + 0.5 - 1e-6), np.floor(s + 0.5 + 1e-6)
    bad = (actual < lo) | (actual > hi)
    assert actual.shape == s.shape, f"{name}: shape {actual.shape} != {s.shape}"
    assert not bad.any(), (
        f"{name}: {bad.mean():.4%} of values not the rounded formula, "
        f"max diff {np.abs(actual.astype(np.float64) - np.rint(s)).max():g}"
    )


@pytest.fixture(scope="module")
def cast8(photo8) -> np.ndarray:
    """The photo with a colour cast: each channel spans a different range (so linked != per channel)."""
    x = photo8.astype(np.float64)
    out = np.stack([x[..., 0] * 0.55 + 30, x[..., 1] * 0.8 + 12, x[..., 2] * 0.9 + 5], axis=-1)
    return np.rint(out).astype(np.uint8)


@pytest.fixture(params=["photo8", "gray8", "photo16", "gray16"])
def any_image(request) -> np.ndarray:
    return request.getfixturevalue(request.param)


def _magick_close(actual: np.ndarray, src: np.ndarray, args: list[str], name: str) -> None:
    """Compare with ImageMagick run on ``src``: within 1 LSB of the output depth."""
    expected = magick(src, *args)
    assert_images_close(actual, expected, atol=1, name=name)


# --------------------------------------------------------------------------- gamma


@pytest.mark.parametrize("value", [0.6, 1.0, 1.7])
def test_gamma_matches_formula(any_image, value):
    # Exact: out = round(top * in ** (1 / value)).
    out = run_op(any_image, "gamma", value=value)
    assert out.dtype == any_image.dtype
    assert_rounds_to(out, levels_of(any_image) ** (1 / value), "gamma")


@pytest.mark.parametrize("fixture", ["photo8", "gray8", "photo16"])
@pytest.mark.parametrize("value", [0.6, 1.7])
@pytest.mark.imagemagick
@requires_magick
def test_gamma_matches_imagemagick(request, fixture, value):
    img = request.getfixturevalue(fixture)
    _magick_close(run_op(img, "gamma", value=value), img, ["-gamma", f"{value}"], f"gamma-{fixture}")


def _auto_gamma_expected(img: np.ndarray) -> tuple[np.ndarray, float]:
    x = levels_of(img)
    g = math.log(x.mean()) / math.log(0.5)  # mean of all channels pooled
    return x ** (1 / g), g


def test_gamma_auto_maps_pooled_mean_to_mid_grey(any_image):
    # Exact against the formula; the chosen exponent is reported.
    out, report = run_with_report(
        any_image, "gamma", auto=True
    )  # value with auto is an error (test_param_conditions)
    expected, g = _auto_gamma_expected(any_image)
    assert_rounds_to(out, expected, "auto-gamma")
    assert report["gamma"] == pytest.approx(g, abs=1e-6)
    assert levels_of(out).mean() == pytest.approx(0.5, abs=0.08)


def test_auto_gamma_value_edge_cases():
    assert auto_gamma_value(0.25) == pytest.approx(2.0)
    assert auto_gamma_value(0.5) == pytest.approx(1.0)
    assert auto_gamma_value(0.0) == 1.0 and auto_gamma_value(1.0) == 1.0


@pytest.mark.imagemagick
@requires_magick
@pytest.mark.parametrize("fixture", ["cast8", "gray8", "photo16"])
def test_gamma_auto_matches_imagemagick_auto_gamma(request, fixture):
    img = request.getfixturevalue(fixture)
    out = run_op(img, "gamma", auto=True)
    expected = magick(img, "-auto-gamma")
    assert_images_close(out, expected, 1, f"auto-gamma-{fixture}")
    if img.ndim == 3 and img.dtype == np.uint8:
        # IM 6.9's default is one gamma from the pooled mean: a per-channel gamma is far off.
        x = levels_of(img)
        g = np.log(x.reshape(-1, 3).mean(0)) / np.log(0.5)
        per_channel = quantise(x ** (1 / g), np.uint8)
        assert np.abs(per_channel.astype(int) - expected).max() > 3


# --------------------------------------------------------------------------- levels


@pytest.mark.parametrize(("black", "white", "gamma"), [(0.1, 0.85, 1.3), (0.0, 0.5, 1.0), (0.3, 1.0, 0.7)])
def test_levels_matches_formula(any_image, black, white, gamma):
    # Exact: clip((in - black) / (white - black)) ** (1 / gamma).
    out = run_op(any_image, "levels", black=black, white=white, gamma=gamma)
    t = np.clip((levels_of(any_image) - black) / (white - black), 0, 1) ** (1 / gamma)
    assert_rounds_to(out, t, "levels")


@pytest.mark.imagemagick
@requires_magick
@pytest.mark.parametrize("fixture", ["photo8", "gray8", "photo16"])
def test_levels_matches_imagemagick_level(request, fixture):
    img = request.getfixturevalue(fixture)
    out = run_op(img, "levels", black=0.1, white=0.85, gamma=1.3)
    _magick_close(out, img, ["-level", "10%,85%,1.3"], f"level-{fixture}")


def test_levels_validation():
    img = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="black must be < white"):
        run_op(img, "levels", black=0.6, white=0.4)
    with pytest.raises(ValueError, match="black must be < white"):
        run_op(img, "levels", black=0.5, white=0.5)
    with pytest.raises(ValueError, match="levels.white"):
        run_op(img, "levels", white=1.5)
    with pytest.raises(ValueError, match="levels.gamma"):
        run_op(img, "levels", gamma=0)


# --------------------------------------------------------------------------- log_curve


@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("gain", [0.8, 1.0, 1.5])
def test_log_curve_matches_skimage_adjust_log(gray8, photo16, gain, inverse):
    from skimage import exposure

    for img in (gray8, photo16):
        # Exact against adjust_log on float levels (clipped to [0, 1]), rounded to the image depth.
        ref = exposure.adjust_log(levels_of(img), gain=gain, inv=inverse)
        out = run_op(img, "log_curve", gain=gain, inverse=inverse)
        assert_rounds_to(out, np.clip(ref, 0, 1), "log-float-ref")
        if gain <= 1:
            # adjust_log on the integer image truncates instead of rounding: within 1 LSB.
            ref_int = exposure.adjust_log(img, gain=gain, inv=inverse)
            assert_images_close(out, ref_int, 1, "log-int-ref")
    f = levels_of(gray8).astype(np.float32)
    out_f = run_op(f, "log_curve", gain=gain, inverse=inverse)
    ref_f = np.clip(exposure.adjust_log(f.astype(np.float64), gain=gain, inv=inverse), 0, 1)
    assert np.abs(out_f - ref_f).max() < 1e-6


# --------------------------------------------------------------------------- sigmoid


def _logistic_scaled(x, a, b):
    s = 1.0 / (1.0 + np.exp(a * (b - x)))  # the logistic form; ImageMagick's tanh form is the same curve
    s0, s1 = 1.0 / (1.0 + np.exp(a * b)), 1.0 / (1.0 + np.exp(a * (b - 1.0)))
    return (s - s0) / (s1 - s0)


@pytest.mark.parametrize(("contrast", "midpoint"), [(3.0, 0.5), (8.0, 0.3), (12.0, 1.0), (5.0, 0.0)])
def test_sigmoid_matches_formula(any_image, contrast, midpoint):
    # Exact against the logistic scaled sigmoid (equal to IM's tanh form up to float error).
    out = run_op(any_image, "sigmoid", contrast=contrast, midpoint=midpoint)
    assert_rounds_to(out, _logistic_scaled(levels_of(any_image), contrast, midpoint), "sigmoid")
    # Inverse: numerical inverse of the same formula, within 1 LSB.
    inv = run_op(any_image, "sigmoid", contrast=contrast, midpoint=midpoint, inverse=True)
    grid = np.linspace(0, 1, 200001)
    fwd = _logistic_scaled(grid, contrast, midpoint)
    expected_inv = quantise(np.interp(levels_of(any_image), fwd, grid), any_image.dtype)
    assert_images_close(inv, expected_inv, 1, "sigmoid-inverse")


def test_sigmoid_fixed_points_and_zero_contrast():
    x = np.linspace(0, 1, 11)
    for inverse in (False, True):
        y = sigmoid_curve(x, 7.0, 0.4, inverse)
        assert y[0] == pytest.approx(0, abs=1e-9) and y[-1] == pytest.approx(1, abs=1e-9)
        assert np.all(np.diff(y) > 0)
    assert np.array_equal(sigmoid_curve(x, 0.0, 0.5), x)
    # +sigmoidal-contrast undoes -sigmoidal-contrast.
    assert np.abs(sigmoid_curve(sigmoid_curve(x, 6.0, 0.5), 6.0, 0.5, inverse=True) - x).max() < 1e-9


@pytest.mark.imagemagick
@requires_magick
@pytest.mark.parametrize("fixture", ["photo8", "gray8", "photo16"])
@pytest.mark.parametrize("inverse", [False, True])
def test_sigmoid_matches_imagemagick_sigmoidal_contrast(request, fixture, inverse):
    img = request.getfixturevalue(fixture)
    out = run_op(img, "sigmoid", contrast=5.0, midpoint=0.4, inverse=inverse)
    option = "+sigmoidal-contrast" if inverse else "-sigmoidal-contrast"
    _magick_close(out, img, [option, "5x40%"], f"sigmoid-{fixture}-{inverse}")


# --------------------------------------------------------------------------- curve

CURVE_POINTS = [[0.0, 0.05], [0.2, 0.1], [0.45, 0.6], [0.7, 0.65], [1.0, 0.95]]


def test_curve_monotone_matches_scipy_pchip(any_image):
    from scipy.interpolate import PchipInterpolator

    ref = PchipInterpolator(*np.array(CURVE_POINTS).T)
    out = run_op(any_image, "curve", points=CURVE_POINTS)
    # Exact after rounding to the image depth.
    assert_rounds_to(out, ref(levels_of(any_image)), "curve-pchip")
    grid = np.linspace(0, 1, 1001)
    f = run_op(grid.astype(np.float32).reshape(1, -1), "curve", points=CURVE_POINTS)[0]
    assert np.abs(f - ref(grid)).max() < 1e-6


def test_curve_pchip_slopes_match_scipy():
    from scipy.interpolate import PchipInterpolator

    rng = np.random.default_rng(5)
    for n in (2, 3, 4, 7):
        xs = np.sort(rng.choice(np.linspace(0, 1, 101), n, replace=False))
        ys = rng.random(n)
        ref = PchipInterpolator(xs, ys).derivative()(xs)
        assert np.allclose(pchip_slopes(xs, ys), ref, atol=1e-12)


def test_curve_linear_channel_and_ends(photo8, gray8):
    pts = [[0.21, 0.13], [0.52, 0.71], [0.9, 0.83]]
    # Linear: numpy.interp, which also holds the end values flat outside [0.21, 0.9]; exact.
    out = run_op(photo8, "curve", points=pts, interpolation="linear")
    expected = np.interp(levels_of(photo8), *np.array(pts).T)
    assert_rounds_to(out, expected, "curve-linear")
    # One channel: red (BGR column 2) changes, blue and green do not.
    red = run_op(photo8, "curve", points=pts, interpolation="linear", channel="red")
    assert np.array_equal(red[..., :2], photo8[..., :2])
    assert_rounds_to(red[..., 2], expected[..., 2], "curve-red")
    # A grey image has no separate red channel: unchanged.
    assert np.array_equal(run_op(gray8, "curve", points=pts, channel="red"), gray8)


def test_curve_monotone_has_no_overshoot():
    pts = [[0.0, 0.0], [0.3, 0.5], [0.35, 0.52], [1.0, 1.0]]
    ramp = np.arange(256, dtype=np.uint8).reshape(1, -1)
    y = run_op(ramp, "curve", points=pts)[0].astype(int)
    assert np.all(np.diff(y) >= 0)
    assert y.min() >= 0 and y.max() <= 255


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[0.0, 0.0]], "at least 2"),
        ([[0.0, 0.0], [0.5, 0.4], [0.5, 0.6]], "strictly increasing"),
        ([[0.6, 0.0], [0.4, 1.0]], "strictly increasing"),
        ([[0.0, 0.0], [1.0, 1.2]], r"in \[0, 1\]"),
        ([[-0.1, 0.0], [1.0, 1.0]], r"in \[0, 1\]"),
        ([[0.0, 0.0], [1.0]], "pairs"),
    ],
)
def test_curve_validation(points, message):
    with pytest.raises(ValueError, match=message):
        run_op(np.zeros((2, 2), np.uint8), "curve", points=points)
    with pytest.raises(ValueError, match="curve.interpolation"):
        run_op(np.zeros((2, 2), np.uint8), "curve", interpolation="cubic")
    with pytest.raises(ValueError, match="curve.channel"):
        run_op(np.zeros((2, 2), np.uint8), "curve", channel="alpha")


# --------------------------------------------------------------------------- stretch


def _sorted_points(values: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """IM's rule on a sorted list: black is the first level whose cumulative count exceeds
    low% of the pixels, white the last level whose count from the top exceeds (100-high)%."""
    s = np.sort(values.ravel())
    n = s.size
    black = s[min(int(np.floor(low * (n / 100.0))), n - 1)]
    white = s[::-1][min(int(np.floor((100.0 - high) * (n / 100.0))), n - 1)]
    return float(black), float(white)


def _luma16(img8: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an 8-bit BGR image on the 65536-level scale, as IM's histogram bins it."""
    x = levels_of(img8)
    y = LUMA_RGB[0] * x[..., 2] + LUMA_RGB[1] * x[..., 1] + LUMA_RGB[2] * x[..., 0]
    return np.rint(y * 65535) / 65535


def _stretch_expected(img: np.ndarray, low: float, high: float, linked: bool):
    x = levels_of(img)
    if img.ndim == 2:
        b, w = _sorted_points(x, low, high)
        return np.clip((x - b) / (w - b), 0, 1), (b, w)
    if linked:
        b, w = _sorted_points(_luma16(img), low, high)
        return np.clip((x - b) / (w - b), 0, 1), (b, w)
    out = np.empty_like(x)
    for c in range(3):
        b, w = _sorted_points(x[..., c], low, high)
        out[..., c] = np.clip((x[..., c] - b) / (w - b), 0, 1)
    return out, None


@pytest.mark.parametrize(("low", "high"), [(1.0, 99.0), (2.0, 97.0), (0.0, 100.0), (10.0, 60.0)])
@pytest.mark.parametrize("linked", [True, False])
def test_stretch_matches_imagemagick_rule(cast8, gray8, low, high, linked):
    # Exact against the rule computed on sorted pixel values (8-bit; luma binned to 65536 levels).
    for img in (cast8, gray8):
        out, report = run_with_report(img, "stretch", low=low, high=high, linked=linked)
        expected, points = _stretch_expected(img, low, high, linked)
        assert_rounds_to(out, expected, f"stretch-{img.ndim}-{linked}")
        if points is not None:
            assert report["black_point"] == pytest.approx(points[0], abs=1e-6)
            assert report["white_point"] == pytest.approx(points[1], abs=1e-6)
        else:
            assert set(report["black_point"]) == {"red", "green", "blue"}


def test_stretch_points_inclusive_rule():
    # 10 pixels at levels 0..9: 10% is one pixel; the black point is the first level whose
    # running count is strictly greater than 1 pixel, so level 1 (not 0); likewise white 8.
    levels = np.arange(10) / 9.0
    counts = np.ones(10)
    b, w = stretch_points(levels, counts, 10.0, 90.0)
    assert (b, w) == (pytest.approx(1 / 9), pytest.approx(8 / 9))
    b, w = stretch_points(levels, counts, 0.0, 100.0)
    assert (b, w) == (0.0, 1.0)
    assert stretch_points(levels, counts, 15.0, 85.0) == (pytest.approx(1 / 9), pytest.approx(8 / 9))
    # Equal points leave levels unchanged (IM does not stretch a single-valued channel).
    assert np.array_equal(linear_stretch(np.array([0.2, 0.5]), 0.5, 0.5), [0.2, 0.5])


@pytest.mark.imagemagick
@requires_magick
@pytest.mark.parametrize("fixture", ["cast8", "photo8", "gray8", "photo16"])
@pytest.mark.parametrize("linked", [True, False])
def test_stretch_matches_imagemagick_contrast_stretch(request, fixture, linked):
    img = request.getfixturevalue(fixture)
    out = run_op(img, "stretch", low=2.0, high=97.0, linked=linked)
    args = ([] if linked else ["-channel", "RGB"]) + ["-contrast-stretch", "2%x3%"]
    _magick_close(out, img, args, f"stretch-{fixture}-{linked}")


def _ramp_image(black: int, white: int) -> np.ndarray:
    """Grey levels black..white (8-bit) as a colour image, every level present."""
    row = np.linspace(black, white, 64).round().astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], 8, axis=0), 3, axis=2)


@pytest.mark.parametrize("strength", [0.0, 0.5, 1.0])
def test_stretch_strength_moves_the_points_part_way(strength):
    # The formula: black -> black * (1 - s), white -> white + (1 - white) * s, linear between.
    img = _ramp_image(60, 180)
    out, report = run_with_report(img, "stretch", low=0, high=100, strength=strength)
    b, w = 60 / 255, 180 / 255
    to_b, to_w = b * (1 - strength), w + (1 - w) * strength
    expected = (levels_of(img) - b) * (to_w - to_b) / (w - b) + to_b
    assert_rounds_to(out, expected, f"stretch-strength-{strength}")
    if strength == 0.0:
        assert np.array_equal(out, img)
    if strength != 1.0:
        assert (report["black_strength"], report["white_strength"]) == (strength, strength)


@pytest.mark.parametrize(
    ("black", "white", "moves"),
    [
        (5, 250, (0.0, 0.0)),  # a full range: nothing to do
        (10, 192, (0.0, 0.0)),  # low-key: brightest at 0.75 is meant, kept
        (3, 110, (1.0, 1.0)),  # under-exposed: a narrow range, both ends go all the way
        (90, 250, (1.0, 0.9069)),  # a veil: the black end all the way, the white by the range
        (30, 200, (0.4167, 0.4167)),  # a little flat: part way, by the range (1 - range 0.30..0.38)
        (38, 250, (0.0, 0.0)),  # a soft photo's lifted blacks (0.15) are meant, kept
        (64, 250, (0.5049, 0.0)),  # blacks at 0.25: half way to a veil (0.15..0.35)
    ],
)
def test_stretch_strength_auto_moves_only_compressed_ends(black, white, moves):
    img = _ramp_image(black, white)
    out, report = run_with_report(img, "stretch", low=0, high=100, strength="auto")
    assert report["black_strength"] == pytest.approx(moves[0], abs=1e-3)
    assert report["white_strength"] == pytest.approx(moves[1], abs=1e-3)
    if moves == (0.0, 0.0):
        assert np.array_equal(out, img)
    lo, hi = int(out.min()), int(out.max())
    assert abs(lo - black * (1 - moves[0])) <= 1
    assert abs(hi - (white + (255 - white) * moves[1])) <= 1


def _petals_on_sky(height: int = 64, width: int = 96) -> np.ndarray:
    """Saturated yellow petals on a pale blue sky (8-bit BGR): luma spans only ~0.66-0.86, while
    blue reaches 0 in the petals and red 255 in them, as on a pastel photo."""
    rng = np.random.default_rng(5)
    petals = np.array([0, 190, 255], np.float64)  # yellow: luma ~0.76
    sky = np.array([235, 218, 196], np.float64)  # pale blue: luma ~0.85
    t = (np.arange(width) / (width - 1))[None, :, None] * np.ones((height, 1, 1))
    img = (1 - t) * petals + t * sky + rng.normal(0, 2, (height, width, 3))
    img[:, :4] = [0, 175, 255]  # the deepest petal shade: blue at 0, red at 255
    return np.clip(img, 0, 255).round().astype(np.uint8)


def test_stretch_strength_auto_leaves_a_colourful_photo_with_a_narrow_luma_range():
    """Judged by the darkest and brightest channels: every channel spans its range, so the pastel
    photo is not compressed, though its luma spans less than 0.3 (a luma rule stretched it fully)."""
    img = _petals_on_sky()
    out, report = run_with_report(img, "stretch", low=0, high=100, strength="auto")
    assert report["white_point"] - report["black_point"] < 0.3
    assert (report["darkest_channel"], report["brightest_channel"]) == (0.0, 1.0)
    assert (report["black_strength"], report["white_strength"]) == (0.0, 0.0)
    assert np.array_equal(out, img)


def test_stretch_strength_auto_still_removes_a_veil_from_a_colourful_photo():
    """The same photo under a veil (in = 0.5 out + 0.5 in linear light) lifts every channel's
    darkest value: its black end goes all the way."""
    from imgenh.ops.color import linear_to_srgb, srgb_to_linear

    img = _petals_on_sky()
    veiled = (linear_to_srgb(0.5 * srgb_to_linear(img / 255.0) + 0.5) * 255).round().astype(np.uint8)
    out, report = run_with_report(veiled, "stretch", low=0, high=100, strength="auto")
    assert report["darkest_channel"] > 0.7
    assert report["black_strength"] == 1.0
    assert int(out.min()) <= 1


def test_stretch_judged_points_never_narrower_than_the_luma_points():
    """The subsample behind the judgement can miss a lone highlight the luma histogram saw."""
    img = np.full((40, 40, 3), 100, np.uint8)
    img[1, 1] = 255  # off the every-4th-pixel grid
    img[2, 3] = 0
    _, report = run_with_report(img, "stretch", low=0, high=100, strength="auto")
    assert (report["darkest_channel"], report["brightest_channel"]) == (0.0, 1.0)
    assert (report["black_strength"], report["white_strength"]) == (0.0, 0.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_extreme_channel_counts_count_each_pixels_darkest_and_brightest_channel(dtype):
    from imgenh.pixels import extreme_channel_counts, quantised_counts

    rng = np.random.default_rng(9)
    if dtype == np.float32:
        img = rng.random((30, 41, 3), dtype=np.float32)
        expected = quantised_counts(img.min(axis=2)), quantised_counts(img.max(axis=2))
    else:
        top = np.iinfo(dtype).max
        img = rng.integers(0, top + 1, (30, 41, 3)).astype(dtype)
        expected = tuple(
            np.bincount(v.ravel(), minlength=top + 1) for v in (img.min(axis=2), img.max(axis=2))
        )
    for got, want in zip(extreme_channel_counts(img), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_stats_extreme_histograms_see_the_pending_table():
    from imgenh.ops.contract import Stats
    from imgenh.pixels import apply_table

    img = np.random.default_rng(10).integers(0, 256, (48, 64, 3)).astype(np.uint8)
    table = np.stack([np.linspace(0, 1, 256) ** g for g in (0.5, 1.0, 2.0)], axis=1)
    pending = Stats(img, table).extreme_histograms()
    applied = Stats(apply_table(img, table)).extreme_histograms()
    for (levels, counts), (levels2, counts2) in zip(pending, applied, strict=True):
        np.testing.assert_array_equal(levels, levels2)
        np.testing.assert_array_equal(counts, counts2)
        assert counts.sum() == (48 // 4) * (64 // 4)  # every 4th pixel of every 4th row


def test_stretch_strength_auto_per_channel():
    # Not linked: each channel's ends are judged on their own.
    img = _ramp_image(10, 200)
    img[..., 2] = _ramp_image(100, 200)[..., 2]  # red veiled
    out, report = run_with_report(img, "stretch", low=0, high=100, linked=False, strength="auto")
    assert (report["black_strength"]["red"], report["white_strength"]["red"]) == (1.0, 1.0)
    assert (report["black_strength"]["blue"], report["white_strength"]["blue"]) == (0.0, 0.0)
    assert int(out[..., 2].min()) == 0 and np.array_equal(out[..., 0], img[..., 0])


def test_stretch_linear_undoes_an_exposure_and_a_veil_in_linear_light():
    # in = t * out + veil in linear light; the stretch drawn in linear light maps it back.
    from imgenh.ops.color import linear_to_srgb, srgb_to_linear

    lin = np.linspace(0.0, 1.0, 256)[None, :, None].repeat(4, axis=0).repeat(3, axis=2)
    for t, veil in ((0.2, 0.0), (0.55, 0.36)):
        seen = np.round(linear_to_srgb(lin * t + veil) * 65535).astype(np.uint16)
        out = run_op(seen, "stretch", low=0, high=100, linear=True)
        expected = linear_to_srgb(lin)
        assert np.abs(levels_of(out) - expected).max() < 5e-4, (t, veil)  # 16-bit rounding, amplified
        # drawn on the stored levels instead, the midtones come out wrong
        plain = run_op(seen, "stretch", low=0, high=100)
        assert np.abs(levels_of(plain) - expected).max() > 0.03
    assert srgb_to_linear(np.array([1.0]))[0] == pytest.approx(1.0)


def _seen_through(lin: np.ndarray, gain: float, veil: float) -> np.ndarray:
    """A linear-light ramp after an exposure gain and a veil, stored as 16-bit sRGB."""
    from imgenh.ops.color import linear_to_srgb

    return np.round(linear_to_srgb(np.clip(lin * gain + veil, 0, 1)) * 65535).astype(np.uint16)


@pytest.mark.parametrize(
    ("gain", "veil", "share"),
    [
        (0.55, 0.36, 1.0),  # haze: black lifted, white near 1 -> linear light
        (0.2, 0.0, 1.0),  # -2.3 stops: white lowered, black at 0 -> linear light
        (3.0, 0.02, 0.0),  # +1.6 stops: black lifted but whites clipped -> a gain, not a veil
    ],
)
def test_stretch_linear_auto_draws_one_sided_compression_in_linear_light(gain, veil, share):
    lin = np.linspace(0.0, 1.0, 256)[None, :, None].repeat(4, axis=0).repeat(3, axis=2)
    seen = _seen_through(lin, gain, veil)
    out, report = run_with_report(seen, "stretch", low=0, high=100, strength="auto", linear="auto")
    assert report["linear_share"] == pytest.approx(share)
    same = run_op(seen, "stretch", low=0, high=100, strength="auto", linear=bool(share))
    assert np.array_equal(out, same)


def _hazy_with_dark_specks(specks: int) -> np.ndarray:
    """A colourful 8-bit scene under a veil (in = 0.55 out + 0.36 in linear light), with
    ``specks`` pixels pulled 30 levels below the veil, as JPEG ringing leaves at the extreme."""
    from imgenh.ops.color import linear_to_srgb, srgb_to_linear

    rng = np.random.default_rng(11)
    scene = rng.random((120, 160, 3))
    veiled = (linear_to_srgb(0.55 * srgb_to_linear(scene) + 0.36) * 255).round()
    spots = rng.choice(veiled.shape[0] * veiled.shape[1], specks, replace=False)
    veiled.reshape(-1, 3)[spots] -= 30
    return np.clip(veiled, 0, 255).astype(np.uint8)


def test_stretch_auto_reads_a_veils_black_point_past_a_few_dark_specks():
    """A few pixels below the veil (here 0.01% of the frame) set the extreme; linear light
    magnifies the veil they leave, so the linear map's black point is read at VEIL_PERCENTILE
    of luma: the blacks come back near black (with the extreme they stay dark grey)."""
    from imgenh.ops.tone import VEIL_PERCENTILE

    img = _hazy_with_dark_specks(2)
    out, report = run_with_report(img, "stretch", low=0, high=100, strength="auto", linear="auto")
    assert report["black_strength"] == 1.0 and report["linear_share"] == 1.0
    assert report["veil_black_point"] > report["black_point"] + 0.05
    dark = np.percentile(levels_of(out).min(axis=2), 1)
    extreme = run_op(img, "stretch", low=0, high=100, linear=True)  # strength 1: the extreme point
    assert dark < 0.05 < np.percentile(levels_of(extreme).min(axis=2), 1)
    assert VEIL_PERCENTILE < 0.1  # clips at most that share of the darkest pixels


@pytest.mark.parametrize(
    ("darkest", "moved"), [(0.0, 0.0), (0.3, 0.0), (0.4, 0.0), (0.45, 0.5), (0.5, 1.0), (0.9, 1.0)]
)
def test_veil_black_moves_only_as_far_as_the_black_end_is_lifted(darkest, moved):
    from imgenh.ops.tone import veil_black

    assert veil_black(0.5, darkest, lambda: 0.6) == pytest.approx(0.5 + 0.1 * moved)
    assert veil_black(0.5, darkest, lambda: 0.4) == 0.5  # never below the extreme


def test_stretch_auto_keeps_the_extreme_black_of_an_under_exposure():
    """An under-exposure's black end is not lifted: its map keeps the extreme black point, so
    its deepest shadows are not clipped."""
    lin = np.linspace(0.0, 1.0, 256)[None, :, None].repeat(4, axis=0).repeat(3, axis=2)
    seen = (_seen_through(lin, 0.2, 0.0) >> 8).astype(np.uint8)
    out, report = run_with_report(seen, "stretch", low=0, high=100, strength="auto", linear="auto")
    assert "veil_black_point" not in report
    assert np.array_equal(out, run_op(seen, "stretch", low=0, high=100, strength="auto", linear=True))


def test_stretch_linear_auto_keeps_a_flat_profile_on_the_stored_levels():
    # Contrast halved about mid-grey on the stored levels (both ends pulled in alike): the map
    # stays on the levels, which undoes it; drawn in linear light it would bend the midtones.
    ramp = np.linspace(0.0, 1.0, 256)[None, :, None].repeat(4, axis=0).repeat(3, axis=2)
    flat = np.round((0.5 + (ramp - 0.5) * 0.45) * 65535).astype(np.uint16)
    out, report = run_with_report(flat, "stretch", low=0, high=100, strength="auto", linear="auto")
    assert report["linear_share"] == 0.0
    assert np.abs(levels_of(out) - ramp).max() < 1e-3
    light = run_op(flat, "stretch", low=0, high=100, strength="auto", linear=True)
    assert np.abs(levels_of(light) - ramp).max() > 0.05


def test_stretch_linear_auto_blends_between_the_two_maps():
    # Part way one-sided (black 0.3, 1 - white 0.1: one-sidedness 0.5 -> half of each map).
    img = _ramp_image(round(0.3 * 255), round(0.9 * 255)).astype(np.uint16) * 257
    out, report = run_with_report(img, "stretch", low=0, high=100, strength="auto", linear="auto")
    assert report["linear_share"] == pytest.approx(0.5, abs=0.02)
    stored, light = (
        levels_of(run_op(img, "stretch", low=0, high=100, strength="auto", linear=flag))
        for flag in (False, True)
    )
    blend = stored + report["linear_share"] * (light - stored)
    assert np.abs(levels_of(out) - blend).max() < 2 / 65535
    assert np.all(np.diff(levels_of(out)[0, :, 0]) >= 0)  # still an increasing map


def test_stretch_linear_takes_true_false_or_auto():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="must be true or false or auto"):
        run_op(img, "stretch", linear="yes")


def test_stretch_validation():
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="low must be < high"):
        run_op(img, "stretch", low=50, high=40)
    with pytest.raises(ValueError, match="stretch.low"):
        run_op(img, "stretch", low=100)


# --------------------------------------------------------------------------- auto_level


@pytest.mark.parametrize("linked", [True, False])
def test_auto_level_matches_formula(cast8, gray16, linked):
    # Exact: (in - min) / (max - min); linked takes min/max over all channels pooled.
    for img in (cast8, cast8.astype(np.uint16) * 257 + 100, gray16):
        x = levels_of(img)
        axes = None if (linked or img.ndim == 2) else (0, 1)
        lo, hi = x.min(axis=axes), x.max(axis=axes)
        out = run_op(img, "auto_level", linked=linked)
        assert_rounds_to(out, (x - lo) / (hi - lo), f"auto-level-{linked}")
    # A channel holding one level is left alone.
    flat = cast8.copy()
    flat[..., 0] = 77
    assert np.array_equal(run_op(flat, "auto_level", linked=False)[..., 0], flat[..., 0])


@pytest.mark.imagemagick
@requires_magick
@pytest.mark.parametrize("fixture", ["cast8", "gray8", "photo16"])
@pytest.mark.parametrize("linked", [True, False])
def test_auto_level_matches_imagemagick(request, fixture, linked):
    img = request.getfixturevalue(fixture)
    out = run_op(img, "auto_level", linked=linked)
    args = ([] if linked else ["-channel", "RGB"]) + ["-auto-level"]
    _magick_close(out, img, args, f"auto-level-{fixture}-{linked}")


# --------------------------------------------------------------------------- brightness_contrast


@pytest.mark.parametrize(("alpha", "beta"), [(1.3, 20.0), (0.7, -30.0), (2.5, 5.5), (1.0, 0.0)])
def test_brightness_contrast_matches_convert_scale_abs(photo8, alpha, beta):
    out = run_op(photo8, "brightness_contrast", alpha=alpha, beta=beta)
    ref = cv2.convertScaleAbs(photo8, alpha=alpha, beta=beta)
    valid = alpha * photo8.astype(np.float64) + beta >= 0  # OpenCV takes |.|; we clip at 0
    # Within 1 LSB; the 1-LSB cases are exact .5 ties, which OpenCV evaluates in float32.
    diff = np.abs(out.astype(int) - ref)[valid]
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.03
    assert np.all(out[~valid] == 0)


def test_brightness_contrast_16bit_and_float(photo16):
    # beta is in 8-bit levels: 257 per level on 16-bit; exact against the formula.
    out = run_op(photo16, "brightness_contrast", alpha=1.2, beta=-10.0)
    assert_rounds_to(out, 1.2 * levels_of(photo16) - 10.0 / 255.0, "bc-16")
    f = levels_of(photo16).astype(np.float32)
    out_f = run_op(f, "brightness_contrast", alpha=1.2, beta=-10.0)
    assert np.abs(out_f - np.clip(1.2 * f - 10.0 / 255.0, 0, 1)).max() < 1e-6


# --------------------------------------------------------------------------- equalize


def test_equalize_matches_opencv(photo8, gray8):
    # Grey: exactly cv2.equalizeHist. Colour: exactly equalizeHist on Y of YCrCb, chroma kept.
    assert np.array_equal(run_op(gray8, "equalize"), cv2.equalizeHist(gray8))
    ycc = cv2.cvtColor(photo8, cv2.COLOR_BGR2YCrCb)
    ycc[..., 0] = cv2.equalizeHist(np.ascontiguousarray(ycc[..., 0]))
    assert np.array_equal(run_op(photo8, "equalize"), cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR))


def test_equalize_lut_is_equalize_hist_rule(gray8):
    # The numpy kernel used for 16-bit reproduces cv2.equalizeHist exactly on 8-bit planes.
    rng = np.random.default_rng(2)
    for plane in (gray8, rng.integers(30, 90, (40, 50)).astype(np.uint8), gray8 // 3 + 100):
        assert np.array_equal(equalize_lut(plane), cv2.equalizeHist(plane))
    const = np.full((5, 5), 40, np.uint16)
    assert np.array_equal(run_op(const, "equalize"), const)


def test_equalize_16bit_agrees_with_8bit(photo8, gray8):
    # Images whose 16-bit values are v*257: grey within 1 LSB of 8 bits (only rounding differs);
    # colour within 4 LSB and 1 LSB on average (16-bit Y keeps levels that 8-bit Y merges).
    for img, atol, mean_tol in ((gray8, 1, 0.5), (photo8, 4, 1.0)):
        e8 = run_op(img, "equalize").astype(np.float64)
        e16 = run_op(img.astype(np.uint16) * 257, "equalize").astype(np.float64) / 257
        diff = np.abs(e16 - e8)
        assert diff.max() <= atol and diff.mean() <= mean_tol, (diff.max(), diff.mean())
        ef = run_op(levels_of(img).astype(np.float32), "equalize").astype(np.float64) * 65535 / 257
        assert np.abs(ef - e16).max() < 0.01  # float goes through 16 bit


# --------------------------------------------------------------------------- clahe


def _clahe_colour_route(img: np.ndarray, apply_y) -> np.ndarray:
    """The documented colour route: OpenCV's YCrCb at the image's depth, CLAHE on Y, back."""
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    ycc[..., 0] = apply_y(np.ascontiguousarray(ycc[..., 0]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)


@pytest.mark.parametrize(("clip_limit", "tiles"), [(2.0, 8), (4.0, 3), (1.0, 1), (40.0, 5)])
def test_clahe_matches_opencv(photo8, gray8, clip_limit, tiles):
    make = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))
    # Grey uint8: exactly createCLAHE.
    assert np.array_equal(run_op(gray8, "clahe", clip_limit=clip_limit, tiles=tiles), make.apply(gray8))
    # Colour uint8: exactly the OpenCV recipe, createCLAHE on Y of 8-bit YCrCb.
    expected = _clahe_colour_route(photo8, make.apply)
    assert np.array_equal(run_op(photo8, "clahe", clip_limit=clip_limit, tiles=tiles), expected)


@pytest.mark.parametrize(("clip_limit", "tiles"), [(2.0, 8), (4.0, 3), (1.0, 1), (40.0, 5), (0.5, 16)])
def test_clahe_levels_is_opencv_algorithm(gray8, clip_limit, tiles):
    # The kernel used for 16 bit, run on uint8, is createCLAHE within 1 LSB: OpenCV rounds each
    # tile mapping to 8 bits before blending, the kernel keeps it exact.
    ref = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles)).apply(gray8)
    assert_images_close(quantise(clahe_levels(gray8, clip_limit, tiles), np.uint8), ref, 1, "clahe-kernel")
    # OpenCV's own 16-bit mode ignores the clip limit on tiles this size (one pixel per bin of
    # 65536): the reason 16 bit goes through the kernel.
    g16 = gray8.astype(np.uint16) * 257
    assert np.array_equal(cv2.createCLAHE(2.0, (8, 8)).apply(g16), cv2.createCLAHE(20.0, (8, 8)).apply(g16))


def test_clahe_16bit_agrees_with_8bit(photo8, gray8):
    # 8-bit data scaled by 257: grey within 1 LSB of the 8-bit result (tile mappings unrounded);
    # colour within 1 LSB on average and 10 LSB at worst (16-bit L keeps fractions of a level,
    # which move pixels across 8-bit bins and along steep mappings).
    g16 = run_op(gray8.astype(np.uint16) * 257, "clahe").astype(np.float64) / 257
    assert np.abs(g16 - run_op(gray8, "clahe")).max() <= 1
    c16 = run_op(photo8.astype(np.uint16) * 257, "clahe").astype(np.float64) / 257
    diff = np.abs(c16 - run_op(photo8, "clahe"))
    assert diff.mean() <= 1 and diff.max() <= 10, (diff.mean(), diff.max())


def test_clahe_16bit_and_float_follow_the_route(photo16, gray16):
    # Exact against the documented routes (16-bit Y of YCrCb through the 256-bin kernel), within 1 LSB.
    def on_y(y16):
        return quantise(clahe_levels(y16, 2.0, 8), np.uint16)

    expected = _clahe_colour_route(photo16, on_y)
    assert_images_close(run_op(photo16, "clahe"), expected, 1, "clahe-16-colour")
    f = run_op(levels_of(photo16).astype(np.float32), "clahe")
    assert_images_close(quantise(f, np.uint16), expected, 1, "clahe-float-colour")
    assert_rounds_to(run_op(gray16, "clahe"), clahe_levels(gray16, 2.0, 8), "clahe-16-grey")
    fg = run_op(levels_of(gray16).astype(np.float32), "clahe")
    assert np.abs(fg - clahe_levels(gray16, 2.0, 8)).max() < 1e-6


# --------------------------------------------------------------------------- pipeline behaviour


@pytest.mark.parametrize(
    "steps",
    [
        [("levels", {"black": 0.05, "white": 0.9}), ("sigmoid", {"contrast": 6.0})],
        [("gamma", {"value": 1.6}), ("stretch", {"low": 2.0, "high": 98.0})],
        [("curve", {"points": CURVE_POINTS, "channel": "green"}), ("auto_level", {"linked": False})],
        [("log_curve", {"gain": 0.9}), ("gamma", {"auto": True})],
    ],
    ids=["levels+sigmoid", "gamma+stretch", "curve+auto_level", "log+auto_gamma"],
)
def test_fused_pointwise_steps_equal_sequential(photo8, photo16, steps):
    # Two pointwise steps fused into one table equal the steps applied one after the other:
    # within 1 LSB on 8 bit (the fused table is rounded once, the sequence twice). On 16 bit
    # within 4 LSB of 16 bits: the sequence's intermediate rounding (0.5 LSB) is magnified by
    # the second curve's slope, which a steep gamma makes large near black.
    for img, atol in ((photo8, 1), (photo16, 4)):
        fused, seq, _ = fused_and_sequential(img, steps)
        assert_images_close(fused, seq, atol, f"fused-{steps[0][0]}")


OPS_DEFAULTS = {
    "gamma": {"value": 1.4},
    "levels": {"black": 0.1, "white": 0.9},
    "log_curve": {},
    "sigmoid": {"contrast": 5.0},
    "curve": {"points": CURVE_POINTS},
    "stretch": {},
    "auto_level": {"linked": False},
    "brightness_contrast": {"alpha": 1.2, "beta": 8.0},
    "equalize": {},
    "clahe": {},
}


@pytest.mark.parametrize("name", sorted(OPS_DEFAULTS))
def test_ops_keep_shape_dtype_and_input(photo8, gray8, photo16, gray16, name):
    images = [photo8, gray8, photo16, gray16, levels_of(photo8).astype(np.float32)]
    images.append(levels_of(gray16).astype(np.float32))
    for img in images:
        before = img.copy()
        out = run_op(img, name, **OPS_DEFAULTS[name])
        assert out.shape == img.shape and out.dtype == img.dtype, (name, img.dtype, img.shape)
        assert np.array_equal(img, before), f"{name} modified its input"
        if img.dtype == np.float32:
            assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
