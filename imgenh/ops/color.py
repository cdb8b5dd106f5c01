"""Colour operators: white balance (illuminant estimation and von Kries gains) and saturation.

Images are BGR inside; every colour the user gives or reads in a report (gains, reference
white, illuminant) is in R, G, B order. The kernels below work on BGR arrays and are plain
functions, so they can be used from Python without the pipeline.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from imgenh.boost import BoostedTrees
from imgenh.ops.contract import OpContext, ParamError, ramp, unordered_range
from imgenh.ops.registry import GIVEN, Param, operator
from imgenh.pixels import (
    LUMA_BGR,
    ColourTables,
    apply_table,
    level_counts,
    max_value,
    per_channel,
    strip_rows,
)

# --------------------------------------------------------------------------------------
# sRGB transfer function and CIE colorimetry (IEC 61966-2-1, CIE 15)

# Linear sRGB (R, G, B) -> CIE XYZ, D65; the matrix scikit-image and ImageMagick use.
XYZ_FROM_RGB = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
RGB_FROM_XYZ = np.linalg.inv(XYZ_FROM_RGB)
# The white point is the image of R = G = B = 1, so neutral greys get a = b = 0 exactly
# (the rounded D65 constants 0.95047, 1.08883 differ from it by 1e-4).
WHITE_XYZ = XYZ_FROM_RGB.sum(axis=1)

_EPS = (6.0 / 29.0) ** 3  # CIE Lab: below this t, f(t) is linear
_KAPPA = 1.0 / (3.0 * (6.0 / 29.0) ** 2)


_CV_POW_MIN_SIZE = 1 << 16  # values: below this np.power is as fast and exact


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """Decode sRGB levels in [0, 1] to linear light (IEC 61966-2-1).

    Parameters
    ----------
    v : ndarray
        Encoded levels in [0, 1].

    Returns
    -------
    ndarray
        Linear values, same shape (float64 for non-float input).
    """
    v = np.asarray(v, dtype=np.result_type(v, np.float32))
    if v.dtype != np.float32 or v.size < _CV_POW_MIN_SIZE:
        return np.where(v <= 0.04045, v / 12.92, np.power((np.maximum(v, 0.04045) + 0.055) / 1.055, 2.4))
    # Large float32 frames: the same steps in place, the power by cv2.pow (within 1e-6 relative
    # of np.power, ~6x faster: a 12 MP colour frame decodes in ~0.25 s instead of ~1.6 s).
    out = np.maximum(v, np.float32(0.04045))
    out += np.float32(0.055)
    out /= np.float32(1.055)
    cv2.pow(out, 2.4, dst=out)
    np.divide(v, np.float32(12.92), out=out, where=v <= np.float32(0.04045))  # the linear toe
    return out


def linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB levels (inverse of :func:`srgb_to_linear`), clipping to [0, 1] first.

    Parameters
    ----------
    v : ndarray
        Linear values; float32 stays float32 (other input gives float64).

    Returns
    -------
    ndarray
        Encoded levels in [0, 1], same shape.
    """
    dtype = np.result_type(v, np.float32)
    shape = np.shape(v)
    lin = np.clip(np.asarray(v, dtype=dtype).reshape(-1), 0.0, 1.0)  # 1-D at least, for the in-place steps
    # The curve is 12.92 v up to 0.0031308 and 1.055 v ** (1/2.4) - 0.055 above, where the power
    # branch is the smaller one (its slope at the knee, 12.7, is below 12.92) and below, where the
    # power branch held at the knee is larger: so it is the minimum of the two, with no mask.
    out = np.maximum(lin, dtype.type(0.0031308))
    if dtype == np.float32:
        cv2.pow(out, 1 / 2.4, dst=out)  # faster than np.power on large float32 images
    else:
        np.power(out, 1 / 2.4, out=out)
    out *= dtype.type(1.055)
    out -= dtype.type(0.055)
    lin *= dtype.type(12.92)
    return np.minimum(out, lin, out=out).reshape(shape)


def _bgr_matrix(m: np.ndarray) -> np.ndarray:
    """Reorder a 3x3 matrix acting on (R, G, B) vectors to act on (B, G, R) ones."""
    return m[::-1, ::-1]


def planckian_xy(kelvin: float) -> tuple[float, float]:
    """Chromaticity of a black body (Kim et al. 2002 cubic fit, 1667-25000 K)."""
    t = float(kelvin)
    if t <= 4000:
        x = -0.2661239e9 / t**3 - 0.2343589e6 / t**2 + 0.8776956e3 / t + 0.179910
    else:
        x = -3.0258469e9 / t**3 + 2.1070379e6 / t**2 + 0.2226347e3 / t + 0.240390
    if t <= 2222:
        y = -1.1063814 * x**3 - 1.34811020 * x**2 + 2.18555832 * x - 0.20219683
    elif t <= 4000:
        y = -0.9549476 * x**3 - 1.37418593 * x**2 + 2.09137015 * x - 0.16748867
    else:
        y = 3.0817580 * x**3 - 5.87338670 * x**2 + 3.75112997 * x - 0.37001483
    return x, y


