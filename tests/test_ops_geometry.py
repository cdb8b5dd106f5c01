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


# --- flip, rotate, crop, affine ------------------------------------------------------------

LAYOUTS = [(d, layout) for d in ("u8", "u16", "f32") for layout in ("grey", "colour")]
TINY = [(1, 1), (1, 7), (7, 1), (2, 3)]


def _tiny(shape, dtype):
    h, w = shape
    img = (np.arange(h * w * 3).reshape(h, w, 3) * 37 % 251).astype(np.uint8)
    return img if dtype == "u8" else img.astype(np.uint16) * 257


@pytest.mark.parametrize(("dtype", "layout"), LAYOUTS)
def test_flip_matches_cv2_flip_and_numpy(photo8, photo16, dtype, layout):
    # Tolerance: none; a flip moves pixels and changes no value.
    img = _variant(photo8, photo16, dtype, layout)
    for direction, code, sliced in (
        ("horizontal", 1, img[:, ::-1]),
        ("vertical", 0, img[::-1]),
        ("both", -1, img[::-1, ::-1]),
    ):
        out = run_op(img, "flip", direction=direction)
        assert out.dtype == img.dtype and out.shape == img.shape
        np.testing.assert_array_equal(out, sliced)
        np.testing.assert_array_equal(out, cv2.flip(img, code))


@pytest.mark.parametrize("shape", TINY)
@pytest.mark.parametrize("op", ["flip", "rotate", "crop", "affine"])
def test_new_geometry_works_on_tiny_images(op, shape):
    params = {
        "flip": {"direction": "both"},
        "rotate": {"angle": 33, "expand": True},
        "crop": {"scale": 0.5, "x": 1.0},
        "affine": {"scale": 1.2, "shear_x": 10, "translate_x": 0.3},
    }[op]
    for dtype in ("u8", "u16"):
        for img in (_tiny(shape, dtype), _tiny(shape, dtype)[..., 0]):
            out = run_op(img, op, **params)
            assert out.dtype == img.dtype and out.ndim == img.ndim and out.size > 0


def test_rotate_quarter_turns_are_exactly_np_rot90(photo8, photo16, gray16):
    # Tolerance: none; quarter turns move pixels without resampling.
    for img in (photo8, photo16, gray16, to_float(photo8)):
        for angle, k in ((90, 1), (180, 2), (270, 3), (-90, 3), (360, 0)):
            out = run_op(img, "rotate", angle=angle, expand=True)
            np.testing.assert_array_equal(out, np.rot90(img, k))
        np.testing.assert_array_equal(run_op(img, "rotate", angle=180), np.rot90(img, 2))
    square = photo8[:, :64]
    np.testing.assert_array_equal(run_op(square, "rotate", angle=90), np.rot90(square))


@pytest.mark.parametrize(("dtype", "layout"), LAYOUTS)
@pytest.mark.parametrize("border", ["reflect", "replicate", "constant"])
def test_rotate_matches_cv2_warp_affine_with_get_rotation_matrix(photo8, photo16, dtype, layout, border):
    # Tolerance: none; the same cv2.warpAffine call, with the matrix from cv2.getRotationMatrix2D.
    img = _variant(photo8, photo16, dtype, layout)
    h, w = img.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 23.5, 1.0)
    modes = {
        "reflect": cv2.BORDER_REFLECT_101,
        "replicate": cv2.BORDER_REPLICATE,
        "constant": cv2.BORDER_CONSTANT,
    }
    fill = {"u8": 255 * 0.25, "u16": 65535 * 0.25, "f32": 0.25}[dtype]
    fill = fill if dtype == "f32" else round(fill)
    expected = cv2.warpAffine(
        img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=modes[border], borderValue=(fill,) * 3
    )
    out = run_op(img, "rotate", angle=23.5, border=border, fill=0.25)
    assert out.dtype == img.dtype
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("angle", "expand"), [(30, False), (30, True), (-47, True), (100, True), (12, False)]
)
@pytest.mark.parametrize(
    ("border", "mode"), [("reflect", "reflect"), ("replicate", "edge"), ("constant", "constant")]
)
def test_rotate_matches_skimage_rotate(photo8, angle, expand, border, mode):
    # skimage.transform.rotate: same centre, direction, output size (resize=True) and border modes,
    # bilinear in float64. OpenCV interpolates 8-bit with 1/32-pixel positions and 15-bit weights:
    # at most 1 level apart, on under 0.1% of values (measured: 0 to 0.031%).
    from skimage.transform import rotate as sk_rotate

    out = run_op(photo8, "rotate", angle=angle, expand=expand, border=border, fill=0.4)  # 102 exactly
    expected = sk_rotate(
        photo8.astype(np.float64), angle, resize=expand, mode=mode, cval=102, order=1, preserve_range=True
    )
    assert out.shape == expected.shape
    diff = np.abs(out - np.rint(expected))
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.001


