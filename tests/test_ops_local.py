"""Local operators that hold back: shadows_highlights, flatten, denoise_chroma, deblock.

References are plain numpy (and scipy) implementations of the published formulas: the guided
filter of He, Sun & Tang (2010) with box means from cumulative sums, Moroney's (2000) masking
exponent, a morphological-closing background, Rec. 601 YCrCb and the deblocking rule as a loop.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import run_with_report
from scipy import ndimage

from imgenh import run_op
from imgenh.ops import local

# ---------------------------------------------------------------------------------------------
# numpy references
# ---------------------------------------------------------------------------------------------


def box_mean(x: np.ndarray, r: int) -> np.ndarray:
    """Mean over (2r+1)^2 windows, border reflected without repeating the edge (numpy 'reflect')."""
    p = np.pad(x.astype(np.float64), r, mode="reflect")
    c = np.cumsum(np.cumsum(np.pad(p, ((1, 0), (1, 0))), axis=0), axis=1)
    k = 2 * r + 1
    s = c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]
    return s / (k * k)


def guided_reference(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al. 2010, Algorithm 1, in float64."""
    mi, mp = box_mean(guide, r), box_mean(src, r)
    a = (box_mean(guide * src, r) - mi * mp) / (box_mean(guide * guide, r) - mi * mi + eps)
    b = mp - a * mi
    return box_mean(a, r) * guide + box_mean(b, r)


def luma709(bgr: np.ndarray) -> np.ndarray:
    return bgr @ np.array([0.072186, 0.715158, 0.212656])


def to_float(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64) / (65535.0 if img.dtype == np.uint16 else 255.0)


# ---------------------------------------------------------------------------------------------
# the guided filter and shadows_highlights
# ---------------------------------------------------------------------------------------------


def test_guided_filter_matches_numpy_reference(photo8):
    x = to_float(photo8)
    y = luma709(x)
    ours = local.guided_filter(y.astype(np.float32), y.astype(np.float32), 4, 0.01)
    np.testing.assert_allclose(ours, guided_reference(y, y, 4, 0.01), atol=2e-5)


def shadows_highlights_reference(x, shadows, highlights, radius, eps, row_weight=None):
    """Moroney's exponent on a guided mask, gain limited to two stops and to each pixel's headroom.

    ``row_weight`` (per row, 0..1) scales how far each row's gain departs from 1, before the headroom.
    """
    y = luma709(x)
    r = max(1, round(radius * min(x.shape[:2])))
    base = np.maximum(guided_reference(y, y, r, eps), 0.02)
    e = 2.0 ** (highlights * np.maximum(2 * base - 1, 0) - shadows * np.maximum(1 - 2 * base, 0))
    gain = np.clip(base ** (e - 1), 0.25, 4.0)
    if row_weight is not None:
        gain = 1 + (gain - 1) * row_weight[:, None]
    headroom = 1.0 / np.maximum(x.max(axis=2), 1e-6)
    gain = np.where(gain > 1, np.minimum(gain, np.maximum(headroom, 1)), gain)
    return np.clip(x * gain[..., None], 0, 1)


def test_shadows_highlights_matches_moroney_formula_on_a_guided_mask(photo8):
    x = to_float(photo8)
    shadows, highlights = 1.2, 0.6
    expected = shadows_highlights_reference(x, shadows, highlights, 0.1, 0.02)
    out = run_op(
        x.astype(np.float32),
        "shadows_highlights",
        shadows=shadows,
        highlights=highlights,
        radius=0.1,
        eps=0.02,
    )
    np.testing.assert_allclose(out, expected, atol=1e-4)


def test_shadows_highlights_leaves_a_flat_mid_grey_image_alone():
    grey = np.full((40, 60, 3), 0.5, np.float32)
    out = run_op(grey, "shadows_highlights", shadows=2.0, highlights=2.0)
    np.testing.assert_allclose(out, grey, atol=1e-6)


