"""Fast routes of gradient_normalize, saturation and denoise_chroma agree with the plain computation (issue 11).

Each route (strips instead of full planes, native depth instead of a float copy, branch-free
companding) is checked against the straightforward version it replaces, on images large enough
to cross strip boundaries, and on 8-bit, 16-bit, float, grey and alpha inputs.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import assert_images_close

from imgenh import pipeline_from_steps, pixels
from imgenh.io import Image
from imgenh.ops import color, gradient
from imgenh.pipeline import run_op
from imgenh.pixels import from_float, to_float

# ------------------------------------------------------------------------------- gradient_normalize


@pytest.mark.parametrize("shape", [(1, 7), (5, 1), (33, 20), (gradient._DIV_STRIP_ROWS * 2 + 3, 41)])
@pytest.mark.parametrize("with_phi", [True, False])
def test_attenuated_divergence_is_divergence_of_attenuated_gradient(shape, with_phi):
    """Strip by strip, bit for bit the whole-plane forward gradient, product and divergence."""
    rng = np.random.default_rng(3)
    h = rng.normal(size=shape).astype(np.float32)
    phi = rng.uniform(0.2, 3.0, shape).astype(np.float32) if with_phi else None
    gx, gy = gradient.forward_gradient(h)
    if phi is not None:
        gx *= phi
        gy *= phi
    expected = gradient.divergence(gx, gy)
    np.testing.assert_array_equal(gradient.attenuated_divergence(h, phi), expected)
    # Written into phi's own memory: the same bits (each strip of phi is read before it is written).
    own = None if phi is None else phi.copy()
    got = gradient.attenuated_divergence(h, own, overwrite=True)
    np.testing.assert_array_equal(got, expected)
    assert own is None or got is own


def _attenuation_whole(h, alpha, beta, min_size, noise, eps):
    """Fattal's Phi with the noise hold-back on full planes, as the docstrings state it (float64)."""
    levels = [h]
    while min(levels[-1].shape) // 2 >= min_size:
        levels.append(cv2.pyrDown(levels[-1]))
    phi_total = None
    for k in range(len(levels) - 1, -1, -1):
        lv = levels[k].astype(np.float64)
        p = np.pad(lv, 1, mode="edge")
        g = np.hypot(p[1:-1, 2:] - p[1:-1, :-2], p[2:, 1:-1] - p[:-2, 1:-1]) / 2.0 ** (k + 1)
        a = alpha * g.mean()
        phi = (np.maximum(g, 0.01 * a) / a) ** (beta - 1)
        if phi_total is not None:
            up = cv2.resize(
                phi_total.astype(np.float32), (lv.shape[1], lv.shape[0]), interpolation=cv2.INTER_LINEAR
            )
            phi = phi * up
        phi_total = phi
    coarse = levels[1] if len(levels) > 1 else h
    lum_eps = cv2.resize(coarse, (h.shape[1], h.shape[0]), interpolation=cv2.INTER_LINEAR).astype(np.float64)
    floor = 3.0 / np.sqrt(2.0) * noise * np.exp(-lum_eps)
    t = np.clip((g - floor) / floor, 0.0, 1.0)
    excess = np.maximum(phi_total - 1.0, 0.0)
    return phi_total - excess * (1.0 - t)


