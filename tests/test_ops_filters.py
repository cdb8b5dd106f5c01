"""Filters: median, sharpen (unsharp mask) and denoise, each held to its reference implementation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import assert_images_close, magick, requires_magick, run_with_report
from scipy import ndimage

from imgenh.ops import filters
from imgenh.pipeline import run_op
from imgenh.pixels import from_float, to_float


def _variant(photo8, photo16, dtype, layout):
    """The fixture photo at a depth ('u8', 'u16', 'f32') and layout ('grey', 'colour')."""
    img = photo8 if dtype == "u8" else photo16
    if layout == "grey":
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return to_float(img) if dtype == "f32" else img


def _scipy_median(img, size):
    return ndimage.median_filter(img, size=(size, size) + ((1,) * (img.ndim - 2)), mode="nearest")


# ------------------------------------------------------------------------------------------ median


@pytest.mark.parametrize("size", [3, 5, 7, 11])
@pytest.mark.parametrize("layout", ["grey", "colour"])
@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_median_matches_scipy_exactly(photo8, photo16, dtype, layout, size):
    # Tolerance: none. The median of a window is one of its values, so any exact method agrees bit for bit.
    img = _variant(photo8, photo16, dtype, layout)
    before = img.copy()
    out = run_op(img, "median", size=size)
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out, _scipy_median(img, size))
    np.testing.assert_array_equal(img, before)  # input untouched


@pytest.mark.parametrize("path", ["byte_bands", "partition"])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_median_both_exact_paths(monkeypatch, path, dtype):
    # Force each of the two exact methods (8-bit band passes / numpy partition) on every tile, with small tiles
    # so tile edges and image borders are crossed; random data has the most distinct values (worst case).
    monkeypatch.setattr(filters, "_TILE", 24)
    monkeypatch.setattr(filters, "_BLUR_NS_PER_PIXEL", 0.0 if path == "byte_bands" else 1e9)
    rng = np.random.default_rng(3)
    img = rng.integers(0, 65536, (70, 57), dtype=np.uint16)
    if dtype == np.float32:
        img = rng.random((70, 57), dtype=np.float32)
    for size in (7, 9, 25):
        np.testing.assert_array_equal(filters.median_filter(img, size), _scipy_median(img, size))


def test_median_float_more_than_16_bits_of_distinct_values(monkeypatch):
    # > 65536 distinct floats: ranks need 17 bits, i.e. three byte levels.
    monkeypatch.setattr(filters, "_TILE", 64)
    monkeypatch.setattr(filters, "_BLUR_NS_PER_PIXEL", 0.0)
    img = np.random.default_rng(4).random((270, 250), dtype=np.float32)
    assert np.unique(img).size > 65536
    np.testing.assert_array_equal(filters.median_filter(img, 7), _scipy_median(img, 7))


def test_median_16bit_with_few_levels_and_flat_image(photo8):
    # 8-bit data stored as 16-bit (<= 256 distinct values: one 8-bit pass) and a constant image.
    img16 = photo8.astype(np.uint16) * 257
    np.testing.assert_array_equal(run_op(img16, "median", size=9), _scipy_median(img16, 9))
    flat = np.full((20, 30), 0.25, np.float32)
    np.testing.assert_array_equal(run_op(flat, "median", size=15), flat)
    np.testing.assert_array_equal(run_op(photo8, "median", size=1), photo8)


@requires_magick
@pytest.mark.imagemagick
@pytest.mark.parametrize("size", [3, 7])
@pytest.mark.parametrize("layout", ["grey", "colour"])
@pytest.mark.parametrize("dtype", ["u8", "u16"])
def test_median_matches_imagemagick_exactly(photo8, photo16, dtype, layout, size):
    img = _variant(photo8, photo16, dtype, layout)
    np.testing.assert_array_equal(run_op(img, "median", size=size), magick(img, "-median", str(size)))


def test_median_rejects_even_size(photo8):
    with pytest.raises(ValueError, match=r"median\.size: must be odd"):
        run_op(photo8, "median", size=4)
    with pytest.raises(ValueError, match=r"median\.size"):
        run_op(photo8, "median", size=0)


# ----------------------------------------------------------------------------------------- sharpen


def _reference_kernel(radius, sigma):
    """ImageMagick's blur kernel, written out from its definition independently of the module."""
    if radius >= 1:
        width = 2 * int(radius) + 1
    elif radius > 0:
        width = 3
    else:  # widest odd width whose normalised edge tap >= 1/65535 (ImageMagick Q16)
        width = 5
        while True:
            taps = [np.exp(-(i * i) / (2 * sigma * sigma)) for i in range(-(width // 2), width // 2 + 1)]
            if taps[-1] / sum(taps) < 1 / 65535:
                width -= 2
                break
            width += 2
    # Supersampled: 3 samples per tap on a grid of 3 * width points, Gaussian of sigma 3 * sigma.
    kernel = np.zeros(width)
    n = 3 * width
    for j in range(n):
        u = j - (n - 1) // 2
        kernel[j // 3] += np.exp(-(u * u) / (2 * (3 * sigma) ** 2))
    return kernel / kernel.sum()


def _reference_unsharp(img, radius, sigma, amount, threshold):
    """Float64 unsharp mask from the formula: out = in + amount (in - blur) where 2|in - blur| >= threshold."""
    k = _reference_kernel(radius, sigma)
    x = to_float(img).astype(np.float64)
    blur = cv2.sepFilter2D(x, cv2.CV_64F, k, k, borderType=cv2.BORDER_REPLICATE)
    d = x - blur
    out = np.where(2 * np.abs(d) >= threshold, x + amount * d, x)
    return from_float(out.astype(np.float32), img.dtype) if img.dtype != np.float32 else np.clip(out, 0, 1)


SHARPEN_CASES = [
    (0, 1.0, 1.0, 0.05),
    (0, 1.5, 0.8, 0.02),
    (2, 1.0, 1.5, 0.0),
    (0, 0.5, 1.0, 0.0),
    (3, 2.0, 2.0, 0.1),
]


@pytest.mark.parametrize(
    ("radius", "sigma"), [(0, 0.3), (0, 1.0), (0, 2.5), (2, 1.0), (0.5, 0.7), (4.7, 3.0)]
)
def test_sharpen_kernel_is_imagemagicks_supersampled_gaussian(radius, sigma):
    np.testing.assert_allclose(
        filters.im_blur_kernel(radius, sigma), _reference_kernel(radius, sigma), rtol=1e-12
    )
    assert filters.im_kernel_width(0, 1.0) == 9  # ImageMagick's auto width for sigma 1 (Q16)


@requires_magick
@pytest.mark.imagemagick
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_sharpen_kernel_matches_imagemagick_blur_exactly(photo16, sigma):
    # One horizontal pass on 16-bit: ImageMagick rounds once, so the kernel must reproduce it exactly (0 LSB).
    img = cv2.cvtColor(photo16, cv2.COLOR_BGR2GRAY)
    k = filters.im_blur_kernel(0, sigma)
    ours = cv2.sepFilter2D(img.astype(np.float64), cv2.CV_64F, k, np.ones(1), borderType=cv2.BORDER_REPLICATE)
    expected = magick(img, "-morphology", "Convolve", f"blur:0x{sigma}")
    np.testing.assert_array_equal(np.floor(ours + 0.5).astype(np.uint16), expected)


@pytest.mark.parametrize("case", SHARPEN_CASES)
@pytest.mark.parametrize("layout", ["grey", "colour"])
@pytest.mark.parametrize("dtype", ["u8", "u16", "f32"])
def test_sharpen_matches_formula(photo8, photo16, dtype, layout, case):
    # Integer images round each blur pass to 16-bit levels (as ImageMagick Q16 does) and the float64 formula does
    # not, which can flip the threshold decision of a pixel sitting right at it. Tolerance: 8-bit 1 LSB on all
    # but 0.05 % of values; 16-bit 10 LSB on all but 0.5 %; float 1e-5 on all but 0.2 %.
    img = _variant(photo8, photo16, dtype, layout)
    before = img.copy()
    out = run_op(img, "sharpen", radius=case[0], sigma=case[1], amount=case[2], threshold=case[3])
    assert out.dtype == img.dtype and out.shape == img.shape
    expected = _reference_unsharp(img, *case)
    if dtype == "u8":
        assert_images_close(out, expected, 1, "sharpen-u8", max_fraction=0.0005)
    elif dtype == "u16":
        assert_images_close(out, expected, 10, "sharpen-u16", max_fraction=0.005)
    else:
        assert_images_close(out, expected, 1e-5, "sharpen-f32", max_fraction=0.002)
    np.testing.assert_array_equal(img, before)


@requires_magick
@pytest.mark.imagemagick
@pytest.mark.parametrize("case", SHARPEN_CASES + [(0.5, 0.7, 1.0, 0.01), (0, 3.0, 1.0, 0.0)])
@pytest.mark.parametrize("layout", ["grey", "colour"])
def test_sharpen_matches_imagemagick_unsharp(photo8, photo16, layout, case):
    # Tolerance: within 1 LSB on every 8-bit pixel (ImageMagick 6.9 Q16 truncates when it writes 8 bits, we
    # round); within 3 LSB on 16-bit (float32 arithmetic and round-half differences times the gain).
    args = ("-unsharp", f"{case[0]}x{case[1]}+{case[2]}+{case[3]}")
    for img, atol in (
        (_variant(photo8, photo16, "u8", layout), 1),
        (_variant(photo8, photo16, "u16", layout), 3),
    ):
        out = run_op(img, "sharpen", radius=case[0], sigma=case[1], amount=case[2], threshold=case[3])
        assert_images_close(out, magick(img, *args), atol, f"sharpen-vs-im-{img.dtype}", max_fraction=0.0)


def test_sharpen_threshold_is_doubled_difference():
    # A step edge; with sigma 1 the difference next to the edge is known exactly, so pick thresholds just either
    # side of twice it: the pixel must be sharpened for threshold <= 2|d| and untouched above.
    img = np.zeros((9, 16), np.float32)
    img[:, 8:] = 0.5
    k = filters.im_blur_kernel(0, 1.0)
    d = 0.5 - 0.5 * k[k.size // 2 :].sum()  # in - blur at the first bright column
    below = run_op(img, "sharpen", sigma=1.0, amount=1.0, threshold=float(2 * d) * 0.999)
    above = run_op(img, "sharpen", sigma=1.0, amount=1.0, threshold=float(2 * d) * 1.001)
    assert below[4, 8] == pytest.approx(0.5 + d, abs=1e-6)
    assert above[4, 8] == pytest.approx(0.5, abs=1e-7)


def test_sharpen_validation(photo8):
    with pytest.raises(ValueError, match="radius or sigma must be > 0"):
        run_op(photo8, "sharpen", radius=0, sigma=0)
    with pytest.raises(ValueError, match=r"sharpen\.amount: must be >= 0"):
        run_op(photo8, "sharpen", amount=-1)
    with pytest.raises(ValueError, match=r"sharpen\.threshold"):
        run_op(photo8, "sharpen", threshold=1.5)
    # sigma 0 with a radius is the identity blur: nothing to sharpen.
    np.testing.assert_array_equal(run_op(photo8, "sharpen", radius=2, sigma=0), photo8)


# ----------------------------------------------------------------------------------------- denoise


@pytest.mark.parametrize("layout", ["grey", "colour"])
def test_denoise_bilateral_is_opencv_on_uint8(photo8, layout):
    # Tolerance: none; the same OpenCV call with sigma_color scaled to 0..255.
    img = _variant(photo8, None, "u8", layout)
    out = run_op(img, "denoise", method="bilateral", diameter=7, sigma_color=0.12, sigma_space=2.5)
    expected = cv2.bilateralFilter(img, 7, 0.12 * 255, 2.5, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("layout", ["grey", "colour"])
def test_denoise_nlmeans_is_opencv_on_uint8(photo8, layout):
    # Tolerance: none; fastNlMeansDenoising (grey) / fastNlMeansDenoisingColored (colour), h scaled to 0..255.
    img = _variant(photo8, None, "u8", layout)
    out = run_op(img, "denoise", method="nlmeans", h=0.04, h_color=0.06, template=5, search=11)
    if layout == "grey":
        expected = cv2.fastNlMeansDenoising(img, None, 0.04 * 255, 5, 11)
    else:
        expected = cv2.fastNlMeansDenoisingColored(img, None, 0.04 * 255, 0.06 * 255, 5, 11)
    np.testing.assert_array_equal(out, expected)


def test_denoise_bilateral_16bit_and_float_follow_documented_construction(photo16):
    # bilateral: float32 filter of the [0, 1] image, rounded (0 LSB).
    out = run_op(photo16, "denoise", method="bilateral", diameter=5, sigma_color=0.1, sigma_space=2.0)
    ref = cv2.bilateralFilter(to_float(photo16), 5, 0.1, 2.0, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_array_equal(out, from_float(ref, np.uint16))


def _nlm_direct(planes, h, template, search):
    """Non-local means written out from OpenCV's NORM_L2 weights, in float64, one offset at a time.

    For every offset o of the search window: D = floor(sum over the patch and planes of (a - b)^2 / 2^k)
    * 2^k / template^2 (OpenCV's table index, 2^k >= template^2), w = exp(-D / (h^2 * planes)), 0 below
    0.001; out = sum(w * value) / sum(w). Borders reflect (BORDER_REFLECT_101).
    """
    t2, s2 = template // 2, search // 2
    border = t2 + s2
    rows, cols = planes[0].shape
    step = 2.0 ** np.ceil(np.log2(template * template))
    pad = [cv2.copyMakeBorder(p.astype(np.float64), *[border] * 4, cv2.BORDER_REFLECT_101) for p in planes]
    num = [np.zeros((rows, cols)) for _ in planes]
    den = np.zeros((rows, cols))
    for dy in range(-s2, s2 + 1):
        for dx in range(-s2, s2 + 1):
            sq = sum(
                (p[s2 + dy : s2 + dy + rows + 2 * t2, s2 + dx : s2 + dx + cols + 2 * t2] - p[s2:-s2, s2:-s2])
                ** 2
                for p in pad
            )
            sums = np.lib.stride_tricks.sliding_window_view(sq, (template, template)).sum(axis=(-2, -1))
            w = np.exp(-np.floor(sums / step) * step / template**2 / (h * h * len(planes)))
            w[w < 0.001] = 0
            den += w
            for n, p in zip(num, pad, strict=True):
                n += w * p[border + dy : border + dy + rows, border + dx : border + dx + cols]
    return [n / den for n in num]


@pytest.mark.parametrize("template,search", [(7, 21), (5, 11), (3, 5)])
def test_denoise_nlmeans_weights_are_opencv_l2(photo8, template, search):
    # The direct formula reproduces cv2.fastNlMeansDenoising on 8-bit grey and 2-channel planes (it
    # rounds its estimate and uses integer weights): within 1 level, and on >= 99.5 % of pixels exactly.
    grey = cv2.cvtColor(photo8, cv2.COLOR_BGR2GRAY)[:40, :48]
    ab = np.ascontiguousarray(cv2.cvtColor(photo8, cv2.COLOR_LBGR2Lab)[:40, :48, 1:])
    for img, planes in [(grey, [grey]), (ab, [ab[..., 0], ab[..., 1]])]:
        expected = cv2.fastNlMeansDenoising(img, None, 0.05 * 255, template, search)
        direct = np.dstack(_nlm_direct(planes, 0.05 * 255, template, search)).reshape(img.shape)
        assert_images_close(
            from_float(direct / 255, np.uint8), expected, 1, "nlmeans-direct", max_fraction=0.005
        )
        # the vectorised helper gives the direct formula to float32 rounding
        fast = filters.nl_means_l2([p.astype(np.float32) for p in planes], 0.05 * 255, template, search)
        assert_images_close(np.dstack(fast).reshape(img.shape), direct, 1e-3, "nlmeans-l2-vs-direct")


def test_denoise_nlmeans_tiles_and_symmetry_are_exact(photo16, monkeypatch):
    # Tiny tiles put tile edges, image borders and both halves of the search window everywhere:
    # the result must equal the direct formula on fractional (16-bit) values within float32 rounding.
    monkeypatch.setattr(filters, "_NLM_TILE_ROWS", 7)
    monkeypatch.setattr(filters, "_NLM_TILE_COLS", 11)
    planes = [(p / 257.0).astype(np.float32) for p in cv2.split(photo16[:30, :41])]
    fast = filters.nl_means_l2(planes, 0.04 * 255, 5, 13)
    direct = _nlm_direct(planes, 0.04 * 255, 5, 13)
    assert_images_close(np.dstack(fast), np.dstack(direct), 1e-3, "nlmeans-tiled")


def test_denoise_nlmeans_16bit_and_float_follow_documented_construction(photo16):
    # uint16: the direct L2 formula on values / 257 (8-bit units, h * 255), rounded; colour through float
    # Lab (L * 2.55 with h, a*b* jointly with h_color). Tolerance: 1 LSB on >= 99 % of pixels and 4 LSB
    # everywhere, because a float32 patch sum can land on the other side of one of OpenCV's distance-table
    # steps (measured: 2 LSB on 0.16 % of pixels). float32: the same on the [0, 1] values * 255 (within
    # 1/65535 of the uint16 result).
    img = photo16[:32, :40]
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    out = run_op(grey, "denoise", method="nlmeans", h=0.05, template=5, search=9)
    (ref,) = _nlm_direct([grey / 257.0], 0.05 * 255, 5, 9)
    assert_images_close(out, from_float(ref / 255, np.uint16), 1, "denoise-nlmeans-u16-grey", 0.01)
    assert_images_close(out, from_float(ref / 255, np.uint16), 4, "denoise-nlmeans-u16-grey")

    out = run_op(img, "denoise", method="nlmeans", h=0.05, h_color=0.03, template=5, search=9)
    lab = cv2.split(cv2.cvtColor(to_float(img), cv2.COLOR_LBGR2Lab))
    (lum,) = _nlm_direct([lab[0] * 2.55], 0.05 * 255, 5, 9)
    a, b = _nlm_direct(lab[1:], 0.03 * 255, 5, 9)
    ref = cv2.cvtColor(np.dstack([lum / 2.55, a, b]).astype(np.float32), cv2.COLOR_Lab2LBGR)
    assert_images_close(out, from_float(ref, np.uint16), 1, "denoise-nlmeans-u16-colour", 0.01)
    assert_images_close(out, from_float(ref, np.uint16), 4, "denoise-nlmeans-u16-colour")

    out_f = run_op(to_float(img), "denoise", method="nlmeans", h=0.05, h_color=0.03, template=5, search=9)
    assert out_f.dtype == np.float32
    assert_images_close(out_f, to_float(out), 1.0 / 65535 + 1e-6, "denoise-float")


@pytest.mark.parametrize("layout", ["grey", "colour"])
def test_denoise_nlmeans_16bit_matches_8bit(photo8, layout):
    # 8-bit data scaled by 257 gives the 8-bit result: grey within rounding (measured mean 0.22, max 0.5
    # levels); colour within OpenCV's 8-bit Lab quantisation, which alone moves an 8-bit Lab round trip by
    # up to 4 levels (measured mean 0.70, max 4.4). Bounds: grey mean 0.35 / max 1, colour mean 1.0 / max 6.
    img = photo8 if layout == "colour" else cv2.cvtColor(photo8, cv2.COLOR_BGR2GRAY)
    for params in ({"h": 0.03}, {"h": 0.06}, {"h": 0.04, "h_color": 0.06, "template": 5, "search": 11}):
        out8 = run_op(img, "denoise", method="nlmeans", **params)
        out16 = run_op(img.astype(np.uint16) * 257, "denoise", method="nlmeans", **params)
        diff = np.abs(out16 / 257.0 - out8)
        mean_bound, max_bound = (1.0, 6.0) if layout == "colour" else (0.35, 1.0)
        assert diff.mean() < mean_bound and diff.max() <= max_bound, (params, diff.mean(), diff.max())


def _smooth_and_noisy(dtype, layout):
    yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)
    smooth = np.stack([0.2 + xx * 0.008, 0.3 + yy * 0.007, 0.25 + (xx + yy) * 0.004], axis=-1)
    if layout == "grey":
        smooth = smooth[..., 1]
    noisy = np.clip(smooth + np.random.default_rng(7).normal(0, 0.05, smooth.shape), 0, 1).astype(np.float32)
    return smooth, from_float(noisy, np.dtype(dtype))


def _psnr(img, truth):
    return 10 * np.log10(1.0 / np.mean((to_float(img).astype(np.float64) - truth) ** 2))


@pytest.mark.parametrize("method", ["bilateral", "nlmeans"])
@pytest.mark.parametrize("layout", ["grey", "colour"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_denoise_raises_psnr(dtype, layout, method):
    # A smooth gradient plus Gaussian noise (sigma 5 % of full scale): denoising must gain >= 3 dB.
    smooth, noisy = _smooth_and_noisy(dtype, layout)
    params = {"h": 0.06} if method == "nlmeans" else {"sigma_color": 0.15, "sigma_space": 3.0}
    before = noisy.copy()
    out = run_op(noisy, "denoise", method=method, **params)
    assert out.dtype == noisy.dtype and out.shape == noisy.shape
    np.testing.assert_array_equal(noisy, before)
    assert _psnr(out, smooth) >= _psnr(noisy, smooth) + 3.0


def test_denoise_noise_range_leaves_a_clean_photo_and_filters_a_noisy_one(photo8):
    # noise_range holds the filter back by the measured luma noise: the clean fixture photo
    # (reads ~1 level) comes back as the same array; with Gaussian noise of sigma 10 levels
    # added it reads well past full and gets the whole filter, exactly (OpenCV on uint8).
    params = {"method": "nlmeans", "h": 0.02, "h_color": 0.01, "template": 5, "search": 11}
    out, report = run_with_report(photo8, "denoise", noise_range=[3.0, 5.0], **params)
    assert out is photo8
    assert report["strength"] == 0.0 and report["noise_sigma"] < 3.0
    rng = np.random.default_rng(3)
    noisy = np.clip(photo8 + rng.normal(0, 10, photo8.shape), 0, 255).astype(np.uint8)
    out, report = run_with_report(noisy, "denoise", noise_range=[3.0, 5.0], **params)
    assert report["noise_sigma"] > 5.0 and report["strength"] == 1.0
    np.testing.assert_array_equal(
        out, cv2.fastNlMeansDenoisingColored(noisy, None, 0.02 * 255, 0.01 * 255, 5, 11)
    )


def test_denoise_noise_range_blends_in_between():
    # Between none and full the output is the input and the filtered image blended by the ramp
    # (cv2.addWeighted at the image's depth; tolerance: 1 level of rounding).
    noisy, _ = _noisy_grey(6.0)
    _, report = run_with_report(noisy, "denoise", noise_range=[0.0, 100.0])
    sigma = report["noise_sigma"]
    share = sigma / 100.0
    out, report = run_with_report(noisy, "denoise", noise_range=[0.0, 100.0])
    assert report["strength"] == pytest.approx(share, abs=1e-4)
    full = run_op(noisy, "denoise")
    expected = noisy.astype(np.float64) * (1 - share) + full.astype(np.float64) * share
    assert np.abs(out.astype(np.float64) - expected).max() <= 1.0
    assert 0.02 < share < 0.1  # a blend, not either end


def test_denoise_validation(photo8):
    with pytest.raises(ValueError, match=r"denoise\.method: must be one of"):
        run_op(photo8, "denoise", method="median")
    with pytest.raises(ValueError, match=r"denoise\.template: must be odd"):
        run_op(photo8, "denoise", method="nlmeans", template=6)
    with pytest.raises(ValueError, match=r"denoise\.sigma_color"):
        run_op(photo8, "denoise", sigma_color=0)
    with pytest.raises(ValueError, match=r"noise_range must be \[none, full\]"):
        run_op(photo8, "denoise", noise_range=[5.0, 3.0])


@pytest.mark.parametrize("fixture", ["photo8", "photo16"])
def test_sharpen_threshold_holds_back_every_channel(request, fixture):
    # A threshold above every local difference leaves the image as it is, in all three channels
    # (OpenCV 5.1 applies a bare float scalar to the first channel only).
    img = request.getfixturevalue(fixture)
    out = run_op(img, "sharpen", sigma=1.0, amount=2.0, threshold=1.0)
    np.testing.assert_array_equal(out, img)


# ------------------------------------------------------------------ sharpen that holds back (issue 14)


def _sharpen_report(img: np.ndarray, **params) -> tuple[np.ndarray, dict]:
    """Run sharpen as a one-step pipeline; return the image and the step's report."""
    from imgenh.ops import get_op
    from imgenh.pipeline import Step, apply_steps

    spec = get_op("sharpen")
    values, errors = spec.resolve(params)
    assert not errors, errors
    out, reports = apply_steps(img, [Step(spec, values, 0)])
    return out, (reports[0] if reports else {})


def _noisy_grey(sigma: float, channels: int = 3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    clean = np.full((160, 200, channels) if channels > 1 else (160, 200), 128.0)
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8), clean


def _edge_image(noise: float = 0.0) -> np.ndarray:
    """A soft vertical edge 60 -> 190 (Gaussian-blurred step, sigma 1.5), optional noise; colour uint8."""
    step = np.where(np.arange(200) < 100, 60.0, 190.0)[None, :].repeat(160, axis=0)
    soft = cv2.GaussianBlur(step, (0, 0), 1.5, borderType=cv2.BORDER_REPLICATE)
    rng = np.random.default_rng(4)
    img = soft[..., None].repeat(3, axis=2) + rng.normal(0, noise, (160, 200, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _acutance(img: np.ndarray) -> float:
    """Sum of squared steps of the edge's mean profile (columns 90-110, rows and channels averaged,
    so noise averages out), in levels^2: a sharper edge scores higher."""
    profile = img[10:-10, 90:110].astype(np.float64).mean(axis=(0, 2) if img.ndim == 3 else 0)
    return float(np.sum(np.diff(profile) ** 2))


@pytest.mark.parametrize("sigma", [5.0, 10.0])
@pytest.mark.parametrize("luminance", [False, True])
def test_sharpen_auto_threshold_holds_noise_back(sigma, luminance):
    """Flat grey + Gaussian noise: plain sharpen (threshold 0) raises the residual noise by > 1.35x
    (1.86x RGB, 1.41x luma-only: measured), threshold auto by < 10% (measured 1.02-1.03)."""
    img, clean = _noisy_grey(sigma)
    before = np.std(img - clean)
    plain = run_op(img, "sharpen", sigma=1.0, amount=1.0, threshold=0.0, luminance=luminance)
    auto, report = _sharpen_report(img, sigma=1.0, amount=1.0, threshold="auto", luminance=luminance)
    assert np.std(plain - clean) > 1.35 * before
    assert np.std(auto - clean) < 1.10 * before
    assert 0 < report["threshold"] < 1 and report["noise_sigma"] > 0


@pytest.mark.parametrize("sigma", [3.0, 5.0, 10.0])
def test_sharpen_auto_noise_estimate_within_15_percent(sigma):
    """The recorded noise sigma (8-bit levels) is within 15% of the noise added: per channel
    (RGB mode reads the noisiest channel), and for luma-only mode sigma * |Rec. 709 weights|."""
    img, _ = _noisy_grey(sigma, seed=int(sigma))
    _, report = _sharpen_report(img, threshold="auto")
    assert report["noise_sigma"] == pytest.approx(sigma, rel=0.15)
    _, report = _sharpen_report(img, threshold="auto", luminance=True)
    luma_sigma = sigma * float(np.linalg.norm([0.212656, 0.715158, 0.072186]))
    assert report["noise_sigma"] == pytest.approx(luma_sigma, rel=0.15)
    grey, _ = _noisy_grey(sigma, channels=1, seed=int(sigma))
    _, report = _sharpen_report(grey, threshold="auto")
    assert report["noise_sigma"] == pytest.approx(sigma, rel=0.15)


def test_sharpen_auto_threshold_formula():
    """threshold = 2 * 3 * sigma_n * std(in - blur per unit white noise) / 255; the gain is checked
    against a Monte Carlo of the kernel on white noise (within 2%)."""
    kernel = filters.im_blur_kernel(0, 1.0)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(400, 400))
    d = noise - cv2.sepFilter2D(noise, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
    assert filters.noise_difference_gain(kernel) == pytest.approx(d[5:-5, 5:-5].std(), rel=0.02)
    img, _ = _noisy_grey(5.0)
    _, report = _sharpen_report(img, threshold="auto")
    expected = 2 * 3 * report["noise_sigma"] * filters.noise_difference_gain(kernel) / 255
    assert report["threshold"] == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("luminance", [False, True])
def test_sharpen_auto_still_sharpens_edges(luminance):
    """A clean soft edge: threshold auto reads no noise and sharpens as plain sharpen does (+22%
    acutance). The same edge with noise sigma 3: auto still raises the acutance (measured +6% RGB,
    +12% luma; plain +23%: the threshold leaves the edge's tails alone), while the noise of the
    flat sides grows by < 10%."""
    for noise in (0.0, 3.0):
        img = _edge_image(noise)
        out = run_op(img, "sharpen", sigma=1.0, amount=1.0, threshold="auto", luminance=luminance)
        assert _acutance(out) > (1.15 if noise == 0 else 1.04) * _acutance(img), noise
        flat = np.s_[10:-10, 10:60]
        assert np.std(out[flat].astype(float)) <= 1.1 * np.std(img[flat].astype(float)), noise


def test_sharpen_luminance_leaves_colour_noise_alone():
    """Chroma-only noise (luma constant): luminance sharpening changes nothing (within 1 level),
    where RGB sharpening amplifies the chroma noise; a luma edge is still sharpened."""
    rng = np.random.default_rng(5)
    y = 120.0
    chroma = rng.normal(0, 6, (120, 160, 2))
    b, r = y + chroma[..., 0], y + chroma[..., 1]
    g = (y - 0.072186 * b - 0.212656 * r) / 0.715158  # keeps Rec. 709 luma at y
    img = np.clip(np.rint(np.dstack([b, g, r])), 0, 255).astype(np.uint8)
    out = run_op(img, "sharpen", sigma=1.0, amount=1.5, threshold=0.0, luminance=True)
    rgb = run_op(img, "sharpen", sigma=1.0, amount=1.5, threshold=0.0)

    def chroma_noise(a):
        a = a.astype(np.float64)
        return np.std(a[..., 2] - a[..., 1]) + np.std(a[..., 0] - a[..., 1])

    assert np.abs(out.astype(int) - img).max() <= 1
    assert chroma_noise(rgb) > 1.5 * chroma_noise(img)
    edge = _edge_image()
    sharpened = run_op(edge, "sharpen", sigma=1.0, amount=1.0, threshold=0.0, luminance=True)
    assert _acutance(sharpened) > 1.15 * _acutance(edge)


def test_sharpen_luminance_keeps_colour_differences():
    """out_c - in_c is the same for every channel (the luma detail), except where a channel saturates."""
    rng = np.random.default_rng(6)
    base = cv2.GaussianBlur(rng.uniform(40, 200, (80, 100, 3)), (0, 0), 2)
    img = np.rint(base).astype(np.uint8)
    out = run_op(img, "sharpen", sigma=1.0, amount=2.0, threshold=0.0, luminance=True).astype(int)
    added = out - img
    assert np.ptp(added, axis=2).max() <= 1  # rounding only
    assert np.abs(added).max() > 3  # and it did sharpen


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("threshold", [0.0, 0.03])
def test_sharpen_luminance_on_grey_colour_equals_rgb_sharpen(photo8, dtype, threshold):
    """A grey image stored as colour (R = G = B): luminance sharpening gives RGB sharpening's result
    within 1 level (of 8 bits) everywhere but a few pixels sitting on the threshold (< 0.5%)."""
    grey = cv2.cvtColor(photo8, cv2.COLOR_BGR2GRAY)
    img = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    if dtype == np.uint16:
        img = img.astype(np.uint16) * 257
    elif dtype == np.float32:
        img = img.astype(np.float32) / 255
    params = {"sigma": 1.2, "amount": 1.5, "threshold": threshold}
    luma = run_op(img, "sharpen", luminance=True, **params)
    rgb = run_op(img, "sharpen", **params)
    scale = {np.uint8: 1.0, np.uint16: 1 / 257, np.float32: 255.0}[dtype]
    diff = np.abs(luma.astype(np.float64) - rgb.astype(np.float64)) * scale
    assert np.mean(diff > 1.0 + 1e-6) < 0.005
    assert luma.dtype == img.dtype and luma.shape == img.shape