def daylight_xy(kelvin: float) -> tuple[float, float]:
    """Chromaticity of CIE daylight (D-series locus, CIE 15, 4000-25000 K)."""
    t = float(kelvin)
    if t <= 7000:
        x = -4.6070e9 / t**3 + 2.9678e6 / t**2 + 0.09911e3 / t + 0.244063
    else:
        x = -2.0064e9 / t**3 + 1.9018e6 / t**2 + 0.24748e3 / t + 0.237040
    return x, -3.0 * x**2 + 2.87 * x - 0.275


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Linear sRGB colour (R, G, B, max 1) of a light of the given colour temperature.

    Below 4500 K the light is a black body, above 5500 K CIE daylight; in between the two
    chromaticities are blended linearly, the way IES TM-30 blends its reference
    illuminants, so the colour is continuous in ``kelvin``. 6504 K is D65, the sRGB white.
    """
    kelvin = float(np.clip(kelvin, 1667.0, 25000.0))
    px, py = planckian_xy(kelvin)
    if kelvin <= 4500:
        x, y = px, py
    else:
        dx, dy = daylight_xy(kelvin)
        w = min((kelvin - 4500.0) / 1000.0, 1.0)
        x, y = (1 - w) * px + w * dx, (1 - w) * py + w * dy
    xyz = np.array([x / y, 1.0, (1.0 - x - y) / y])
    rgb = np.maximum(RGB_FROM_XYZ @ xyz, 1e-6)
    return rgb / rgb.max()


# --------------------------------------------------------------------------------------
# Illuminant estimation (all on BGR images; vectors returned in B, G, R order)

ESTIMATORS = ("gray_world", "white_patch", "shades_of_gray", "gray_edge")
# Channels of an estimate below this fraction of the largest are raised to it, so gains stay finite.
MIN_ILLUMINANT_RATIO = 0.02


def usable_mask(img: np.ndarray, saturated: float = 0.98, dark: float = 0.02) -> np.ndarray:
    """Pixels usable for estimation: no channel clipped and not near black.

    Parameters
    ----------
    img : ndarray
        BGR image, uint8/uint16 or float32 in [0, 1], as stored (not linearised).
    saturated : float
        A pixel with any channel at or above ``saturated`` (fraction of full scale) is clipped.
    dark : float
        A pixel whose channels are all below ``dark`` is near black.

    Returns
    -------
    ndarray of bool, shape (H, W)
    """
    lo, hi = _level(dark, img.dtype), _level(saturated, img.dtype)
    if img.dtype.kind in "ui":
        # Integer levels: "all channels <= hi - 1" minus "all channels <= lo - 1" (a subset of it),
        # two vectorised cv2.inRange passes instead of a per-pixel maximum.
        zeros = (0.0,) * img.shape[2]
        below_hi = cv2.inRange(img, zeros, (hi - 1.0,) * img.shape[2])
        below_lo = cv2.inRange(img, zeros, (lo - 1.0,) * img.shape[2])
        usable = cv2.subtract(below_hi, below_lo)  # 255 or 0
        # np.minimum, not cv2.bitwise_and(x, 1): OpenCV reads a scalar beside a 1x1 array as an array.
        return np.minimum(usable, 1, out=usable).view(bool)
    brightest = _brightest(img)
    return (brightest >= lo) & (brightest < hi)


def _brightest(img: np.ndarray) -> np.ndarray:
    b, g, r = cv2.split(img)
    return cv2.max(cv2.max(b, g), r)


def _level(fraction: float, dtype: np.dtype) -> float:
    """A threshold in stored levels; for integers "at or above 0.98 * 255" means >= 250."""
    top = max_value(dtype)
    return float(np.ceil(fraction * top - 1e-9)) if np.dtype(dtype).kind in "ui" else fraction


def _level_values(dtype: np.dtype, linear: bool) -> np.ndarray:
    """Working value of every integer level (float64)."""
    x = np.linspace(0.0, 1.0, int(max_value(dtype)) + 1)
    return srgb_to_linear(x) if linear else x


def _working(img: np.ndarray, linear: bool) -> np.ndarray:
    """The image as float32 working values (linear light or as stored)."""
    if img.dtype.kind in "ui":
        return apply_table(img, _level_values(img.dtype, linear), np.float32)
    return srgb_to_linear(img).astype(np.float32) if linear else img.astype(np.float32)


_FEW_PIXELS = 64


def _pixel_stats(img: np.ndarray, mask: np.ndarray, linear: bool, kind: str, value: float) -> np.ndarray:
    """Per-channel mean of ``v ** value`` (kind "norm") or the ``value`` percentile (kind "percentile")."""
    out = np.zeros(3)
    # Few pixels: the direct path (cv2.calcHist also rejects a 1x1 image's mask).
    if img.dtype.kind in "ui" and img.shape[0] * img.shape[1] >= _FEW_PIXELS:
        # Exact statistics from per-channel histograms of the masked pixels: no float image needed.
        levels = _level_values(img.dtype, linear)
        for c in range(3):
            counts = level_counts(img, mask, channel=c)
            total = counts.sum()
            if total == 0:
                return out
            if kind == "norm":
                out[c] = np.dot(counts, levels**value) / total
            else:
                cum = np.cumsum(counts)
                idx = int(np.searchsorted(cum, value / 100.0 * cum[-1], side="left"))
                out[c] = levels[min(idx, levels.size - 1)]
        return out
    pixels = img[mask]  # (n, 3), one pass for all channels
    if pixels.shape[0] == 0:
        return out
    values = pixels.astype(np.float64)
    if img.dtype.kind in "ui":
        values /= max_value(img.dtype)
    if linear:
        values = srgb_to_linear(values)
    for c in range(3):
        if kind == "norm":
            out[c] = np.mean(values[:, c] ** value)
        else:
            out[c] = np.percentile(values[:, c], value, method="inverted_cdf")
    return out


def gray_world(img: np.ndarray, mask: np.ndarray, linear: bool = True) -> np.ndarray:
    """Gray-world illuminant: the mean of each channel over the usable pixels (B, G, R)."""
    return _pixel_stats(img, mask, linear, "norm", 1.0)


def shades_of_gray(img: np.ndarray, mask: np.ndarray, linear: bool = True, p: float = 6.0) -> np.ndarray:
    """Shades-of-gray illuminant (Finlayson & Trezzi 2004): per-channel Minkowski p-norm.

    ``e_c = (mean(v_c ** p)) ** (1 / p)``; p = 1 is gray world, p -> inf is max-RGB.
    """
    return _pixel_stats(img, mask, linear, "norm", p) ** (1.0 / p)


def white_patch(
    img: np.ndarray, mask: np.ndarray, linear: bool = True, percentile: float = 99.0
) -> np.ndarray:
    """Robust max-RGB (white patch) illuminant: the ``percentile`` of each channel.

    The percentile is the smallest value at or below which ``percentile`` % of the usable
    pixels lie (numpy's ``inverted_cdf``).
    """
    return _pixel_stats(img, mask, linear, "percentile", percentile)


def gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sampled Gaussian and its first and second derivatives, radius ceil(3 sigma).

    Normalised so that they are exact on constants, ramps and parabolas respectively:
    ``sum(g) = 1``, ``sum(x * g1) = 1``, ``sum(g2) = 0`` and ``sum(x**2 / 2 * g2) = 1``.
    """
    radius = max(int(np.ceil(3.0 * sigma)), 1)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2))
    g /= g.sum()
    g1 = -x * g
    g1 /= np.sum(x * g1)
    g2 = (x**2 - sigma**2) * g
    g2 -= g2.mean()
    g2 /= np.sum(x**2 / 2.0 * g2)
    # cv2.sepFilter2D correlates; flip so the kernels convolve (sign of odd derivatives).
    return g, g1[::-1].copy(), g2


def edge_magnitude(plane: np.ndarray, order: int = 1, sigma: float = 1.0) -> np.ndarray:
    """Gaussian-derivative magnitude of one float32 channel.

    order 1: ``sqrt(fx**2 + fy**2)``; order 2: the Frobenius norm of the Hessian,
    ``sqrt(fxx**2 + 2 fxy**2 + fyy**2)`` (rotation invariant).
    """
    g, g1, g2 = (k.astype(np.float32) for k in gaussian_derivative_kernels(sigma))
    border = cv2.BORDER_REFLECT
    if order == 1:
        fx = cv2.sepFilter2D(plane, cv2.CV_32F, g1, g, borderType=border)
        fy = cv2.sepFilter2D(plane, cv2.CV_32F, g, g1, borderType=border)
        return cv2.magnitude(fx, fy)
    fxx = cv2.sepFilter2D(plane, cv2.CV_32F, g2, g, borderType=border)
    fyy = cv2.sepFilter2D(plane, cv2.CV_32F, g, g2, borderType=border)
    fxy = cv2.sepFilter2D(plane, cv2.CV_32F, g1, g1, borderType=border)
    return cv2.sqrt(fxx * fxx + fyy * fyy + np.float32(2.0) * fxy * fxy)


def gray_edge(
    img: np.ndarray,
    mask: np.ndarray,
    linear: bool = True,
    order: int = 1,
    sigma: float = 1.0,
    p: float = 6.0,
    saturated: float = 0.98,
) -> np.ndarray:
    """Gray-edge illuminant (van de Weijer, Gevers & Gijsenij 2007).

    ``e_c = (mean(|d^n G_sigma * f_c| ** p)) ** (1 / p)`` over usable pixels: the
    Minkowski p-norm of each channel's Gaussian-derivative magnitude (see
    :func:`edge_magnitude`). Clipped pixels spoil the derivatives around them, so their
    exclusion is widened by the kernel radius ``ceil(3 sigma)``, and a border that wide is
    left out.
    """
    work = _working(img, linear)
    # Clipped pixels spoil the derivatives around them: leave out every pixel whose kernel
    # touches one, and a border as wide (reflected edges are not edges).
    reach = max(int(np.ceil(3.0 * sigma)), 1)
    clipped = (_brightest(img) >= _level(saturated, img.dtype)).astype(np.uint8)
    clipped = cv2.dilate(clipped, np.ones((2 * reach + 1, 2 * reach + 1), np.uint8))
    usable = mask & (clipped == 0)
    usable[:reach, :] = usable[-reach:, :] = False
    usable[:, :reach] = usable[:, -reach:] = False
    out = np.zeros(3)
    if not usable.any():
        return out
    for c in range(3):
        mag = edge_magnitude(np.ascontiguousarray(work[..., c]), order, sigma)[usable].astype(np.float64)
        out[c] = np.mean(mag**p) ** (1.0 / p)
    return out


def estimate_illuminant(
    img: np.ndarray,
    method: str = "gray_world",
    *,
    linear: bool = True,
    saturated: float = 0.98,
    dark: float = 0.02,
    percentile: float = 99.0,
    p: float = 6.0,
    order: int = 1,
    sigma: float = 1.0,
) -> np.ndarray:
    """Estimate the illuminant colour of a BGR image.

    Parameters
    ----------
    img : ndarray
        BGR image, uint8/uint16 or float32 in [0, 1].
    method : {"gray_world", "white_patch", "shades_of_gray", "gray_edge"}
    linear : bool
        Estimate on linear light (sRGB decoded) rather than on stored values.
    saturated, dark : float
        Exclusion thresholds, see :func:`usable_mask`.
    percentile, p, order, sigma : float
        Parameters of the methods that use them.

    Returns
    -------
    ndarray, shape (3,)
        The illuminant in B, G, R order, unnormalised; all zeros when no pixel is usable.
    """
    mask = usable_mask(img, saturated, dark)
    if method == "gray_world":
        return gray_world(img, mask, linear)
    if method == "white_patch":
        return white_patch(img, mask, linear, percentile)
    if method == "shades_of_gray":
        return shades_of_gray(img, mask, linear, p)
    if method == "gray_edge":
        return gray_edge(img, mask, linear, order, sigma, p, saturated)
    raise ValueError(f"unknown estimator {method!r}; expected one of {ESTIMATORS}")


