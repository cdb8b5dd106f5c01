"""Contract tests over the whole registry: every operator, every depth and layout.

A new operator is covered here the moment it is registered, and this file fails until
:data:`REFERENCE_TESTS` names the tests that hold it to its declared reference (the rule
albumentations keeps in ``check_all_augs_exists``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from imgenh.ops import REGISTRY
from imgenh.pipeline import Step, apply_steps

NAMES = sorted(REGISTRY)
TESTS = Path(__file__).parent

# Parameters run besides each operator's example, where they take another code path.
EXTRA_PARAMS = {
    "median": [{"size": 7}],  # OpenCV has no 16-bit/float median above 5: imgenh's own exact path
    "white_balance": [{"method": "gray_edge"}],  # estimates on a float image, not on histograms
    "denoise": [{"method": "bilateral"}],  # the example is nlmeans
    "stretch": [{"linked": False}],  # per-channel histograms instead of luma
    "rotate": [{"angle": 33, "expand": True, "border": "constant", "interpolation": "cubic"}],  # new size
    "affine": [{"interpolation": "nearest", "border": "replicate"}],
}
CASES = [(name, {}) for name in NAMES] + [
    (n, extra) for n, extras in EXTRA_PARAMS.items() for extra in extras
]
CASE_IDS = [name + "".join(f"-{k}={v}" for k, v in extra.items()) for name, extra in CASES]

# 8- vs 16-bit agreement on 8-bit data scaled by 257, in 8-bit levels: (mean, 99th percentile, max)
# of |out16 / 257 - out8|. By default the 16-bit result must round to the 8-bit one (p99 0.5), give
# or take one 16-bit level at the worst pixel (max 0.5 + 1/257): float operators see k / 255 and
# 257 k / 65535, which can differ by one float32 ulp and tip a result sitting on a half level.
# Measured on the 64x96 photo: every default-bound case has mean <= 0.26, p99 <= 0.494, max <= 0.502.
AGREE_DEFAULT = (0.3, 0.5, 0.5 + 1 / 257)
AGREE = {
    # uint8 colour goes through OpenCV's 8-bit YCrCb, whose Y, Cr and Cb are rounded to 8 bits
    # (uint16 keeps 16); measured mean 0.75, p99 2.62, max 3.25.
    ("equalize", "colour"): (1.0, 3.0, 4.0),
    # uint8 colour goes through OpenCV's 8-bit YCrCb (Y, Cr, Cb rounded to 8 bits; uint16 keeps 16),
    # and the tile mappings amplify that; measured mean 0.62, p99 2.28, max 3.79.
    ("clahe", "colour"): (1.0, 3.5, 10.0),
    # 8-bit mappings are OpenCV's rounded tables, 16-bit ones unrounded and interpolated between
    # 8-bit levels; measured mean 0.29, p99 0.78, max 0.96.
    ("clahe", "grey"): (0.3, 1.0, 1.0),
    # uint8 is OpenCV's fastNlMeansDenoisingColored (8-bit Lab, integer weights); uint16 the same
    # weights in float Lab; measured mean 0.70, p99 2.66, max 4.45.
    ("denoise", "colour"): (1.0, 3.5, 6.0),
    # grey: OpenCV's integer weights vs float ones; measured mean 0.10, p99 0.48, max 0.51.
    ("denoise", "grey"): (0.3, 0.5, 1.0),
    # The example's blue offset lifts every grey level by the same 0.37 of an 8-bit level (its luma
    # share), which 8-bit output rounds away and 16-bit keeps; measured mean = p99 = max 0.370.
    ("color_matrix", "grey"): (0.5, 0.5, 0.5 + 1 / 257),
}


def example(name: str, extra: dict | None = None) -> list[Step]:
    spec = REGISTRY[name]
    extra = extra or {}
    # The example's parameters that depend on a setting `extra` changes (h with method: nlmeans
    # once extra picks bilateral) would be errors: leave them out.
    given = {
        k: v
        for k, v in spec.example_step().items()
        if k != "op" and k not in extra and not set(spec.params[k].only_with) & set(extra)
    }
    params, errors = spec.resolve({**given, **extra})
    assert not errors, errors
    return [Step(spec, params, 0)]


def layouts(photo8, photo16, gray8, gray16):
    return {
        "uint8-colour": photo8,
        "uint8-grey": gray8,
        "uint16-colour": photo16,
        "uint16-grey": gray16,
        "float32-colour": photo16.astype(np.float32) / 65535,
        "float32-grey": gray16.astype(np.float32) / 65535,
    }


@pytest.mark.parametrize(("name", "extra"), CASES, ids=CASE_IDS)
def test_contract_dtype_shape_and_input_untouched(name, extra, photo8, photo16, gray8, gray16):
    spec = REGISTRY[name]
    for label, img in layouts(photo8, photo16, gray8, gray16).items():
        before = img.copy()
        out, reports = apply_steps(img, example(name, extra))
        assert np.array_equal(img, before), f"{name} modified its input ({label})"
        assert out.dtype == img.dtype, f"{name} changed dtype on {label}"
        if spec.changes_shape:
            assert out.ndim in (2, 3) and out.size > 0
        else:
            assert out.shape == img.shape, f"{name} changed shape on {label}: {out.shape}"
        if out.dtype == np.float32:
            assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


TINY_SHAPES = [(1, 1), (1, 7), (7, 1), (2, 2)]


@pytest.mark.parametrize(("name", "extra"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", TINY_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_contract_tiny_images(name, extra, shape):
    """1x1, 1xN, Nx1 and 2x2 images: every operator runs, with its example and default parameters."""
    rng = np.random.default_rng(3)
    spec = REGISTRY[name]
    defaults, errors = spec.resolve(extra)
    steps = [example(name, extra)] + ([[Step(spec, defaults, 0)]] if not errors else [])
    for channels in (3, 1):
        for dtype, top in ((np.uint8, 255), (np.uint16, 65535), (np.float32, 1.0)):
            size = (*shape, channels) if channels == 3 else shape
            img = (rng.random(size) * top).astype(dtype)
            for pipeline in steps:
                out, _ = apply_steps(img, pipeline)
                assert out.dtype == img.dtype
                if not spec.changes_shape:
                    assert out.shape == img.shape
                if out.dtype == np.float32:
                    assert np.isfinite(out).all()
            flat = np.full(size, top // 2 if dtype != np.float32 else 0.5, dtype)  # one colour
            out, reports = apply_steps(flat, steps[0])
            assert all(np.isfinite(v).all() for r in reports for v in r.values() if isinstance(v, float))


@pytest.mark.parametrize(("name", "extra"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("layout", ["colour", "grey"])
def test_contract_8_and_16_bit_agree(name, extra, layout, photo8, gray8):
    """The 16-bit path gives the 8-bit result (within rounding) on 8-bit data scaled by 257."""
    img = photo8 if layout == "colour" else gray8
    out8, _ = apply_steps(img, example(name, extra))
    out16, _ = apply_steps(img.astype(np.uint16) * 257, example(name, extra))
    diff = np.abs(out16.astype(np.float64) / 257 - out8)
    mean, p99, worst = diff.mean(), np.percentile(diff, 99), diff.max()
    bound = AGREE.get((name, layout), AGREE_DEFAULT)
    eps = 1e-6  # a level k * 257 / 257 is exact, but leave room for float division
    assert mean <= bound[0] and p99 <= bound[1] + eps and worst <= bound[2] + eps, (
        f"{name} {extra} {layout}: |out16/257 - out8| mean {mean:.3f}, p99 {p99:.3f}, max {worst:.3f} "
        f"levels; allowed {bound}"
    )


@pytest.mark.parametrize("name", NAMES)
def test_contract_declaration_is_complete(name):
    spec = REGISTRY[name]
    assert spec.summary and spec.formula and spec.reference, (
        f"{name}: summary, formula and reference are required"
    )
    for pname, param in spec.params.items():
        assert param.help, f"{name}.{pname} has no help line"


# Every registered operator -> the tests ("module.py::function") that hold it to the reference
# its declaration names (OpSpec.reference). Add a row when you register an operator.
REFERENCE_TESTS: dict[str, list[str]] = {
    "affine": [
        "test_ops_geometry.py::test_affine_matches_cv2_warp_affine",
        "test_ops_geometry.py::test_affine_matches_skimage_warp",
        "test_ops_geometry.py::test_affine_translation_moves_a_pixel_exactly",
    ],
    "auto_level": [
        "test_ops_tone.py::test_auto_level_matches_formula",
        "test_ops_tone.py::test_auto_level_matches_imagemagick",
    ],
    "brightness_contrast": ["test_ops_tone.py::test_brightness_contrast_matches_convert_scale_abs"],
    "clahe": [
        "test_ops_tone.py::test_clahe_matches_opencv",
        "test_ops_tone.py::test_clahe_levels_is_opencv_algorithm",
    ],
    "color_matrix": [
        "test_ops_lut.py::test_color_matrix_matches_numpy",
        "test_ops_lut.py::test_color_matrix_matches_imagemagick",
    ],
    "crop": ["test_ops_geometry.py::test_crop_is_numpy_slicing"],
    "curve": [
        "test_ops_tone.py::test_curve_monotone_matches_scipy_pchip",
        "test_ops_tone.py::test_curve_pchip_slopes_match_scipy",
    ],
    "deblock": ["test_ops_local.py::test_deblock_matches_the_rule_written_as_loops"],
    "denoise": [
        "test_ops_filters.py::test_denoise_bilateral_is_opencv_on_uint8",
        "test_ops_filters.py::test_denoise_nlmeans_is_opencv_on_uint8",
    ],
    "denoise_chroma": ["test_ops_local.py::test_denoise_chroma_matches_guided_filter_on_ycrcb"],
    "equalize": [
        "test_ops_tone.py::test_equalize_matches_opencv",
        "test_ops_tone.py::test_equalize_lut_is_equalize_hist_rule",
    ],
    "exposure": ["test_ops_exposure.py::test_exposure_is_a_gain_in_linear_light_like_colour_science"],
    "flatten": [
        "test_ops_local.py::test_flatten_matches_closing_background_formula",
        "test_ops_local.py::test_flatten_makes_an_unevenly_lit_page_flat",
    ],
    "flip": ["test_ops_geometry.py::test_flip_matches_cv2_flip_and_numpy"],
    "gamma": [
        "test_ops_tone.py::test_gamma_matches_formula",
        "test_ops_tone.py::test_gamma_matches_imagemagick",
        "test_ops_tone.py::test_gamma_auto_matches_imagemagick_auto_gamma",
    ],
    "gradient_magnitude": [
        "test_ops_gradient.py::test_gradient_magnitude_matches_cv2_sobel_formula",
        "test_ops_gradient.py::test_gradient_magnitude_matches_skimage_sobel",
    ],
    "gradient_normalize": [
        "test_ops_gradient.py::test_attenuation_matches_fattal_formula",
        "test_ops_gradient.py::test_solve_poisson_neumann_matches_sparse_direct_solve",
        "test_ops_gradient.py::test_gradient_normalize_colour_ratio_formula",
    ],
    "levels": [
        "test_ops_tone.py::test_levels_matches_formula",
        "test_ops_tone.py::test_levels_matches_imagemagick_level",
    ],
    "log_curve": ["test_ops_tone.py::test_log_curve_matches_skimage_adjust_log"],
    "lut3d": [
        "test_ops_lut.py::test_lut3d_matches_colour_table_interpolation",
        "test_ops_lut.py::test_lut3d_reads_resolve_input_range_and_domains_like_colour",
    ],
    "median": [
        "test_ops_filters.py::test_median_matches_scipy_exactly",
        "test_ops_filters.py::test_median_matches_imagemagick_exactly",
    ],
    "resize": [
        "test_ops_geometry.py::test_resize_matches_cv2_area_when_shrinking",
        "test_ops_geometry.py::test_resize_matches_cv2_when_enlarging",
    ],
    "rotate": [
        "test_ops_geometry.py::test_rotate_matches_cv2_warp_affine_with_get_rotation_matrix",
        "test_ops_geometry.py::test_rotate_matches_skimage_rotate",
        "test_ops_geometry.py::test_rotate_quarter_turns_are_exactly_np_rot90",
    ],
    "saturation": [
        "test_ops_color.py::test_saturation_matches_skimage_lab",
        "test_ops_color.py::test_saturation_matches_imagemagick_lab",
    ],
    "shadows_highlights": [
        "test_ops_local.py::test_guided_filter_matches_numpy_reference",
        "test_ops_local.py::test_shadows_highlights_matches_moroney_formula_on_a_guided_mask",
    ],
    "sharpen": [
        "test_ops_filters.py::test_sharpen_matches_formula",
        "test_ops_filters.py::test_sharpen_matches_imagemagick_unsharp",
    ],
    "sigmoid": [
        "test_ops_tone.py::test_sigmoid_matches_formula",
        "test_ops_tone.py::test_sigmoid_matches_imagemagick_sigmoidal_contrast",
    ],
    "stretch": [
        "test_ops_tone.py::test_stretch_matches_imagemagick_rule",
        "test_ops_tone.py::test_stretch_matches_imagemagick_contrast_stretch",
    ],
    "white_balance": [
        "test_ops_color.py::test_white_balance_gray_world_equals_channel_means",
        "test_ops_color.py::test_white_balance_white_patch_equals_percentile",
        "test_ops_color.py::test_white_balance_shades_of_gray_p1_is_gray_world_and_p6_is_minkowski",
        "test_ops_color.py::test_white_balance_gray_edge_equals_scipy_gaussian_derivatives",
        "test_ops_color.py::test_white_balance_manual_gains_match_imagemagick",
    ],
}


def _test_functions(module: str) -> set[str]:
    """Names of the module-level ``test_*`` functions of a test module (empty if it does not exist)."""
    path = TESTS / module
    if not path.is_file():
        return set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


def test_every_operator_has_its_reference_tests():
    missing = [name for name in NAMES if not REFERENCE_TESTS.get(name)]
    assert not missing, (
        f"add the tests that hold these operators to their reference to REFERENCE_TESTS: {missing}"
    )
    stale = sorted(set(REFERENCE_TESTS) - set(NAMES))
    assert not stale, f"REFERENCE_TESTS names operators that are not registered: {stale}"
    absent = []
    for name, tests in REFERENCE_TESTS.items():
        for test in tests:
            module, _, function = test.partition("::")
            if not module.startswith("test_ops_") or function not in _test_functions(module):
                absent.append(f"{name}: {test}")
    assert not absent, f"REFERENCE_TESTS names tests that do not exist in tests/test_ops_*.py: {absent}"


@pytest.mark.parametrize(
    ("op", "param", "ends"),
    [
        ("denoise", "noise_range", "none, full"),
        ("shadows_highlights", "dark_range", "none, full"),
        ("shadows_highlights", "backlight_range", "none, full"),
        ("white_balance", "cast_range", "small, large"),
        ("white_balance", "disagreement_range", "full, none"),
        ("white_balance", "average_range", "none, full"),
    ],
)
def test_a_range_given_the_wrong_way_round_is_refused_by_name(op, param, ends):
    # Every [a, b] range parameter needs a < b; the error names the parameter and its two ends.
    from imgenh.ops import get_op

    first, second = ends.split(", ")
    _, errors = get_op(op).resolve({param: [0.5, 0.5]})
    assert errors and errors[0][1] == f"{param} must be [{first}, {second}] with {first} < {second}"
    _, errors = get_op(op).resolve({param: [0.2, 0.5]})
    assert not errors