def test_shadows_highlights_brightens_a_backlit_half_and_barely_moves_the_sky(photo8):
    clean = to_float(cv2.resize(photo8, (192, 128), interpolation=cv2.INTER_CUBIC))
    backlit = 0.55 + 0.4 * clean  # a bright sky above...
    backlit[64:] = 0.35 * clean[64:]  # ...and a subject in its shadow below
    out = run_op((backlit * 255).round().astype(np.uint8), "shadows_highlights", shadows=1.0)
    out = to_float(out)
    lower_before, lower_after = luma709(backlit[72:]).mean(), luma709(out[72:]).mean()
    assert lower_after > 1.6 * lower_before
    sky = np.abs(luma709(out[:56]) - luma709(backlit[:56]))
    assert sky.mean() < 0.01, sky.mean()  # under 3 levels where it was not dark


def dark_share_reference(x: np.ndarray) -> float:
    """The share of 32-cell map cells of linear luma (area means, blur 1.5) 3 stops below the 90th percentile."""
    light = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    y = luma709(light)
    h, w = y.shape
    cells = cv2.resize(
        y, (round(w * 32 / max(h, w)), round(h * 32 / max(h, w))), interpolation=cv2.INTER_AREA
    )
    cells = cv2.GaussianBlur(cells, (0, 0), 1.5)
    return float(np.mean(cells < np.percentile(cells, 90) / 8.0))


def backlit_version(clean: np.ndarray) -> np.ndarray:
    """The lower half 2.7 stops darker in linear light (linear x 0.15), as benchmarks/quality.py's case."""
    light = np.where(clean <= 0.04045, clean / 12.92, ((clean + 0.055) / 1.055) ** 2.4)
    light[clean.shape[0] // 2 :] *= 0.15
    return np.where(light <= 0.0031308, light * 12.92, 1.055 * light ** (1 / 2.4) - 0.055)


def test_dark_share_of_a_backlit_half_and_of_an_evenly_lit_photo(photo8):
    clean = to_float(cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_AREA))
    backlit = backlit_version(clean)
    for x in (clean, backlit):
        for img in (
            x.astype(np.float32),
            (x * 255).round().astype(np.uint8),
            (x * 65535).round().astype(np.uint16),
        ):
            assert local.dark_share(img) == pytest.approx(dark_share_reference(x), abs=0.03)
    assert (
        local.dark_share(clean.astype(np.float32)) < 0.15 < 0.3 < local.dark_share(backlit.astype(np.float32))
    )