@pytest.mark.parametrize("coarse_shape", [(75, 49), (38, 20), (1, 5), (4, 1)])
@pytest.mark.parametrize("tall", [0, 1])
def test_upsampled_rows_are_the_whole_resize_to_the_bit(coarse_shape, tall):
    """Rows of a bilinear resize made strip by strip (height doubled exactly) or from the whole
    resize (any other height) equal that resize's rows to the bit, for any strip bounds."""
    rng = np.random.default_rng(5)
    plane = rng.normal(size=coarse_shape).astype(np.float32)
    shape = (2 * coarse_shape[0] + tall, 2 * coarse_shape[1] - 1)
    whole = cv2.resize(plane, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    rows = gradient._UpsampledRows(plane, shape)
    assert (rows.whole is None) == (tall == 0)
    for step in (1, 3, 16):
        got = np.concatenate([rows.rows(y0, min(y0 + step, shape[0])) for y0 in range(0, shape[0], step)])
        np.testing.assert_array_equal(got, whole)


@pytest.mark.parametrize("shape", [(150, 97), (151, 97), (40, 40)])
def test_attenuation_in_strips_matches_whole_plane_formula(shape):
    """The finest level formed strip by strip gives the whole-plane Phi (rtol 1e-4, float32 vs float64)."""
    rng = np.random.default_rng(4)
    lum = cv2.GaussianBlur(rng.uniform(0.0, 1.0, shape).astype(np.float32), (0, 0), 3)
    lum += rng.normal(0, 0.01, shape).astype(np.float32)
    h = np.log(np.clip(lum, 0, None) + np.float32(0.004))
    got = gradient.attenuation(h, 0.1, 0.85, min_size=16, noise=0.01, eps=0.004)
    expected = _attenuation_whole(h, 0.1, 0.85, 16, 0.01, 0.004)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("fixture", ["photo8", "photo16", "gray8", "gray16"])
def test_gradient_normalize_native_depth_matches_the_float_route(request, fixture):
    """Integer images at their own depth = the float image's result rounded to that depth (1 LSB)."""
    img = request.getfixturevalue(fixture)
    big = cv2.resize(img, (img.shape[1] * 2 + 1, 150), interpolation=cv2.INTER_LINEAR)  # > one strip
    got = run_op(big, "gradient_normalize")
    via_float = from_float(run_op(to_float(big), "gradient_normalize"), big.dtype)
    assert got.dtype == big.dtype
    assert_images_close(got, via_float, atol=1, name=f"gradient_normalize-native-{fixture}")


def test_gradient_normalize_keeps_alpha_and_matches_without_it(photo8):
    """An RGBA image: alpha comes back untouched, colour as for the same pixels without alpha."""
    alpha = np.tile(np.linspace(0, 255, photo8.shape[1]).astype(np.uint8), (photo8.shape[0], 1))
    pipeline = pipeline_from_steps([{"op": "gradient_normalize"}, {"op": "saturation", "factor": 1.4}])
    out, _ = pipeline.apply_image(Image(photo8.copy(), alpha=alpha.copy(), format="png"))
    plain, _ = pipeline.apply_image(Image(photo8.copy(), format="png"))
    assert np.array_equal(out.alpha, alpha)
    assert np.array_equal(out.pixels, plain.pixels)


def test_gradient_normalize_is_the_same_run_after_run(photo8):
    """Strips sit at varying memory alignments: the result must not depend on them (it did, by an ulp,
    through cv2.magnitude)."""
    big = cv2.resize(photo8, (197, 150), interpolation=cv2.INTER_LINEAR)
    lum = gradient._float_luma(big)
    first = gradient.compress_log_luminance(lum.copy(), noise=0.01)
    for _ in range(6):
        junk = [np.empty(n, np.uint8) for n in (1, 17, 333)]  # shift where the next buffers land
        np.testing.assert_array_equal(gradient.compress_log_luminance(lum.copy(), noise=0.01), first)
        del junk


def test_gradient_normalize_leaves_a_grey_float_input_unwritten(gray8):
    """The log luminance reuses the luma's plane, never the caller's grey float image."""
    img = to_float(gray8)
    before = img.copy()
    run_op(img, "gradient_normalize")
    np.testing.assert_array_equal(img, before)


# ------------------------------------------------------------------------------- saturation


def _lab_f_reference(t):
    t = np.asarray(t, np.float64)
    return np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)


def _lab_finv_reference(f):
    f = np.asarray(f, np.float64)
    return np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29))


