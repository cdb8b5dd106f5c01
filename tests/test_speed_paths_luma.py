"""The linked stretch's fast luma route agrees with the whole Q16 luma histogram (issue 11).

``pixels.luma_counts_near`` counts an 8-bit luma and refines only the pixels near the
stretch's points; ``pixels.luma_counts`` is the plain route it replaces. The stretch must
find the same points (ImageMagick's rule) and the same clipped share either way.
"""

from __future__ import annotations

import numpy as np
import pytest

from imgenh import pixels
from imgenh.ops.contract import Stats
from imgenh.ops.tone import CLIPPED_LEVEL, clipped_fraction, stretch_points
from imgenh.pipeline import apply_steps
from imgenh.pipeline_file import pipeline_from_steps

CLIPPED_Q16 = int(np.ceil(CLIPPED_LEVEL * 65535))


def _adversarial_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    two = np.where(rng.random((90, 70, 1)) < 0.3, [10, 200, 30], [250, 250, 250]).astype(np.uint8)
    dark = np.clip(rng.normal(3, 4, (120, 80, 3)), 0, 255).astype(np.uint8)
    dark[:5] = rng.integers(0, 256, (5, 80, 3), dtype=np.uint8)
    bright = np.clip(rng.normal(252, 5, (60, 150, 3)), 0, 255).astype(np.uint8)
    return {
        "uniform": rng.integers(0, 256, (97, 131, 3), dtype=np.uint8),
        "normal": np.clip(rng.normal(120, 50, (200, 150, 3)), 0, 255).astype(np.uint8),
        "one level": np.full((40, 50, 3), (17, 140, 230), np.uint8),
        "two levels": two,
        "mostly black": dark,
        "clipped whites": bright,
        "one pixel": np.array([[[1, 2, 3]]], np.uint8),
        "one row": rng.integers(0, 256, (1, 301, 3), dtype=np.uint8),
    }


IMAGES = _adversarial_images()
PERCENTILES = [(1.0, 99.0), (0.0, 100.0), (0.5, 99.5), (10.0, 60.0), (2.0, 97.0), (49.0, 51.0)]


@pytest.mark.parametrize("name", list(IMAGES))
@pytest.mark.parametrize(("low", "high"), PERCENTILES)
def test_near_counts_are_exact_where_flagged(monkeypatch, name, low, high):
    # The invariant the stretch relies on: the running count equals the whole histogram's at
    # every level flagged exact, and the wanted places are flagged (no share limit here, so the
    # dense cases are refined too).
    monkeypatch.setattr(pixels, "_NEAR_SHARE_LIMIT", 1.0)
    img = IMAGES[name]
    total = img.shape[0] * img.shape[1]
    below, above = low * (total / 100.0), (100.0 - high) * (total / 100.0)
    counts, exact = pixels.luma_counts_near(img, below, above, (CLIPPED_Q16,))
    full = pixels.luma_counts(img)
    assert counts.sum() == total
    assert np.array_equal(np.cumsum(counts)[exact], np.cumsum(full)[exact])
    levels = np.linspace(0.0, 1.0, 65536)
    black, white = (round(p * 65535) for p in stretch_points(levels, full, low, high))
    for level in (black, black - 1, white, white - 1, CLIPPED_Q16 - 1):
        assert level < 0 or exact[level], (name, level)


@pytest.mark.parametrize("name", [*IMAGES, "16-bit"])
@pytest.mark.parametrize(("low", "high"), PERCENTILES)
@pytest.mark.parametrize("linear", [False, "auto"])
def test_linked_stretch_same_points_and_output_as_the_whole_histogram(monkeypatch, name, low, high, linear):
    # 16-bit input has no fast route: the same result through the one route it takes.
    deep = np.clip(IMAGES["normal"].astype(np.int32) * 257 + 100, 0, 65535).astype(np.uint16)
    img = deep if name == "16-bit" else IMAGES[name]
    steps = [{"op": "stretch", "low": low, "high": high, "linked": True, "linear": linear}]
    pipeline = pipeline_from_steps(steps)
    monkeypatch.setattr(pixels, "_NEAR_SHARE_LIMIT", 1.0)
    fast, fast_report = apply_steps(img, pipeline.steps)
    monkeypatch.setattr(Stats, "luma_histogram_near", lambda self, *a, **k: None)
    plain, plain_report = apply_steps(img, pipeline.steps)
    assert np.array_equal(fast, plain)
    assert fast_report == plain_report