def clean_and_backlit_8bit(photo8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 384x256 8-bit photo and its backlit version, as the shadows_highlights gates see them."""
    clean = (
        (to_float(cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_AREA)) * 255)
        .round()
        .astype(np.uint8)
    )
    return clean, (backlit_version(to_float(clean)) * 255).round().astype(np.uint8)


@pytest.mark.parametrize(
    ("gate", "value", "reading", "below"),
    [
        ("dark_range", [0.15, 0.3], "dark_share", 0.15),
        ("backlight_range", [2.0, 3.0], "backlight_stops", 2.0),
    ],
)
def test_a_gated_lift_returns_an_evenly_lit_photo_as_it_was(photo8, gate, value, reading, below):
    clean, _ = clean_and_backlit_8bit(photo8)
    out, report = run_with_report(
        clean, "shadows_highlights", shadows=1.0, radius=0.15, eps=0.1, **{gate: value}
    )
    assert out is clean or np.array_equal(out, clean)
    assert report["shadows"] == 0.0 and report[reading] < below


def test_dark_range_lifts_a_backlit_frame(photo8):
    _, backlit = clean_and_backlit_8bit(photo8)
    params = {"shadows": 1.0, "radius": 0.15, "eps": 0.1, "dark_range": [0.15, 0.3]}
    out, report = run_with_report(backlit, "shadows_highlights", **params)
    assert out.dtype == np.uint8 and report["shadows"] == 1.0
    lower = slice(backlit.shape[0] // 2 + 16, None)
    assert luma709(to_float(out[lower])).mean() > 1.5 * luma709(to_float(backlit[lower])).mean()
    # The native step on 8 bits is the float operator, rounded once.
    as_float = run_op(
        to_float(backlit).astype(np.float32), "shadows_highlights", shadows=1.0, radius=0.15, eps=0.1
    )
    assert np.abs(out.astype(np.float64) - as_float * 255).max() <= 0.51


def test_dark_range_is_validated():
    with pytest.raises(Exception, match="dark_range"):
        run_op(np.zeros((8, 8, 3), np.uint8), "shadows_highlights", dark_range=[0.3, 0.15])


def backlight_stops_reference(x: np.ndarray) -> float:
    """log2 of the 99th percentiles of linear luma over the top and bottom 40% of the rows."""
    y = luma709(np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4))
    rows = round(y.shape[0] * 0.4)
    return float(np.log2((np.percentile(y[:rows], 99) + 1e-4) / (np.percentile(y[-rows:], 99) + 1e-4)))


def test_backlight_stops_reads_how_far_the_lower_part_was_darkened(photo8):
    clean = to_float(cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_AREA))
    backlit = backlit_version(clean)
    for x in (clean, backlit, clean[::-1], backlit[::-1]):
        for img in (x.astype(np.float32), (x * 255).round().astype(np.uint8)):
            assert local.backlight_stops(img) == pytest.approx(backlight_stops_reference(x), abs=0.1)
    # Linear x 0.15 is 2.74 stops: the lower part's highlights drop by that much.
    shift = local.backlight_stops(backlit.astype(np.float32)) - local.backlight_stops(
        clean.astype(np.float32)
    )
    assert shift == pytest.approx(np.log2(1 / 0.15), abs=0.15)
    # Upside down, the bright part is below: negative, never read as backlit.
    assert local.backlight_stops(backlit[::-1].astype(np.float32)) < -2.0
    grey = np.full((64, 96, 3), 0.4, np.float32)
    assert local.backlight_stops(grey) == pytest.approx(0.0, abs=1e-6)


def test_backlight_range_lifts_only_the_lower_part_of_a_backlit_frame(photo8):
    clean, backlit = clean_and_backlit_8bit(photo8)
    params = {"shadows": 1.0, "radius": 0.15, "eps": 0.1, "backlight_range": [2.0, 3.0]}
    out, report = run_with_report(backlit, "shadows_highlights", **params)
    stops = report["backlight_stops"]
    assert stops > 2.0 and report["shadows"] == pytest.approx(min(1.0, stops - 2.0), abs=1e-3)
    # The upper zone (top 40% of the rows) is exactly as it was; the lower one is lifted toward the clean photo.
    upper = slice(0, int(0.4 * backlit.shape[0]))
    assert np.array_equal(out[upper], backlit[upper])
    lower = slice(int(0.6 * backlit.shape[0]), None)
    before = np.abs(to_float(backlit[lower]) - to_float(clean[lower])).mean()
    after = np.abs(to_float(out[lower]) - to_float(clean[lower])).mean()
    assert after < 0.75 * before
    # Against the formula with the lift faded in by row: smoothstep from 40% to 60% of the height.
    t = np.clip(((np.arange(backlit.shape[0]) + 0.5) / backlit.shape[0] - 0.4) / 0.2, 0, 1)
    expected = shadows_highlights_reference(
        to_float(backlit), report["shadows"], 0.0, 0.15, 0.1, t * t * (3 - 2 * t)
    )
    assert np.abs(out.astype(np.float64) - expected * 255).max() <= 1.0


def test_backlight_range_fades_only_the_lift_and_pulls_highlights_everywhere(photo8):
    _, backlit = clean_and_backlit_8bit(photo8)
    params = {"shadows": 1.0, "highlights": 1.0, "radius": 0.15, "eps": 0.1}
    out, report = run_with_report(backlit, "shadows_highlights", backlight_range=[2.0, 2.1], **params)
    assert report["shadows"] == 1.0
    # Highlights are pulled in the upper zone as without the gate; only the lift is kept to the lower zone.
    whole = run_op(backlit, "shadows_highlights", **params)
    upper = slice(0, int(0.4 * backlit.shape[0]))
    pulled_only = run_op(backlit, "shadows_highlights", **{**params, "shadows": 0.0})
    assert np.array_equal(out[upper], pulled_only[upper])
    assert not np.array_equal(out[upper], backlit[upper])
    lower = slice(int(0.6 * backlit.shape[0]), None)
    assert np.array_equal(out[lower], whole[lower])


def to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def to_srgb(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.maximum(x, 0) ** (1 / 2.4) - 0.055)


def backlit_lift_reference(x: np.ndarray, stops: float, radius: float, eps: float) -> np.ndarray:
    """Lower part x 2**stops in linear light where the guided base is stops/2..stops under the top's p99."""
    light = to_linear(x)
    y = luma709(light)
    base = guided_reference(y, y, max(1, round(radius * min(x.shape[:2]))), eps)
    top = np.percentile(y[: round(0.4 * y.shape[0])], 99) + 1e-4
    dark = np.clip((np.log2(top / np.maximum(base, 1e-4)) - stops / 2) / (stops / 2), 0, 1)
    t = np.clip(((np.arange(x.shape[0]) + 0.5) / x.shape[0] - 0.4) / 0.2, 0, 1)
    gain = 1 + (2.0**stops - 1) * (t * t * (3 - 2 * t))[:, None] * dark
    gain = np.minimum(gain, np.maximum(1 / np.maximum(light.max(axis=2), 1e-6), 1))
    return to_srgb(np.clip(light * gain[..., None], 0, 1))


def test_backlight_lift_brings_a_backlit_part_back_in_linear_light(photo8):
    clean, backlit = clean_and_backlit_8bit(photo8)
    params = {"shadows": 1.0, "radius": 0.15, "eps": 0.1, "backlight_range": [1.5, 2.0]}
    out, report = run_with_report(backlit, "shadows_highlights", backlight_lift=2.5, **params)
    stops = report["backlight_stops"]
    assert report["lift"] == pytest.approx(min(stops, 2.5), abs=5e-3) and stops > 2.0
    upper = slice(0, int(0.4 * backlit.shape[0]))
    assert np.array_equal(out[upper], backlit[upper])
    # Closer to the clean photo than the shadows curve gets (which lifts a stop and a half or so).
    lower = slice(int(0.6 * backlit.shape[0]), None)
    curve = run_op(backlit, "shadows_highlights", **params)
    errors = [np.abs(to_float(x[lower]) - to_float(clean[lower])).mean() for x in (backlit, curve, out)]
    assert errors[2] < 0.6 * errors[1] < 0.6 * errors[0], errors
    expected = backlit_lift_reference(to_float(backlit), report["lift"], 0.15, 0.1)
    assert np.abs(out.astype(np.float64) - expected * 255).max() <= 1.0
    # An evenly lit photo reads no backlight and comes back as it was.
    same, report = run_with_report(clean, "shadows_highlights", backlight_lift=2.5, **params)
    assert np.array_equal(same, clean) and report["shadows"] == 0.0


def test_backlight_lift_is_capped_and_keeps_a_lit_lower_part(photo8):
    _, backlit = clean_and_backlit_8bit(photo8)
    params = {"shadows": 1.0, "radius": 0.15, "eps": 0.1, "backlight_range": [2.0, 2.1]}
    out, report = run_with_report(backlit, "shadows_highlights", backlight_lift=1.0, **params)
    assert report["lift"] == 1.0
    lower = slice(int(0.6 * backlit.shape[0]), None)
    gain = to_linear(to_float(out[lower])) / np.maximum(to_linear(to_float(backlit[lower])), 1e-3)
    assert gain[to_float(backlit[lower]) > 0.1].max() < 2.0 * 1.05  # one stop at most
    # A lamp in the shade (as bright as the upper part's highlights) is not lifted.
    lamp = backlit.copy()
    lamp[-40:-10, 20:60] = 255
    out, _ = run_with_report(lamp, "shadows_highlights", backlight_lift=2.5, **params)
    assert np.array_equal(out[-35:-15, 25:55], lamp[-35:-15, 25:55])


def test_backlight_range_is_validated():
    with pytest.raises(Exception, match="backlight_range"):
        run_op(np.zeros((8, 8, 3), np.uint8), "shadows_highlights", backlight_range=[3.0, 2.0])
    with pytest.raises(Exception, match="backlight_lift"):  # it lifts what the meter reads: no meter, no lift
        run_op(np.zeros((8, 8, 3), np.uint8), "shadows_highlights", backlight_lift=2.5)


def test_shadows_highlights_keeps_colour_ratios_and_never_clips_a_channel():
    rng = np.random.default_rng(3)
    img = rng.uniform(0.02, 0.3, (30, 40, 3)).astype(np.float32)
    img[..., 2] = 0.9  # a saturated red channel: lifting must not push it past white
    out = run_op(img, "shadows_highlights", shadows=2.0)
    assert out.max() <= 1.0
    np.testing.assert_allclose(out[..., 0] / out[..., 2], img[..., 0] / img[..., 2], rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# flatten
# ---------------------------------------------------------------------------------------------


def synthetic_page(h: int = 240, w: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """Paper (0.85) with black text, lit by a known gradient from 0.45 to 1.0; returns (page, ink mask)."""
    paper = np.full((h, w), 0.85)
    ink = np.zeros((h, w), np.uint8)
    for i, row in enumerate(range(30, h - 10, 28)):
        cv2.putText(ink, f"line {i} of some text", (10, row), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1)
    page = np.where(ink > 0, 0.08, paper)
    yy, xx = np.mgrid[0:h, 0:w]
    light = 0.45 + 0.55 * (0.6 * xx / (w - 1) + 0.4 * yy / (h - 1))
    return (page * light).astype(np.float32), ink > 0


def test_flatten_matches_closing_background_formula():
    page, _ = synthetic_page()
    colour = np.dstack([page, page * 0.95, page * 0.9]).astype(np.float32)
    size = 0.06
    side = max(3, 2 * round(size * max(page.shape) / 2) + 1)
    footprint = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)).astype(bool)
    expected = np.empty_like(colour)
    for c in range(3):
        closed = ndimage.grey_closing(colour[..., c], footprint=footprint, mode="nearest")
        illum = cv2.GaussianBlur(
            closed.astype(np.float32), (0, 0), side / 2.0, borderType=cv2.BORDER_REPLICATE
        )
        expected[..., c] = np.clip(0.97 * colour[..., c] / np.maximum(illum, 1 / 255), 0, 1)
    out = run_op(colour, "flatten", size=size, white=0.97)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_flatten_makes_an_unevenly_lit_page_flat():
    page, ink = synthetic_page()
    img = (page * 255).round().astype(np.uint8)
    out = to_float(run_op(img, "flatten"))
    paper = ~cv2.dilate(ink.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    before = np.percentile(page[paper], [1, 99])
    after = np.percentile(out[paper], [1, 99])
    assert before[1] - before[0] > 0.35  # the light gradient, before
    assert after[1] - after[0] <= 0.04, after  # stated tolerance: paper within 4% of full scale
    assert np.median(out[paper]) > 0.95  # paper brought to white
    assert out[ink].mean() < 0.35  # ink stays dark


# ---------------------------------------------------------------------------------------------
# denoise_chroma
# ---------------------------------------------------------------------------------------------


def ycrcb_reference(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b, g, r = (bgr[..., i] for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return y, (r - y) * 0.713 + 0.5, (b - y) * 0.564 + 0.5


def test_denoise_chroma_matches_guided_filter_on_ycrcb(photo8):
    x = to_float(photo8)
    y, cr, cb = ycrcb_reference(x)
    cr2, cb2 = (guided_reference(y, c, 3, 0.001) for c in (cr, cb))
    r = y + 1.403 * (cr2 - 0.5)
    b = y + 1.773 * (cb2 - 0.5)
    g = y - 0.714 * (cr2 - 0.5) - 0.344 * (cb2 - 0.5)
    expected = np.clip(np.dstack([b, g, r]), 0, 1)
    out = run_op(x.astype(np.float32), "denoise_chroma", radius=3, eps=0.001)
    np.testing.assert_allclose(out, expected, atol=2e-3)


def test_denoise_chroma_removes_colour_noise_and_keeps_luma(photo8):
    # A photo's colour varies smoothly at full size (the 96x64 crop is much busier): blur it.
    clean = to_float(
        cv2.GaussianBlur(cv2.resize(photo8, (192, 128), interpolation=cv2.INTER_CUBIC), (0, 0), 1.5)
    )
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.04, clean.shape), 0, 1).astype(np.float32)
    out = run_op(noisy, "denoise_chroma")
    _, cr0, cb0 = ycrcb_reference(clean)
    _, cr1, cb1 = ycrcb_reference(noisy.astype(np.float64))
    _, cr2, cb2 = ycrcb_reference(out.astype(np.float64))
    err_before = np.abs(cr1 - cr0).mean() + np.abs(cb1 - cb0).mean()
    err_after = np.abs(cr2 - cr0).mean() + np.abs(cb2 - cb0).mean()
    assert err_after < 0.5 * err_before
    # Luma is kept, except where the new colour falls outside the RGB cube and is clipped.
    luma_change = np.abs(
        ycrcb_reference(out.astype(np.float64))[0] - ycrcb_reference(noisy.astype(np.float64))[0]
    )
    assert np.median(luma_change) < 1e-4 and luma_change.mean() < 2e-3, luma_change.mean()


def test_denoise_chroma_leaves_grey_images_alone(gray8):
    assert np.array_equal(run_op(gray8, "denoise_chroma"), gray8)


# ---------------------------------------------------------------------------------------------
# deblock
# ---------------------------------------------------------------------------------------------


def deblock_loop(img: np.ndarray, threshold: float, block: int) -> np.ndarray:
    """The deblocking rule written as plain loops over boundaries and rows (columns, then rows)."""
    out = img.astype(np.float64).copy()
    for axis in (1, 0):
        x = out if axis == 1 else np.swapaxes(out, 0, 1)
        src = x.copy()
        for col in range(block, x.shape[1] - 1, block):
            if col < 2:
                continue
            for row in range(x.shape[0]):
                p1, p0, q0, q1 = (src[row, col + k] for k in (-2, -1, 0, 1))
                d = q0 - p0
                soft = (
                    (np.abs(d) < threshold)
                    & (np.abs(p1 - p0) < threshold / 2)
                    & (np.abs(q1 - q0) < threshold / 2)
                )
                d = np.where(soft, d, 0.0) / 8
                x[row, col - 2], x[row, col - 1] = p1 + d, p0 + 3 * d
                x[row, col], x[row, col + 1] = q0 - 3 * d, q1 - d
    return np.clip(out, 0, 1)


@pytest.mark.parametrize("layout", ["colour", "grey"])
def test_deblock_matches_the_rule_written_as_loops(layout, photo8, gray8):
    img = to_float(photo8 if layout == "colour" else gray8).astype(np.float32)
    out = run_op(img, "deblock", threshold=0.08, block=8)
    np.testing.assert_allclose(out, deblock_loop(img, 0.08, 8), atol=1e-6)


def blockiness(img: np.ndarray) -> float:
    """Mean |step| across the 8-pixel grid over the mean |step| inside blocks (1 = no blocking)."""
    d = np.abs(np.diff(img.astype(np.float64), axis=1))
    on_grid = (np.arange(d.shape[1]) % 8) == 7
    return float(d[:, on_grid].mean() / d[:, ~on_grid].mean())


def test_deblock_reduces_jpeg_blocking_and_keeps_a_real_edge(photo8):
    smooth = cv2.GaussianBlur(cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_CUBIC), (0, 0), 3)
    grey = cv2.cvtColor(smooth, cv2.COLOR_BGR2GRAY)
    grey[:, 200:] = np.clip(grey[:, 200:].astype(int) + 120, 0, 255).astype(
        np.uint8
    )  # a real edge on the grid
    ok, buf = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, 10])
    blocky = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    out = run_op(blocky, "deblock")
    assert blockiness(out) < 0.8 * blockiness(blocky)
    edge = out[:, 201].astype(int) - out[:, 198].astype(int)
    assert np.median(edge) > 90  # the 120-level edge on the grid line survives


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def test_denoise_chroma_strength_blends_with_the_input(photo8):
    full = run_op(photo8, "denoise_chroma", radius=2)
    assert np.array_equal(run_op(photo8, "denoise_chroma", radius=2, strength=0), photo8)
    half = run_op(photo8, "denoise_chroma", radius=2, strength=0.5).astype(float)
    assert np.abs(half - (photo8 + full.astype(float)) / 2).max() <= 1.0  # rounded once


