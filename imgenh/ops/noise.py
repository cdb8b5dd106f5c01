"""How noisy an image is: one robust noise estimate, shared by the operators that hold back for noise.

``sharpen`` (``threshold: auto``), ``gradient_normalize`` (its noise floor) and the quality figure
``noise_sigma`` (``imgenh stats``) all read the noise from :func:`noise_sigma`, so the figure a
user sees is the one the operators act on. Large images are read in row bands, a sample of them
(:func:`row_bands`), so no full-size float copy is made.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING

import cv2
import numpy as np

from imgenh.pixels import LUMA_BGR, max_value

if TYPE_CHECKING:
    from imgenh.ops.contract import OpContext

# Rows per band when a figure walks the image (bounds the float32 working memory).
BAND_PIXELS = 1 << 18
# Colourfulness and noise read at most about this many pixels (whole row bands spread
# evenly over a larger image): their statistics settle long before 12 MP.
SAMPLE_PIXELS = 2_000_000
# What an operator that holds back for noise reads (sharpen, gradient_normalize): ~5-10 ms per
# plane on a 12 MP image; within 2% of the 2 MP figure (astronaut, rocket at 12 MP + sigma 3 or 8).
OPERATOR_SAMPLE_PIXELS = 500_000
# Daubechies-2 decomposition high-pass filter (the band skimage.restoration.estimate_sigma reads).
_S3 = np.sqrt(3.0)
DB2_HIGH = np.array([-(1 - _S3), 3 - _S3, -(3 + _S3), 1 + _S3]) / (4 * np.sqrt(2.0))


def row_bands(img: np.ndarray, overlap: int = 0, budget: int | None = None) -> Iterator[np.ndarray]:
    """Row bands of about :data:`BAND_PIXELS` pixels; consecutive bands share ``overlap`` rows.

    With ``budget``, an image with more pixels yields only an evenly spread subset of its
    bands, about ``budget`` pixels in all (a sample of whole rows, not a resampled image).
    """
    step = max(2, BAND_PIXELS // max(img.shape[1], 1))
    step += step % 2  # even, so every band decimates in the same phase
    rows = step + overlap
    tops = list(range(0, max(img.shape[0] - overlap, 1), step))
    total = img.shape[0] * img.shape[1]
    if budget and total > budget:
        keep = max(1, math.ceil(len(tops) * budget / total))
        tops = [tops[i] for i in np.unique(np.linspace(0, len(tops) - 1, keep).round().astype(int))]
    for top in tops:
        yield img[top : top + rows]


def noise_sigma(plane: np.ndarray, budget: int | None = None, weights: np.ndarray | None = None) -> float:
    """Robust noise estimate in 8-bit levels, from the finest diagonal wavelet band of the flat half.

    Donoho & Johnstone (1994): the diagonal detail (HH) coefficients of the first level of a
    Daubechies-2 decomposition are mostly noise, and their median absolute value / 0.6745
    estimates its sigma (what ``skimage.restoration.estimate_sigma`` computes). Texture and
    edges leak into that band too, so, in the spirit of Tai & Yang (2008), only coefficients
    where the gradient of the Gaussian-smoothed (sigma 1.5) plane is at or below its median
    count. On sample photos (astronaut, rocket) with 2-9 levels of luma noise added, that cut the
    overestimate from up to 55% to under 10%; on a textured photo with grain of its own (coffee)
    it still reads ~0.8 levels with nothing added.

    Parameters
    ----------
    plane : ndarray, shape (H, W) or (H, W, C)
        One plane (luma or a channel), or an image whose channels ``weights`` combine into the
        plane to measure: uint8, uint16 or float32 in [0, 1].
    budget : int, optional
        Past this many pixels only evenly spread row bands of about this many pixels are read
        (default :data:`SAMPLE_PIXELS`).
    weights : ndarray, shape (C,), optional
        Channel weights of a (H, W, C) ``plane`` (e.g. :data:`imgenh.pixels.LUMA_BGR`): the
        weighted sum is formed band by band, unrounded, so 8- and 16-bit copies of one image
        give the same estimate.

    Returns
    -------
    float
        Sigma in 8-bit levels (0..255 scale whatever the depth); 0 for planes under 4x4 pixels.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> noisy = np.clip(np.rint(128 + rng.normal(0, 5, (200, 200))), 0, 255).astype(np.uint8)
    >>> 4.25 < noise_sigma(noisy) < 5.75
    True
    """
    h, w = plane.shape[:2]
    if plane.ndim == 3 and weights is None:
        raise ValueError(f"a (H, W, C) image needs channel weights (got shape {plane.shape})")
    mix = None if plane.ndim == 2 else np.asarray(weights, np.float32).reshape(1, -1)
    if h < 4 or w < 4:
        return 0.0
    scale = np.float32(255.0 / max_value(plane.dtype))
    kernel = DB2_HIGH.astype(np.float32)
    details, gradients = [], []
    for band in row_bands(plane, overlap=3, budget=budget or SAMPLE_PIXELS):
        if band.shape[0] < 4:
            continue
        values = band.astype(np.float32)
        if mix is not None:
            values = cv2.transform(values, mix)
        values *= scale
        # Filtering anchored at the first tap keeps the valid part at the top left; every
        # second coefficient is the decimation of the wavelet transform.
        hh = cv2.sepFilter2D(values, cv2.CV_32F, kernel, kernel, anchor=(0, 0))
        smooth = cv2.GaussianBlur(values, (0, 0), 1.5)
        grad = cv2.magnitude(cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1))
        rows, cols = slice(0, band.shape[0] - 3, 2), slice(0, w - 3, 2)
        details.append(np.abs(hh[rows, cols]).ravel())
        gradients.append(grad[1:, 1:][rows, cols].ravel())
    detail, gradient = np.concatenate(details), np.concatenate(gradients)
    flat = detail[gradient <= np.median(gradient)]
    return float(np.median(flat) / 0.6745)


def luma_noise_sigma(img: np.ndarray, ctx: OpContext | None = None) -> float:
    """The luma noise sigma (8-bit levels) that operators hold back by, read once per image.

    :func:`noise_sigma` of the luma (of the plane itself for grey images) on the operators'
    sample budget; with ``ctx`` it is kept in :meth:`OpContext.measure`, so steps that see the
    same image read it once.
    """

    def read() -> float:
        return noise_sigma(img, OPERATOR_SAMPLE_PIXELS, weights=LUMA_BGR if img.ndim == 3 else None)

    return read() if ctx is None else ctx.measure(("noise_sigma", "luma"), read)


# JPEG codes 8x8 blocks independently, so heavy compression leaves steps on that grid.
JPEG_BLOCK = 8
_BLOCK_WINDOW_ROWS = 8 * JPEG_BLOCK  # rows per sampled window; its top is on the grid


def blockiness(img: np.ndarray, budget: int = OPERATOR_SAMPLE_PIXELS, weights=None) -> float:
    """How much the 8x8 JPEG grid shows: the mean luma step across it over the mean step elsewhere.

    A ratio in the spirit of Wang, Bovik & Evans (2000): 1 when block boundaries are like any
    other place (an uncompressed or lightly compressed photo, ~1.0-1.3), about 2-7 for JPEG
    quality 10-20. The grid is taken from the top-left corner (as JPEG lays it); windows of
    whole blocks spread evenly down a large image are read, about ``budget`` pixels.

    Parameters
    ----------
    img : ndarray, shape (H, W) or (H, W, C)
        uint8, uint16 or float32 in [0, 1].
    budget : int
        Pixels to read at most (whole rows).
    weights : sequence of float, optional
        Channel weights forming the plane from a (H, W, C) image (default Rec. 709 luma in BGR).

    Returns
    -------
    float
        The ratio; 1.0 for images under two blocks a side or with no steps at all.
    """
    h, w = img.shape[:2]
    if h < 2 * JPEG_BLOCK or w < 2 * JPEG_BLOCK:
        return 1.0
    mix = None
    if img.ndim == 3:
        mix = np.asarray(weights if weights is not None else LUMA_BGR, np.float32)
    windows = max(1, min(h // _BLOCK_WINDOW_ROWS, budget // (w * _BLOCK_WINDOW_ROWS)))
    tops = np.unique(np.linspace(0, max(h - _BLOCK_WINDOW_ROWS, 0) // JPEG_BLOCK, windows).astype(int))
    on_grid = off_grid = 0.0
    on_count = off_count = 0
    boundary = (np.arange(w - 1) % JPEG_BLOCK) == JPEG_BLOCK - 1  # between column 8k-1 and 8k
    for top in tops * JPEG_BLOCK:
        band = img[top : top + _BLOCK_WINDOW_ROWS].astype(np.float32)
        plane = cv2.transform(band, mix.reshape(1, -1)) if mix is not None else band
        across = np.abs(np.diff(plane, axis=1))
        down = np.abs(np.diff(plane, axis=0))
        rows_on = (np.arange(down.shape[0]) % JPEG_BLOCK) == JPEG_BLOCK - 1
        on_grid += float(across[:, boundary].sum()) + float(down[rows_on].sum())
        off_grid += float(across[:, ~boundary].sum()) + float(down[~rows_on].sum())
        on_count += across[:, boundary].size + down[rows_on].size
        off_count += across[:, ~boundary].size + down[~rows_on].size
    if off_grid == 0.0:
        return 1.0
    return (on_grid / on_count) / (off_grid / off_count)
