"""Colour difference of images: sRGB (D65) -> CIE Lab -> CIEDE2000, in numpy.

The error measure of ``imgenh fit``: how far an output is from the after image a person
made, in units where about 1 is a just-noticeable difference. The formula follows Sharma,
Wu and Dalal, "The CIEDE2000 color-difference formula: implementation notes, supplementary
test data, and mathematical observations", Color Res. Appl. 30(1), 2005, whose 34 test
pairs the tests check, with scikit-image's ``deltaE_ciede2000`` on images.

float32 arrays are computed in float32 (no float64 full-size image); float64 in float64.
"""

from __future__ import annotations

import numpy as np

from imgenh.ops.color import WHITE_XYZ, XYZ_FROM_RGB, srgb_to_linear
from imgenh.pixels import to_float

_EPS = (6.0 / 29.0) ** 3
_KAPPA = 1.0 / (3.0 * (6.0 / 29.0) ** 2)
_25_POW_7 = 25.0**7


def _lab_companding(t: np.ndarray) -> np.ndarray:
    return np.where(
        t > _EPS, np.cbrt(np.maximum(t, _EPS)), t * t.dtype.type(_KAPPA) + t.dtype.type(4.0 / 29.0)
    )


def lab_from_bgr(img: np.ndarray) -> np.ndarray:
    """CIE Lab (D65, 2 degree observer) of an sRGB image.

    Parameters
    ----------
    img : ndarray
        (H, W, 3) BGR or (H, W) grey (read as R = G = B); uint8, uint16, float32 in [0, 1]
        or float64 in [0, 1] (computed in float64). Any array whose last axis is 3 and
        has 3 or more dimensions is BGR, e.g. ``(P, 1, 3)`` rows of pixels.

    Returns
    -------
    ndarray
        Same leading shape with a last axis of 3 (L*, a*, b*); float32 unless the input was
        float64.
    """
    x = img if img.dtype == np.float64 else to_float(img)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    lin = srgb_to_linear(np.clip(x, 0.0, 1.0))
    # Rows of the matrix scaled by the white point: X/Xn, Y/Yn, Z/Zn from B, G, R.
    m = (XYZ_FROM_RGB / WHITE_XYZ[:, None])[:, ::-1].astype(lin.dtype)
    f = _lab_companding(lin @ m.T)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return np.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1).astype(lin.dtype)


def _hue_degrees(b: np.ndarray, a: np.ndarray) -> np.ndarray:
    h = np.degrees(np.arctan2(b, a))
    return np.where(h < 0, h + 360.0, h)


def delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (kL = kC = kH = 1) between Lab colours.

    Parameters
    ----------
    lab1, lab2 : ndarray
        Shape ``(..., 3)``: L*, a*, b*.

    Returns
    -------
    ndarray
        Shape ``(...)``, the difference for each pair; the dtype of the inputs.
    """
    lab1, lab2 = np.asarray(lab1), np.asarray(lab2)
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_mean7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c_mean7 / (c_mean7 + _25_POW_7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p, h2p = _hue_degrees(b1, a1p), _hue_degrees(b2, a2p)
    chroma_product = c1p * c2p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(chroma_product == 0, 0.0, dh)
    d_big_h = 2 * np.sqrt(chroma_product) * np.sin(np.radians(dh / 2))
    # Mean hue: halfway round the shorter arc; the sum when either colour is neutral.
    h_sum = h1p + h2p
    h_mean = np.where(
        np.abs(h1p - h2p) <= 180, h_sum / 2, np.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)
    )
    h_mean = np.where(chroma_product == 0, h_sum, h_mean)
    return _weighted_distance(L1, L2, c1p, c2p, d_big_h, h_mean)


def _weighted_distance(L1, L2, c1p, c2p, d_big_h, h_mean) -> np.ndarray:
    """The last part of CIEDE2000: weighting functions and the rotation term."""
    rad = np.radians
    t = (
        1
        - 0.17 * np.cos(rad(h_mean - 30))
        + 0.24 * np.cos(rad(2 * h_mean))
        + 0.32 * np.cos(rad(3 * h_mean + 6))
        - 0.20 * np.cos(rad(4 * h_mean - 63))
    )
    l_mean50 = ((L1 + L2) / 2 - 50) ** 2
    s_l = 1 + 0.015 * l_mean50 / np.sqrt(20 + l_mean50)
    c_mean = (c1p + c2p) / 2
    s_c = 1 + 0.045 * c_mean
    s_h = 1 + 0.015 * c_mean * t
    c_mean7 = c_mean**7
    r_t = (
        -2
        * np.sqrt(c_mean7 / (c_mean7 + _25_POW_7))
        * np.sin(rad(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
    )
    dl, dc, dh = (L2 - L1) / s_l, (c2p - c1p) / s_c, d_big_h / s_h
    return np.sqrt(np.maximum(dl * dl + dc * dc + dh * dh + r_t * dc * dh, 0.0))


def image_delta_e(img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
    """Per-pixel CIEDE2000 between two sRGB images of the same size (any depths, see :func:`lab_from_bgr`)."""
    if img1.shape[:2] != img2.shape[:2]:
        raise ValueError(f"images differ in size: {img1.shape[:2]} and {img2.shape[:2]}")
    return delta_e_2000(lab_from_bgr(img1), lab_from_bgr(img2))


def mean_delta_e(img1: np.ndarray, img2: np.ndarray) -> float:
    """Mean CIEDE2000 over the pixels of two sRGB images of the same size.

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.full((4, 4, 3), 128, np.uint8)
    >>> mean_delta_e(grey, grey)
    0.0
    """
    return float(np.mean(image_delta_e(img1, img2), dtype=np.float64))