def test_fast_route_taken_on_a_photo_like_image_and_not_under_a_pending_table():
    img = IMAGES["normal"]
    assert Stats(img).luma_histogram_near(1.0, 99.0) is not None
    gamma = (np.arange(256) / 255.0) ** (1 / 1.2)
    assert Stats(img, gamma).luma_histogram_near(1.0, 99.0) is None  # a table that changes levels
    assert Stats(img, np.linspace(0.0, 1.0, 256)).luma_histogram_near(1.0, 99.0) is not None
    assert Stats(img.astype(np.uint16) * 257).luma_histogram_near(1.0, 99.0) is None


def test_a_mostly_black_photo_takes_the_whole_count():
    # Over the share limit the refinement costs more than the whole count: no fast route.
    img = IMAGES["mostly black"]
    assert Stats(img).luma_histogram_near(1.0, 99.0) is None


@pytest.mark.parametrize("name", ["uniform", "clipped whites", "two levels"])
def test_clipped_share_equals_the_whole_histogram(monkeypatch, name):
    monkeypatch.setattr(pixels, "_NEAR_SHARE_LIMIT", 1.0)
    img = IMAGES[name]
    levels, counts, exact = Stats(img).luma_histogram_near(0.0, 100.0, (CLIPPED_LEVEL,))
    assert exact[CLIPPED_Q16 - 1]
    assert clipped_fraction(levels, counts) == clipped_fraction(*Stats(img).histogram("luma"))


def test_coarse_luma_within_its_slack_of_the_exact_luma_for_every_colour():
    # All 2**24 colours (padded with repeats to whole rows of an odd width, so the
    # transform's tail is used too), a block of rows at a time.
    width = 4093
    weights = pixels.LUMA_BGR.reshape(1, 3).astype(np.float32)
    codes = np.resize(np.arange(1 << 24, dtype=np.uint32), -(-(1 << 24) // width) * width)
    worst = 0.0
    for start in range(0, codes.size, 256 * width):
        part = codes[start : start + 256 * width]
        bgr = np.stack([part >> 16, (part >> 8) & 255, part & 255], axis=-1).astype(np.uint8)
        img = bgr.reshape(-1, width, 3)
        exact = pixels.cv2.transform(img.astype(np.uint16) * 257, weights).astype(np.float64) / 257
        worst = max(worst, float(np.abs(pixels.coarse_luma(img) - exact).max()))
    assert worst <= pixels.COARSE_LUMA_SLACK


def _every_colour() -> np.ndarray:
    codes = np.arange(1 << 24, dtype=np.uint32)
    return (
        np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=-1)
        .astype(np.uint8)
        .reshape(4096, 4096, 3)
    )


@pytest.mark.parametrize(
    "table",
    [
        None,
        (np.arange(256) / 255.0) ** (1 / 1.2),  # gamma 1.2 (the 4-step pipeline's)
        np.clip((np.arange(256) / 255.0 - 0.1) * 1.7, 0, 1),  # a stretch that clips both ends
        np.random.default_rng(3).random(256),  # any shared table, not monotone
        np.clip(np.arange(256)[:, None] / 255.0 * [1.3, 1.0, 0.8], 0, 1),  # white balance gains
        np.random.default_rng(4).random((256, 3)),  # any per-channel table
    ],
    ids=["identity", "gamma", "clipping", "random", "gains", "random per channel"],
)
def test_table_luma_equals_the_16_bit_transform_for_every_colour(table):
    # The float route of _q16_luma against the definition it replaces: the Q16 quanta as
    # uint16 (one table per channel through planes) and OpenCV's 16-bit one-row transform.
    img = _every_colour()
    lut = pixels._q16_table(img.dtype, table)
    weights = pixels.LUMA_BGR.reshape(1, 3).astype(np.float32)
    q16 = pixels.cv2.LUT(img, lut) if lut.ndim == 1 else pixels._planar_lut(img, lut)
    expected = pixels.cv2.transform(q16, weights)
    assert np.array_equal(pixels._q16_luma(img, table, lut), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("table", [None, "gains"])
def test_luma_counts_in_blocks_and_strips_count_every_pixels_own_luma(monkeypatch, dtype, table):
    # Strips of 3 rows made into blocks of 7 rows (the last block and strip short): the counts
    # of the luma of the whole image at once.
    top = np.iinfo(dtype).max
    img = np.random.default_rng(11).integers(0, top + 1, (23, 50, 3)).astype(dtype)
    levels = np.clip(np.arange(top + 1)[:, None] / top * [1.3, 1.0, 0.8], 0, 1) if table else None
    expected = np.bincount(
        pixels._q16_luma(img, levels, pixels._q16_table(img.dtype, levels)).ravel(), minlength=65536
    )
    monkeypatch.setattr(pixels, "_COUNT_PIXELS", 7 * 50)
    monkeypatch.setattr(pixels, "strip_rows", lambda img: 3)
    np.testing.assert_array_equal(pixels.luma_counts(img, levels), expected)