def gains_from_illuminant(illuminant_bgr: np.ndarray) -> np.ndarray:
    """Von Kries gains (B, G, R) that make ``illuminant_bgr`` neutral, with Rec. 709 luma 1.

    Luma of the gains equal to 1 means a neutral grey keeps its (linear) luminance. Channels
    below ``MIN_ILLUMINANT_RATIO`` of the largest are raised to it so the gains stay finite.
    """
    e = np.asarray(illuminant_bgr, dtype=np.float64)
    e = np.maximum(e, MIN_ILLUMINANT_RATIO * e.max())
    gains = 1.0 / e
    return gains / np.dot(LUMA_BGR, gains)


def apply_gains(x: np.ndarray, gains_bgr: np.ndarray, linear: bool = True) -> np.ndarray:
    """Multiply each channel by its gain, in linear light or on stored values.

    ``out = encode(clip(gain * decode(in)))`` when ``linear``, else ``clip(gain * in)``, on
    levels in [0, 1]: a lookup table (shape ``(N,)`` or ``(N, 3)``, the pipeline's fused
    tables) or a BGR float image. Integer images are mapped through one table per channel
    and keep their dtype.
    """
    gains = np.asarray(gains_bgr, dtype=np.float64)
    if x.dtype.kind in "ui":
        return apply_table(x, apply_gains(_level_values(x.dtype, False), gains, linear))
    work = per_channel(x, 3)
    if work.dtype == np.float32:
        gains = gains.astype(np.float32)
    work = np.clip((srgb_to_linear(work) if linear else work) * gains, 0.0, 1.0)
    return linear_to_srgb(work) if linear else work


# --------------------------------------------------------------------------------------
# Learned estimator: image features -> boosted regression trees -> illuminant chromaticity
#
# Features follow Cheng, Price, Cohen & Brown 2015 ("Effective learning-based illuminant
# estimation using simple features", CVPR): the chromaticity of the mean, of the brightest
# pixels, of the dominant colour and of the chromaticity-histogram mode, plus the classic
# estimates and how much they disagree. Chromaticities are log ratios u = log(G/R),
# v = log(G/B). All from a copy at most FEATURE_SIDE pixels a side (an exact integer-factor
# area shrink), in linear light.

FEATURE_SIDE = 128
MODEL_PATH = Path(__file__).resolve().parent / "data" / "white_balance_model.json"
MODEL_FORMAT = "imgenh.white_balance_model"
# 2: features from a whole-factor area shrink (version 1 shrank to exactly FEATURE_SIDE a side).
MODEL_VERSION = 2
_ESTIMATE_NAMES = (
    "gray_world",
    "white_patch",
    "shades_of_gray_2",
    "shades_of_gray_6",
    "gray_edge_1",
    "gray_edge_2",
    "brightest",
    "dominant",
    "chroma_mode",
)
_CLASSIC = ("gray_world", "white_patch", "shades_of_gray_6", "gray_edge_1")
_BASE = "shades_of_gray_6"  # the learned model corrects this estimate
# Directions in the (u, v) plane along which the spread of pixel chromaticities is measured:
# the edges of the scene's gamut say where the light can be (gamut mapping's cue).
_DIRECTIONS = {"u": (1.0, 0.0), "v": (0.0, 1.0), "u+v": (0.7071, 0.7071), "u-v": (0.7071, -0.7071)}
_PERCENTILES = (2, 25, 50, 75, 98)
FEATURE_NAMES = (
    "base_u",
    "base_v",
    "base_along_locus",
    *(f"{name}_d{axis}" for name in _ESTIMATE_NAMES if name != _BASE for axis in "uv"),
    *(f"pixels_{d}_p{q}" for d in _DIRECTIONS for q in _PERCENTILES),
    "classic_spread_u",
    "classic_spread_v",
    "classic_disagreement_deg",
    "pixel_spread_u",
    "pixel_spread_v",
    "usable_fraction",
    "clipped_fraction",
    "log_mean_level",
    "log_pixels",
    "decoded_srgb",
    *(f"hist_{i}_{j}" for i in range(6) for j in range(6)),
)
_TINY = 1e-6


class ModelFileError(ValueError):
    """A white-balance model file that is missing, not JSON, or fails validation (names file and field)."""


def log_chroma(bgr: np.ndarray) -> np.ndarray:
    """(u, v) = (log(G/R), log(G/B)) of B, G, R vectors (last axis); channels floored at 1e-6 of the largest."""
    e = np.asarray(bgr, dtype=np.float64)
    e = np.maximum(e, np.maximum(e.max(axis=-1, keepdims=True) * _TINY, 1e-30))
    return np.stack([np.log(e[..., 1] / e[..., 2]), np.log(e[..., 1] / e[..., 0])], axis=-1)


def from_log_chroma(uv: np.ndarray) -> np.ndarray:
    """B, G, R vector (summing to 1) of a log chromaticity (u, v); inverse of :func:`log_chroma`."""
    u, v = np.asarray(uv, dtype=np.float64)[..., 0], np.asarray(uv, dtype=np.float64)[..., 1]
    bgr = np.stack([np.exp(-v), np.ones_like(u), np.exp(-u)], axis=-1)
    return bgr / bgr.sum(axis=-1, keepdims=True)


def _locus_direction() -> np.ndarray:
    """Unit (u, v) direction of the black-body locus at neutral: from D65 toward a 2850 K light."""
    warm = log_chroma(kelvin_to_rgb(2850.0)[::-1]) - log_chroma(kelvin_to_rgb(6504.0)[::-1])
    return warm / np.linalg.norm(warm)


# The base estimate's position along the locus (warm or cool) is a feature of its own: the shipped
# model's illuminant trees read it but not base_u / base_v, so they cannot learn how far ACROSS the
# locus a light usually lies. Given that, they pulled a green or magenta cast back toward the locus
# (read ~60% of the quality benchmark's green cast, ~100% of its tungsten one).
LOCUS_DIRECTION = _locus_direction()


def _clipped_blocks(img: np.ndarray, k: int, size: tuple[int, int], below: float) -> np.ndarray:
    """Which k x k blocks of ``img`` (the cells of a whole-factor shrink to ``size`` (w, h)) hold a
    value above ``below`` in any channel.

    Exact, where a shrunk uint8 mask rounds one clipped pixel among ~1000 back to "none
    clipped": the maximum down each block row's k rows of the interleaved values, then across
    each block's k columns and channels. Two numpy maxima over views (~2 ms at 12 MP), where a
    full-size mask, its count and a running count along the columns took ~12 ms.
    """
    w, h = size
    rows = np.ascontiguousarray(img).reshape(img.shape[0], -1)  # (H, W * C): no copy of a decoded image
    blocks = rows[: h * k, : w * k * img.shape[2]].reshape(h, k, -1).max(axis=1)
    return blocks.reshape(h, w, -1).max(axis=2) > below


