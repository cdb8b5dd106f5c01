"""A per-colour function of 8-bit images through a table of every colour (issue 11).

``pixels.ColourTables`` turns a function whose result at a pixel depends on its colour alone
into one gather for images of at least ``min_pixels`` (the route chosen by the image's size
alone); saturation uses it. The table route must give the function's own result, and be taken only
when it pays.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from helpers import assert_images_close
from test_ops_color import skimage_saturation

from imgenh import pixels
from imgenh.ops import color
from imgenh.pipeline import run_op


def _swirl(img: np.ndarray) -> np.ndarray:
    """A per-pixel colour function that mixes the channels (no channel is a function of itself)."""
    b, g, r = (img[..., c].astype(np.int32) for c in range(3))
    return np.stack([(g * 3 + r) % 256, (b ^ r) & 255, 255 - (b + g) // 2], axis=-1).astype(np.uint8)


class _Counted:
    """``_swirl``, counting the pixels it is called on."""

    def __init__(self):
        self.pixels = 0

    def __call__(self, img: np.ndarray) -> np.ndarray:
        self.pixels += img.shape[0] * img.shape[1]
        return _swirl(img)


@pytest.fixture(scope="module")
def swirl_table() -> np.ndarray:
    return pixels.colour_table(_swirl)


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    wide = rng.integers(0, 256, (9, 70_001, 3), dtype=np.uint8)  # strips of one row
    big = rng.integers(0, 256, (301, 517, 3), dtype=np.uint8)
    return {
        "random": rng.integers(0, 256, (61, 83, 3), dtype=np.uint8),
        "one pixel": np.array([[[1, 2, 3]]], np.uint8),
        "one row, wider than a strip": wide[:1],
        "several strips": big,
        "a strided view": big[10:200:3, 5:400:2],
        "extremes": np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 255]]], np.uint8),
    }


@pytest.mark.parametrize("name", list(_images()))
def test_lookup_gives_the_function_of_every_pixel(swirl_table, name):
    img = _images()[name]
    out = pixels.lookup_colours(img, swirl_table)
    assert out.dtype == np.uint8 and out.shape == img.shape
    np.testing.assert_array_equal(out, _swirl(img))


def test_table_entry_of_a_colour_is_its_packed_result(swirl_table):
    b, g, r = 7, 200, 93
    entry = int(swirl_table[b | g << 8 | r << 16])
    expected = _swirl(np.array([[[b, g, r]]], np.uint8))[0, 0]
    assert [entry & 255, (entry >> 8) & 255, (entry >> 16) & 255] == list(expected)


def test_images_of_min_pixels_or_more_take_the_table_built_once():
    direct = _Counted()
    tables = pixels.ColourTables(min_pixels=1200)
    small = np.random.default_rng(1).integers(0, 256, (30, 39, 3), dtype=np.uint8)  # 1170 pixels
    large = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)  # 1200 pixels
    for _ in range(3):  # however many came before, a small image is computed on its pixels
        np.testing.assert_array_equal(tables.apply(small, "k", direct), _swirl(small))
    assert direct.pixels == 3 * 1170
    np.testing.assert_array_equal(tables.apply(large, "k", direct), _swirl(large))
    assert direct.pixels == 3 * 1170 + pixels.COLOURS_8BIT  # the table of every colour, not the image
    np.testing.assert_array_equal(tables.apply(large[::-1], "k", direct), _swirl(large[::-1]))
    assert direct.pixels == 3 * 1170 + pixels.COLOURS_8BIT  # looked up: the function is not called again


def test_a_new_key_replaces_the_table():
    direct = _Counted()
    tables = pixels.ColourTables(min_pixels=1)
    img = np.zeros((20, 60, 3), np.uint8)
    tables.apply(img, "a", direct)
    tables.apply(img, "b", direct)
    assert direct.pixels == 2 * pixels.COLOURS_8BIT
    tables.apply(img, "b", direct)
    assert direct.pixels == 2 * pixels.COLOURS_8BIT
    tables.apply(img, "a", direct)  # "a"'s table was dropped for "b"'s
    assert direct.pixels == 3 * pixels.COLOURS_8BIT


@pytest.mark.parametrize(
    "img",
    [
        np.zeros((50, 50), np.uint8),
        np.zeros((50, 50, 3), np.uint16),
        np.zeros((50, 50, 3), np.float32),
        np.zeros((50, 50, 4), np.uint8),
    ],
    ids=["grey", "16-bit", "float", "four channels"],
)
def test_only_8_bit_colour_takes_a_table(img):
    tables = pixels.ColourTables(min_pixels=1)
    calls = []
    out = tables.apply(img, "k", lambda x: calls.append(x) or x + 1)
    assert len(calls) == 1 and calls[0] is img
    np.testing.assert_array_equal(out, img + 1)


@pytest.fixture
def saturation_tables(monkeypatch):
    """Saturation's table for images of any size (a fresh cache, so tests do not share one)."""
    tables = pixels.ColourTables(min_pixels=1)
    monkeypatch.setattr(color, "_SATURATION_TABLES", tables)
    return tables


@pytest.mark.parametrize("factor", [0.0, 0.6, 1.3, 2.5])
def test_saturation_through_the_table_is_the_pixels_route_and_the_reference(
    saturation_tables, photo8, factor
):
    vivid = np.random.default_rng(5).integers(0, 256, (48, 48, 3)).astype(np.uint8)
    for name, img in (("photo", photo8), ("vivid", vivid)):
        out = run_op(img, "saturation", factor=factor)
        assert saturation_tables._table is not None  # the table route was taken
        # The pixels route puts a colour elsewhere in a strip: a last-bit difference may move a level.
        assert_images_close(out, color.saturate_pixels(img, factor), atol=1.0, name=f"sat-table-{name}")
        assert_images_close(out, skimage_saturation(img, factor), atol=1.0, name=f"sat-table-ref-{name}")


def test_saturation_table_of_a_sample_of_every_colour_matches_the_reference():
    table = pixels.colour_table(functools.partial(color.saturate_pixels, factor=1.7))
    codes = np.random.default_rng(8).integers(0, pixels.COLOURS_8BIT, 20_000)
    colours = np.stack([codes & 255, (codes >> 8) & 255, codes >> 16], axis=-1).astype(np.uint8)
    entries = table[codes]
    found = np.stack([entries & 255, (entries >> 8) & 255, (entries >> 16) & 255], axis=-1)
    expected = skimage_saturation(colours.reshape(-1, 1, 3), 1.7).reshape(-1, 3)
    assert np.abs(found.astype(np.float64) - expected).max() <= 1.0


def test_saturation_route_is_chosen_by_the_image_alone(monkeypatch):
    # Whatever the process saturated before, an image of a given size takes the same route.
    tables = pixels.ColourTables(min_pixels=2000)
    monkeypatch.setattr(color, "_SATURATION_TABLES", tables)
    rng = np.random.default_rng(3)
    small = rng.integers(0, 256, (30, 60, 3), dtype=np.uint8)
    large = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    first_small = run_op(small, "saturation", factor=1.4)
    assert tables._table is None
    first_large = run_op(large, "saturation", factor=1.4)
    assert tables._table is not None
    np.testing.assert_array_equal(run_op(small, "saturation", factor=1.4), first_small)
    np.testing.assert_array_equal(first_small, color.saturate_pixels(small, 1.4))
    np.testing.assert_array_equal(first_large, pixels.lookup_colours(large, tables._table))
