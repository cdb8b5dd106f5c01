"""Neighbourhood filters: median, unsharp-mask sharpening and edge-preserving denoising.

All of them are ``native`` operators: they work on the image at its own depth (uint8,
uint16 or float32 in [0, 1]) and return the same dtype and shape. Borders are replicated
(ImageMagick's default ``edge`` virtual-pixel method and scipy's ``mode="nearest"``).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from imgenh.ops.contract import OpContext, ramp, unordered_range
from imgenh.ops.noise import OPERATOR_SAMPLE_PIXELS, luma_noise_sigma, noise_sigma
from imgenh.ops.registry import Param, operator
from imgenh.pixels import LUMA_BGR, from_float, max_value, to_float

# ---------------------------------------------------------------------------------------------
# median
# ---------------------------------------------------------------------------------------------

# Rough per-pixel costs (ns) used to pick, tile by tile, the cheaper of the two exact methods
# for 16-bit and float medians: one OpenCV 8-bit median pass (O(1) in the size) versus a
# numpy partition (O(size**2)). Only the ratio matters.
_BLUR_NS_PER_PIXEL = 12.0
_PARTITION_NS_PER_ELEMENT = 0.8
_TILE = 128
_PARTITION_CHUNK_ELEMENTS = 4_000_000  # bounds the memory of one partition batch (~8-16 MB)


def _rank_codes(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Replace each value by its rank among the distinct values of the plane.

    The median commutes with any non-decreasing map, so the median of the ranks, mapped
    back through ``values``, is the median of the plane. Ranks are dense, so images with
    few distinct levels (e.g. 8-bit data stored as 16-bit) need a single 8-bit pass.

    Returns
    -------
    codes : ndarray of uint16 or uint32
        Rank of each pixel, same shape as ``plane``.
    values : ndarray
        The distinct values in increasing order (``values[codes] == plane``).
    """
    if plane.dtype == np.uint16:
        present = np.bincount(plane.ravel(), minlength=65536) > 0
        lut = (np.cumsum(present) - 1).astype(np.uint16)
        return lut[plane], np.flatnonzero(present).astype(np.uint16)
    values, inverse = np.unique(plane, return_inverse=True)
    dtype = np.uint16 if values.size <= 65536 else np.uint32
    return inverse.reshape(plane.shape).astype(dtype), values