def _shrink_factor(h: int, w: int) -> int:
    """Integer factor k that brings the longer side to at most FEATURE_SIDE (1: no shrink)."""
    return max(-(-max(h, w) // FEATURE_SIDE), 1)


def _feature_copy(img: np.ndarray, linear: bool, saturated: float, dark: float):
    """(linear float32 BGR copy at most FEATURE_SIDE a side, usable mask, clipped mask).

    The copy is an area shrink by an exact integer factor k (each small pixel the mean of a
    k x k block; the image's last rows and columns past a multiple of k, fewer than k, are
    left out): OpenCV's fast path for whole factors, ~9 ms at 12 MP where a shrink to exactly
    FEATURE_SIDE took ~26 ms. A small pixel that averages any clipped pixel is not usable: a
    blown highlight blended into its neighbours would look like a bright, neutral-ish surface.
    """
    h, w = img.shape[:2]
    k = _shrink_factor(h, w)
    small = img
    unclipped = None
    if k > 1:
        size = (w // k, h // k)
        blocks = img[: size[1] * k, : size[0] * k]  # a view: whole blocks only
        small = cv2.resize(blocks, size, interpolation=cv2.INTER_AREA)  # on stored levels: no float copy
        below = _level(saturated, img.dtype) - (1.0 if img.dtype.kind in "ui" else 1e-6)
        touched = _clipped_blocks(img, k, size, below)  # a channel at or above the clip level
        if touched.any():
            unclipped = ~touched
    small = small.reshape(small.shape[0], small.shape[1], 3)
    clipped = _brightest(small) >= _level(saturated, small.dtype)
    usable = usable_mask(small, saturated, dark)
    if unclipped is not None:
        clipped |= ~unclipped
        usable &= unclipped
    return _working(small, linear), usable, clipped


def _mode_mean(pixels: np.ndarray, coords: np.ndarray, bins: int) -> np.ndarray:
    """Mean of the pixels in the most populated cell of a histogram of ``coords`` (values in [0, 1])."""
    cells = np.minimum((coords * bins).astype(np.int64), bins - 1)
    flat = np.ravel_multi_index(tuple(cells.T), (bins,) * coords.shape[1])
    counts = np.bincount(flat)
    return pixels[flat == int(np.argmax(counts))].mean(axis=0)


def _classic_estimates(work: np.ndarray, mask: np.ndarray, saturated: float) -> dict[str, np.ndarray]:
    """Every estimate named in _ESTIMATE_NAMES (B, G, R; zeros where undefined)."""
    px = work[mask].astype(np.float64)
    zero = np.zeros(3)
    if px.shape[0] == 0:
        return dict.fromkeys(_ESTIMATE_NAMES, zero)
    top = max(float(px.max()), _TINY)
    scaled = px / top  # powers of values near 0 underflow less
    brightness = px.sum(axis=1)
    bright = px[brightness >= np.quantile(brightness, 0.965)]
    chroma = px / np.maximum(brightness[:, None], _TINY)
    out = {
        "gray_world": px.mean(axis=0),
        "white_patch": np.quantile(px, 0.99, axis=0, method="inverted_cdf"),
        "shades_of_gray_2": np.sqrt(np.mean(scaled**2, axis=0)) * top,
        "shades_of_gray_6": np.mean(scaled**6, axis=0) ** (1 / 6) * top,
        "brightest": bright.mean(axis=0),
        "dominant": _mode_mean(px, scaled, 8),
        "chroma_mode": _mode_mean(px, chroma[:, 1:], 16),
    }
    for order in (1, 2):
        edge = gray_edge(work, mask, linear=False, order=order, sigma=1.0, p=6.0, saturated=saturated)
        out[f"gray_edge_{order}"] = edge if edge.max() > 0 else zero
    return out


def _chroma_histogram(duv: np.ndarray, bins: int = 6, reach: float = 0.6) -> np.ndarray:
    """Fraction of pixels in each cell of a bins x bins grid of (du, dv) in [-reach, reach] (edges clamp)."""
    cells = np.clip(((duv + reach) / (2 * reach) * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(cells[:, 0] * bins + cells[:, 1], minlength=bins * bins)
    return counts / max(duv.shape[0], 1)


def illuminant_features(
    img: np.ndarray, linear: bool = True, saturated: float = 0.98, dark: float = 0.02
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Features of a BGR image for the learned estimator, and the estimates they come from.

    Parameters
    ----------
    img : ndarray
        BGR image, uint8/uint16 or float32 in [0, 1]; any size from 1x1.
    linear, saturated, dark
        As for :func:`estimate_illuminant`.

    Returns
    -------
    features : ndarray, shape (len(FEATURE_NAMES),)
        Always finite: an estimate that is undefined (no usable pixels, an image too small
        for derivatives) falls back to the gray-world estimate, or to neutral.
    estimates : dict
        Name -> B, G, R estimate (zeros where undefined).
    """
    work, mask, clipped = _feature_copy(img, linear, saturated, dark)
    estimates = _classic_estimates(work, mask, saturated)
    fallback = estimates["gray_world"] if estimates["gray_world"].max() > 0 else np.ones(3)
    uv = {k: log_chroma(e if e.max() > 0 else fallback) for k, e in estimates.items()}
    classic = np.array([uv[k] for k in _CLASSIC])
    units = np.array([from_log_chroma(c) for c in classic])
    units /= np.linalg.norm(units, axis=1, keepdims=True)
    disagreement = np.degrees(np.arccos(np.clip(units @ units.T, -1.0, 1.0))).max()
    px = work[mask].astype(np.float64)
    pixel_uv = log_chroma(np.maximum(px, 1e-3)) if px.shape[0] else uv[_BASE][None, :]
    directions = np.array(list(_DIRECTIONS.values())).T  # (2, 4)
    gamut = np.percentile((pixel_uv - uv[_BASE]) @ directions, _PERCENTILES, axis=0).T.ravel()
    level = float(px.mean()) if px.shape[0] else float(work.mean())
    features = np.concatenate(
        [
            uv[_BASE],
            [uv[_BASE] @ LOCUS_DIRECTION],
            np.concatenate([uv[k] - uv[_BASE] for k in _ESTIMATE_NAMES if k != _BASE]),
            gamut,
            classic.std(axis=0),
            [disagreement],
            np.minimum(pixel_uv.std(axis=0), 3.0),
            [mask.mean(), clipped.mean(), np.log10(max(level, 1e-4)), np.log10(px.shape[0] + 1.0)],
            [float(linear)],
            _chroma_histogram(pixel_uv - uv[_BASE]),
        ]
    )
    return np.clip(features, -90.0, 90.0), estimates


@dataclass(frozen=True)
class WhiteBalanceModel:
    """The learned estimator: trees for the illuminant and for the expected error, and confidence rules.

    Attributes
    ----------
    illuminant : BoostedTrees
        The features named in ``illuminant_inputs`` -> correction (du, dv) added to the
        shades-of-gray p 6 estimate's (u, v).
    error : BoostedTrees
        Features -> log10 of the expected angular error in degrees (trained on out-of-fold
        errors, so it knows when the classic estimates disagree or the scene is one colour).
    confidence : dict
        ``good_deg``, ``bad_deg`` (expected errors mapped to confidence 1 and 0),
        ``min_pixels`` and ``min_pixel_spread`` (below them confidence falls to 0).
    illuminant_inputs : tuple of str
        The features the illuminant trees read (the shipped model: all but base_u and base_v,
        see LOCUS_DIRECTION); the error trees read all.
    """

    illuminant: BoostedTrees
    error: BoostedTrees
    confidence: dict
    illuminant_inputs: tuple[str, ...] = FEATURE_NAMES
    path: str = ""

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(illuminant B, G, R summing to 1, expected error in degrees, confidence 0..1) of one image."""
        x = np.asarray(features, dtype=np.float64)[None, :]
        uv = x[0, :2] + self.illuminant.predict(x[:, self._inputs])[0]  # base_u, base_v: shades of gray p 6
        expected = float(10.0 ** self.error.predict(x)[0])
        return from_log_chroma(uv), expected, self._confidence(expected, x[0])

    @functools.cached_property
    def _inputs(self) -> list[int]:
        return [FEATURE_NAMES.index(name) for name in self.illuminant_inputs]

    def _confidence(self, expected: float, x: np.ndarray) -> float:
        rules = self.confidence
        score = (rules["bad_deg"] - expected) / (rules["bad_deg"] - rules["good_deg"])
        pixels = 10.0 ** x[FEATURE_NAMES.index("log_pixels")] - 1.0
        spread = float(
            np.hypot(x[FEATURE_NAMES.index("pixel_spread_u")], x[FEATURE_NAMES.index("pixel_spread_v")])
        )
        # Too few pixels, or one colour: nothing tells the light from the surface.
        score *= min(pixels / rules["min_pixels"], 1.0) * min(spread / rules["min_pixel_spread"], 1.0)
        return float(np.clip(score, 0.0, 1.0))

    def to_dict(self, training: dict | None = None) -> dict:
        """The model file's content (JSON-safe)."""
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_VERSION,
            "feature_side": FEATURE_SIDE,
            "features": list(FEATURE_NAMES),
            "confidence": dict(self.confidence),
            "illuminant_features": list(self.illuminant_inputs),
            "illuminant": self.illuminant.to_dict(),
            "error": self.error.to_dict(),
            "training": training or {},
        }

    @classmethod
    def from_dict(cls, data: dict, path: str = "") -> WhiteBalanceModel:
        """Validate a model file's content; ModelFileError names ``path`` and the bad field."""

        def fail(field: str, message: str) -> ModelFileError:
            return ModelFileError(f"{path or '<model>'}: {field}: {message}")

        if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
            raise fail("format", f"must be {MODEL_FORMAT!r} (not a white-balance model file)")
        if data.get("version") != MODEL_VERSION:
            raise fail(
                "version", f"must be {MODEL_VERSION} (this imgenh version's features); retrain the model"
            )
        if data.get("feature_side") != FEATURE_SIDE or data.get("features") != list(FEATURE_NAMES):
            raise fail("features", "do not match this imgenh version's features; retrain the model")
        rules = data.get("confidence")
        keys = ("good_deg", "bad_deg", "min_pixels", "min_pixel_spread")
        if not isinstance(rules, dict) or not all(_positive(rules.get(k)) for k in keys):
            raise fail("confidence", f"must map {', '.join(keys)} to positive numbers")
        if not rules["good_deg"] < rules["bad_deg"]:
            raise fail("confidence", "good_deg must be below bad_deg")
        names = data.get("illuminant_features")
        if not (isinstance(names, list) and names and all(n in FEATURE_NAMES for n in names)):
            raise fail("illuminant_features", "must be a list of names from features")
        trees = {}
        for name, outputs, inputs in (
            ("illuminant", 2, len(names)),
            ("error", 1, len(FEATURE_NAMES)),
        ):
            try:
                trees[name] = BoostedTrees.from_dict(data.get(name))
            except ValueError as exc:
                raise fail(name, str(exc)) from None
            if trees[name].n_outputs != outputs or trees[name].n_features != inputs:
                raise fail(name, f"must map {inputs} features to {outputs} outputs")
        rules = {k: float(rules[k]) for k in keys}
        return cls(trees["illuminant"], trees["error"], rules, tuple(names), path)


def _positive(value) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


@functools.lru_cache(maxsize=4)
def load_white_balance_model(path: str | Path = MODEL_PATH) -> WhiteBalanceModel:
    """Read and validate a model file, once per process and path.

    Raises
    ------
    ModelFileError
        Naming the file and the field: missing file, bad JSON, wrong format or shapes.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the white-balance model ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    return WhiteBalanceModel.from_dict(data, str(path))


def estimate_learned(
    img: np.ndarray, *, linear: bool = True, saturated: float = 0.98, dark: float = 0.02, model=None
) -> tuple[np.ndarray, dict]:
    """Illuminant (B, G, R, summing to 1) by the learned model, and what it is sure of.

    Returns
    -------
    illuminant : ndarray, shape (3,)
    info : dict
        ``confidence`` (0..1), ``expected_error`` (degrees), ``disagreement`` (largest
        angle between the classic estimates, degrees), ``average_cast`` (:func:`cast_size`
        of the gray-world estimate, the image's average colour) and ``level`` (mean linear
        level of the usable pixels).
    """
    model = model or load_white_balance_model()
    features, estimates = illuminant_features(img, linear, saturated, dark)
    illuminant, expected, confidence = model.predict(features)
    disagreement = float(features[FEATURE_NAMES.index("classic_disagreement_deg")])
    level = 10.0 ** float(features[FEATURE_NAMES.index("log_mean_level")])
    average = estimates["gray_world"]
    info = {
        "confidence": confidence,
        "expected_error": expected,
        "disagreement": disagreement,
        "average_cast": cast_size(average) if average.max() > 0 else 0.0,
        "level": level,
    }
    return illuminant, info


# strength: auto also leaves the part of a cast that a viewer would not discount either:
# chromatic adaptation is incomplete in dim light and under lights far warmer than
# tungsten (CIECAM02's degree of adaptation falls with luminance; flames and sodium lamps
# still look warm). Mean linear level at or below DIM_LEVEL[0] counts fully dim, at or above
# DIM_LEVEL[1] not at all; log(R/B) of the light (linear working space) at or above
# WARM_LOG_RB[1] (a 2200 K light is 3.6 relative to D65, a 2000 K flame 4.8) counts fully
# warm, at or below WARM_LOG_RB[0] (2850 K tungsten is 2.1) not at all. The stronger of the
# two lowers the strength to ADAPTATION_FLOOR at most.
DIM_LEVEL = (0.01, 0.06)
WARM_LOG_RB = (2.3, 3.5)
ADAPTATION_FLOOR = 0.3


def adaptation(illuminant_bgr: np.ndarray, level: float) -> float:
    """Share of the cast to remove (ADAPTATION_FLOOR..1) for a light and the mean linear level."""
    e = np.maximum(np.asarray(illuminant_bgr, dtype=np.float64), 1e-6)
    warm = (np.log(e[2] / e[0]) - WARM_LOG_RB[0]) / (WARM_LOG_RB[1] - WARM_LOG_RB[0])
    dim = np.log(DIM_LEVEL[1] / max(level, 1e-6)) / np.log(DIM_LEVEL[1] / DIM_LEVEL[0])
    return float(1.0 - (1.0 - ADAPTATION_FLOOR) * np.clip(max(warm, dim), 0.0, 1.0))


# --------------------------------------------------------------------------------------
# The white_balance operator

# What `method: auto` means: the learned estimator, which beat every classic estimator on the
# held-out scenes of benchmarks/white_balance_eval.py (numbers in the docstring below).
AUTO = {"method": "learned"}

_MANUAL = ("gains", "white", "white_at", "kelvin")


def cast_size(illuminant_bgr: np.ndarray) -> float:
    """Distance of a light from neutral: ``hypot(ln(R/G), ln(B/G))`` (0 for a grey light)."""
    b, g, r = np.maximum(np.asarray(illuminant_bgr, dtype=np.float64), 1e-9)
    return float(math.hypot(math.log(r / g), math.log(b / g)))


def _held_back(strength: float, illuminant_bgr: np.ndarray, cast_range, unsure, ctx) -> float:
    """``strength`` scaled by how plausible the cast is as a light (see ``cast_range``), by how
    well the classic estimates agree (``unsure["disagreement"]``: (degrees, [full, none]) or
    None) and by whether the image's average shows the cast (``unsure["average"]``: (cast,
    [none, full]) or None)."""
    held = strength
    if cast_range is not None:
        small, large = cast_range
        size = cast_size(illuminant_bgr)
        rise = 1.0 if small <= 0 else float(np.clip((size - small) / small, 0.0, 1.0))
        fall = float(np.clip((size - large) / (0.4 * large), 0.0, 1.0)) if large > 0 else 1.0
        held *= rise * (1.0 - fall)
        ctx.record("cast", round(size, 4))
    if unsure["disagreement"] is not None:
        degrees, (full, none) = unsure["disagreement"]
        held *= 1.0 - ramp(degrees, full, none)
    if unsure["average"] is not None:
        cast, (none, full) = unsure["average"]
        held *= ramp(cast, none, full)
    ctx.record("strength", round(held, 4))
    return held


def limit_warmth(illuminant_bgr: np.ndarray, limit: float) -> tuple[np.ndarray, float]:
    """The light with its warmth capped at ``limit``, and the warmth it had.

    The warmth is the light's position along the black-body locus in log chromaticity,
    ``(ln G/R, ln G/B) . LOCUS_DIRECTION``: 0 for a neutral (D65) light, 0.5 for 4500 K,
    1.5 for 2850 K tungsten, negative for a bluer light. Only warmth beyond ``limit`` is taken
    off, along the locus; the tint across it (green or magenta) stays as estimated.
    """
    e = np.asarray(illuminant_bgr, dtype=np.float64)
    uv = log_chroma(e)
    warmth = float(uv @ LOCUS_DIRECTION)
    if warmth <= limit:
        return e, warmth
    capped = from_log_chroma(uv - (warmth - limit) * LOCUS_DIRECTION)
    return capped * e.sum(), warmth


def _check_white_balance(p: dict) -> str | None:
    given = [k for k in _MANUAL if p[k] is not None]
    if p["method"] == "manual" and len(given) != 1:
        got = ", ".join(given) if given else "none"
        return f"method manual needs exactly one of gains, white, white_at, kelvin (got {got})"
    if p["method"] != "manual" and given:
        return f"{', '.join(given)} only apply to method manual (method is {p['method']})"
    if p["method"] == "manual" and p["strength"] == "auto":
        return "strength auto needs an estimated light (any method but manual); give a number"
    if p["dark"] >= p["saturated"]:
        return f"dark ({p['dark']:g}) must be below saturated ({p['saturated']:g})"
    return unordered_range(
        p,
        cast_range=("small", "large"),
        disagreement_range=("full", "none"),
        average_range=("none", "full"),
    )


def _window_mean(img: np.ndarray, x: float, y: float, window: int, linear: bool) -> np.ndarray:
    """Mean working value (B, G, R) in a window centred on pixel column x, row y."""
    h, w = img.shape[:2]
    col, row = int(round(x)), int(round(y))
    if not (0 <= col < w and 0 <= row < h):
        raise ParamError("white_at", f"[{x:g}, {y:g}] is outside the {w}x{h} image")
    half = window // 2
    patch = img[max(row - half, 0) : row + half + 1, max(col - half, 0) : col + half + 1]
    return _working(patch, linear).reshape(-1, 3).astype(np.float64).mean(axis=0)


def _manual_illuminant(img: np.ndarray, linear: bool, white, white_at, window: int, kelvin) -> np.ndarray:
    """The light (B, G, R, working space) that method manual's white, white_at or kelvin names."""
    if white is not None:
        illuminant = np.asarray(white[::-1], dtype=np.float64)
        return srgb_to_linear(illuminant) if linear else illuminant
    if white_at is not None:
        return _window_mean(img, white_at[0], white_at[1], window, linear)
    illuminant = kelvin_to_rgb(kelvin)[::-1]
    return illuminant if linear else linear_to_srgb(illuminant)


def _estimated_illuminant(
    img: np.ndarray, ctx, method: str, want_confidence: bool, options: dict
) -> tuple[np.ndarray, float | None, dict | None]:
    """(light B, G, R, strength auto would use or None, the learned estimator's info or None)
    by ``method``; records the confidence."""
    linear, saturated, dark = options.pop("linear"), options.pop("saturated"), options.pop("dark")
    info = None
    if method in ("auto", "learned"):
        if method == "auto":
            ctx.record("estimator", dict(AUTO))
        illuminant, info = estimate_learned(img, linear=linear, saturated=saturated, dark=dark)
    else:
        illuminant = estimate_illuminant(
            img, method, linear=linear, saturated=saturated, dark=dark, **options
        )
        if want_confidence:
            _, info = estimate_learned(img, linear=linear, saturated=saturated, dark=dark)
    if info is not None:
        ctx.record("confidence", round(info["confidence"], 4))
        ctx.record("expected_error", round(info["expected_error"], 3))
        ctx.record("disagreement", round(info["disagreement"], 3))
        ctx.record("average_cast", round(info["average_cast"], 4))
    if not want_confidence:
        return illuminant, None, info
    share = adaptation(illuminant, info["level"])
    ctx.record("adaptation", round(share, 4))
    return illuminant, info["confidence"] * share, info


@operator(
    "white_balance",
    kind="pointwise",
    summary="Remove a colour cast: estimate the illuminant (or take it as given), apply per-channel gains.",
    formula="out_c = gain_c * in_c (linear light), gain_c ~ 1 / illuminant_c, Rec.709 luma(gains) = 1",
    reference="van de Weijer et al. 2007 estimators (gray world, max-RGB, shades of gray, gray edge); "
    "learned: Cheng et al. 2015 features, boosted trees; gains checked against ImageMagick -evaluate multiply",
    example={"method": "auto"},
    check=_check_white_balance,
)
def white_balance(
    x: np.ndarray,
    ctx: OpContext,
    *,
    method: Param(
        str,
        "auto",
        "illuminant estimator, or manual",
        choices=("auto", "learned", "gray_world", "white_patch", "shades_of_gray", "gray_edge", "manual"),
    ),
    percentile: Param(
        float, 99.0, "percentile taken as the white", gt=50, le=100, only_with={"method": ("white_patch",)}
    ),
    p: Param(
        float,
        6.0,
        "Minkowski norm (1 = mean)",
        ge=1,
        le=64,
        only_with={"method": ("shades_of_gray", "gray_edge")},
    ),
    order: Param(int, 1, "derivative order, 1 or 2", ge=1, le=2, only_with={"method": ("gray_edge",)}),
    sigma: Param(
        float,
        1.0,
        "Gaussian scale in pixels; 1 measured best on 8-bit JPEGs (2-3 on 16-bit linear), "
        "see benchmarks/train_white_balance.py --gray-edge",
        gt=0,
        le=20,
        pixels=True,
        only_with={"method": ("gray_edge",)},
    ),
    gains: Param(
        list,
        None,
        "gains [r, g, b], applied as given",
        item=float,
        length=3,
        gt=0,
        le=16,
        only_with={"method": ("manual",)},
    ),
    white: Param(
        list,
        None,
        "colour [r, g, b] (0..1, as stored) that should be neutral",
        item=float,
        length=3,
        gt=0,
        le=1,
        only_with={"method": ("manual",)},
    ),
    white_at: Param(
        list,
        None,
        "pixel [x, y] of something neutral",
        item=float,
        length=2,
        ge=0,
        only_with={"method": ("manual",)},
    ),
    window: Param(
        int,
        5,
        "side of the window averaged at white_at",
        ge=1,
        le=101,
        odd=True,
        pixels=True,
        only_with={"white_at": GIVEN},
    ),
    kelvin: Param(
        float,
        None,
        "colour temperature of the light, in kelvin",
        ge=1667,
        le=25000,
        only_with={"method": ("manual",)},
    ),
    saturated: Param(
        float,
        0.98,
        "pixels with a channel at or above this level are ignored",
        gt=0,
        le=1,
        only_with={"method": ("auto", "learned", "gray_world", "white_patch", "shades_of_gray", "gray_edge")},
    ),
    dark: Param(
        float,
        0.02,
        "pixels with all channels below this level are ignored",
        ge=0,
        lt=1,
        only_with={"method": ("auto", "learned", "gray_world", "white_patch", "shades_of_gray", "gray_edge")},
    ),
    strength: Param(
        float,
        1.0,
        "0 = unchanged, 1 = full correction; auto = the learned estimator's confidence (less when unsure)",
        ge=0,
        le=1,
        words=("auto",),
    ),
    linear: Param(bool, True, "estimate and apply on linear light (sRGB decoded)"),
    cast_range: Param(
        list,
        None,
        "[small, large]: correct only a cast (hypot(ln R/G, ln B/G) of the estimated light) between "
        "them, full from 2*small, none past 1.4*large; smaller is the scene's own balance, larger a scene of one colour",
        item=float,
        length=2,
        ge=0,
        le=5,
        only_with={"method": ("auto", "learned", "gray_world", "white_patch", "shades_of_gray", "gray_edge")},
    ),
    warm_limit: Param(
        float,
        None,
        "the most warmth (position along the black-body locus from D65 in log chromaticity: 4500 K "
        "is 0.5, 2850 K 1.5) removed from the estimated light; a warmer estimate is as often warm "
        "things (a sunset, a sunlit wall) as a warm light. The tint across the locus is removed in full",
        ge=0,
        le=5,
        only_with={"method": ("auto", "learned", "gray_world", "white_patch", "shades_of_gray", "gray_edge")},
    ),
    disagreement_range: Param(
        list,
        None,
        "[full, none] in degrees: full strength while the classic estimates (gray world, white patch, "
        "shades of gray, gray edge) agree within full, none once they differ by none; where they "
        "disagree, the scene's own colours decide the estimate more than the light",
        item=float,
        length=2,
        ge=0,
        le=180,
        only_with={"method": ("auto", "learned")},
    ),
    average_range: Param(
        list,
        None,
        "[none, full]: correct only as far as the image's average colour shows the cast "
        "(hypot(ln R/G, ln B/G) of the gray-world estimate): none at or below none, full from full; "
        "a near-neutral average with a cast read elsewhere is the scene's own light (a warm lamp in a grey room)",
        item=float,
        length=2,
        ge=0,
        le=5,
        only_with={"method": ("auto", "learned")},
    ),
) -> np.ndarray:
    """White balance: estimate the illuminant, then divide it out with per-channel gains.

    Estimators (``method``), each giving the illuminant ``e`` as a per-channel statistic of
    the usable pixels (no channel >= ``saturated``, not all channels < ``dark``, thresholds
    on stored levels):

    - ``gray_world``: ``e_c = mean(v_c)``.
    - ``white_patch``: ``e_c = percentile(v_c, percentile)``, a robust max-RGB.
    - ``shades_of_gray``: ``e_c = mean(v_c ** p) ** (1/p)`` (Finlayson & Trezzi 2004).
    - ``gray_edge``: the same norm of the ``order``-th Gaussian-derivative magnitude at
      scale ``sigma`` (van de Weijer, Gevers & Gijsenij 2007).
    - ``manual``: exactly one of ``gains`` (used as given), ``white`` (a stored colour that
      should be neutral), ``white_at`` (mean of a ``window`` x ``window`` patch around pixel
      column x, row y) or ``kelvin`` (colour of a black body below 4500 K, CIE daylight above
      5500 K, blended between; converted to linear sRGB, so 6504 K is neutral).
    - ``learned``: boosted regression trees (:mod:`imgenh.boost`, model shipped in
      ``imgenh/ops/data/white_balance_model.json``) predict the light's chromaticity from
      features of a copy shrunk by a whole factor to at most 128 pixels a side: the
      gray-world, white-patch, shades-of-gray, gray-edge, brightest-pixel, dominant-colour and
      chromaticity-mode estimates (Cheng et al. 2015's features and more), how much they
      disagree, and the spread of the pixels' chromaticities. Trained on spectrally rendered
      scenes (``python benchmarks/train_white_balance.py``), camera JPEGs among them with
      green or magenta tints off the black-body locus; the trees read where the estimate
      lies along the locus but not across it, so such a tint is read in full. On held-out
      cameras, lights and seeds (``python benchmarks/white_balance_eval.py``) its mean /
      worst-25% angular error is 5.17 / 11.86 deg against 6.75 / 14.94 for shades of gray
      p 6 (README has the table).
    - ``auto``: the best measured estimator, now ``learned`` (it was shades of gray p 12).

    Every estimator uses ``linear`` as given: with ``linear: false`` the stored values are
    taken as linear light (the learned model included).

    Gains are ``1 / e`` scaled so their Rec. 709 luma is 1 (a neutral grey keeps its
    luminance), then blended toward 1 by ``strength``. ``linear`` (default true) estimates
    and applies in linear light: a light's colour multiplies linear values (von Kries), and
    the pixel-statistic estimators measured better there (photos: gray world 22.3 vs 26.7
    deg, shades of gray p 6 13.0 vs 16.3, p 12 9.9 vs 13.6).
    ``strength: auto`` is the learned model's confidence times the share of the cast a viewer
    would discount (:func:`adaptation`): less correction where the estimate is likely wrong
    (one colour filling the frame, too few pixels) and where the cast is part of the scene (a
    dim or night scene, a candle-lit room meant to be warm), since a cast left alone is better
    than one removed wrongly. The confidence maps the model's expected error (a second tree
    model, trained on held-back errors) from the training median (1) to its 95th percentile
    (0), and falls to 0 with fewer than 64 usable pixels or nearly one colour.
    Reports ``method``, ``illuminant`` (R, G, B, summing to 1, in the working space) and
    ``gains`` (R, G, B); with the learned model also ``confidence`` (0..1),
    ``expected_error`` (degrees) and ``disagreement`` (largest angle between the classic
    estimates, degrees), and ``adaptation`` and ``strength`` when strength is auto. Grey images pass unchanged
    (reported as skipped).

    ``cast_range: [small, large]`` holds back where an estimate is more likely the scene than
    the light. The cast is the distance of the estimated light from neutral,
    ``hypot(ln(R/G), ln(B/G))`` in the working space (tungsten over daylight is ~0.55, a
    well-balanced photo's estimate 0.1-0.3). Below ``small`` nothing is corrected, from
    ``2 * small`` the full ``strength``; from ``large`` the correction fades to none at
    ``1.4 * large`` (a red fundus, an orange cat filling the frame). Reports ``cast`` and
    the ``strength`` used.

    ``warm_limit`` caps how much warmth is removed: the estimated light's position along the
    black-body locus (:func:`limit_warmth`; 0.5 is a 4500 K light against D65, 1.5 a 2850 K
    one, reported as ``warmth``) is corrected up to ``warm_limit`` and no further, while its
    tint across the locus is corrected in full. An estimate far along the locus is as often a
    warm scene under daylight (a sunset, a sunlit sandstone wall) as a warm light: removing all
    of it turns such a scene cold, removing up to the limit leaves a real warm light a little
    warm. The reported ``illuminant`` is the estimate; ``gains`` are what was applied.

    ``disagreement_range: [full, none]`` (learned or auto only) holds back where the estimate
    is unsure: the largest angle between the classic estimates (reported as
    ``disagreement``) is small when the pixels' statistics all point at one light, and large
    on a scene whose own colours pull each statistic its own way (a warm interior, a green
    circuit board). The strength falls linearly from ``full`` degrees to none at ``none``.

    ``average_range: [none, full]`` (learned or auto only) corrects a cast only as far as the
    image's average colour shows it: the gray-world estimate's cast (reported as
    ``average_cast``) at or below ``none`` means the frame averages to grey, so a light read
    from its highlights or edges (a warm lamp in a grey room, a yellow-lit wall beside white)
    is the scene's, and removing it would tint the grey; from ``full`` the strength is kept.
    """
    ctx.record("method", method)
    if not ctx.is_color:
        ctx.record("skipped", "grey image: white balance needs colour channels")
        return x.copy()
    confidence = info = None
    if method == "manual" and gains is not None:
        gains_bgr = np.asarray(gains[::-1], dtype=np.float64)
        illuminant = 1.0 / gains_bgr
    else:
        img = ctx.stats.image()  # the pixels as they stand (estimators need more than histograms)
        if method == "manual":
            illuminant = _manual_illuminant(img, linear, white, white_at, window, kelvin)
        else:
            options = {"percentile": percentile, "p": p, "order": order, "sigma": sigma}
            options.update(linear=linear, saturated=saturated, dark=dark)
            illuminant, confidence, info = _estimated_illuminant(
                img, ctx, method, strength == "auto", options
            )
        if not np.max(illuminant) > 0:
            ctx.record("skipped", "no usable pixels (all clipped or near black)")
            illuminant = np.ones(3)
        corrected = illuminant
        if warm_limit is not None:
            corrected, warmth = limit_warmth(illuminant, warm_limit)
            ctx.record("warmth", round(warmth, 4))
        gains_bgr = gains_from_illuminant(corrected)
    if strength == "auto":
        strength = confidence
        ctx.record("strength", round(strength, 4))
    if cast_range is not None or disagreement_range is not None or average_range is not None:
        unsure = {
            "disagreement": None
            if disagreement_range is None
            else (info["disagreement"], disagreement_range),
            "average": None if average_range is None else (info["average_cast"], average_range),
        }
        strength = _held_back(strength, illuminant, cast_range, unsure, ctx)
    gains_bgr = 1.0 + strength * (gains_bgr - 1.0)
    ctx.record("illuminant", (illuminant / illuminant.sum())[::-1])
    ctx.record("gains", gains_bgr[::-1])
    ctx.record("linear", linear)
    return apply_gains(x, gains_bgr, linear)


# --------------------------------------------------------------------------------------
# Saturation in CIE Lab
#
# Scalars given to cv2 element-wise functions are written as 4-tuples: OpenCV 5.1 reads a bare
# Python float as Scalar(v, 0, 0, 0), so only the first channel would see the value.


def _lab_f(t: np.ndarray) -> np.ndarray:
    """CIE Lab companding f(t) on float32: ``t ** (1/3)`` above ``(6/29) ** 3``, linear below.

    Branch-free: the linear piece is the tangent of the cube root at the join, so
    ``f(t) = cbrt(max(t, e)) + KAPPA (min(t, e) - e)`` with ``e = (6/29) ** 3`` (one of the two
    terms is constant on each side). Four passes, no mask, whatever the values.
    """
    out = np.cbrt(cv2.max(t, (_EPS,) * 4))  # numpy's SIMD cube root: ~2x cv2.pow(t, 1/3)
    below = cv2.min(t, (_EPS,) * 4)
    return cv2.addWeighted(below, _KAPPA, out, 1.0, -_KAPPA * _EPS, dst=out)


def _lab_finv(f: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_lab_f` on float32 (may be negative for out-of-gamut colours).

    Branch-free as :func:`_lab_f`: ``max(f, 6/29) ** 3 + (min(f, 6/29) - 6/29) / KAPPA``.
    """
    join = 6.0 / 29.0
    # cv2.pow with the integer exponent 3 is (x * x) * x to the bit, in one pass instead of two
    cube = cv2.pow(cv2.max(f, (join,) * 4), 3.0)
    below = cv2.min(f, (join,) * 4)
    return cv2.addWeighted(below, 1.0 / _KAPPA, cube, 1.0, -join / _KAPPA, dst=cube)


def _chroma_matrices(factor: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 matrices of :func:`scale_chroma`: linear BGR -> (Z/Zn, Y/Yn, X/Xn), the a*b* mix, and back."""
    m_bgr = _bgr_matrix(XYZ_FROM_RGB) / WHITE_XYZ[::-1, None]  # rows: Z/Zn, Y/Yn, X/Xn
    k = float(factor)
    # (fz, fy, fx) -> (fy + k (fz - fy), fy, fy + k (fx - fy)) is linear: one cv2.transform, no split.
    mix = np.array([[k, 1.0 - k, 0.0], [0.0, 1.0, 0.0], [0.0, 1.0 - k, k]])
    return m_bgr.astype(np.float32), mix.astype(np.float32), np.linalg.inv(m_bgr).astype(np.float32)


def scale_chroma(linear_bgr: np.ndarray, factor: float, matrices=None, clip: bool = True) -> np.ndarray:
    """Scale CIE Lab a* and b* of a linear-light BGR float32 image by ``factor``.

    L* is untouched, so only X and Z change: with ``f`` the Lab companding,
    ``X' = Xn finv(fy + k (fx - fy))``, ``Z' = Zn finv(fy + k (fz - fy))`` and ``Y' = Y``.
    Far out of gamut, ``fy + k (fz - fy)`` is clipped at 0 before the inverse, as
    scikit-image's lab2rgb does; the result is linear BGR clipped to [0, 1].
    ``matrices`` (from :func:`_chroma_matrices`) saves recomputing them strip after strip;
    ``clip=False`` leaves the clipping to the caller.
    """
    to_xyz, mix, to_bgr = matrices or _chroma_matrices(factor)
    t = cv2.transform(linear_bgr, to_xyz)
    g = cv2.transform(_lab_f(t), mix)
    cv2.max(g, (0.0, -np.inf, -np.inf, 0.0), dst=g)  # Z only, as scikit-image (per-channel scalar: one pass)
    xyz = _lab_finv(g)
    cv2.mixChannels([t], [xyz], [1, 1])  # Y exactly (not the cube of its cube root); no strided numpy copy
    out = cv2.transform(xyz, to_bgr, dst=t)
    return cv2.min(cv2.max(out, (0.0,) * 4, dst=out), (1.0,) * 4, dst=out) if clip else out


_SRGB_KNEE = 0.0031308  # linear light: the sRGB curve is 12.92 v below, 1.055 v ** (1 / 2.4) - 0.055 above


def _srgb_root(lin: np.ndarray) -> tuple[np.ndarray, bool]:
    """``max(lin, knee) ** (5 / 12)`` on float32 without ``pow``, and whether any value lies below the knee.

    ``exp(5/12 log v)`` with OpenCV's SIMD log and exp: within 2.5e-7 (relative) of the exact
    power over the range, as close as a cube root and two square roots (``c sqrt(sqrt(c))``,
    ``c = cbrt(v)``), in ~0.4 of their time (12 MP: ~16 against ~40 ms), and a fraction of a
    float32 ``pow``'s. ``lin`` is clipped at the knee in place when no value lies below it (then
    it is not needed).
    """
    dark = float(lin.min()) < _SRGB_KNEE
    c = cv2.log(cv2.max(lin, (_SRGB_KNEE,) * 4, dst=lin if not dark else None))
    c *= np.float32(5.0 / 12.0)
    return cv2.exp(c, dst=c), dark


def _encode_srgb_levels(lin: np.ndarray, top: float) -> np.ndarray:
    """``top * linear_to_srgb(lin)`` on float32 (see :func:`_srgb_root`), before clipping; ``lin`` is overwritten.

    Values above 1 come out above ``top`` and values below 0 as 0, so saturating the
    result to the output depth is the same as clipping ``lin`` to [0, 1] first.
    """
    c, dark = _srgb_root(lin)
    channels = 1 if c.ndim == 2 else c.shape[2]
    # 1.055 c - 0.055, times top: one affine cv2.transform
    affine = np.hstack([np.eye(channels) * 1.055 * top, np.full((channels, 1), -0.055 * top)])
    c = cv2.transform(c, affine.astype(np.float32), dst=c)
    if dark:  # the linear segment near black, only where some value needs it
        lin *= np.float32(12.92 * top)
        c = cv2.max(cv2.min(c, lin, dst=c), (0.0,) * 4, dst=c)
    return c


def _encode_srgb_uint8(lin: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """:func:`_encode_srgb_levels` at 255, rounded and saturated into the uint8 ``dst``, in fewer passes.

    The affine step and the rounding are one ``convertScaleAbs`` (the power branch is at
    least 0.04 * 255 there, so its absolute value changes nothing); the linear segment near
    black is rounded on its own and the smaller level kept: rounding is monotone, so the
    minimum of the rounded branches is the rounded minimum. ``lin`` is overwritten.
    """
    c, dark = _srgb_root(lin)
    cv2.convertScaleAbs(c, dst=dst, alpha=1.055 * 255.0, beta=-0.055 * 255.0)
    if dark:
        near_black = cv2.convertScaleAbs(cv2.max(lin, (0.0,) * 4, dst=lin), alpha=12.92 * 255.0)
        cv2.min(dst, near_black, dst=dst)
    return dst


# Saturation's tables of every 8-bit colour, one per process (see imgenh.pixels.ColourTables).
_SATURATION_TABLES = ColourTables()


def saturate(img: np.ndarray, factor: float) -> np.ndarray:
    """Scale CIE Lab chroma of a BGR image of any depth by ``factor`` (see :func:`saturation`).

    Each pixel's result depends on its colour alone: 8-bit colour images of ~8 MP or more go
    through a table of every colour, made once per process and factor
    (:class:`imgenh.pixels.ColourTables`; 12 MP: ~40-55 against ~140-185 ms an image after
    ~210-300 ms for the table). Its entries are :func:`saturate_pixels`' results in the
    table's layout, so within the same 1 LSB of the reference (and of the pixels route).
    """
    return _SATURATION_TABLES.apply(img, float(factor), functools.partial(saturate_pixels, factor=factor))


def saturate_pixels(img: np.ndarray, factor: float) -> np.ndarray:
    """:func:`saturate` computed on the pixels themselves.

    sRGB decode (a table for integer images), :func:`scale_chroma`, sRGB encode and the
    conversion back to the input's depth run strip by strip on float32.
    """
    matrices = _chroma_matrices(factor)
    decode = None
    if img.dtype.kind in "ui":
        levels = np.linspace(0.0, 1.0, int(max_value(img.dtype)) + 1)
        decode = srgb_to_linear(levels).astype(np.float32)  # the linear value of every level
    top = max_value(img.dtype)
    depth = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U}.get(np.dtype(img.dtype))
    out = np.empty_like(img)
    # Strips small enough for their ~20 float temporaries to stay in cache: no full-size float
    # copy of the image exists at any time.
    step = strip_rows(img)
    for y0 in range(0, img.shape[0], step):
        rows = slice(y0, y0 + step)
        if decode is None:
            lin = srgb_to_linear(img[rows]).astype(np.float32, copy=False)
        elif img.dtype == np.uint8:
            lin = cv2.LUT(img[rows], decode)
        else:
            lin = decode[img[rows]]
        new_lin = scale_chroma(lin, factor, matrices, clip=False)
        if depth == cv2.CV_8U:
            _encode_srgb_uint8(new_lin, out[rows])
            continue
        levels = _encode_srgb_levels(new_lin, top)
        if depth is None:
            np.clip(levels, 0.0, 1.0, out=out[rows])
        else:
            cv2.add(levels, (0.0,) * 4, dst=out[rows], dtype=depth)
    return out


@operator(
    "saturation",
    kind="native",
    summary="Scale colourfulness: multiply CIE Lab chroma (a*, b*) by factor, keeping lightness and hue.",
    formula="Lab -> (L, factor * a, factor * b) -> sRGB, clipped",
    reference="skimage.color.rgb2lab / lab2rgb",
    example={"factor": 1.2},
)
def saturation(
    img: np.ndarray,
    ctx: OpContext,
    *,
    factor: Param(float, 1.0, "chroma multiplier: 0 = grey, 1 = unchanged, > 1 more colourful", ge=0, le=5),
) -> np.ndarray:
    """Scale chroma in CIE Lab (D65, sRGB primaries): ``a *= factor``, ``b *= factor``.

    Lab is perceptual enough that this keeps lightness L* and hue angle while changing
    colourfulness, unlike HSV/HSL saturation, which shifts lightness. Colours pushed out of
    the sRGB gamut are clipped per channel in linear light (as scikit-image does).
    ``factor`` 0 gives neutral greys of the same L*. Grey images pass unchanged.
    """
    if not ctx.is_color:
        return img.copy()
    return saturate(img, factor)