def test_branch_free_lab_companding_is_the_piecewise_definition():
    """f and its inverse without masks agree with CIE's two pieces everywhere, joins included (1e-6)."""
    eps, join = (6 / 29) ** 3, 6 / 29
    t = np.concatenate(
        [
            np.linspace(-0.2, 1.3, 20001),
            [0.0, eps, np.nextafter(eps, 0), np.nextafter(eps, 1), 1.0],
            np.random.default_rng(0).uniform(-0.05, 0.05, 1000),
        ]
    ).astype(np.float32)
    plane = np.ascontiguousarray(np.repeat(t[:, None], 3, axis=1).reshape(-1, 1, 3))
    np.testing.assert_allclose(color._lab_f(plane)[:, 0, 0], _lab_f_reference(t), atol=1e-6, rtol=1e-6)
    f = np.concatenate([np.linspace(-0.5, 1.2, 20001), [join, np.nextafter(join, 0), 4 / 29, 0.0]])
    f = np.repeat(f.astype(np.float32)[:, None], 3, axis=1).reshape(-1, 1, 3)
    np.testing.assert_allclose(
        color._lab_finv(f)[:, 0, 0], _lab_finv_reference(f[:, 0, 0]), atol=1e-6, rtol=1e-6
    )


def _edge_colours(dtype) -> np.ndarray:
    """Black, white, greys, primaries, secondaries and random colours, at ``dtype``'s full scale."""
    top = np.iinfo(dtype).max
    corners = np.array([[b, g, r] for b in (0, 1) for g in (0, 1) for r in (0, 1)], np.float64)
    greys = np.linspace(0, 1, 17)[:, None].repeat(3, axis=1)
    rand = np.random.default_rng(9).uniform(0, 1, (1000, 3))
    near_black = np.random.default_rng(10).uniform(0, 0.02, (200, 3))
    values = np.concatenate([corners, greys, rand, near_black])
    return np.rint(values * top).astype(dtype).reshape(-1, 1, 3)


@pytest.mark.parametrize(
    ("dtype", "factor", "atol"),
    [(np.uint8, f, 1.0) for f in (0.0, 0.6, 1.7, 4.0)]
    + [(np.uint16, 0.0, 8.0), (np.uint16, 0.6, 8.0), (np.uint16, 1.7, 16.0), (np.uint16, 4.0, 64.0)],
)
def test_saturation_on_edge_colours_matches_skimage(dtype, factor, atol):
    """Gamut corners, greys, near-black and random colours against scikit-image's Lab.

    8 bit: the stated 1 LSB at every factor. 16 bit: the stated 8 LSB where colours stay in
    gamut; colours pushed far out of gamut (factor 1.7, 4) are clipped in linear light after
    float32 arithmetic, which reaches 10 and 44 LSB of 65535 here (0.04 and 0.17 of an 8-bit
    level) -- the same before the branch-free companding (measured on main).
    """
    from test_ops_color import skimage_saturation

    img = _edge_colours(dtype)
    assert_images_close(run_op(img, "saturation", factor=factor), skimage_saturation(img, factor), atol=atol)


def test_saturation_keeps_alpha(photo8):
    alpha = np.full(photo8.shape[:2], 77, np.uint8)
    out, _ = pipeline_from_steps([{"op": "saturation", "factor": 1.5}]).apply_image(
        Image(photo8.copy(), alpha=alpha.copy(), format="png")
    )
    assert np.array_equal(out.alpha, alpha)
    assert np.array_equal(out.pixels, run_op(photo8, "saturation", factor=1.5))


