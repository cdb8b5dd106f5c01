"""Colour operators: white_balance (every estimator and the manual modes) and saturation.

Tolerances are stated in each test. White-balance estimates are held to their formulas
(channel means, percentiles, Minkowski norms, Gaussian-derivative norms computed here with
numpy/scipy), to known illuminants on synthetic scenes (angular error bounds), and the
gain step to ImageMagick's ``-evaluate multiply``. Saturation is held to scikit-image's
rgb2lab/lab2rgb and to ImageMagick's Lab.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from helpers import angle, assert_images_close, magick, requires_magick, run_with_report
from scipy import ndimage
from skimage import color

from imgenh.ops.color import daylight_xy, kelvin_to_rgb, linear_to_srgb, planckian_xy, srgb_to_linear
from imgenh.pipeline import StepError, run_op

# Rec. 709 luma in R, G, B order: the digits imgenh uses everywhere (ImageMagick's).
LUMA_RGB = np.array([0.212656, 0.715158, 0.072186])
METHODS = ("gray_world", "white_patch", "shades_of_gray", "gray_edge", "auto")


def wb(img: np.ndarray, **params) -> tuple[np.ndarray, dict]:
    """white_balance as a one-step pipeline: the image and the step's report."""
    return run_with_report(img, "white_balance", **params)