def test_denoise_chroma_auto_leaves_a_clean_photo_and_smooths_a_noisy_or_blocky_one(photo8):
    big = cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_CUBIC)
    clean = _jpeg(big, 92)
    out, report = run_with_report(clean, "denoise_chroma", radius=2, strength="auto")
    assert report["strength"] == 0.0 and np.array_equal(out, clean)
    rng = np.random.default_rng(3)
    noisy = _jpeg(np.clip(big + rng.normal(0, 14, big.shape), 0, 255).astype(np.uint8), 92)
    out, report = run_with_report(noisy, "denoise_chroma", radius=2, strength="auto")
    assert report["noise_sigma"] > 7 and report["strength"] == 1.0
    assert np.array_equal(out, run_op(noisy, "denoise_chroma", radius=2))
    blocky = _jpeg(big, 10)
    out, report = run_with_report(blocky, "denoise_chroma", radius=2, strength="auto")
    assert report["blockiness"] > 2.0 and report["strength"] == 1.0


def test_blockiness_reads_the_jpeg_grid(photo8):
    from imgenh.ops.noise import blockiness

    big = cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_CUBIC)
    assert 0.9 < blockiness(big) < 1.25
    assert blockiness(_jpeg(big, 10)) > 2.0
    # Shifted off the grid by 4 pixels, the same blocks no longer line up with it.
    assert blockiness(_jpeg(big, 10)[4:, 4:]) < 1.25
    assert blockiness(np.full((64, 64), 7, np.uint8)) == 1.0