def test_saturation_8bit_encode_equals_the_float_route_rounded():
    """The 8-bit sRGB encode (affine + rounding in one pass, near-black branch rounded apart)
    gives the float route's levels rounded and saturated, to the bit, across both branches,
    the knee, negative (out of gamut) and above-white values."""
    rng = np.random.default_rng(4)
    knee = color._SRGB_KNEE
    values = np.concatenate(
        [
            np.linspace(-0.05, 1.2, 30001),
            [0.0, knee, np.nextafter(knee, 0), np.nextafter(knee, 1), 1.0],
            rng.uniform(0, 0.004, 3000),
        ]
    ).astype(np.float32)
    values = values[: values.size // 3 * 3].reshape(-1, 1, 3)
    for lin in (values, np.abs(values) + np.float32(0.01)):  # with and without near-black values
        expected = cv2.convertScaleAbs(color._encode_srgb_levels(lin.copy(), 255.0))
        out = color._encode_srgb_uint8(lin.copy(), np.empty(lin.shape, np.uint8))
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("fixture", ["photo8", "photo16"])
def test_saturation_in_strips_matches_one_strip(request, fixture, monkeypatch):
    """Cache-sized strips (here 54 rows of 404 pixels) give the result of one strip over the whole image,
    within 1 LSB at 8 bit (a strip's first values can take a SIMD loop's scalar path: a last-bit
    difference before rounding, 1 pixel in 12 M on a corpus photo) and 8 LSB at 16 bit."""
    img = request.getfixturevalue(fixture)
    big = cv2.resize(img, (404, 150), interpolation=cv2.INTER_LINEAR)
    assert pixels.strip_rows(big) < big.shape[0] // 2  # three strips
    strips = run_op(big, "saturation", factor=1.6)
    monkeypatch.setattr(color, "strip_rows", lambda img: img.shape[0])
    whole = run_op(big, "saturation", factor=1.6)
    assert_images_close(
        strips, whole, atol=1.0 if big.dtype == np.uint8 else 8.0, name=f"sat-strips-{fixture}"
    )


def test_strip_rows_fills_a_strip_with_about_the_values_asked():
    assert pixels.strip_rows(np.empty((3000, 4000, 3), np.uint8)) == 5  # 65536 values of 12000 a row
    assert pixels.strip_rows(np.empty((10, 100), np.float32), values=250) == 2
    assert pixels.strip_rows(np.empty((4, 100_000, 3), np.uint8)) == 1  # a row wider than the budget


def test_srgb_root_is_the_power_within_float32_accuracy():
    """exp(5/12 log v) on float32 against the float64 power, over [0, 1.2] (clipped at the knee)."""
    knee = color._SRGB_KNEE
    v = np.concatenate([np.linspace(0.0, 1.2, 60001), [knee, np.nextafter(knee, 1), 1.0]]).astype(np.float32)
    v = v[: v.size // 3 * 3].reshape(-1, 1, 3)
    root, dark = color._srgb_root(v.copy())
    assert dark  # values below the knee present
    expected = np.maximum(v.astype(np.float64), knee) ** (5.0 / 12.0)
    np.testing.assert_allclose(root, expected, rtol=4e-7, atol=0)


def test_percentiles_of_the_sorted_sample_are_numpys_to_the_bit(monkeypatch):
    """The sample is sorted before np.percentile (faster for two ranks): the same values, ties,
    a constant plane and a NaN alike."""
    monkeypatch.setattr(gradient, "_PERCENTILE_SAMPLE", 1000)
    rng = np.random.default_rng(6)
    planes = [
        np.exp(rng.normal(size=(97, 131))).astype(np.float32),
        rng.integers(0, 5, (50, 60)).astype(np.float32),
        np.full((40, 40), 0.25, np.float32),
    ]
    planes.append(planes[0].copy())
    planes[-1][0, 0] = np.nan  # in the sample
    for plane in planes:
        flat = plane.reshape(-1)
        sample = flat[:: max(1, flat.size // 1000)]
        for q in [(0.5, 99.5), (0.0, 37.0), (1.0, 100.0)]:
            inner = [p for p in q if 0 < p < 100]
            found = dict(zip(inner, np.percentile(sample, inner).tolist(), strict=True))  # the unsorted route
            expected = [float(flat.min() if p <= 0 else flat.max() if p >= 100 else found[p]) for p in q]
            np.testing.assert_array_equal(gradient._percentiles(plane, q), expected)


@pytest.mark.parametrize("width", [160, 159])
def test_gradient_normalize_rolls_highlights_off_at_an_odd_width_too(width):
    """An odd width is solved mirrored and cropped (a strided view): protect still rolls the
    highlights off there (it once only clipped them: the roll-off wrote into a flattened copy)."""
    yy, xx = np.mgrid[0:128, 0:width]
    lum = np.where(yy < 64, 0.75 + 0.05 * yy / 128, 0.25 + 0.2 * np.sin(xx / 2.5) * np.sin(yy / 3.0))
    img = (lum + np.random.default_rng(0).normal(0, 1 / 255, lum.shape)).astype(np.float32)
    protected = run_op(np.clip(img, 0, 1), "gradient_normalize", high=99.0)
    clipped = run_op(np.clip(img, 0, 1), "gradient_normalize", high=99.0, highlights="clip")
    assert np.mean(clipped == 1.0) > 0.005
    assert np.mean(protected == 1.0) < 0.001
