"""Geometry: resize, held to cv2.resize with the documented interpolation and output-size rounding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgenh.ops import get_op
from imgenh.ops.geometry import target_size
from imgenh.pipeline import run_op
from imgenh.pixels import to_float


def _variant(photo8, photo16, dtype, layout):
    img = photo8 if dtype == "u8" else photo16
    if layout == "grey":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return to_float(img) if dtype == "f32" else img


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # input 64 x 96 (height x width); other side = floor(side * factor + 0.5), at least 1
        ({"width": 48}, (32, 48)),
        ({"width": 50}, (33, 50)),  # 33.33 -> 33
        ({"width": 45}, (30, 45)),  # 30.0
        ({"width": 57}, (38, 57)),  # 38.0
        ({"width": 99}, (66, 99)),  # 66.0
        ({"width": 100}, (67, 100)),  # 66.67 -> 67
        ({"height": 40}, (40, 60)),
        ({"height": 41}, (41, 62)),  # 61.5 -> 62 (half up)
        ({"long_side": 50}, (33, 50)),  # the long side is the width here
        ({"short_side": 50}, (50, 75)),
        ({"scale": 0.5}, (32, 48)),
        ({"scale": 1.5}, (96, 144)),
        ({"scale": 0.01}, (1, 1)),  # never below 1 pixel
        ({"width": 1}, (1, 1)),
    ],
)
def test_resize_output_sizes(photo8, params, expected):
    out = run_op(photo8, "resize", **params)
    assert out.shape == (*expected, 3)


def test_resize_target_size_portrait_and_square():
    assert target_size(96, 64, long_side=48) == (48, 32)
    assert target_size(96, 64, short_side=48) == (72, 48)
    assert target_size(50, 50, long_side=20) == (20, 20)
    assert target_size(50, 50, short_side=20) == (20, 20)
    assert target_size(3, 1000, new_width=10) == (1, 10)
    assert target_size(5, 3, new_width=9) == (15, 9)
    assert target_size(3, 2, new_width=3) == (5, 3)  # 4.5 rounds up, computed in integers
    with pytest.raises(ValueError, match="exactly one"):
        target_size(10, 10, new_width=5, scale=0.5)


@pytest.mark.parametrize("layout", ["grey", "colour"])
@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_resize_matches_cv2_area_when_shrinking(photo8, photo16, dtype, layout):
    # Tolerance: none; the same cv2.resize call.
    img = _variant(photo8, photo16, dtype, layout)
    before = img.copy()
    out = run_op(img, "resize", long_side=37)
    assert out.dtype == img.dtype
    np.testing.assert_array_equal(out, cv2.resize(img, (37, 25), interpolation=cv2.INTER_AREA))
    np.testing.assert_array_equal(img, before)


@pytest.mark.parametrize("enlarge_filter", ["lanczos", "cubic"])
@pytest.mark.parametrize("layout", ["grey", "colour"])
@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_resize_matches_cv2_when_enlarging(photo8, photo16, dtype, layout, enlarge_filter):
    # Tolerance: none for the integer depths (cv2.resize saturates); float equals cv2.resize clipped to [0, 1].
    img = _variant(photo8, photo16, dtype, layout)
    out = run_op(img, "resize", scale=1.7, enlarge_filter=enlarge_filter)
    flag = cv2.INTER_LANCZOS4 if enlarge_filter == "lanczos" else cv2.INTER_CUBIC
    expected = cv2.resize(img, (163, 109), interpolation=flag)
    if dtype == "f32":
        assert expected.min() < 0 or expected.max() > 1  # the overshoot being clipped is really there
        expected = np.clip(expected, 0, 1)
    assert out.dtype == img.dtype and out.shape[:2] == (109, 163)
    np.testing.assert_array_equal(out, expected)


def test_resize_without_upscale_leaves_small_images_alone(photo8, gray16):
    for img in (photo8, gray16):
        out = run_op(img, "resize", long_side=500, upscale=False)
        np.testing.assert_array_equal(out, img)
        assert out is not img
        assert run_op(img, "resize", long_side=48, upscale=False).shape[:2] == (32, 48)
    assert run_op(photo8, "resize", scale=2.0).shape == (128, 192, 3)  # upscale defaults to true


def test_resize_same_size_is_a_copy(photo8):
    out = run_op(photo8, "resize", width=96)
    np.testing.assert_array_equal(out, photo8)
    assert out is not photo8


def test_resize_needs_exactly_one_size(photo8):
    with pytest.raises(ValueError, match=r"resize: set exactly one of .* \(got none\)"):
        run_op(photo8, "resize")
    with pytest.raises(ValueError, match=r"\(got width, scale\)"):
        run_op(photo8, "resize", width=10, scale=0.5)
    with pytest.raises(ValueError, match=r"resize\.scale: must be > 0"):
        run_op(photo8, "resize", scale=0)
    with pytest.raises(ValueError, match=r"resize\.enlarge_filter"):
        run_op(photo8, "resize", scale=2.0, enlarge_filter="nearest")
    assert get_op("resize").changes_shape