def test_rotate_expand_keeps_every_pixel_and_float_stays_in_range(photo8):
    out = run_op(to_float(photo8), "rotate", angle=45, expand=True, interpolation="cubic", border="constant")
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    assert out.shape[:2] == (113, 113)  # round(95 cos45 + 63 sin45 + 1) = round(112.7)


@pytest.mark.parametrize(
    ("params", "box"),
    [
        # input 64 x 96: (top, left, height, width)
        ({"scale": 0.5}, (16, 24, 32, 48)),  # centred by default
        ({"scale": 0.5, "x": 0, "y": 0}, (0, 0, 32, 48)),
        ({"scale": 0.5, "x": 1, "y": 1}, (32, 48, 32, 48)),
        ({"scale": 0.5, "x": 0.25, "y": 0.75}, (24, 12, 32, 48)),
        ({"width": 48}, (16, 24, 32, 48)),  # one side keeps the aspect
        ({"height": 20}, (22, 33, 20, 30)),
        ({"width": 10, "height": 50, "left": 3, "top": 4}, (4, 3, 50, 10)),
        ({"width": 50, "height": 10, "left": 60, "top": 70}, (54, 46, 10, 50)),  # moved back inside
        ({"width": 200, "height": 100}, (8, 0, 48, 96)),  # too big: shrunk to fit, aspect kept
        ({"scale": 1.0}, (0, 0, 64, 96)),
    ],
)
def test_crop_is_numpy_slicing(photo8, gray16, params, box):
    # Tolerance: none; the expected box is written out by hand for each case.
    top, left, h, w = box
    for img in (photo8, gray16, to_float(photo8)):
        out = run_op(img, "crop", **params)
        np.testing.assert_array_equal(out, img[top : top + h, left : left + w])
        assert out.flags.c_contiguous and not np.shares_memory(out, img)


def test_crop_refuses_ambiguous_steps(photo8):
    with pytest.raises(ValueError, match="set scale, or width and/or height"):
        run_op(photo8, "crop")
    with pytest.raises(ValueError, match="set left .* or x"):
        run_op(photo8, "crop", scale=0.5, left=1, x=0.5)


def _affine_reference_matrix(h, w, scale, angle, shear_x, shear_y, tx, ty):
    """The documented composition, written with 3x3 homogeneous matrices."""

    def translate(x, y):
        return np.array([[1, 0, x], [0, 1, y], [0, 0, 1]], float)

    a = np.radians(angle)
    rot = np.array([[np.cos(a), np.sin(a), 0], [-np.sin(a), np.cos(a), 0], [0, 0, 1]])
    shear = np.array([[1, np.tan(np.radians(shear_x)), 0], [np.tan(np.radians(shear_y)), 1, 0], [0, 0, 1]])
    zoom = np.diag([scale, scale, 1.0])
    cx, cy = (w - 1) / 2, (h - 1) / 2
    return translate(cx + tx * w, cy + ty * h) @ rot @ shear @ zoom @ translate(-cx, -cy)


AFFINE_CASES = [
    {"scale": 1.3},
    {"shear_x": 15, "translate_y": -0.1},
    {"scale": 0.8, "angle": 20, "shear_y": -10, "translate_x": 0.2},
]


