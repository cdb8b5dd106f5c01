"""Per-image quality figures: the numbers people use to judge an enhancement.

Every figure is a pure function of the pixels: (H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA
(alpha ignored); uint8, uint16 or float32 in [0, 1]. Luma is Rec. 709 (:data:`LUMA_BGR`).
Histogram figures are exact over all pixels; ``colourfulness`` and ``noise_sigma`` visit the
image in row bands, so no full-size float copy is made (past 2 MP they read a sample of about
2 MP: every k-th row, or evenly spread bands); ``sharpness`` is measured at a fixed
reference size. :data:`FIGURES` names and defines each one (used by ``imgenh stats --help``,
the README and the HTML report).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from imgenh.ops.noise import SAMPLE_PIXELS, noise_sigma, row_bands
from imgenh.pixels import LUMA_BGR, from_float, level_counts, max_value

FIGURES: tuple[tuple[str, str], ...] = (
    ("brightness", "mean Rec. 709 luma, 0 (black) to 1 (white)"),
    ("contrast", "RMS contrast: standard deviation of luma, 0 to 0.5"),
    ("entropy", "Shannon entropy of the 256-bin luma histogram, bits (0 to 8)"),
    ("clipped_shadows", "% of pixels whose luma rounds to 0 of 255"),
    ("clipped_highlights", "% of pixels whose luma rounds to 255 of 255"),
    ("cast_degrees", "angle between the gray-world illuminant (mean linear RGB) and neutral grey, degrees"),
    (
        "colourfulness",
        "Hasler & Suesstrunk 2003 M on 0..255 values (15 slightly, 33 moderately, 59 quite, 82 highly colourful)",
    ),
    (
        "sharpness",
        "variance of the Laplacian of luma (0..255, Gaussian sigma 1 first) resized to a 512x512-pixel area",
    ),
    (
        "noise_sigma",
        "noise sigma in 8-bit levels: MAD / 0.6745 of the finest diagonal db2 wavelet band, flat half of the image",
    ),
)
FIGURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FIGURES)

# The reference area for sharpness: the image is resized to this many pixels (aspect kept).
SHARPNESS_AREA = 512 * 512
SHARPNESS_SIGMA = 1.0  # Gaussian before the Laplacian, in reference pixels


def colour_planes(pixels: np.ndarray) -> np.ndarray:
    """The image without alpha, as uint8 or uint16 (float32 becomes uint16).

    Parameters
    ----------
    pixels : ndarray
        (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); uint8, uint16 or float32 in [0, 1].

    Returns
    -------
    ndarray
        (H, W) grey or (H, W, 3) BGR, uint8 or uint16 (a view when nothing needs changing).
    """
    if pixels.ndim == 3 and pixels.shape[2] in (1, 2):
        pixels = pixels[..., 0]
    elif pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    if pixels.ndim not in (2, 3) or pixels.size == 0:
        raise ValueError(f"expected a non-empty (H, W) or (H, W, 3|4) image, got shape {pixels.shape}")
    if pixels.dtype == np.float32:
        return from_float(pixels, np.uint16)
    if pixels.ndim == 3 and not pixels.flags.c_contiguous:
        pixels = np.ascontiguousarray(pixels)
    if pixels.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"unsupported pixel type {pixels.dtype}; expected uint8, uint16 or float32")
    return pixels


def luma_levels(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma at the image's own depth (rounded), from :func:`colour_planes` output."""
    if img.ndim == 2:
        return img
    return cv2.transform(np.ascontiguousarray(img), LUMA_BGR.reshape(1, 3).astype(np.float32))


def histogram256(plane: np.ndarray) -> np.ndarray:
    """Counts of an integer plane's levels rounded to 8 bits (level k of 65535 -> round(k / 257)).

    Returns
    -------
    ndarray of int64, shape (256,)
    """
    counts = level_counts(plane)
    if counts.size == 256:
        return counts
    # Each 16-bit level lands on its nearest 8-bit level: 65535 * j / 255 = 257 j.
    bins = np.floor(np.arange(65536) / 257.0 + 0.5).astype(np.intp)
    return np.bincount(bins, weights=counts, minlength=256).astype(np.int64)


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy in bits of a histogram (empty bins contribute nothing)."""
    p = counts[counts > 0] / counts.sum()
    return float(max(0.0, -np.sum(p * np.log2(p))))


def brightness_contrast(luma: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of an integer luma plane, both as fractions of full scale."""
    mean, std = cv2.meanStdDev(luma)
    top = max_value(luma.dtype)
    return float(mean[0, 0]) / top, float(std[0, 0]) / top


def cast_degrees(img: np.ndarray) -> float:
    """Angle between the gray-world illuminant and neutral grey, in degrees, in linear light.

    The illuminant is the mean linear (sRGB-decoded) R, G, B over all pixels, counted from
    per-channel level histograms, so it is exact. Grey or black images give 0.
    """
    img = colour_planes(img)
    if img.ndim == 2:
        return 0.0
    from imgenh.ops.color import srgb_to_linear

    top = int(max_value(img.dtype))
    linear = srgb_to_linear(np.arange(top + 1) / top)
    mean = np.array([np.dot(level_counts(img, channel=c), linear) for c in range(3)])
    norm = np.linalg.norm(mean)
    if not norm > 0:
        return 0.0
    cosine = np.clip(mean.sum() / (norm * np.sqrt(3.0)), -1.0, 1.0)
    return float(np.degrees(np.arccos(cosine)))