def mondrian(seed: int = 0, h: int = 96, w: int = 128) -> np.ndarray:
    """Linear-light BGR scene of flat patches with reflectances drawn alike for every channel.

    Each channel's reflectances come from the same distribution, so every estimator's
    expectation is neutral; a white tile gives white_patch its white.
    """
    rng = np.random.default_rng(seed)
    ny, nx = h // 8, w // 8
    tiles = rng.uniform(0.03, 0.75, (ny, nx, 3))
    tiles[ny // 2, nx // 2] = 0.8
    scene = np.repeat(np.repeat(tiles, 8, axis=0), 8, axis=1)
    shade = np.linspace(0.8, 1.0, w)[None, :, None]  # soft illumination gradient
    return scene * shade


def encode8(linear_bgr: np.ndarray) -> np.ndarray:
    return np.rint(linear_to_srgb(np.clip(linear_bgr, 0, 1)) * 255).astype(np.uint8)


def usable(img8: np.ndarray, saturated: float = 0.98, dark: float = 0.02) -> np.ndarray:
    """The documented exclusion rule, written out independently."""
    top = img8.max(axis=2) / 255.0
    return (top < saturated) & (top >= dark)


# A warm light (about 3000 K), R, G, B.
WARM = np.array([1.0, 0.72, 0.42])


# ---------------------------------------------------------------------------------------
# white_balance: estimators held to their formulas


@pytest.mark.parametrize("linear", [True, False])
def test_white_balance_gray_world_equals_channel_means(photo8, linear):
    _, report = wb(photo8, method="gray_world", linear=linear)
    values = photo8[usable(photo8)].astype(np.float64) / 255.0
    if linear:
        values = srgb_to_linear(values)
    means = values.mean(axis=0)[::-1]  # R, G, B
    # Exact up to float rounding: the op sums a histogram, the test the pixels.
    np.testing.assert_allclose(report["illuminant"], means / means.sum(), rtol=1e-12)
    assert report["method"] == "gray_world"


def test_white_balance_gray_world_float_input_equals_channel_means(photo8):
    img = photo8.astype(np.float32) / 255
    _, report = wb(img, method="gray_world")
    values = srgb_to_linear(img[usable(photo8)].astype(np.float64)).mean(axis=0)[::-1]
    np.testing.assert_allclose(report["illuminant"], values / values.sum(), rtol=1e-6)


@pytest.mark.parametrize("q", [90.0, 99.0])
def test_white_balance_white_patch_equals_percentile(photo8, q):
    _, report = wb(photo8, method="white_patch", percentile=q)
    values = srgb_to_linear(photo8[usable(photo8)].astype(np.float64) / 255.0)
    expected = np.percentile(values, q, axis=0, method="inverted_cdf")[::-1]
    np.testing.assert_allclose(report["illuminant"], expected / expected.sum(), rtol=1e-12)


def test_white_balance_shades_of_gray_p1_is_gray_world_and_p6_is_minkowski(photo8):
    _, world = wb(photo8, method="gray_world")
    _, p1 = wb(photo8, method="shades_of_gray", p=1)
    np.testing.assert_allclose(p1["illuminant"], world["illuminant"], rtol=1e-12)
    np.testing.assert_allclose(p1["gains"], world["gains"], rtol=1e-12)
    _, p6 = wb(photo8, method="shades_of_gray", p=6)
    values = srgb_to_linear(photo8[usable(photo8)].astype(np.float64) / 255.0)
    norm = np.mean(values**6, axis=0) ** (1 / 6)
    np.testing.assert_allclose(p6["illuminant"], norm[::-1] / norm.sum(), rtol=1e-12)


@pytest.mark.parametrize("order", [1, 2])
def test_white_balance_gray_edge_equals_scipy_gaussian_derivatives(photo8, order):
    # No clipped pixels and dark=0, so only the border (kernel radius ceil(3 sigma) = 3 px) is left out.
    img = (photo8.astype(np.float64) * 0.9).astype(np.uint8)
    _, report = wb(img, method="gray_edge", order=order, sigma=1.0, p=6, dark=0.0)
    lin = srgb_to_linear(img / 255.0)
    norms = []
    for c in (2, 1, 0):  # R, G, B
        plane = lin[..., c]

        def d(oy, ox, plane=plane):
            return ndimage.gaussian_filter(plane, 1.0, order=(oy, ox), mode="reflect", truncate=3.0)

        if order == 1:
            mag = np.hypot(d(0, 1), d(1, 0))
        else:
            mag = np.sqrt(d(0, 2) ** 2 + d(2, 0) ** 2 + 2 * d(1, 1) ** 2)
        norms.append(np.mean(mag[3:-3, 3:-3] ** 6) ** (1 / 6))
    norms = np.array(norms)
    # Order 1: the kernels differ from scipy's by a constant factor only, so the normalised
    # estimate agrees to float32 precision. Order 2: the second-derivative kernel is made
    # zero-sum here (scipy's is not quite), so allow 0.5%.
    rtol = 1e-5 if order == 1 else 5e-3
    np.testing.assert_allclose(report["illuminant"], norms / norms.sum(), rtol=rtol)


# ---------------------------------------------------------------------------------------
# white_balance: known illuminants on synthetic scenes


@pytest.mark.parametrize(
    ("method", "bound"),
    # Bounds in degrees: the errors measured on this seed (estimate / corrected result:
    # gray world 1.7 / 1.5, white patch 0.4 / 0.8, shades of gray 0.4 / 0.6, gray edge
    # 2.7 / 2.4; they are sampling noise of 192 random tiles) plus margin. auto (learned)
    # 3.3 / 4.3: tiles with independent random channels average to grey by construction,
    # which the pixel statistics exploit exactly, while the model has learned real surfaces.
    [("gray_world", 2.5), ("white_patch", 1.5), ("shades_of_gray", 1.5), ("gray_edge", 3.5), ("auto", 5.0)],
)
def test_white_balance_recovers_known_illuminant(method, bound):
    scene = mondrian()
    light_bgr = WARM[::-1]
    cast = encode8(scene * light_bgr)
    out, report = wb(cast, method=method)
    assert angle(report["illuminant"], WARM) < bound
    # And the correction brings the scene back: the mean colour of the result is close to
    # the mean colour of the uncast scene.
    back = srgb_to_linear(out / 255.0).reshape(-1, 3).mean(axis=0)
    truth = scene.reshape(-1, 3).mean(axis=0)
    assert angle(back, truth) < bound


@pytest.mark.parametrize("method", METHODS)
def test_white_balance_ignores_clipped_and_dark_pixels(method):
    cast = encode8(mondrian(1) * WARM[::-1])
    _, before = wb(cast, method=method)
    # Bands of blown highlights (white, and clipped in red only) next to the scene, then
    # near-black pixels.
    band = np.zeros((cast.shape[0], 24, 3), np.uint8)
    band[:48, :12] = 255
    band[48:, :12] = (200, 230, 255)  # BGR: red clipped
    band[:, 12:] = (3, 4, 2)
    wider = np.concatenate([cast, band], axis=1)
    _, after = wb(wider, method=method)
    if method == "auto":
        # The learned model sees a downscaled copy (no small pixel that averages a clipped one
        # counts) and how much of the frame is clipped or dark, so it moves, a little: measured
        # 2.6 deg (8.9 before clipped pixels were kept out of the downscaled copy).
        assert angle(after["illuminant"], before["illuminant"]) < 3.5
        return
    # The same pixels are used (for gray edge: the same pixels, with kernels that do not
    # reach the bands): the same estimate to float precision (gray edge runs in float32).
    np.testing.assert_allclose(
        after["illuminant"], before["illuminant"], rtol=1e-12 if method != "gray_edge" else 1e-6
    )
    # Had they counted, gray world would have moved by degrees.
    if method == "gray_world":
        mean_all = srgb_to_linear(wider / 255.0).reshape(-1, 3).mean(axis=0)[::-1]
        assert angle(mean_all, before["illuminant"]) > 1.0


def test_white_balance_gains_keep_mid_grey_brightness():
    cast = encode8(mondrian(2) * WARM[::-1])
    _, report = wb(cast, method="gray_world")
    gains = np.array(report["gains"])
    assert gains @ LUMA_RGB == pytest.approx(1.0, abs=1e-12)
    # A mid-grey through the same gains keeps its linear luminance (within 1 LSB at 8 bit).
    grey = np.full((4, 4, 3), 118, np.uint8)
    out = run_op(grey, "white_balance", method="manual", gains=list(gains))
    lum_in = srgb_to_linear(118 / 255.0)
    lum_out = srgb_to_linear(out[0, 0, ::-1] / 255.0) @ LUMA_RGB
    assert abs(linear_to_srgb(lum_out) * 255 - 118) <= 1.0
    assert lum_out == pytest.approx(lum_in, rel=0.02)


@pytest.mark.parametrize("method", METHODS)
def test_white_balance_uint16_agrees_with_uint8(photo8, photo16, method):
    out8, r8 = wb(photo8, method=method)
    out16, r16 = wb(photo16, method=method)
    # photo16 carries up to 0.8 LSB (8-bit) of extra low bits, so the estimates differ a
    # little: within 0.5 degrees, and the images within 2 LSB at 8 bit. The learned model's
    # trees are steps, so a feature that moves a little can cross one: measured 1.2 degrees on
    # this crop (0.07 before issue 14's retraining, whose trees no longer see the estimate's
    # absolute chromaticity); over 12 crops of the sample photos mean 0.44, largest 1.9 (0.26
    # and 0.69 before), which moves this crop's output by up to 4.8 LSB.
    learned = method == "auto"
    assert angle(r8["illuminant"], r16["illuminant"]) < (2.0 if learned else 0.5)
    assert_images_close(out16 / 257.0, out8, atol=6.0 if learned else 2.0, name=f"wb16-{method}")


# ---------------------------------------------------------------------------------------
# white_balance: manual modes


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("linear", [True, False])
def test_white_balance_manual_gains_applied_exactly(photo8, photo16, dtype, linear):
    img = photo8 if dtype == np.uint8 else photo16
    top = 255 if dtype == np.uint8 else 65535
    gains_rgb = [1.3, 1.0, 0.7]
    out, report = wb(img, method="manual", gains=gains_rgb, linear=linear)
    g = np.array(gains_rgb[::-1])
    v = img / top
    expected = linear_to_srgb(np.clip(srgb_to_linear(v) * g, 0, 1)) if linear else np.clip(v * g, 0, 1)
    # The formula, rounded: within 1 LSB (rounding only).
    assert_images_close(out, np.rint(expected * top), atol=1.0, name="manual-gains")
    assert report["gains"] == pytest.approx(gains_rgb)


@requires_magick
@pytest.mark.imagemagick
@pytest.mark.parametrize("linear", [True, False])
def test_white_balance_manual_gains_match_imagemagick(photo8, photo16, linear):
    args = ["-channel", "R", "-evaluate", "multiply", "1.3", "-channel", "B", "-evaluate", "multiply", "0.7"]
    args = args + ["+channel"]
    if linear:
        args = ["-colorspace", "RGB", *args, "-colorspace", "sRGB"]
    for img, atol in ((photo8, 1.0), (photo16, 20.0 if linear else 1.0)):
        out = run_op(img, "white_balance", method="manual", gains=[1.3, 1.0, 0.7], linear=linear)
        # Within 1 LSB, except 16-bit in linear light: within 20 LSB of 65535, because
        # ImageMagick (Q16) quantises the linear intermediate to 1/65535, which the sRGB
        # curve near black stretches by 12.92 (x 1.3 gain) = 17 LSB.
        assert_images_close(out, magick(img, *args), atol=atol, name=f"wb-magick-{img.dtype}-{linear}")


def test_white_balance_white_at_neutralises_that_pixel():
    scene = mondrian(3)
    scene[40:56, 64:80] = 0.3  # a neutral grey card
    cast = encode8(scene * WARM[::-1])
    out, report = wb(cast, method="manual", white_at=[72, 48])
    px = out[48, 72].astype(int)
    assert px.max() - px.min() <= 1  # neutral within 1 LSB
    # The window's mean is the light's colour, up to 8-bit rounding of the cast card.
    np.testing.assert_allclose(report["illuminant"], WARM / WARM.sum(), atol=3e-3)


def test_white_balance_white_neutralises_that_colour():
    card = np.array([200, 160, 110], np.uint8)  # R, G, B as stored
    img = np.tile(card[::-1], (8, 8, 1)).astype(np.uint8)
    out, _ = wb(img, method="manual", white=list(card / 255.0))
    assert np.ptp(out[0, 0].astype(int)) <= 1


def test_white_balance_kelvin():
    img = np.full((8, 8, 3), 128, np.uint8)
    _, d65 = wb(img, method="manual", kelvin=6500)
    # 6500 K daylight is within 0.5% of the sRGB white (D65 is 6504 K).
    np.testing.assert_allclose(d65["gains"], 1.0, atol=5e-3)
    _, warm = wb(img, method="manual", kelvin=3000)
    gr, gg, gb = warm["gains"]
    assert gb > 1.5 * gr and gb > gg > gr
    _, cold = wb(img, method="manual", kelvin=10000)
    assert cold["gains"][0] > cold["gains"][2]
    # Ratios are monotone in temperature and continuous across the black-body/daylight blend.
    ratios = [kelvin_to_rgb(k)[2] / kelvin_to_rgb(k)[0] for k in range(2000, 12001, 250)]
    assert np.all(np.diff(ratios) > 0)


def test_white_balance_kelvin_locus_known_values():
    # CIE illuminant A (2856 K black body) and D50/D65 (daylight locus), within 1e-3 in xy.
    np.testing.assert_allclose(planckian_xy(2856), (0.4476, 0.4074), atol=1e-3)
    np.testing.assert_allclose(daylight_xy(5003), (0.3457, 0.3585), atol=1e-3)
    np.testing.assert_allclose(daylight_xy(6504), (0.3127, 0.3290), atol=1e-3)
    np.testing.assert_allclose(kelvin_to_rgb(6504), 1.0, atol=5e-3)


# ---------------------------------------------------------------------------------------
# white_balance: reports, dtypes, edge cases, validation


def test_white_balance_reports_rgb_order():
    cast = encode8(mondrian(4) * WARM[::-1])
    _, report = wb(cast, method="gray_world")
    assert set(report) >= {"method", "illuminant", "gains"}
    ill, gains = report["illuminant"], report["gains"]
    assert len(ill) == 3 and sum(ill) == pytest.approx(1.0)
    assert ill[0] > ill[1] > ill[2]  # warm light: R > G > B
    assert gains[2] > gains[1] > gains[0]
    _, auto = wb(cast)
    assert auto["method"] == "auto" and auto["estimator"]["method"] == "learned"


@pytest.mark.parametrize("method", [*METHODS, "manual"])
@pytest.mark.parametrize("fixture", ["photo8", "photo16", "float"])
def test_white_balance_keeps_dtype_shape_and_input(request, method, fixture):
    img = request.getfixturevalue("photo8").astype(np.float32) / 255 if fixture == "float" else None
    img = img if img is not None else request.getfixturevalue(fixture)
    before = img.copy()
    extra = {"kelvin": 4000} if method == "manual" else {}
    out = run_op(img, "white_balance", method=method, **extra)
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("method", METHODS)
def test_white_balance_float_agrees_with_uint8(photo8, method):
    out8 = run_op(photo8, "white_balance", method=method)
    outf = run_op(photo8.astype(np.float32) / 255, "white_balance", method=method)
    # Same pixels, same formulas; float percentiles and edges differ only by rounding.
    assert_images_close(outf * 255, out8, atol=1.0, name=f"wbf-{method}")


@pytest.mark.parametrize("fixture", ["gray8", "gray16"])
def test_white_balance_grey_is_noop(request, fixture):
    img = request.getfixturevalue(fixture)
    for params in ({}, {"method": "gray_edge"}, {"method": "manual", "white_at": [3, 3]}):
        out, report = wb(img, **params)
        np.testing.assert_array_equal(out, img)
        assert "grey" in report["skipped"]


def test_white_balance_strength(photo8):
    assert_images_close(run_op(photo8, "white_balance", strength=0.0), photo8, atol=0.0, name="wb-strength0")
    _, full = wb(photo8, method="gray_world")
    _, half = wb(photo8, method="gray_world", strength=0.5)
    np.testing.assert_allclose(half["gains"], 1 + 0.5 * (np.array(full["gains"]) - 1), rtol=1e-12)


def test_white_balance_no_usable_pixels_is_noop():
    black = np.full((16, 16, 3), 2, np.uint8)
    out, report = wb(black, method="gray_world")
    np.testing.assert_array_equal(out, black)
    assert "no usable pixels" in report["skipped"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"method": "manual"}, "exactly one of"),
        ({"method": "manual", "gains": [1, 1, 1], "kelvin": 5000}, "exactly one of"),
        (
            {"method": "gray_world", "kelvin": 5000},
            "kelvin: used only with method: manual (this step has method: gray_world)",
        ),
        (
            {"white_at": [1, 2]},
            "white_at: used only with method: manual (this step has method: auto, the default)",
        ),
        ({"dark": 0.5, "saturated": 0.4}, "dark (0.5) must be below saturated"),
        ({"method": "manual", "gains": [1, 1]}, "white_balance.gains"),
        ({"method": "manual", "kelvin": 1000}, "white_balance.kelvin"),
        ({"method": "manual", "white_at": [1, 1], "window": 4}, "white_balance.window"),
        ({"method": "grey_world"}, "did you mean 'gray_world'"),
        ({"order": 3}, "white_balance.order"),
    ],
)
def test_white_balance_validation(photo8, params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        run_op(photo8, "white_balance", **params)


def test_white_balance_white_at_outside_image(photo8):
    # Known only once the image is seen: the pipeline reports it as a failed step.
    with pytest.raises(
        StepError, match=r"^steps\[0\] white_balance\.white_at: \[500, 2\] is outside the 96x64"
    ):
        run_op(photo8, "white_balance", method="manual", white_at=[500, 2])


# ---------------------------------------------------------------------------------------
# saturation


def skimage_saturation(img: np.ndarray, factor: float) -> np.ndarray:
    """Reference: scale a*, b* with scikit-image's Lab, back to the image's depth."""
    top = 255 if img.dtype == np.uint8 else 65535
    lab = color.rgb2lab(img[..., ::-1] / top)
    lab[..., 1:] *= factor
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "negative Z values clipped" for out-of-gamut colours
        rgb = color.lab2rgb(lab)
    return np.rint(rgb[..., ::-1] * top)


@pytest.fixture(scope="module")
def vivid8() -> np.ndarray:
    """Random colours across the whole cube, many pushed out of gamut by factor > 1."""
    return np.random.default_rng(5).integers(0, 256, (48, 48, 3)).astype(np.uint8)


@pytest.mark.parametrize("factor", [0.0, 0.5, 1.0, 1.5, 2.5])
def test_saturation_matches_skimage_lab(photo8, vivid8, factor):
    # Within 1 LSB at 8 bit (float32 here vs float64 there), out-of-gamut clipping included.
    for name, img in (("photo", photo8), ("vivid", vivid8)):
        out = run_op(img, "saturation", factor=factor)
        assert_images_close(out, skimage_saturation(img, factor), atol=1.0, name=f"sat-{name}-{factor}")


@pytest.mark.parametrize("factor", [0.0, 0.7, 1.6])
def test_saturation_matches_skimage_lab_16bit(photo16, factor):
    # float32 arithmetic: within 8 LSB of 65535 (0.03 LSB at 8 bit).
    out = run_op(photo16, "saturation", factor=factor)
    assert_images_close(out, skimage_saturation(photo16, factor), atol=8.0, name=f"sat16-{factor}")


@requires_magick
@pytest.mark.imagemagick
@pytest.mark.parametrize(("factor", "atol"), [(0.0, 1.0), (0.5, 1.0), (1.5, 1.0), (2.5, 2.0)])
def test_saturation_matches_imagemagick_lab(photo8, factor, atol):
    # ImageMagick stores a*, b* offset by one half in its Lab channels: a' = 0.5 + f (a - 0.5).
    args = [
        "-colorspace",
        "Lab",
        "-channel",
        "GB",
        "-function",
        "Polynomial",
        f"{factor},{0.5 - 0.5 * factor}",
    ]
    expected = magick(photo8, *args, "+channel", "-colorspace", "sRGB")
    # Within 1 LSB (2 at factor 2.5, where Q16 Lab clips the widest chroma) on a natural photo.
    assert_images_close(
        run_op(photo8, "saturation", factor=factor), expected, atol=atol, name=f"sat-im-{factor}"
    )


@pytest.mark.parametrize("fixture", ["photo8", "photo16"])
def test_saturation_factor_one_is_identity(request, fixture):
    img = request.getfixturevalue(fixture)
    assert_images_close(run_op(img, "saturation", factor=1.0), img, atol=1.0, name=f"sat-identity-{fixture}")


def test_saturation_factor_zero_is_neutral_and_keeps_lightness(photo8):
    out = run_op(photo8, "saturation", factor=0.0)
    assert np.ptp(out.astype(int), axis=2).max() <= 1  # R = G = B within 1 LSB
    lab_in = color.rgb2lab(photo8[..., ::-1] / 255.0)
    lab_out = color.rgb2lab(out[..., ::-1] / 255.0)
    # a = b = 0 and L unchanged, up to 8-bit rounding (0.5 LSB is at most ~0.4 in a, b or L).
    assert np.abs(lab_out[..., 1:]).max() < 0.8
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() < 0.5


def test_saturation_float_grey_dtype_and_input(photo8, gray8, gray16):
    img = photo8.astype(np.float32) / 255
    before = img.copy()
    out = run_op(img, "saturation", factor=1.4)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_array_equal(img, before)
    # Float output agrees with the 8-bit path within 1 LSB.
    assert_images_close(out * 255, run_op(photo8, "saturation", factor=1.4), atol=1.0, name="sat-float")
    for grey in (gray8, gray16):
        np.testing.assert_array_equal(run_op(grey, "saturation", factor=2.0), grey)


def test_saturation_validation(photo8):
    with pytest.raises(ValueError, match="saturation.factor"):
        run_op(photo8, "saturation", factor=-0.5)


def test_srgb_to_linear_on_a_large_float32_frame_is_the_standard_curve():
    # Frames of 65536 values or more take a faster path (cv2.pow in place): within 1e-6 relative of
    # the IEC 61966-2-1 formula in float64, exact at 0, at the toe's end and at 1.
    levels = np.linspace(0.0, 1.0, 300 * 300 * 3, dtype=np.float32)
    levels[:3] = (0.0, 0.04045, 1.0)
    v = levels.reshape(300, 300, 3)
    x = v.astype(np.float64)
    expected = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    out = srgb_to_linear(v)
    assert out.dtype == np.float32 and out.shape == v.shape
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-9)
    assert out.reshape(-1)[:3].tolist() == pytest.approx([0.0, 0.04045 / 12.92, 1.0], rel=1e-7)
    np.testing.assert_array_equal(v, levels.reshape(300, 300, 3))  # the input is left as it was
