"""Fused tables that change nothing skip their pass over the image (issue 11), with the same result.

A group of pointwise steps whose fused table rounds every level to itself (a white balance
held back to gains of 1, a stretch of strength 0) leaves the pixels as they are instead of
mapping them through the table; the statistics a later step asks for see the same image.
"""

from __future__ import annotations

import numpy as np
import pytest

from imgenh import pipeline_from_steps, pixels
from imgenh.ops.contract import Stats
from imgenh.pixels import apply_table, is_identity_table

NO_CHANGE = [
    {"op": "white_balance", "method": "manual", "gains": [1.0, 1.0, 1.0]},  # per channel, in linear light
    {"op": "stretch", "low": 1, "high": 99, "strength": 0.0},
    {"op": "gamma", "value": 1.0},
]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_identity_table_rule_is_what_apply_table_leaves_unchanged(dtype):
    top = np.iinfo(dtype).max
    levels = np.arange(top + 1) / top
    rng = np.random.default_rng(3)
    every = np.arange(top + 1, dtype=dtype)
    img = np.stack([every, rng.permutation(every), every[::-1]], axis=1).reshape(-1, 1, 3)  # every level
    nearly = levels + rng.uniform(-0.49, 0.49, levels.size) / top  # rounds back to each level
    off_by_one = levels.copy()
    off_by_one[top // 2] += 1.0 / top
    per_channel = np.stack([nearly, levels, nearly], axis=1)
    one_channel_off = np.stack([levels, off_by_one, levels], axis=1)
    for table, identity in [
        (levels, True),
        (nearly, True),
        (per_channel, True),
        (off_by_one, False),
        (one_channel_off, False),
        (np.clip(levels * 1.01, 0, 1), False),
    ]:
        assert is_identity_table(table, dtype) is identity
        assert np.array_equal(apply_table(img, table), img) is identity
    assert not is_identity_table(levels, np.float32)  # float images are never rounded through a table
    assert not is_identity_table(np.linspace(0, 1, 256), np.uint16)  # a table for another depth


@pytest.mark.parametrize("fixture", ["photo8", "photo16"])
def test_a_group_that_changes_nothing_gives_the_plain_route_result(request, fixture):
    img = request.getfixturevalue(fixture)
    original = img.copy()
    out, reports = pipeline_from_steps(NO_CHANGE).apply(img)
    # The plain route: the same steps' fused table applied to every pixel.
    table = np.linspace(0.0, 1.0, np.iinfo(img.dtype).max + 1)
    assert is_identity_table(table, img.dtype)
    assert out.dtype == img.dtype
    np.testing.assert_array_equal(out, apply_table(img, table))
    np.testing.assert_array_equal(img, original)  # the input is not written
    assert [r["op"] for r in reports][:2] == ["white_balance", "stretch"]  # their values still reported


def test_then_a_changing_step_still_changes_the_pixels(photo8):
    steps = [*NO_CHANGE, {"op": "gamma", "value": 1.5}]
    out, _ = pipeline_from_steps(steps).apply(photo8)
    expected, _ = pipeline_from_steps([{"op": "gamma", "value": 1.5}]).apply(photo8)
    np.testing.assert_array_equal(out, expected)


def test_statistics_after_an_identity_table_are_the_images_own(photo8):
    levels = np.linspace(0.0, 1.0, 256)
    nearly = np.stack([levels + 0.4 / 255, levels, levels - 0.4 / 255], axis=1)
    stats = Stats(photo8, np.clip(nearly, 0, 1))
    np.testing.assert_array_equal(stats.image(), apply_table(photo8, np.clip(nearly, 0, 1)))
    np.testing.assert_array_equal(stats.image(), photo8)


@pytest.mark.parametrize(
    ("dtype", "shape"),
    [
        (np.uint8, (2 * pixels._LUT_STRIP_ROWS + 5, 37, 3)),  # three strips, the last one short
        (np.uint8, (3, 4, 4)),
        (np.uint16, (pixels._LUT_STRIP_ROWS + 1, 9, 3)),
        (np.uint8, (20, 30)),
        (np.uint16, (20, 30, 1)),
    ],
)
def test_channel_counts_are_each_channels_level_counts(dtype, shape):
    """Counted plane by plane, strip by strip, the counts of one channel at a time, exactly."""
    top = np.iinfo(dtype).max
    img = np.random.default_rng(7).integers(0, top + 1, shape).astype(dtype)
    img.flat[:3] = top  # both ends of the range present
    img.flat[3:6] = 0
    got = pixels.channel_counts(img)
    channels = 1 if img.ndim == 2 else img.shape[2]
    assert len(got) == channels
    for c in range(channels):
        expected = np.bincount(img.reshape(-1, channels)[:, c], minlength=top + 1)
        assert got[c].dtype == np.int64
        np.testing.assert_array_equal(got[c], expected)
        np.testing.assert_array_equal(got[c], pixels.level_counts(img, channel=c))


def test_stats_counts_every_channel_once_when_one_is_asked():
    img = np.random.default_rng(8).integers(0, 256, (40, 50, 3)).astype(np.uint8)
    raw: dict = {}
    Stats(img, raw_counts=raw).histogram(1)
    assert sorted(raw) == [0, 1, 2]
    for c in range(3):
        np.testing.assert_array_equal(raw[c], np.bincount(img[..., c].ravel(), minlength=256))