def colourfulness(img: np.ndarray) -> float:
    """Hasler & Suesstrunk (2003) colourfulness M on 0..255 values.

    ``rg = R - G``, ``yb = (R + G) / 2 - B``; ``M = sqrt(sd_rg^2 + sd_yb^2) + 0.3 sqrt(mean_rg^2
    + mean_yb^2)``, population standard deviations over all pixels (past :data:`SAMPLE_PIXELS`,
    over every k-th row). Grey images give 0.
    """
    img = colour_planes(img)
    if img.ndim == 2:
        return 0.0
    scale = np.float32(255.0 / max_value(img.dtype))
    sums = np.zeros(4)  # sum rg, sum yb, sum rg^2, sum yb^2
    n = 0
    # Over the budget, every k-th row: a fine, even sample of the scene.
    rows = img[:: math.ceil(img.shape[0] * img.shape[1] / SAMPLE_PIXELS)]
    for band in row_bands(rows):
        n += band.shape[0] * band.shape[1]
        b, g, r = (band[..., c].astype(np.float32) * scale for c in range(3))
        rg = r - g
        yb = np.float32(0.5) * (r + g) - b
        rg, yb = rg.ravel(), yb.ravel()
        sums += (rg.sum(dtype=np.float64), yb.sum(dtype=np.float64), np.dot(rg, rg), np.dot(yb, yb))
    mean_rg, mean_yb = sums[0] / n, sums[1] / n
    var = max(sums[2] / n - mean_rg**2, 0.0) + max(sums[3] / n - mean_yb**2, 0.0)
    return float(np.sqrt(var) + 0.3 * np.hypot(mean_rg, mean_yb))


def sharpness(luma: np.ndarray) -> float:
    """Variance of the Laplacian of luma (0..255 scale) at the reference size :data:`SHARPNESS_AREA`.

    The luma plane is resized (area averaging to shrink, bilinear to enlarge) to the reference
    area, keeping its aspect, then smoothed with a Gaussian of sigma 1 pixel before the
    4-neighbour Laplacian (a Laplacian of Gaussian): the finest band of a resized image depends
    on how it was resampled, so leaving it out makes the same scene at 2000 and 1000 pixels
    wide score within ~10% (plain Laplacian: ~25%).
    """
    h, w = luma.shape
    scale = np.sqrt(SHARPNESS_AREA / (h * w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    to_255 = np.float32(255.0 / max_value(luma.dtype))
    if scale < 1:
        # Shrinking at the plane's own depth skips a full-size float copy; 8-bit rounding of
        # the small plane moved the figure by under 0.3% on a 12 MP photo blurred to sigma 20.
        plane = cv2.resize(luma, size, interpolation=cv2.INTER_AREA).astype(np.float32) * to_255
    else:
        plane = cv2.resize(luma.astype(np.float32) * to_255, size, interpolation=cv2.INTER_LINEAR)
    plane = cv2.GaussianBlur(plane, (0, 0), SHARPNESS_SIGMA, borderType=cv2.BORDER_REFLECT)
    lap = cv2.Laplacian(plane, cv2.CV_32F, ksize=1, borderType=cv2.BORDER_REFLECT)
    return float(cv2.meanStdDev(lap)[1][0, 0] ** 2)


def figures(pixels: np.ndarray) -> dict[str, float]:
    """Every figure of :data:`FIGURES` for one image.

    Parameters
    ----------
    pixels : ndarray
        (H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA (alpha ignored); uint8, uint16 or
        float32 in [0, 1].

    Returns
    -------
    dict
        ``{name: value}`` in :data:`FIGURES` order, plain floats rounded to 6 significant digits.

    Examples
    --------
    >>> import numpy as np
    >>> f = figures(np.full((8, 8, 3), 128, np.uint8))
    >>> round(f["brightness"], 3), f["cast_degrees"], f["colourfulness"]
    (0.502, 0.0, 0.0)
    """
    img = colour_planes(pixels)
    luma = luma_levels(img)
    counts = histogram256(luma)
    total = counts.sum()
    mean, rms = brightness_contrast(luma)
    values = {
        "brightness": mean,
        "contrast": rms,
        "entropy": entropy_bits(counts),
        "clipped_shadows": 100.0 * counts[0] / total,
        "clipped_highlights": 100.0 * counts[255] / total,
        "cast_degrees": cast_degrees(img),
        "colourfulness": colourfulness(img),
        "sharpness": sharpness(luma),
        "noise_sigma": noise_sigma(luma),
    }
    return {name: float(f"{values[name]:.6g}") for name in FIGURE_NAMES}


def deltas(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """``after - before`` for every figure both dicts hold (rounded to 6 significant digits)."""
    return {k: float(f"{after[k] - before[k]:.6g}") for k in FIGURE_NAMES if k in before and k in after}