def test_denoise_chroma_block_radius_widens_the_window_only_where_the_jpeg_grid_decides(photo8):
    big = cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_CUBIC)
    blocky = _jpeg(big, 10)
    out, report = run_with_report(blocky, "denoise_chroma", radius=2, strength="auto", block_radius=6)
    assert report["radius"] == 6
    assert np.array_equal(out, run_op(blocky, "denoise_chroma", radius=6))
    # A 16-pixel chroma block is smoother after the wider window than after the noise window.
    narrow = run_op(blocky, "denoise_chroma", radius=2)
    truth = cv2.cvtColor(big, cv2.COLOR_BGR2YCrCb)[..., 1:].astype(float)
    error = [
        np.abs(cv2.cvtColor(x, cv2.COLOR_BGR2YCrCb)[..., 1:] - truth).mean() for x in (blocky, narrow, out)
    ]
    assert error[2] < error[1] < error[0]
    rng = np.random.default_rng(3)
    noisy = _jpeg(np.clip(big + rng.normal(0, 14, big.shape), 0, 255).astype(np.uint8), 92)
    out, report = run_with_report(noisy, "denoise_chroma", radius=2, strength="auto", block_radius=6)
    assert "radius" not in report  # noise decides: the noise window
    assert np.array_equal(out, run_op(noisy, "denoise_chroma", radius=2))


def test_denoise_chroma_block_radius_needs_strength_auto(photo8):
    with pytest.raises(Exception, match="block_radius"):
        run_op(photo8, "denoise_chroma", radius=2, block_radius=6)


def test_backlight_lift_on_a_grey_frame_follows_its_formula(photo8):
    # A grey image is its own luma and its own peak: the lift is the reference formula on one plane.
    _, backlit = clean_and_backlit_8bit(photo8)
    grey = cv2.cvtColor(backlit, cv2.COLOR_BGR2GRAY)
    params = {"shadows": 1.0, "radius": 0.15, "eps": 0.1, "backlight_range": [1.5, 2.0]}
    out, report = run_with_report(grey, "shadows_highlights", backlight_lift=2.5, **params)
    assert out.dtype == np.uint8 and out.shape == grey.shape and report["lift"] > 2.0
    expected = backlit_lift_reference(
        np.repeat(to_float(grey)[..., None], 3, axis=2), report["lift"], 0.15, 0.1
    )
    assert np.abs(out.astype(np.float64) - expected[..., 0] * 255).max() <= 1.0