@pytest.mark.parametrize(("dtype", "layout"), LAYOUTS)
@pytest.mark.parametrize("params", AFFINE_CASES)
def test_affine_matches_cv2_warp_affine(photo8, photo16, dtype, layout, params):
    # Tolerance: none; cv2.warpAffine with the matrix composed independently above.
    img = _variant(photo8, photo16, dtype, layout)
    h, w = img.shape[:2]
    full = {
        "scale": 1.0,
        "angle": 0.0,
        "shear_x": 0.0,
        "shear_y": 0.0,
        "translate_x": 0.0,
        "translate_y": 0.0,
    }
    full.update(params)
    matrix = _affine_reference_matrix(h, w, *full.values())[:2]
    expected = cv2.warpAffine(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    out = run_op(img, "affine", **params)
    assert out.dtype == img.dtype
    np.testing.assert_allclose(out, expected, atol=0 if dtype != "f32" else 1e-6)


@pytest.mark.parametrize("params", AFFINE_CASES)
def test_affine_matches_skimage_warp(photo8, params):
    # skimage.transform.warp with the inverse of the forward matrix, bilinear in float64, same
    # border (reflect = numpy's reflect = BORDER_REFLECT_101); 8-bit OpenCV positions are
    # quantised to 1/32 pixel: within 1 level, on under 0.5% of values (measured: up to 0.15%).
    from skimage.transform import AffineTransform, warp

    h, w = photo8.shape[:2]
    full = {
        "scale": 1.0,
        "angle": 0.0,
        "shear_x": 0.0,
        "shear_y": 0.0,
        "translate_x": 0.0,
        "translate_y": 0.0,
    }
    full.update(params)
    forward = _affine_reference_matrix(h, w, *full.values())
    expected = warp(
        photo8.astype(np.float64),
        AffineTransform(matrix=np.linalg.inv(forward)),
        order=1,
        mode="reflect",
        preserve_range=True,
    )
    diff = np.abs(run_op(photo8, "affine", **params) - np.rint(expected))
    assert diff.max() <= 1 and np.mean(diff > 0) < 0.005


def test_affine_translation_moves_a_pixel_exactly():
    img = np.zeros((20, 40), np.uint16)
    img[5, 7] = 60000
    out = run_op(img, "affine", translate_x=0.25, translate_y=0.5, border="constant")  # 10 right, 10 down
    assert out[15, 17] == 60000 and out.sum() == 60000


def test_geometry_moves_alpha_with_the_pixels(photo8):
    from imgenh.io import Image
    from imgenh.pipeline_file import pipeline_from_steps

    alpha = np.zeros(photo8.shape[:2], np.uint8)
    alpha[5:20, 10:30] = 255  # an off-centre opaque block: any misplacement shows
    image = Image(photo8, alpha=alpha)
    steps = [
        {"op": "flip", "direction": "horizontal"},
        {"op": "rotate", "angle": 17, "expand": True, "border": "constant", "fill": 1.0},
        {"op": "crop", "scale": 0.7, "x": 0.2, "y": 0.9},
        {"op": "affine", "shear_x": 8, "translate_y": 0.1},
        {"op": "resize", "width": 50},
    ]
    out, _ = pipeline_from_steps(steps).apply_image(image)
    # Alpha goes through the same geometry (fill 0: what comes from outside is transparent).
    expected = cv2.flip(alpha, 1)
    expected = run_op(expected, "rotate", angle=17, expand=True, border="constant", fill=0.0)
    expected = run_op(expected, "crop", scale=0.7, x=0.2, y=0.9)
    expected = run_op(expected, "affine", shear_x=8, translate_y=0.1)
    h, w = out.pixels.shape[:2]
    expected = cv2.resize(expected, (w, h), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(out.alpha, expected)
    # The pixels' constant fill is white while the alpha there is transparent.
    corner = run_op(cv2.flip(photo8, 1), "rotate", angle=17, expand=True, border="constant", fill=1.0)
    assert (corner[0, 0] == 255).all()