def _partition_median(padded: np.ndarray, size: int, out: np.ndarray) -> None:
    """Exact median of every ``size`` x ``size`` window of ``padded`` into ``out`` (row batches)."""
    rows = max(1, _PARTITION_CHUNK_ELEMENTS // max(1, out.shape[1] * size * size))
    mid = size * size // 2
    for y0 in range(0, out.shape[0], rows):
        y1 = min(y0 + rows, out.shape[0])
        windows = sliding_window_view(padded[y0 : y1 + size - 1], (size, size))
        flat = windows.reshape(y1 - y0, out.shape[1], size * size)
        out[y0:y1] = np.partition(flat, mid, axis=-1)[..., mid]


def _median_codes(codes: np.ndarray, nbits: int, size: int) -> np.ndarray:
    """Exact ``size`` x ``size`` median (replicated border) of integer codes below ``2**nbits``.

    The median commutes with non-decreasing maps, so for a constant ``c`` the 8-bit image
    ``clip((codes >> s) - c, 0, 255)`` has median ``clip((median >> s) - c, 0, 255)``: one
    OpenCV 8-bit median pass resolves the next 8 bits of every pixel whose median lies in
    that band. The top byte comes from one pass over the whole image; the lower bytes are
    resolved tile by tile, one pass per distinct higher prefix in the tile. Where a tile
    would need more passes than a direct numpy partition costs, the partition is used.
    """
    r = size // 2
    height, width = codes.shape
    shift = max(nbits - 8, 0)
    prefix = cv2.medianBlur((codes >> shift).astype(np.uint8), size)
    if shift == 0:
        return prefix.astype(codes.dtype)
    padded = np.pad(codes, r, mode="edge")
    levels = []
    s = shift
    while s > 0:
        levels.append((s, max(s - 8, 0)))
        s = max(s - 8, 0)
    out = np.empty(codes.shape, codes.dtype)
    partition_cost = _PARTITION_NS_PER_ELEMENT * size * size * (2 if codes.dtype == np.uint32 else 1)
    tile = max(_TILE, 2 * size)  # keeps the window margin from dominating large sizes
    for y0 in range(0, height, tile):
        y1 = min(y0 + tile, height)
        for x0 in range(0, width, tile):
            x1 = min(x0 + tile, width)
            region = padded[y0 : y1 + 2 * r, x0 : x1 + 2 * r]
            tile_prefix = prefix[y0:y1, x0:x1].astype(np.int64)
            margin = (y1 - y0 + 2 * r) * (x1 - x0 + 2 * r) / ((y1 - y0) * (x1 - x0))
            done = False
            for i, (old, new) in enumerate(levels):
                distinct = np.unique(tile_prefix)
                # Later levels have at least as many distinct prefixes as this one.
                blur_cost = _BLUR_NS_PER_PIXEL * margin * distinct.size * (len(levels) - i)
                if blur_cost > partition_cost:
                    _partition_median(region, size, out[y0:y1, x0:x1])
                    done = True
                    break
                shifted = region.astype(np.int64) >> new
                step = old - new
                refined = np.empty_like(tile_prefix)
                for p in distinct:
                    base = int(p) << step
                    mask = tile_prefix == p
                    # Only the bounding box of this prefix's pixels (plus the window margin) is needed.
                    rows = np.flatnonzero(mask.any(axis=1))
                    cols = np.flatnonzero(mask.any(axis=0))
                    ty0, ty1, tx0, tx1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                    band = np.clip(shifted[ty0 : ty1 + 2 * r, tx0 : tx1 + 2 * r] - base, 0, 255).astype(
                        np.uint8
                    )
                    blurred = cv2.medianBlur(band, size)[r : r + ty1 - ty0, r : r + tx1 - tx0]
                    sub = mask[ty0:ty1, tx0:tx1]
                    refined[ty0:ty1, tx0:tx1][sub] = blurred[sub].astype(np.int64) + base
                tile_prefix = refined
            if not done:
                out[y0:y1, x0:x1] = tile_prefix
    return out


def median_filter(img: np.ndarray, size: int) -> np.ndarray:
    """Median of each ``size`` x ``size`` neighbourhood, per channel, border replicated.

    Bit-identical to ``cv2.medianBlur`` where OpenCV supports the depth/size, to
    ``scipy.ndimage.median_filter(img, size=(size, size[, 1]), mode="nearest")`` and to
    ImageMagick ``-median size``.

    Parameters
    ----------
    img : ndarray
        (H, W) or (H, W, C) image, uint8, uint16 or float32.
    size : int
        Odd window side, >= 1.

    Returns
    -------
    ndarray
        Same shape and dtype as ``img``.
    """
    if size % 2 != 1:
        raise ValueError(f"size must be odd (got {size})")
    if size == 1:
        return img.copy()
    channels = 1 if img.ndim == 2 else img.shape[2]
    if (img.dtype == np.uint8 or size <= 5) and channels in (1, 3, 4):
        # OpenCV handles these natively (its 7+ sizes are uint8 only).
        return cv2.medianBlur(img, size)
    if img.ndim == 2:
        return _median_plane(img, size)
    out = np.empty_like(img)
    for c in range(channels):
        out[..., c] = _median_plane(np.ascontiguousarray(img[..., c]), size)
    return out


def _median_plane(plane: np.ndarray, size: int) -> np.ndarray:
    if plane.dtype == np.uint8 or size <= 5:
        return cv2.medianBlur(plane, size)
    codes, values = _rank_codes(plane)
    nbits = max(8, int(values.size - 1).bit_length())
    return values[_median_codes(codes, nbits, size)]


@operator(
    "median",
    kind="native",
    summary="Median filter: removes salt-and-pepper noise, keeps edges.",
    formula="out(p) = median of the size x size window around p (per channel, border replicated)",
    reference='scipy.ndimage.median_filter(mode="nearest"), cv2.medianBlur, ImageMagick -median',
    example={"size": 5},
)
def median(
    img: np.ndarray,
    ctx: OpContext,
    *,
    size: Param(int, 3, "window side in pixels", ge=1, le=255, odd=True, pixels=True),
):
    """Median filter operator; see :func:`median_filter`."""
    return median_filter(img, size)


# ---------------------------------------------------------------------------------------------
# sharpen (unsharp mask)
# ---------------------------------------------------------------------------------------------

# ImageMagick Q16's QuantumScale: auto kernel widths stop where the edge tap drops below it.
_IM_QUANTUM_SCALE = 1.0 / 65535.0
_IM_EPSILON = 1.0e-12
_SUPERSAMPLE = 3


def im_kernel_width(radius: float, sigma: float) -> int:
    """Width of ImageMagick's 1-D blur kernel for ``radius`` x ``sigma``.

    A radius of 1 or more gives ``2 * floor(radius) + 1`` taps. Below 1, ImageMagick 6.9
    (``GetOptimalKernelWidth1D``) uses ``2 * ceil(radius) + 1`` for a positive radius and,
    for radius 0, the widest odd width whose normalised edge tap is still at least 1/65535.
    """
    if radius >= 1.0:
        return 2 * int(radius) + 1
    if radius > _IM_EPSILON:
        return 2 * math.ceil(radius) + 1
    if sigma <= _IM_EPSILON:
        return 3
    alpha = 1.0 / (2.0 * sigma * sigma)
    width = 5
    while True:
        half = (width - 1) // 2
        taps = np.exp(-(np.arange(-half, half + 1, dtype=np.float64) ** 2) * alpha)
        if taps[-1] / taps.sum() < _IM_QUANTUM_SCALE:
            return width - 2
        width += 2


def im_blur_kernel(radius: float, sigma: float) -> np.ndarray:
    """ImageMagick's normalised 1-D Gaussian blur kernel (``-blur`` / ``-unsharp``).

    Each tap integrates the Gaussian numerically: the curve is sampled at 3 points per tap
    (on a grid ``3 * width`` wide) and each group of 3 samples is summed into its tap, then
    the taps are normalised to sum 1. For tiny sigmas this is closer to the true
    integral than sampling the curve at tap centres, and it is what ImageMagick computes.

    Parameters
    ----------
    radius : float
        Kernel half-width in pixels; 0 picks it from ``sigma`` (see :func:`im_kernel_width`).
    sigma : float
        Gaussian standard deviation in pixels; 0 gives the identity kernel.

    Returns
    -------
    ndarray
        float64 taps, odd length, summing to 1.
    """
    width = im_kernel_width(radius, sigma)
    kernel = np.zeros(width)
    if sigma <= _IM_EPSILON:
        kernel[width // 2] = 1.0
        return kernel
    half = (width * _SUPERSAMPLE - 1) // 2
    u = np.arange(-half, half + 1)
    s = sigma * _SUPERSAMPLE
    np.add.at(kernel, (u + half) // _SUPERSAMPLE, np.exp(-(u.astype(np.float64) ** 2) / (2.0 * s * s)))
    return kernel / kernel.sum()


def unsharp_mask(img: np.ndarray, radius: float, sigma: float, amount: float, threshold: float) -> np.ndarray:
    """ImageMagick ``-unsharp radius x sigma + amount + threshold`` on an image of any depth.

    ``blur`` is the image convolved (border replicated) with :func:`im_blur_kernel` along
    rows and columns (for integer images each pass is rounded to 16-bit levels, as in
    ImageMagick Q16). Where ``2 * |in - blur| >= threshold`` (levels normalised to [0, 1];
    the factor 2 is ImageMagick's), ``out = in + amount * (in - blur)``; elsewhere
    ``out = in``. The result is rounded and saturated to the input depth.

    Parameters
    ----------
    img : ndarray
        uint8, uint16 or float32 image, grey or colour.
    radius, sigma : float
        Blur kernel (see :func:`im_blur_kernel`).
    amount : float
        Gain applied to the difference.
    threshold : float
        Fraction of full scale below which (after doubling) differences are left alone.

    Returns
    -------
    ndarray
        Same shape and dtype as ``img``.
    """
    kernel = im_blur_kernel(radius, sigma).astype(np.float32)
    if img.dtype == np.uint8:
        return _unsharp_u8(img, kernel, amount, threshold)
    one = np.ones(1, np.float32)
    border = cv2.BORDER_REPLICATE
    if img.dtype == np.float32:
        x, scale = img, 1.0
        blur = cv2.sepFilter2D(x, cv2.CV_32F, kernel, kernel, borderType=border)
    else:
        # Integer images work on ImageMagick Q16's scale (0..65535) and, like it, round each
        # blur pass to 16-bit levels. This only matters where 2|d| sits right at the
        # threshold, but there it flips the decision.
        scale = 65535.0
        if img.dtype == np.uint8:
            x = cv2.LUT(img, np.arange(256, dtype=np.float32) * np.float32(257.0))
        else:
            x = img.astype(np.float32)
        blur = cv2.sepFilter2D(x, cv2.CV_32F, kernel, one, borderType=border)
        np.rint(blur, out=blur)
        blur = cv2.sepFilter2D(blur, cv2.CV_32F, one, kernel, borderType=border)
        np.rint(blur, out=blur)
    # Pixels whose doubled difference is below the threshold keep their value.
    # (numpy, not cv2.compare: OpenCV reads a scalar against a 1x1 image as a 4x1 array.)
    keep = (cv2.absdiff(x, blur) < np.float32(threshold * scale / 2.0)).view(np.uint8)
    # out = in + amount * (in - blur), straight to the output depth (rounded, saturated).
    top = max_value(img.dtype)
    depth = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U}.get(img.dtype, cv2.CV_32F)
    out = cv2.addWeighted(x, (1.0 + amount) * top / scale, blur, -amount * top / scale, 0.0, dtype=depth)
    if img.dtype == np.float32:
        np.clip(out, 0.0, 1.0, out=out)
    return cv2.copyTo(img, keep, out)


# Rows per strip of the 8-bit unsharp mask: a strip's float blur (~3 MB at 4000 x 3) stays in cache.
_STRIP_ROWS = 64
# Largest gap, in 16-bit levels, between the unrounded blur and ImageMagick's twice-rounded one
# (0.5 per pass, the kernel summing to 1) plus float32 round-off: decisions closer than this to
# the threshold are re-made exactly.
_Q16_MARGIN = 1.1


def _unsharp_u8(img: np.ndarray, kernel: np.ndarray, amount: float, threshold: float) -> np.ndarray:
    """:func:`unsharp_mask` on uint8, in strips, without 16-bit or full-size float copies.

    The blur is computed straight from the 8-bit pixels as float32 and left unrounded, which
    only moves the result by rounding. The threshold test needs ImageMagick's blur rounded to
    16-bit levels after each pass; it differs from the unrounded one by under
    ``_Q16_MARGIN`` levels, so only the values that close to the threshold are re-tested
    with the exact blur (:func:`_q16_blur_at`).
    """
    height = img.shape[0]
    r = kernel.size // 2
    out = np.empty_like(img)
    limit = threshold * 65535.0 / 2.0 / 257.0  # ImageMagick's test, in 8-bit levels
    margin = _Q16_MARGIN / 257.0
    # Amount 1 with no threshold: 2 * in is a whole level, so round(2 in - blur) is
    # 2 in - round(blur) (up to exact ties): the blur may be rounded to 8 bits, which moves
    # a quarter of the bytes of a float blur (~13% faster in all).
    depth = cv2.CV_8U if amount == 1.0 and threshold <= 0.0 else cv2.CV_32F
    for y0 in range(0, height, _STRIP_ROWS):
        y1 = min(height, y0 + _STRIP_ROWS)
        a0, a1 = max(0, y0 - r), min(height, y1 + r)  # rows the strip's blur reads
        blur = cv2.sepFilter2D(img[a0:a1], depth, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
        blur = blur[y0 - a0 : y1 - a0]
        src, dst = img[y0:y1], out[y0:y1]
        cv2.addWeighted(src, 1.0 + amount, blur, -amount, 0.0, dst=dst, dtype=cv2.CV_8U)
        if threshold <= 0.0:
            continue
        # One plane per strip (channels side by side), so the masks are per value.
        flat_src, flat_dst = src.reshape(y1 - y0, -1), dst.reshape(y1 - y0, -1)
        diff = cv2.subtract(flat_src, blur.reshape(y1 - y0, -1), dtype=cv2.CV_32F)
        np.abs(diff, out=diff)
        # numpy, not cv2.compare: OpenCV reads a scalar against a 1x1 plane as a 4x1 array.
        keep = (diff < np.float32(limit)).view(np.uint8)
        if diff.size > 1:  # one pass instead of three (see above for 1x1)
            near = cv2.inRange(diff, float(np.float32(limit) - np.float32(margin)), float(limit + margin))
        else:
            near = (np.abs(diff - np.float32(limit)) <= np.float32(margin)).view(np.uint8)
        points = cv2.findNonZero(near)  # x, y pairs; far faster than np.nonzero
        if points is not None:
            xs, ys = points.reshape(-1, 2).T
            exact = _q16_blur_at(img, ys + y0, xs, kernel)
            values = flat_src[ys, xs].astype(np.float64) * 257.0
            keep[ys, xs] = np.abs(values - exact) < threshold * 65535.0 / 2.0
        cv2.copyTo(flat_src, keep, flat_dst)
    return out


def _q16_blur_at(img: np.ndarray, ys: np.ndarray, flat_xs: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """ImageMagick Q16's blur of a uint8 image at a few values: each pass rounded to 16-bit levels.

    ``flat_xs`` index the row with its channels side by side (``x * C + c``). Border replicated.
    """
    height, width = img.shape[:2]
    channels = img.size // (height * width)
    xs, cs = np.divmod(flat_xs.astype(np.int64), channels)
    offsets = np.arange(kernel.size) - kernel.size // 2
    rows = np.clip(ys[:, None] + offsets, 0, height - 1) * (width * channels)
    cols = np.clip(xs[:, None] + offsets, 0, width - 1) * channels + cs[:, None]
    # One flat gather (take) of every window: much cheaper than three-array fancy indexing.
    window = img.reshape(-1).take(rows[:, :, None] + cols[:, None, :]).astype(np.float32)
    taps = kernel.astype(np.float32) * np.float32(257.0)
    across = np.rint(window @ taps)  # the horizontal pass first, as in unsharp_mask
    return np.rint(across.astype(np.float64) @ kernel.astype(np.float64))


# threshold: auto leaves alone differences up to this many standard deviations of what noise
# alone gives: a Gaussian's 3-sigma tail is 0.27% of pixels, so the noise barely grows.
AUTO_THRESHOLD_SIGMAS = 3.0


def noise_difference_gain(kernel: np.ndarray) -> float:
    """Standard deviation of ``in - blur`` per unit of white noise, for a separable ``kernel``.

    ``d = (delta - K) * n`` with ``K = k k^T``: its variance is ``sum((delta - K)^2)``
    times the noise variance, ``= 1 - 2 K_centre + (sum k^2)^2``.
    """
    k = np.asarray(kernel, np.float64)
    centre = k[k.size // 2] ** 2
    return float(np.sqrt(1.0 - 2.0 * centre + np.dot(k, k) ** 2))


def auto_threshold(img: np.ndarray, radius: float, sigma: float, luminance: bool) -> tuple[float, float]:
    """The ``threshold: auto`` of :func:`unsharp_mask`, from a robust noise estimate of the image.

    The noise sigma (:func:`imgenh.ops.noise.noise_sigma`, 8-bit levels) is read from the
    plane that is sharpened: the luma for ``luminance`` or grey images, else the noisiest
    colour channel. Noise alone makes ``in - blur`` vary with standard deviation
    ``sigma_n * g`` (:func:`noise_difference_gain`); the threshold leaves alone differences up
    to :data:`AUTO_THRESHOLD_SIGMAS` of those: ``threshold = 2 * 3 * sigma_n * g / 255`` (the
    2 is ImageMagick's doubling of the difference).

    Returns
    -------
    (threshold, noise_sigma) : tuple of float
        The threshold as a fraction of full scale (capped at 1) and the noise sigma in 8-bit levels.
    """
    if img.ndim == 2:
        sigma_n = noise_sigma(img, OPERATOR_SAMPLE_PIXELS)
    elif luminance:
        sigma_n = noise_sigma(img, OPERATOR_SAMPLE_PIXELS, weights=LUMA_BGR)
    else:
        sigma_n = max(noise_sigma(img[..., c], OPERATOR_SAMPLE_PIXELS) for c in range(img.shape[2]))
    gain = noise_difference_gain(im_blur_kernel(radius, sigma))
    return min(1.0, 2.0 * AUTO_THRESHOLD_SIGMAS * sigma_n * gain / 255.0), sigma_n


def unsharp_luma(img: np.ndarray, radius: float, sigma: float, amount: float, threshold: float) -> np.ndarray:
    """Unsharp mask of the luma only: every channel gets the same detail, so colours do not shift.

    ``Y`` is the Rec. 709 luma (:data:`imgenh.pixels.LUMA_BGR`, unrounded) and ``dY = Y -
    blur(Y)`` with :func:`im_blur_kernel` (border replicated); ``out_c = in_c + amount * dY``
    where ``2 |dY| >= threshold`` (fraction of full scale, as in :func:`unsharp_mask`), else
    ``in_c``; rounded and saturated to the input depth. Chroma differences (``R - G`` ...) are
    kept except where a channel saturates, so colour noise is never sharpened. Grey images go to
    :func:`unsharp_mask`, which on a grey image gives the same result (within rounding).
    Works in strips of rows: no full-size float copy.
    """
    if img.ndim == 2:
        return unsharp_mask(img, radius, sigma, amount, threshold)
    kernel = im_blur_kernel(radius, sigma).astype(np.float32)
    weights = LUMA_BGR.reshape(1, 3).astype(np.float32)
    r = kernel.size // 2
    height, top = img.shape[0], max_value(img.dtype)
    limit = np.float32(threshold * top / 2.0)
    depth = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U}.get(img.dtype, cv2.CV_32F)
    out = np.empty_like(img)
    for y0 in range(0, height, _STRIP_ROWS):
        y1 = min(height, y0 + _STRIP_ROWS)
        a0, a1 = max(0, y0 - r), min(height, y1 + r)  # rows the strip's blur reads
        lum = cv2.transform(img[a0:a1].astype(np.float32), weights)
        detail = lum - cv2.sepFilter2D(lum, cv2.CV_32F, kernel, kernel, borderType=cv2.BORDER_REPLICATE)
        detail = detail[y0 - a0 : y1 - a0]
        if threshold > 0.0:
            # keep = 1 where |dY| >= limit (threshold's test is strict: nudge the limit one ulp down)
            _, keep = cv2.threshold(
                np.abs(detail), float(np.nextafter(limit, np.float32(0))), 1.0, cv2.THRESH_BINARY
            )
            cv2.multiply(detail, keep, dst=detail, scale=float(amount))
        else:
            detail *= np.float32(amount)
        cv2.add(img[y0:y1], cv2.merge((detail,) * img.shape[2]), dst=out[y0:y1], dtype=depth)
    if img.dtype == np.float32:
        np.clip(out, 0.0, 1.0, out=out)
    return out


@operator(
    "sharpen",
    kind="native",
    summary="Unsharp mask: adds back amount x (image - Gaussian blur) where the difference passes threshold; "
    "threshold auto holds back noise, luminance sharpens luma only.",
    formula="d = in - gauss(radius, sigma)(in); out = in + amount * d where 2|d| >= threshold, else in; "
    "auto: threshold = 2 * 3 * sigma_noise * std(d per unit noise) / 255; "
    "luminance: d from luma, added to every channel",
    reference="ImageMagick -unsharp {radius}x{sigma}+{amount}+{threshold}; "
    "noise sigma: Donoho & Johnstone 1994 wavelet MAD (skimage estimate_sigma)",
    example={"radius": 0, "sigma": 1.5, "amount": 0.8, "threshold": "auto", "luminance": True},
    check=lambda p: "radius or sigma must be > 0" if p["radius"] == 0 and p["sigma"] == 0 else None,
)
def sharpen(
    img: np.ndarray,
    ctx: OpContext,
    *,
    radius: Param(
        float,
        0.0,
        "kernel half-width in pixels; 0 = automatic from sigma (as ImageMagick)",
        ge=0,
        le=100,
        pixels=True,
    ),
    sigma: Param(float, 1.0, "Gaussian standard deviation in pixels", ge=0, le=50, pixels=True),
    amount: Param(float, 1.0, "gain on the difference (1 = ImageMagick's default)", ge=0, le=20),
    threshold: Param(
        float,
        0.05,
        "pixels where 2 * |in - blur| is below this fraction of full scale stay unchanged; "
        "auto = 3 noise sigmas of the difference, from the image's estimated noise",
        ge=0,
        le=1,
        words=("auto",),
    ),
    luminance: Param(
        bool, False, "sharpen the luma only and add its detail to every channel (colour noise left alone)"
    ),
):
    """Unsharp-mask operator; see :func:`unsharp_mask`, :func:`unsharp_luma` and :func:`auto_threshold`.

    With ``threshold: auto`` the chosen ``threshold`` and the estimated ``noise_sigma`` (8-bit
    levels) are recorded for the run report.
    """
    if threshold == "auto":
        threshold, sigma_n = auto_threshold(img, radius, sigma, luminance)
        ctx.record("threshold", round(threshold, 6))
        ctx.record("noise_sigma", round(sigma_n, 3))
    if luminance:
        return unsharp_luma(img, radius, sigma, amount, threshold)
    return unsharp_mask(img, radius, sigma, amount, threshold)


# ---------------------------------------------------------------------------------------------
# denoise
# ---------------------------------------------------------------------------------------------


def bilateral(img: np.ndarray, diameter: int, sigma_color: float, sigma_space: float) -> np.ndarray:
    """``cv2.bilateralFilter`` at any depth, with ``sigma_color`` as a fraction of full scale.

    uint8 and float32 go to OpenCV as they are (``sigmaColor = sigma_color * 255`` resp.
    ``sigma_color``); uint16, which OpenCV does not take, is filtered as float32 in [0, 1]
    and rounded back. Border: replicate.
    """
    if img.dtype == np.uint8:
        return cv2.bilateralFilter(
            img, diameter, sigma_color * 255.0, sigma_space, borderType=cv2.BORDER_REPLICATE
        )
    out = cv2.bilateralFilter(
        to_float(img), diameter, sigma_color, sigma_space, borderType=cv2.BORDER_REPLICATE
    )
    return from_float(out, img.dtype)


# OpenCV's fastNlMeansDenoising (NORM_L2, 8-bit) compares patches by their mean squared difference
# summed over channels, D = sum_patch,channels (a - b)^2 / template^2, and weights a candidate by
# w = exp(-D / (h^2 * channels)), set to 0 below 0.001; the estimate is sum(w * value) / sum(w).
# It reads D from a lookup table indexed by floor(sum / 2^k), 2^k the power of two >= template^2.
# Its only 16-bit mode is NORM_L1, w = exp(-(mean |a - b|)^2 / (h^2 * channels)), which falls
# off differently (mean|d|^2 <= mean d^2), so the same h smooths 16-bit images differently. For
# 16-bit and float images the L2 weights are therefore evaluated here, on planes in 8-bit units.
_NLM_WEIGHT_FLOOR = 0.001
_NLM_TILE_ROWS = 128  # tiles keep the per-offset buffers small (~1-2 MB) whatever the image size
_NLM_TILE_COLS = 2048


def _nl_means_tile(
    padded: list[np.ndarray],
    out: list[np.ndarray],
    rows: tuple[int, int],
    cols: tuple[int, int],
    h: float,
    template: int,
    search: int,
) -> None:
    """Non-local means of one output tile, written into ``out``; see :func:`nl_means_l2`."""
    (y0, y1), (x0, x1) = rows, cols
    t2, s2 = template // 2, search // 2
    border = t2 + s2
    step = float(1 << math.ceil(math.log2(template * template)))
    coef = -(step / (template * template)) / (h * h * len(padded))
    acc = [np.zeros((y1 - y0, x1 - x0), np.float32) for _ in padded]
    wsum = np.zeros((y1 - y0, x1 - x0), np.float32)
    shape = (y1 - y0 + s2 + 2 * t2, x1 - x0 + 2 * s2 + 2 * t2)
    diff, sq, box = (np.empty(shape, np.float32) for _ in range(3))
    # The distance is symmetric: w(p, p + o) = w(q, q - o) with q = p + o. So each offset o of one
    # half of the search window gives the weights of both o (at p) and -o (at p - o): the patch
    # distances are computed once over the tile grown by o.
    for dy in range(s2 + 1):
        for dx in range(-s2 if dy else 0, s2 + 1):
            # centres q whose weight is needed: the tile (for +o) and the tile moved by -o (for -o)
            qy0, qx0, qx1 = y0 - dy, x0 - max(dx, 0), x1 - min(dx, 0)
            # the patches around them, in padded coordinates
            py0, py1, px0, px1 = qy0 - t2 + border, y1 + t2 + border, qx0 - t2 + border, qx1 + t2 + border
            d, s, b = (a[: py1 - py0, : px1 - px0] for a in (diff, sq, box))
            for c, plane in enumerate(padded):
                d = cv2.subtract(
                    plane[py0 + dy : py1 + dy, px0 + dx : px1 + dx], plane[py0:py1, px0:px1], dst=d
                )
                # squares / 2^k (exact: a power of two), so the patch sums below are OpenCV's table index
                sq2 = cv2.multiply(d, d, dst=s if c else b, scale=1.0 / step)
                if c:
                    b = cv2.add(b, sq2, dst=b)
            s = cv2.boxFilter(b, -1, (template, template), dst=s, normalize=False)
            w = s[t2 : s.shape[0] - t2, t2 : s.shape[1] - t2]  # patch sums for centres q (valid part)
            np.floor(w, out=w)
            np.multiply(w, np.float32(coef), out=w)  # numpy: cv2 takes a scalar as an array on 1x1 tiles
            w = cv2.exp(w, dst=w)
            _, w = cv2.threshold(w, _NLM_WEIGHT_FLOOR, 0, cv2.THRESH_TOZERO, dst=w)
            pairs = [(w[dy:, x0 - qx0 : x1 - qx0], dy, dx)]
            if dy or dx:
                pairs.append((w[: y1 - y0, x0 - dx - qx0 : x1 - dx - qx0], -dy, -dx))
            for wt, oy, ox in pairs:
                cv2.accumulate(wt, wsum)
                for c, plane in enumerate(padded):
                    src = plane[y0 + border + oy : y1 + border + oy, x0 + border + ox : x1 + border + ox]
                    cv2.accumulateProduct(wt, src, acc[c])
    for c, plane_out in enumerate(out):
        np.divide(acc[c], wsum, out=plane_out[y0:y1, x0:x1])


def nl_means_l2(planes: list[np.ndarray], h: float, template: int, search: int) -> list[np.ndarray]:
    """Non-local means with OpenCV's 8-bit ``NORM_L2`` weights, on float planes of any precision.

    Parameters
    ----------
    planes : list of ndarray
        Float32 (H, W) planes filtered jointly (patch distances summed over them), in 8-bit units
        (0..255, fractions allowed) so that ``h`` and OpenCV's distance table mean the same as in
        ``cv2.fastNlMeansDenoising`` on 8-bit data.
    h : float
        Filter strength in the same units.
    template, search : int
        Odd patch and search-window sides.

    Returns
    -------
    list of ndarray
        The filtered float32 planes, unrounded. Borders are reflected (``BORDER_REFLECT_101``)
        as OpenCV does. On 8-bit data this equals OpenCV's result before its final rounding,
        up to its integer weights (rounded, it differs from OpenCV on < 0.1 % of pixels by 1).
    """
    rows, cols = planes[0].shape
    border = template // 2 + search // 2
    padded = [cv2.copyMakeBorder(p, border, border, border, border, cv2.BORDER_REFLECT_101) for p in planes]
    out = [np.empty((rows, cols), np.float32) for _ in planes]
    tiles = [
        ((y, min(rows, y + _NLM_TILE_ROWS)), (x, min(cols, x + _NLM_TILE_COLS)))
        for y in range(0, rows, _NLM_TILE_ROWS)
        for x in range(0, cols, _NLM_TILE_COLS)
    ]

    def run(tile):
        _nl_means_tile(padded, out, *tile, h, template, search)

    # OpenCV releases the GIL, so tiles run in parallel; honour cv2.setNumThreads (the runner's
    # single-thread mode sets 1).
    workers = min(len(tiles), max(1, cv2.getNumThreads()))
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, tiles))
    else:
        for tile in tiles:
            run(tile)
    return out


def nl_means(img: np.ndarray, h: float, h_color: float, template: int, search: int) -> np.ndarray:
    """Non-local means (OpenCV ``fastNlMeansDenoising*``) at any depth.

    ``h`` and ``h_color`` are fractions of full scale.

    - uint8 grey: ``fastNlMeansDenoising(h * 255)``; uint8 colour:
      ``fastNlMeansDenoisingColored(h * 255, h_color * 255)``, which converts BGR to CIE Lab
      (``COLOR_LBGR2Lab``, L scaled to 0..255) and filters L with ``h`` and a*b* jointly with
      ``h_color``.
    - uint16 and float32: the same filter with the same weights (:func:`nl_means_l2`, 8-bit
      units, so ``h`` means the same) on the unrounded values; colour goes through float Lab
      with the same scaling. On 8-bit data scaled by 257 the result is the 8-bit one within
      rounding (grey) and within the 8-bit Lab quantisation (colour), with 16-bit precision.
    """
    if img.dtype == np.uint8:
        if img.ndim == 2:
            return cv2.fastNlMeansDenoising(img, None, h * 255.0, template, search)
        return cv2.fastNlMeansDenoisingColored(img, None, h * 255.0, h_color * 255.0, template, search)
    if img.ndim == 2:
        # uint16 / 257 is exact for 8-bit data scaled by 257, so OpenCV's table index is too
        plane = img / np.float32(257.0) if img.dtype == np.uint16 else img * np.float32(255.0)
        (out,) = nl_means_l2([plane.astype(np.float32, copy=False)], h * 255.0, template, search)
        return from_float(out * np.float32(1.0 / 255.0), img.dtype)
    lab = list(cv2.split(cv2.cvtColor(to_float(img), cv2.COLOR_LBGR2Lab)))  # L 0..100, a*b* about +-127
    (lum,) = nl_means_l2([lab[0] * np.float32(2.55)], h * 255.0, template, search)
    lab[0] = lum * np.float32(1.0 / 2.55)
    lab[1:] = nl_means_l2(lab[1:], h_color * 255.0, template, search)
    return from_float(cv2.cvtColor(cv2.merge(lab), cv2.COLOR_Lab2LBGR), img.dtype)


def _noise_range_check(p: dict) -> str | None:
    return unordered_range(p, noise_range=("none", "full"))


@operator(
    "denoise",
    kind="native",
    summary="Edge-preserving noise reduction: bilateral filter or non-local means (OpenCV).",
    formula="bilateral: weights exp(-|dp|^2/2 sigma_space^2 - |dv|^2/2 sigma_color^2); "
    "nlmeans: sum(w v) / sum(w), w = exp(-mean patch |a-b|^2 / (h^2 channels)) (OpenCV NORM_L2 at every depth)",
    reference="cv2.bilateralFilter, cv2.fastNlMeansDenoising / fastNlMeansDenoisingColored",
    example={"method": "nlmeans", "h": 0.03},
    check=_noise_range_check,
)
def denoise(
    img: np.ndarray,
    ctx: OpContext,
    *,
    method: Param(str, "bilateral", "algorithm", choices=("bilateral", "nlmeans")),
    diameter: Param(
        int,
        9,
        "neighbourhood diameter in pixels",
        ge=1,
        le=51,
        pixels=True,
        only_with={"method": ("bilateral",)},
    ),
    sigma_color: Param(
        float, 0.1, "range sigma, fraction of full scale", gt=0, le=1, only_with={"method": ("bilateral",)}
    ),
    sigma_space: Param(
        float, 3.0, "spatial sigma in pixels", gt=0, le=100, pixels=True, only_with={"method": ("bilateral",)}
    ),
    h: Param(
        float, 0.03, "filter strength, fraction of full scale", gt=0, le=1, only_with={"method": ("nlmeans",)}
    ),
    h_color: Param(
        float,
        None,
        "strength for colour components (default: h)",
        gt=0,
        le=1,
        only_with={"method": ("nlmeans",)},
    ),
    template: Param(
        int, 7, "patch side in pixels", ge=1, le=21, odd=True, pixels=True, only_with={"method": ("nlmeans",)}
    ),
    search: Param(
        int,
        21,
        "search window side in pixels",
        ge=3,
        le=51,
        odd=True,
        pixels=True,
        only_with={"method": ("nlmeans",)},
    ),
    noise_range: Param(
        list,
        None,
        "[none, full] luma noise sigma in 8-bit levels: denoise only as far as the image is noisy (a "
        "robust estimate, imgenh stats' noise_sigma): none at or below none, all from full, blended "
        "between; clean photos read 0-2.5, a sigma-10 noisy one 5.5-8.5",
        item=float,
        length=2,
        ge=0,
        le=255,
    ),
):
    """Denoise operator; see :func:`bilateral` and :func:`nl_means`.

    With ``noise_range`` the share of the filtered image is :func:`imgenh.ops.contract.ramp` of
    the luma noise sigma (:func:`imgenh.ops.noise.luma_noise_sigma`, reported as ``noise_sigma`` with
    the ``strength`` applied); an image it leaves alone comes back as it is (the same array).
    """
    strength = 1.0
    if noise_range is not None:
        sigma = luma_noise_sigma(img, ctx)
        strength = ramp(sigma, *noise_range)
        ctx.record("noise_sigma", round(sigma, 3))
        ctx.record("strength", round(strength, 4))
        if strength == 0.0:
            return img
    if method == "bilateral":
        out = bilateral(img, diameter, sigma_color, sigma_space)
    else:
        out = nl_means(img, h, h if h_color is None else h_color, template, search)
    if strength < 1.0:  # a blend of the two at the image's own depth
        out = cv2.addWeighted(img, 1.0 - strength, out, strength, 0.0)
    return out
