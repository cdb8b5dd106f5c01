"""Tone and contrast operators: curves on levels, most of them pointwise.

The pointwise operators here are written as plain curves on normalised levels in [0, 1]
(``*_curve`` functions and friends), so they can be reused from Python on tables or float
images; the registered operators add parameter declarations and image statistics.

ImageMagick equivalents are stated per operator. Black and white points are fractions of
full scale here, where ImageMagick takes quantum values or percentages: a fraction ``f``
is ImageMagick's ``{100 * f}%``.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from imgenh.ops.color import linear_to_srgb, srgb_to_linear
from imgenh.ops.contract import OpContext, ramp
from imgenh.ops.registry import Param, operator
from imgenh.pixels import LUMA_BGR, from_float, max_value, per_channel, to_float

# ImageMagick's MagickEpsilon: below it a range or a contrast counts as zero.
MAGICK_EPSILON = 1.0e-12

# BGR column of each named colour channel.
CHANNEL_INDEX = {"blue": 0, "green": 1, "red": 2}


# --------------------------------------------------------------------------- curves


def gamma_curve(x: np.ndarray, value: float) -> np.ndarray:
    """Power-law curve ``out = in ** (1 / value)`` (ImageMagick ``-gamma value``).

    Parameters
    ----------
    x : ndarray
        Levels in [0, 1].
    value : float
        Gamma; > 1 brightens the midtones.

    Returns
    -------
    ndarray
        Levels in [0, 1].
    """
    return np.power(np.clip(x, 0.0, 1.0), 1.0 / value)


def auto_gamma_value(mean: float) -> float:
    """The gamma that maps ``mean`` to mid-grey, as ImageMagick ``-auto-gamma``.

    ``mean ** (1 / g) == 0.5`` gives ``g = log(mean) / log(0.5)``. A mean of exactly 0
    or 1 has no such gamma; 1.0 (no change) is returned then.

    Parameters
    ----------
    mean : float
        Mean level in [0, 1].

    Returns
    -------
    float
    """
    if not 0.0 < mean < 1.0:
        return 1.0
    return math.log(mean) / math.log(0.5)


def level_curve(x: np.ndarray, black: float, white: float, gamma: float = 1.0) -> np.ndarray:
    """ImageMagick ``-level``: ``out = clip((in - black) / (white - black)) ** (1 / gamma)``.

    Levels below ``black`` go to 0 and above ``white`` to 1. When ``white`` and ``black``
    coincide (within 1e-12) the levels pass unchanged, as in ImageMagick.

    Parameters
    ----------
    x : ndarray
        Levels in [0, 1].
    black, white : float
        Black and white points as fractions of full scale.
    gamma : float
        Gamma applied after the linear stretch; > 1 brightens.

    Returns
    -------
    ndarray
        Levels in [0, 1].
    """
    if abs(white - black) < MAGICK_EPSILON:
        return np.clip(x, 0.0, 1.0)
    t = np.clip((x - black) / (white - black), 0.0, 1.0)
    return t if gamma == 1.0 else np.power(t, 1.0 / gamma)


def log_tone_curve(x: np.ndarray, gain: float = 1.0, inverse: bool = False) -> np.ndarray:
    """Logarithmic curve, as scikit-image ``exposure.adjust_log``.

    ``out = gain * log2(1 + in)``, or ``out = gain * (2 ** in - 1)`` when ``inverse``;
    the result is clipped to [0, 1].

    Parameters
    ----------
    x : ndarray
        Levels in [0, 1].
    gain : float
        Multiplier.
    inverse : bool
        Use the inverse (exponential) curve.

    Returns
    -------
    ndarray
    """
    x = np.clip(x, 0.0, 1.0)
    out = gain * (np.exp2(x) - 1.0) if inverse else gain * np.log2(1.0 + x)
    return np.clip(out, 0.0, 1.0)


def _sigmoid(a: float, b: float, x):
    # ImageMagick's tanh form; 1/(1+exp(-t)) = (1+tanh(t/2))/2 and the scaling below
    # cancels the affine difference, so it equals the logistic curve.
    return np.tanh(0.5 * a * (x - b))


def sigmoid_curve(x: np.ndarray, contrast: float, midpoint: float = 0.5, inverse: bool = False) -> np.ndarray:
    """ImageMagick ``-sigmoidal-contrast`` (and ``+sigmoidal-contrast`` when ``inverse``).

    The scaled sigmoid ``(s(in) - s(0)) / (s(1) - s(0))`` with
    ``s(u) = tanh(contrast / 2 * (u - midpoint))``, so 0 and 1 stay fixed. The inverse is
    ``midpoint + 2 / contrast * atanh((s(1) - s(0)) * in + s(0))`` with the atanh argument
    clamped to (-1, 1) by 1e-12, as ImageMagick does. A contrast below 1e-12 changes
    nothing.

    Parameters
    ----------
    x : ndarray
        Levels in [0, 1].
    contrast : float
        Slope; 0 is none, 3 typical, 20 close to a threshold.
    midpoint : float
        Inflection point as a fraction of full scale.
    inverse : bool
        Apply the inverse curve (lowers contrast).

    Returns
    -------
    ndarray
        Levels in [0, 1].
    """
    x = np.clip(x, 0.0, 1.0)
    if contrast < MAGICK_EPSILON:
        return x
    s0 = _sigmoid(contrast, midpoint, 0.0)
    s1 = _sigmoid(contrast, midpoint, 1.0)
    if not inverse:
        out = (_sigmoid(contrast, midpoint, x) - s0) / (s1 - s0)
    else:
        arg = np.clip((s1 - s0) * x + s0, -1.0 + MAGICK_EPSILON, 1.0 - MAGICK_EPSILON)
        out = midpoint + (2.0 / contrast) * np.arctanh(arg)
    return np.clip(out, 0.0, 1.0)


def pchip_slopes(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Node derivatives of the Fritsch-Carlson monotone cubic (PCHIP) through the points.

    Interior nodes take the weighted harmonic mean of the neighbouring secant slopes
    (zero where they differ in sign or either is zero); the end nodes use the one-sided
    three-point formula, limited so it keeps the shape (Moler, *Numerical Computing with
    MATLAB*, 3.6). Two points give a straight line.

    Parameters
    ----------
    xs : ndarray
        Strictly increasing abscissae, at least two.
    ys : ndarray
        Ordinates.

    Returns
    -------
    ndarray
        One derivative per point.
    """
    xs = np.asarray(xs, np.float64)
    ys = np.asarray(ys, np.float64)
    h = np.diff(xs)
    m = np.diff(ys) / h
    if xs.size == 2:
        return np.array([m[0], m[0]])
    d = np.zeros_like(ys)
    flat = (np.sign(m[1:]) != np.sign(m[:-1])) | (m[1:] == 0) | (m[:-1] == 0)
    w1 = 2 * h[1:] + h[:-1]
    w2 = h[1:] + 2 * h[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        harmonic = (w1 + w2) / (w1 / m[:-1] + w2 / m[1:])
    d[1:-1] = np.where(flat, 0.0, harmonic)
    d[0] = _pchip_end_slope(h[0], h[1], m[0], m[1])
    d[-1] = _pchip_end_slope(h[-1], h[-2], m[-1], m[-2])
    return d


def _pchip_end_slope(h0: float, h1: float, m0: float, m1: float) -> float:
    d = ((2 * h0 + h1) * m0 - h0 * m1) / (h0 + h1)
    if np.sign(d) != np.sign(m0):
        return 0.0
    if np.sign(m0) != np.sign(m1) and abs(d) > 3 * abs(m0):
        # A sign change next to the end: cap the slope so the end segment cannot overshoot.
        return 3 * m0
    return float(d)


def curve_through(x: np.ndarray, points, interpolation: str = "monotone") -> np.ndarray:
    """Tone curve through control points ``[[x, y], ...]``.

    Between the points the curve is the monotone cubic (PCHIP, no overshoot) or straight
    segments; outside the first and last point it stays level at their ``y``.

    Parameters
    ----------
    x : ndarray
        Levels in [0, 1].
    points : sequence of (x, y)
        Control points, x strictly increasing.
    interpolation : {"monotone", "linear"}

    Returns
    -------
    ndarray
        Levels in [0, 1].
    """
    pts = np.asarray(points, np.float64)
    xs, ys = pts[:, 0], pts[:, 1]
    u = np.clip(x, xs[0], xs[-1])
    if interpolation == "linear":
        return np.clip(np.interp(u, xs, ys), 0.0, 1.0)
    d = pchip_slopes(xs, ys)
    k = np.clip(np.searchsorted(xs, u, side="right") - 1, 0, xs.size - 2)
    h = xs[k + 1] - xs[k]
    t = (u - xs[k]) / h
    t2, t3 = t * t, t * t * t
    # Cubic Hermite basis on each segment.
    out = (
        (2 * t3 - 3 * t2 + 1) * ys[k]
        + (t3 - 2 * t2 + t) * h * d[k]
        + (-2 * t3 + 3 * t2) * ys[k + 1]
        + (t3 - t2) * h * d[k + 1]
    )
    return np.clip(out, 0.0, 1.0)


def stretch_points(levels: np.ndarray, counts: np.ndarray, low: float, high: float) -> tuple[float, float]:
    """Black and white points of a contrast stretch, by ImageMagick 6.9's rule.

    The black point is the lowest level at which the running count from the bottom
    exceeds ``low`` percent of the pixels (strictly); the white point is the highest level
    at which the running count from the top exceeds ``100 - high`` percent. So
    ``low=1, high=99`` is ``-contrast-stretch 1%x1%`` and ``low=high=0`` (with
    ``high=100``) gives the minimum and maximum present.

    Parameters
    ----------
    levels : ndarray
        Levels in [0, 1] (any order, repeats allowed).
    counts : ndarray
        Pixel count of each level.
    low, high : float
        Percentiles, 0 <= low < high <= 100.

    Returns
    -------
    black, white : float
    """
    order = np.argsort(levels, kind="stable")
    lv = np.asarray(levels, np.float64)[order]
    ct = np.asarray(counts, np.float64)[order]
    total = ct.sum()
    below = low * (total / 100.0)
    above = (100.0 - high) * (total / 100.0)
    last = lv.size - 1
    black = lv[min(int(np.searchsorted(np.cumsum(ct), below, side="right")), last)]
    white = lv[::-1][min(int(np.searchsorted(np.cumsum(ct[::-1]), above, side="right")), last)]
    return float(black), float(white)


def linear_stretch(
    x: np.ndarray, black: float, white: float, to_black: float = 0.0, to_white: float = 1.0
) -> np.ndarray:
    """Map ``black`` to ``to_black`` and ``white`` to ``to_white`` linearly, clipping outside [0, 1].

    Equal points leave the levels unchanged (ImageMagick does not stretch a channel with
    a single value).
    """
    if white - black < MAGICK_EPSILON:
        return np.clip(x, 0.0, 1.0)
    gain = (to_white - to_black) / (white - black)
    return np.clip((x - black) * gain + to_black, 0.0, 1.0)


# strength: auto moves each end of a stretch only as far as its level says the range was
# compressed. A linked stretch judges by each pixel's darkest channel for the black end and its
# brightest for the white (judged_points): a colourful photo whose luma spans little still has
# a channel near black and one near white. A black point at or below AUTO_BLACK[0] is taken as
# meant (deep shadows; a micrograph's bright background sits at 0.11; a soft, airy photo's
# lifted blacks at 0.15-0.26, which a heavy JPEG lifts further by averaging the darkest details
# away), at or above AUTO_BLACK[1] as a veil (haze lifts it to 0.5 or more), linear between. The
# white end the same, by its distance below 1: a low-key photo's brightest sits near 0.75
# (distance 0.25), an under-exposed one's at 0.62 or below. And both ends move when the range
# between them is narrow (AUTO_RANGE, by 1 - range): on the darkest and brightest channels no
# clean photo of benchmarks/quality.py's tuning set and sets A-E spans less than 0.68 (a low-key
# fern; a blue hour 0.71), and halved contrast, haze and -2 stops leave 0.62 or less. Chosen on
# those sets; AUTO_BLACK[1] was 0.25 until set B's soft nature photos showed the false stretch,
# and the judgement was on luma (AUTO_RANGE 0.30-0.45) until set E's pastel petals (luma 0.5 to
# 0.9, every channel's full range) were stretched as if veiled.
AUTO_BLACK = (0.15, 0.35)
AUTO_WHITE = (0.25, 0.45)
AUTO_RANGE = (0.30, 0.38)
# A veil's black point, for the linear-light map of `strength: auto`: the darkest level of a hazy
# JPEG lies a few levels below the veil (ringing and noise at the extreme), and linear light
# magnifies what is left (a black point 0.04 low leaves blacks at ~0.3). So where the darkest
# channel's black lies as high as a veil's (VEIL_BLACK: none to full), the map's black point
# moves towards this percentile of luma. On the tuning set and sets A-F the darkest channel of
# clean photos starts at 0.29 or less (a matte wood, stretched harder at 0.15-0.35, lost 0.7),
# and of the hazy ones at 0.52 or more: haze 6.8 -> 5.2 on the tuning set, 10.6 -> 7.0 on E.
VEIL_PERCENTILE = 0.03
VEIL_BLACK = (0.40, 0.50)


def stretch_targets(
    black: float, white: float, strength: float | str, judged: tuple[float, float] | None = None
) -> tuple[float, float, float, float]:
    """Where a stretch of ``strength`` sends its black and white points.

    Parameters
    ----------
    black, white : float
        The measured points, levels in [0, 1].
    strength : float, (float, float) or "auto"
        0 leaves the levels, 1 sends the points to 0 and 1; a pair gives the black and
        white ends their own; ``"auto"`` picks each end's strength from its level
        (``AUTO_BLACK``, ``AUTO_WHITE``) and from the range between them (``AUTO_RANGE``).
    judged : (float, float), optional
        The black and white levels ``"auto"`` reads instead of the points (see
        :func:`judged_points`).

    Returns
    -------
    to_black, to_white, black_strength, white_strength : float
    """
    if strength == "auto":
        low, high = judged if judged is not None else (black, white)
        narrow = ramp(1.0 - (high - low), *AUTO_RANGE)
        s_black = max(ramp(low, *AUTO_BLACK), narrow)
        s_white = max(ramp(1.0 - high, *AUTO_WHITE), narrow)
    elif isinstance(strength, tuple):
        s_black, s_white = strength
    else:
        s_black = s_white = float(strength)
    return black * (1.0 - s_black), white + (1.0 - white) * s_white, s_black, s_white


# --------------------------------------------------------------------------- kernels


def equalize_plane(plane: np.ndarray) -> np.ndarray:
    """Histogram-equalise one uint8 or uint16 plane with OpenCV's ``equalizeHist`` rule.

    ``out(v) = round((cdf(v) - cdf(vmin)) * top / (N - count(vmin)))`` with ``vmin`` the
    lowest level present, ``top`` 255 or 65535 and round-half-even; a constant plane is
    returned unchanged. On uint8 this is ``cv2.equalizeHist`` itself.

    Parameters
    ----------
    plane : ndarray
        2-D uint8 or uint16 array.

    Returns
    -------
    ndarray
        Same shape and dtype.
    """
    if plane.dtype == np.uint8:
        return cv2.equalizeHist(plane)
    return equalize_lut(plane)


def equalize_lut(plane: np.ndarray) -> np.ndarray:
    """The equalisation of :func:`equalize_plane` computed in numpy on any integer depth."""
    top = int(max_value(plane.dtype))
    hist = np.bincount(plane.ravel(), minlength=top + 1)
    first = int(np.flatnonzero(hist)[0])
    total = int(hist.sum())
    if hist[first] == total:
        return plane.copy()
    cdf = np.cumsum(hist) - hist[first]
    lut = np.rint(np.clip(cdf, 0, None) * (top / (total - hist[first])))
    return np.clip(lut, 0, top).astype(plane.dtype)[plane]


def clahe_plane(plane: np.ndarray, clip_limit: float, tiles: int) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation of one uint8 or uint16 plane.

    uint8 is ``cv2.createCLAHE(clip_limit, (tiles, tiles)).apply`` itself; uint16 is
    :func:`clahe_levels`, the same algorithm with 256-level tile histograms, so the clip
    limit means the same on both depths.
    """
    if plane.dtype == np.uint8:
        return cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles)).apply(plane)
    return from_float(clahe_levels(plane, clip_limit, tiles), plane.dtype)


def clahe_levels(plane: np.ndarray, clip_limit: float, tiles: int, rows_per_chunk: int = 256) -> np.ndarray:
    """CLAHE with OpenCV's 8-bit algorithm on a plane of any integer depth, as float levels.

    OpenCV's own 16-bit mode counts 65536-bin tile histograms and clips each bin at
    ``max(int(clip_limit * tile_area / 65536), 1)`` pixels: on all but huge tiles that is
    one pixel per bin whatever ``clip_limit`` is, and 8-bit data scaled by 257 comes out
    tens of levels away from its 8-bit result. Here every pixel counts in the bin of its
    nearest 8-bit level, as in ``cv2.createCLAHE`` on uint8: the image is padded the same
    way (reflect-101, when the grid does not divide it), each tile histogram is clipped at
    ``max(int(clip_limit * tile_area / 256), 1)`` and the excess spread evenly (the
    remainder one pixel per ``256 // remainder`` bins from bin 0), and tile mappings are
    the scaled cumulative histograms, blended bilinearly between tile centres. The
    mappings are not rounded and are interpolated linearly between 8-bit levels, so
    16-bit detail survives and 8-bit data scaled by 257 gives the 8-bit result within
    rounding.

    Parameters
    ----------
    plane : ndarray
        2-D uint8 or uint16 array.
    clip_limit : float
        Clip as a multiple of the mean count of a 256-bin tile histogram (> 0).
    tiles : int
        Tiles per side of the grid.
    rows_per_chunk : int
        Rows blended at a time (bounds the temporary memory).

    Returns
    -------
    ndarray
        float64 levels in [0, 1], the shape of ``plane``.
    """
    top = int(max_value(plane.dtype))
    h, w = plane.shape
    # Position of every pixel on the 8-bit scale, and its nearest 8-bit level (v*257 -> v).
    pos = plane.astype(np.float32) * np.float32(255.0 / top)
    bins = ((plane.astype(np.uint32) * 255 + top // 2) // top).astype(np.uint8)
    ext = bins
    if h % tiles or w % tiles:
        # OpenCV pads both axes by (tiles - size % tiles) when either does not divide.
        ext = cv2.copyMakeBorder(bins, 0, tiles - h % tiles, 0, tiles - w % tiles, cv2.BORDER_REFLECT_101)
    th, tw = ext.shape[0] // tiles, ext.shape[1] // tiles
    area = th * tw
    blocks = ext[: th * tiles, : tw * tiles].reshape(tiles, th, tiles, tw).transpose(0, 2, 1, 3)
    keys = np.arange(tiles * tiles, dtype=np.int64).reshape(tiles, tiles, 1, 1) * 256 + blocks
    hist = np.bincount(keys.ravel(), minlength=tiles * tiles * 256).reshape(tiles * tiles, 256)
    limit = max(int(clip_limit * area / 256), 1)
    excess = np.maximum(hist - limit, 0).sum(axis=1)
    hist = np.minimum(hist, limit) + (excess // 256)[:, None]
    for t in np.flatnonzero(excess % 256):
        rest = int(excess[t] % 256)
        hist[t, np.arange(0, 256, max(256 // rest, 1))[:rest]] += 1
    lut = np.cumsum(hist, axis=1) * (1.0 / area)  # levels in [0, 1]
    lut = np.concatenate([lut, lut[:, -1:]], axis=1).ravel()  # a 257th entry so k + 1 is valid

    def axis_weights(n: int, size: int):
        f = np.arange(n, dtype=np.float32) * np.float32(1.0 / size) - np.float32(0.5)
        lo = np.floor(f)
        frac = (f - lo).astype(np.float64)
        lo = lo.astype(np.int64)
        return np.maximum(lo, 0), np.minimum(lo + 1, tiles - 1), frac

    y1, y2, ya = axis_weights(h, th)
    x1, x2, xa = axis_weights(w, tw)
    out = np.empty((h, w), np.float64)
    for start in range(0, h, rows_per_chunk):
        rows = slice(start, min(start + rows_per_chunk, h))
        p = pos[rows].astype(np.float64)
        k = np.minimum(p.astype(np.int64), 255)
        f = p - k

        yw = ya[rows, None]
        top_row = _tile_value(lut, y1[rows], x1, k, f, tiles) * (1 - xa)
        top_row += _tile_value(lut, y1[rows], x2, k, f, tiles) * xa
        bottom_row = _tile_value(lut, y2[rows], x1, k, f, tiles) * (1 - xa)
        bottom_row += _tile_value(lut, y2[rows], x2, k, f, tiles) * xa
        out[rows] = top_row * (1 - yw) + bottom_row * yw
    return np.clip(out, 0.0, 1.0)


def _tile_value(lut, ty, tx, k, f, tiles):
    # One tile's mapping at each pixel: its 8-bit level k plus the fraction f towards k + 1.
    base = (ty[:, None] * tiles + tx[None, :]) * 257 + k
    lo = lut[base]
    return lo + f * (lut[base + 1] - lo)


def _per_channel_copy(x: np.ndarray, channels: int) -> np.ndarray:
    # per_channel returns images as they are: copy so the caller's array is never written.
    out = per_channel(x, channels)
    return out.copy() if out is x else out


# --------------------------------------------------------------------------- operators


@operator(
    "gamma",
    kind="pointwise",
    summary="Power-law tone curve; value > 1 brightens the midtones (or auto: mean to mid-grey).",
    formula="out = in ** (1 / value); auto: value = log(mean) / log(0.5), mean pooled over channels",
    reference="ImageMagick -gamma / -auto-gamma",
    example={"value": 1.4},
)
def gamma(
    x: np.ndarray,
    ctx: OpContext,
    *,
    value: Param(
        float,
        1.0,
        "exponent is 1/value; > 1 brightens, < 1 darkens",
        gt=0,
        le=10,
        only_with={"auto": (False,)},
    ),
    auto: Param(bool, False, "pick value so the mean level (all channels pooled) becomes 0.5"),
) -> np.ndarray:
    """Gamma curve with ImageMagick's convention: ``out = in ** (1 / value)``.

    With ``auto`` the exponent follows ImageMagick 6.9 ``-auto-gamma`` with its default
    channels: one gamma for all channels, from the mean of R, G and B pooled, so the
    mean maps to mid-grey. The chosen value is reported as ``gamma``.
    """
    if auto:
        value = auto_gamma_value(ctx.stats.mean(None))
        ctx.record("gamma", round(value, 6))
    return gamma_curve(x, value)


@operator(
    "levels",
    kind="pointwise",
    summary="Black point, white point and gamma, like ImageMagick -level.",
    formula="out = clip((in - black) / (white - black)) ** (1 / gamma)",
    reference="ImageMagick -level {100*black}%,{100*white}%,gamma",
    example={"black": 0.05, "white": 0.95, "gamma": 1.2},
    check=lambda p: "black must be < white" if p["black"] >= p["white"] else None,
)
def levels(
    x: np.ndarray,
    ctx: OpContext,
    *,
    black: Param(float, 0.0, "level mapped to 0, as a fraction of full scale (IM: 100*black %)", ge=0, le=1),
    white: Param(float, 1.0, "level mapped to full scale, as a fraction (IM: 100*white %)", ge=0, le=1),
    gamma: Param(float, 1.0, "gamma after the stretch; > 1 brightens", gt=0, le=10),
) -> np.ndarray:
    """ImageMagick ``-level`` with black/white as fractions of full scale.

    ``black=0.1, white=0.9, gamma=1.2`` is ``-level 10%,90%,1.2`` on any depth.
    """
    return level_curve(x, black, white, gamma)


@operator(
    "log_curve",
    kind="pointwise",
    summary="Logarithmic tone curve (or its exponential inverse), like skimage adjust_log.",
    formula="out = gain * log2(1 + in); inverse: out = gain * (2 ** in - 1)",
    reference="scikit-image exposure.adjust_log",
    example={"gain": 1.0},
)
def log_curve(
    x: np.ndarray,
    ctx: OpContext,
    *,
    gain: Param(float, 1.0, "multiplier applied after the curve", gt=0, le=10),
    inverse: Param(bool, False, "use the inverse curve gain * (2 ** in - 1)"),
) -> np.ndarray:
    """Logarithmic correction as ``skimage.exposure.adjust_log`` (clipped to [0, 1])."""
    return log_tone_curve(x, gain, inverse)


@operator(
    "sigmoid",
    kind="pointwise",
    summary="Sigmoidal contrast about a midpoint, keeping black and white fixed.",
    formula="out = (s(in) - s(0)) / (s(1) - s(0)), s(u) = tanh(contrast/2 * (u - midpoint)); inverse: its inverse",
    reference="ImageMagick -sigmoidal-contrast contrast,{100*midpoint}% (+sigmoidal-contrast for inverse)",
    example={"contrast": 5.0, "midpoint": 0.5},
)
def sigmoid(
    x: np.ndarray,
    ctx: OpContext,
    *,
    contrast: Param(float, 3.0, "slope: 0 none, 3 typical, 20 near a threshold", ge=0, le=100),
    midpoint: Param(float, 0.5, "inflection point as a fraction of full scale", ge=0, le=1),
    inverse: Param(bool, False, "apply the inverse curve (reduces contrast), IM +sigmoidal-contrast"),
) -> np.ndarray:
    """ImageMagick's scaled sigmoidal contrast, see :func:`sigmoid_curve`."""
    return sigmoid_curve(x, contrast, midpoint, inverse)


def _check_curve(p: dict) -> str | None:
    pts = p["points"]
    if len(pts) < 2:
        return "points needs at least 2 [x, y] pairs"
    if any(not (0.0 <= v <= 1.0) for pt in pts for v in pt):
        return "points: every x and y must be in [0, 1]"
    if any(b[0] <= a[0] for a, b in zip(pts, pts[1:], strict=False)):
        return "points: x must be strictly increasing"
    return None


@operator(
    "curve",
    kind="pointwise",
    summary="Tone curve through control points (monotone cubic or linear), on all or one channel.",
    formula="out = f(in), f through points (PCHIP / piecewise linear), flat beyond the end points",
    reference="scipy.interpolate.PchipInterpolator / numpy.interp",
    example={"points": [[0.0, 0.0], [0.25, 0.2], [0.75, 0.85], [1.0, 1.0]]},
    check=_check_curve,
)
def curve(
    x: np.ndarray,
    ctx: OpContext,
    *,
    points: Param(
        list, [[0.0, 0.0], [1.0, 1.0]], "control points [[x, y], ...], x increasing, in [0, 1]", item=list
    ),
    interpolation: Param(
        str, "monotone", "monotone cubic (PCHIP, no overshoot) or linear", choices=("monotone", "linear")
    ),
    channel: Param(
        str,
        "all",
        "channel the curve applies to (a grey image is left alone unless all)",
        choices=("all", "red", "green", "blue"),
    ),
) -> np.ndarray:
    """A tone curve through ``points``; see :func:`curve_through`.

    A single-channel curve changes that channel of a colour image only; a grey image has
    no separate red, green or blue and is left unchanged.
    """
    if channel == "all":
        return curve_through(x, points, interpolation)
    if not ctx.is_color:
        return x
    out = _per_channel_copy(x, ctx.channels)
    c = CHANNEL_INDEX[channel]
    out[..., c] = curve_through(out[..., c], points, interpolation)
    return out


# linear: auto draws the map in linear light when the range is compressed from one end only, and on
# the stored levels when from both alike. A veil (haze, flare: in = t out + veil in linear light)
# lifts the black point and leaves white near 1; an under-exposure lowers the white point and
# leaves black near 0; both are undone exactly in linear light. A flat profile or a faded print
# pulls both ends towards mid-grey on the stored levels, which a linear-light map undoes badly
# (tuning set: halved contrast 4.9 -> 11.7 CIEDE2000). The share of the linear map rises with
# the one-sidedness |b - (1 - w)| / (b + 1 - w) from AUTO_LINEAR[0] to AUTO_LINEAR[1] (a blend of
# two increasing maps is an increasing map). Clipped whites say the light was raised by a gain,
# not a veil (a veil cannot clip what was not near white): from AUTO_CLIPPED[0] of the pixels at
# white the share falls, to none at AUTO_CLIPPED[1] (tuning set, +1.3 stops: a black point moved
# in linear light darkened bright-background shots, 16.3 -> 16.6).
AUTO_LINEAR = (0.3, 0.7)
AUTO_CLIPPED = (0.005, 0.02)
CLIPPED_LEVEL = 254.5 / 255.0


def linear_share(black: float, white: float, clipped: float = 0.0) -> float:
    """Share (0..1) of the linear-light map under ``linear: auto``.

    Parameters
    ----------
    black, white : float
        The measured points, levels in [0, 1].
    clipped : float
        Fraction of the pixels at white (at or above :data:`CLIPPED_LEVEL`).
    """
    below, above = black, 1.0 - white
    if below + above <= 0.0:
        return 0.0
    one_sided = ramp(abs(below - above) / (below + above), *AUTO_LINEAR)
    return one_sided * (1.0 - ramp(clipped, *AUTO_CLIPPED))


def clipped_fraction(levels: np.ndarray, counts: np.ndarray) -> float:
    """Fraction of the counted pixels at white (levels at or above :data:`CLIPPED_LEVEL`)."""
    total = float(np.sum(counts))
    return float(np.sum(counts[np.asarray(levels) >= CLIPPED_LEVEL])) / total if total else 0.0


def _linear_light_stretch(x: np.ndarray, black: float, white: float, strengths) -> np.ndarray:
    # The strengths are judged on the stored levels; the map is drawn in linear light.
    black, white = (float(v) for v in srgb_to_linear(np.array([black, white])))
    to_black, to_white = stretch_targets(black, white, strengths)[:2]
    return linear_to_srgb(linear_stretch(srgb_to_linear(x), black, white, to_black, to_white))


def _white_caps(white: float, gain_cap: float) -> tuple[float, float]:
    """The largest white-end strengths, on the stored levels and in linear light, whose move
    multiplies the white point's linear light by at most ``gain_cap``."""
    white_light = float(srgb_to_linear(np.array(white)))
    if white_light >= 1.0:
        return 1.0, 1.0
    highest_light = min(1.0, white_light * gain_cap)
    highest = float(linear_to_srgb(np.array(highest_light)))
    return max(0.0, (highest - white) / (1.0 - white)), (highest_light - white_light) / (1.0 - white_light)


def _stretch_plane(
    x: np.ndarray,
    histogram: tuple[np.ndarray, np.ndarray],
    low: float,
    high: float,
    strength,
    linear,
    gain_cap: float | None = None,
    judge=None,
    exact_histogram=None,
) -> tuple[np.ndarray, dict]:
    """One stretch map from a (levels, counts) histogram applied, and what the report shows of it.

    ``gain_cap`` limits the white end's move to that linear gain (the scene's light allows no
    more); ``judge`` maps the points to the levels ``strength: auto`` reads (:func:`judged_points`);
    ``exact_histogram`` (with ``judge``) gives the whole histogram a veil's black point is read
    from (:func:`veil_black`).
    """
    black, white = points = stretch_points(*histogram, low, high)
    judged = None if judge is None else judge(points)
    to_black, to_white, s_black, s_white = stretch_targets(black, white, strength, judged)
    s_white_light = s_white
    if gain_cap is not None:
        cap_stored, cap_light = _white_caps(white, gain_cap)
        s_white_light = min(s_white, cap_light)
        if s_white > cap_stored:
            strength = (s_black, cap_stored)
            to_black, to_white, s_black, s_white = stretch_targets(black, white, strength)
    shown = {"black_point": round(black, 6), "white_point": round(white, 6)}
    if judged is not None:
        shown["darkest_channel"], shown["brightest_channel"] = (round(v, 4) for v in judged)
    if strength != 1.0:
        shown["black_strength"], shown["white_strength"] = round(s_black, 4), round(s_white, 4)
    share = linear_share(*points, clipped_fraction(*histogram)) if linear == "auto" else float(linear)
    if linear == "auto":
        shown["linear_share"] = round(share, 4)
    if share <= 0.0:
        return linear_stretch(x, black, white, to_black, to_white), shown
    light_black = black
    if judged is not None and exact_histogram is not None:
        light_black = veil_black(
            black, judged[0], lambda: stretch_points(*exact_histogram(), VEIL_PERCENTILE, high)[0]
        )
        if light_black != black:
            shown["veil_black_point"] = round(light_black, 6)
    light = _linear_light_stretch(x, light_black, white, (s_black, s_white_light))
    if share >= 1.0:
        return light, shown
    stored = linear_stretch(x, black, white, to_black, to_white)
    return stored + np.float32(share) * (light - stored), shown


def veil_black(black: float, darkest: float, robust_black) -> float:
    """The black point of a linear-light stretch: ``black`` moved towards ``robust_black()``
    (luma at :data:`VEIL_PERCENTILE`) as far as the darkest channel's black level ``darkest``
    lies as high as a veil's (the ramp :data:`VEIL_BLACK`); never below ``black``."""
    lift = ramp(darkest, *VEIL_BLACK)
    if lift <= 0.0:
        return black
    return black + lift * max(0.0, robust_black() - black)


def _linked_histogram(
    stats, channel, low: float, high: float, clipped: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The histogram a linked stretch reads: for luma, one exact only where the stretch looks, when it is.

    The points (:func:`stretch_points`) need the running count exact at each point and the
    level below it, :func:`clipped_fraction` at the level below :data:`CLIPPED_LEVEL`; the
    fast histogram (:meth:`Stats.luma_histogram_near`) is used only when it is exact there,
    so the points and the clipped share are those of the whole histogram.
    """
    if channel == "luma":
        near = stats.luma_histogram_near(low, high, (CLIPPED_LEVEL,) if clipped else ())
        if near is not None:
            levels, counts, exact = near
            top = levels.size - 1
            black, white = (round(p * top) for p in stretch_points(levels, counts, low, high))
            needed = [black, black - 1, white, white - 1]
            if clipped:
                needed.append(int(np.ceil(CLIPPED_LEVEL * top)) - 1)
            if all(level < 0 or exact[level] for level in needed):
                return levels, counts
    return stats.histogram(channel)


def judged_points(stats, low: float, high: float, luma_points: tuple[float, float]) -> tuple[float, float]:
    """The levels a linked ``strength: auto`` judges compression by: the black point of each
    pixel's darkest channel and the white point of its brightest (:func:`stretch_points`).

    A veil, an under-exposure or a flat profile compresses every channel; a colourful photo
    whose luma spans little (yellow petals against a pale sky: luma 0.5 to 0.9) has a channel
    near black and one near white, and is not compressed. The darkest channel is the dark
    channel prior of haze removal (He, Sun & Tang 2009) pixel by pixel. Read from a
    subsample (:meth:`imgenh.ops.contract.Stats.extreme_histograms`), widened to
    ``luma_points`` (the stretch's own black and white points) where they lie further out.
    """
    darkest, brightest = stats.extreme_histograms()
    black, white = stretch_points(*darkest, low, high)[0], stretch_points(*brightest, low, high)[1]
    # The subsample can miss a small highlight or shadow the luma points saw: never judge the
    # range narrower than the luma points say.
    return min(black, luma_points[0]), max(white, luma_points[1])


def scene_gain_cap(ctx: OpContext, lit_scene_ev: float | None) -> float | None:
    """The largest linear gain a brightening may give, by the scene's light; None: no limit.

    Records ``scene_ev`` (None when the file has no exposure), and ``scene_key`` (the mean the
    scene is rendered at, at most: :meth:`imgenh.ops.scene.SceneLight.key`) and ``max_gain``.
    """
    if lit_scene_ev is None:
        return None
    if ctx.scene is None:
        ctx.record("scene_ev", None)
        return None
    key = ctx.scene.key(lit_scene_ev)
    cap = max(1.0, key / ctx.scene.mean)
    ctx.record("scene_ev", round(ctx.scene.ev, 2))
    ctx.record("scene_key", round(key, 4))
    ctx.record("max_gain", round(cap, 3))
    return cap


def _stretch_map(
    x: np.ndarray,
    ctx: OpContext,
    low: float,
    high: float,
    linked: bool,
    linked_channel,
    strength: float | str = 1.0,
    linear: bool | str = False,
    gain_cap: float | None = None,
) -> np.ndarray:
    """Stretch between histogram points: one map from ``linked_channel`` or one per channel."""
    if linked or not ctx.is_color:
        histogram = _linked_histogram(ctx.stats, linked_channel, low, high, linear == "auto")
        judge = None
        if strength == "auto" and ctx.is_color:
            judge = functools.partial(judged_points, ctx.stats, low, high)
        exact = None if judge is None else functools.partial(ctx.stats.histogram, linked_channel)
        out, shown = _stretch_plane(x, histogram, low, high, strength, linear, gain_cap, judge, exact)
        for key, value in shown.items():
            ctx.record(key, value)
        return out
    out = _per_channel_copy(x, ctx.channels)
    per_channel: dict[str, dict] = {}
    for name, c in sorted(CHANNEL_INDEX.items(), key=lambda kv: -kv[1]):
        plane, histogram = out[..., c], ctx.stats.histogram(c)
        out[..., c], shown = _stretch_plane(plane, histogram, low, high, strength, linear, gain_cap)
        for key, value in shown.items():
            per_channel.setdefault(key, {})[name] = value
    for key, value in per_channel.items():
        ctx.record(key, value)
    return out


@operator(
    "stretch",
    kind="pointwise",
    summary="Linear contrast stretch between low/high percentiles, like ImageMagick -contrast-stretch.",
    formula="out = clip((in - black) / (white - black)); black/white at the low/high percentiles",
    reference="ImageMagick -contrast-stretch {low}%x{100-high}% (linked: false adds -channel RGB)",
    example={"low": 1.0, "high": 99.0},
    check=lambda p: (
        f"low must be < high (got {p['low']:g} and {p['high']:g})" if p["low"] >= p["high"] else None
    ),
)
def stretch(
    x: np.ndarray,
    ctx: OpContext,
    *,
    low: Param(float, 1.0, "percent of pixels clipped to black", ge=0, lt=100),
    high: Param(
        float, 99.0, "percentile mapped to white (100 - high percent clipped to white)", gt=0, le=100
    ),
    linked: Param(bool, True, "one map from Rec.709 luma for all channels; false: one per channel"),
    strength: Param(
        float,
        1.0,
        "how far the points move: 0 = unchanged, 1 = to black and white; auto = each end by how "
        "compressed it is (a low-key photo keeps its highlights, a hazy one loses its veil)",
        ge=0,
        le=1,
        words=("auto",),
    ),
    linear: Param(
        bool,
        False,
        "draw the map in linear light (sRGB decoded): exposure and haze act there, so a stretch "
        "there undoes them without bending the midtones; auto = in linear light when the range is "
        "compressed from one end (a veil, an under-exposure), on the levels when from both (flat)",
        words=("auto",),
    ),
    lit_scene_ev: Param(
        float,
        None,
        "EV100 of a scene rendered at mid-grey (a lit room ~5-7, daylight 12-15): brighten only to a "
        "mean half a stop lower per EV of less light (more per EV of more), by the camera's exposure "
        "(EXIF) and the image's mean, so a dusk or night photo keeps its key; no EXIF exposure: no limit",
        ge=-10,
        le=25,
    ),
) -> np.ndarray:
    """Contrast stretch with ImageMagick 6.9's black/white point rule (see :func:`stretch_points`).

    Linked, the histogram is the Rec. 709 luma of each pixel quantised to 65536 levels
    (ImageMagick with default channels); otherwise each channel's own histogram
    (``-channel RGB``). The points are reported as ``black_point``/``white_point``,
    per channel when not linked. Below full ``strength`` the black point goes to
    ``black * (1 - s)`` and the white point to ``white + (1 - white) * s`` (the map stays
    linear); ``auto`` takes ``s`` for each end from its level (:func:`stretch_targets`),
    reported as ``black_strength`` and ``white_strength``:
    a black point at or below 0.15 and a white point at or above 0.75 stay where they are,
    one at or beyond 0.35 / 0.55 goes all the way, and both go all the way when they are
    0.62 or less apart (none when 0.7 or more). A linked stretch of a colour image judges
    the black end by each pixel's darkest channel and the white end by its brightest
    (:func:`judged_points`, reported as ``darkest_channel`` and ``brightest_channel``): a
    veil, an under-exposure or a flat profile compresses every channel, while a colourful
    photo with a narrow luma range (yellow petals on a pale sky) has a channel near black
    and one near white and is left as it is. The map still moves the luma points. With
    ``linear`` the points (measured on the stored levels, as ImageMagick does) and the
    levels are decoded from sRGB, stretched, and encoded again: an under-exposure or a
    veil in linear light (``in = t * out + veil``) is undone exactly. ``linear: auto`` blends
    the two maps by how one-sided the compression is (:func:`linear_share`, reported as
    ``linear_share``): a veil or an under-exposure is stretched in linear light, a range pulled
    in from both ends (a flat profile) on the stored levels.
    Under ``strength: auto`` the linear-light map of a lifted black end (a veil) reads its black
    point at the :data:`VEIL_PERCENTILE` of luma rather than at ``low``, when that lies higher
    (:func:`veil_black`, reported as ``veil_black_point``): a few pixels of JPEG ringing below
    a veil would otherwise leave it grey, magnified by linear light.

    ``lit_scene_ev`` tells a dim photo of a dim scene from an under-exposure. The scene's light
    in EV100 (:class:`imgenh.ops.scene.SceneLight`: exposure time, f-number and ISO from EXIF,
    and the image's mean linear luma; reported as ``scene_ev``) gives the highest mean a photo
    of it is brightened to: mid-grey at ``lit_scene_ev``, half a stop lower per EV of less light
    and higher per EV of more (reported as ``scene_key``). The white end moves no further than
    the linear gain that brings the image's mean there (``max_gain``, at least 1): a blue hour or
    a night street keeps its key, a dark daylight shot is brightened. The black end is not
    limited: moving it darkens.
    """
    cap = scene_gain_cap(ctx, lit_scene_ev)
    return _stretch_map(x, ctx, low, high, linked, "luma", strength, linear, cap)


@operator(
    "auto_level",
    kind="pointwise",
    summary="Stretch the darkest level to black and the brightest to white, like ImageMagick -auto-level.",
    formula="out = (in - min) / (max - min); linked: min/max over all channels",
    reference="ImageMagick -auto-level (linked: false adds -channel RGB)",
    example={"linked": True},
)
def auto_level(
    x: np.ndarray,
    ctx: OpContext,
    *,
    linked: Param(bool, True, "one min/max over all channels; false: each channel its own"),
) -> np.ndarray:
    """ImageMagick ``-auto-level``: min..max to 0..1, a channel with a single level unchanged.

    Linked uses the minimum and maximum of all channels pooled (not luma), as ImageMagick
    does with its default channels.
    """
    return _stretch_map(x, ctx, 0.0, 100.0, linked, None)


@operator(
    "brightness_contrast",
    kind="pointwise",
    summary="Linear gain and offset, saturating: out = alpha * in + beta (beta in 8-bit levels).",
    formula="out = clip(alpha * in + beta / 255)",
    reference="cv2.convertScaleAbs(img, alpha=alpha, beta=beta) on uint8 (where non-negative)",
    example={"alpha": 1.2, "beta": 10.0},
)
def brightness_contrast(
    x: np.ndarray,
    ctx: OpContext,
    *,
    alpha: Param(float, 1.0, "contrast gain", ge=0, le=10),
    beta: Param(
        float, 0.0, "brightness offset in 8-bit levels (x257 on 16-bit, /255 on float)", ge=-255, le=255
    ),
) -> np.ndarray:
    """``out = alpha * in + beta``, saturating, with ``beta`` in 8-bit levels on every depth.

    On uint8 this is ``cv2.convertScaleAbs(img, alpha=alpha, beta=beta)`` wherever that is
    non-negative (OpenCV takes the absolute value; this operator clips at 0).
    """
    return np.clip(alpha * x + beta / 255.0, 0.0, 1.0)


@operator(
    "equalize",
    kind="native",
    summary="Histogram equalisation; colour images on luma (Y of YCrCb), chroma kept.",
    formula="out = round((cdf(in) - cdf(min)) * top / (N - count(min))) on grey or Y",
    reference="cv2.equalizeHist (8-bit); the same rule on 65536 bins for 16-bit",
)
def equalize(img: np.ndarray, ctx: OpContext) -> np.ndarray:
    """Equalise grey images directly and colour images on the Y plane of YCrCb.

    uint8 uses ``cv2.equalizeHist``; uint16 the same rule over 65536 levels
    (:func:`equalize_lut`); float32 goes through uint16.
    """
    if img.dtype == np.float32:
        return to_float(equalize(from_float(img, np.uint16), ctx))
    if img.ndim == 2:
        return equalize_plane(img)
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    ycc[..., 0] = equalize_plane(np.ascontiguousarray(ycc[..., 0]))
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR)


@operator(
    "clahe",
    kind="native",
    summary="Contrast-limited adaptive histogram equalisation; colour images on luma (Y of YCrCb), chroma kept.",
    formula="per tile: 256-bin histogram clipped at clip_limit * mean bin, cumulated; bilinear between tiles",
    reference="cv2.createCLAHE(clipLimit, (tiles, tiles)).apply (uint8; 16-bit: same algorithm on 256 bins)",
    example={"clip_limit": 2.0, "tiles": 8},
)
def clahe(
    img: np.ndarray,
    ctx: OpContext,
    *,
    clip_limit: Param(
        float, 2.0, "clip as a multiple of the mean count of a 256-bin tile histogram", gt=0, le=100
    ),
    tiles: Param(int, 8, "tiles per side of the grid", ge=1, le=64),
) -> np.ndarray:
    """CLAHE: grey directly, colour on the Y plane of YCrCb (Cr and Cb kept), as :func:`equalize`.

    uint8 is ``cv2.createCLAHE`` on OpenCV's 8-bit YCrCb (Rec. 601 luma; the recipe a user of
    OpenCV writes), converted in fixed point both ways. uint16 takes OpenCV's 16-bit YCrCb and
    :func:`clahe_levels`, OpenCV's algorithm on 256-level tile histograms, because OpenCV's
    16-bit mode clips 65536-bin histograms at one pixel per bin on ordinary tile sizes and so
    ignores ``clip_limit``; float32 goes through uint16. (Colour went through float Lab L
    before: its two float conversions take ~60 ms each at 12 MP, more than the whole step's
    budget of issue 11; the 8-bit Lab recipe costs ~100 ms.)
    """
    if img.ndim == 2:
        if img.dtype == np.float32:
            return clahe_levels(from_float(img, np.uint16), clip_limit, tiles).astype(np.float32)
        return clahe_plane(img, clip_limit, tiles)
    if img.dtype == np.float32:
        return to_float(clahe(from_float(img, np.uint16), ctx, clip_limit=clip_limit, tiles=tiles))
    ycc = cv2.cvtColor(img, cv2.COLOR_BGR2YCrCb)
    cv2.insertChannel(clahe_plane(cv2.extractChannel(ycc, 0), clip_limit, tiles), ycc, 0)
    return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR, dst=ycc)


# --------------------------------------------------------------------------- exposure

# stops: auto pulls an over-exposed frame back. Evidence of over-exposure is the share of clipped
# levels (the top 1.5 8-bit levels) in the channel with the median share: an over-exposure blows
# highlights to white, clipping two or three channels, while a cast (tungsten's red x1.15) or a
# saturated colour clips one, which then counts for nothing. A ramp from AUTO_EXPOSURE_CLIPPED[0]
# (nothing done) to [1] (full correction). Until session 33 the share was averaged over the
# channels, so a cast counted a third: the gate fired on 22 of 222 tungsten copies and 8 green ones
# of benchmarks/quality.py's sets tuning to N, and on none with the median (on 155 of the 222
# over-exposed copies against 166 averaged, at the ramp 0.03-0.08 rather than 0.05-0.10).
# And the levels must run up to the clip: an over-exposure pushes every highlight gradient into it,
# so the band just below (NEAR_CLIP_LEVEL up) holds a good share of what clipped: the ramp
# AUTO_EXPOSURE_RUN_UP (tuning photos at +1.3 stops, as JPEGs: 0.35-2.8; at +2 stops 0.19-4; an
# uncompressed frame reads lower, astronaut +1.3 stops 0.22 against 0.46: JPEG ringing below a clipped
# edge adds to the band, so such a frame is pulled back part way). A studio shot's
# white background is a flat field with a sharp edge: tuning photos set on white covering 40% or
# 60% of the frame read 0.01-0.32 and 0.01-0.14 (at 20%, 0.05-0.9). Not enough on its own: a
# product shot on white from the first held-out set (smarties: 64% clipped, bright candies) reads
# 0.33, and 3.0 once noisy, and was darkened 1.5 stops; no per-channel statistic tells it apart.
# So auto in full is for frames known to be over-exposed; `default` caps it at 0.3 stop (max_stops),
# where such a photo loses little (benchmarks/README.md, session 29).
# The gain brings the linear mean of the unclipped levels (luma-weighted) to AUTO_EXPOSURE_TARGET,
# never below AUTO_EXPOSURE_MIN_GAIN (-1.5 stops) and never above 1 (auto only darkens). Above
# linear SHOULDER_KNEE the gain gives way to a straight shoulder that ends at the clipped level
# g + SHOULDER_HEADROOM (1 - g): what was clipped was somewhere above the unclipped, so it lands
# there rather than at the gain's grey. The ramp, on the median channel, over benchmarks/quality.py's
# sets tuning to N: clean photos clip 0-1.3% (90th percentile), +1.3 stops 14% (median). (The mean
# over channels was ramped 0.05-0.10: clean photos clipped 0-5% of it, +1.3 stops 5-60%.)
AUTO_EXPOSURE_CLIPPED = (0.03, 0.08)
AUTO_EXPOSURE_RUN_UP = (0.15, 0.30)
NEAR_CLIP_LEVEL = 217 / 255
AUTO_EXPOSURE_TARGET = 0.16
AUTO_EXPOSURE_MIN_GAIN = 0.35
SHOULDER_KNEE = 0.6
SHOULDER_HEADROOM = 0.3
_CLIPPED_LEVEL = 1.0 - 1.5 / 255.0


def exposure_curve(
    x: np.ndarray, gain: float, shoulder: bool = False, headroom: float = SHOULDER_HEADROOM
) -> np.ndarray:
    """Levels after an exposure ``gain`` in linear light (sRGB decoded, scaled, encoded).

    Parameters
    ----------
    x : ndarray
        Levels in [0, 1].
    gain : float
        Linear-light gain, ``2 ** stops``.
    shoulder : bool
        Above linear :data:`SHOULDER_KNEE` follow a straight line to ``gain + headroom
        * (1 - gain)`` at 1 instead of the gain (for ``gain < 1``: clipped highlights land above
        the rest).
    headroom : float
        Where the shoulder ends, 0..1: 0 at the gain's level, 1 at white (clipped stays white).

    Returns
    -------
    ndarray
        Levels in [0, 1]; clipped at 1 where a gain > 1 pushes past white.
    """
    lin = srgb_to_linear(np.clip(x, 0.0, 1.0))
    out = lin * gain
    if shoulder:
        top = gain + headroom * (1.0 - gain)
        slope = (top - gain * SHOULDER_KNEE) / (1.0 - SHOULDER_KNEE)
        out = np.where(lin > SHOULDER_KNEE, gain * SHOULDER_KNEE + (lin - SHOULDER_KNEE) * slope, out)
    return linear_to_srgb(out)


def over_exposure(stats) -> tuple[float, float, float, float]:
    """How over-exposed an image looks, from its per-channel histograms (sampled: shares only).

    Parameters
    ----------
    stats : imgenh.ops.contract.Stats

    Returns
    -------
    clipped : float
        Share of clipped levels in the channel with the median share (of three: the middle one).
    run_up : float
        Share of that channel's levels in the band just below the clip (:data:`NEAR_CLIP_LEVEL`
        up) over ``clipped``.
    unclipped_mean : float
        Linear-light mean of the levels below the clipped ones (luma-weighted over channels).
    strength : float
        How far auto corrects, 0..1: the product of the ramps of ``clipped``
        (:data:`AUTO_EXPOSURE_CLIPPED`) and ``run_up`` (:data:`AUTO_EXPOSURE_RUN_UP`).
    """
    weights = LUMA_BGR if stats.channels >= 3 else (1.0,)
    shares, near, means = [], [], []
    for channel in range(len(weights)):
        levels, counts = stats.sampled_histogram(channel)  # shares: no exact count needed
        total = max(float(counts.sum()), 1.0)
        clipped = levels >= _CLIPPED_LEVEL
        kept = counts[~clipped]
        shares.append(float(counts[clipped].sum()) / total)
        near.append(float(counts[(levels >= NEAR_CLIP_LEVEL) & ~clipped].sum()) / total)
        means.append(float(np.dot(srgb_to_linear(levels[~clipped]), kept)) / max(float(kept.sum()), 1.0))
    # The median channel (a cast clips one); of tied channels the lower index, G when all three tie.
    median_channel = int(np.argsort(shares, kind="stable")[len(shares) // 2])
    share = shares[median_channel]
    run_up = near[median_channel] / share if share > 0.0 else 0.0
    strength = ramp(share, *AUTO_EXPOSURE_CLIPPED) * ramp(run_up, *AUTO_EXPOSURE_RUN_UP)
    return share, run_up, float(np.dot(weights, means)), strength


@operator(
    "exposure",
    kind="pointwise",
    summary="Exposure in stops, in linear light; auto pulls an over-exposed frame back.",
    formula="lin(out) = lin(in) * 2**stops (sRGB decoded and encoded); auto: 2**stops = "
    "clip(0.16 / unclipped linear mean, 0.35, 1) ** s, s from the clipped share and the run-up of "
    "levels just below it, with a shoulder above linear 0.6 to the clipped highlights' level",
    reference="a gain in linear light, checked against colour-science's sRGB decoding and encoding "
    "(IEC 61966-2-1)",
    example={"stops": -0.5},
)
def exposure(
    x: np.ndarray,
    ctx: OpContext,
    *,
    stops: Param(
        float,
        0.0,
        "exposure change in stops (each doubles or halves the light); auto = darken a frame whose "
        "highlights clipped, by how much clipped and how bright the rest is (never brightens; a "
        "product shot on white reads the same: in full, for frames known to be over-exposed, else "
        "capped by max_stops)",
        ge=-10,
        le=10,
        words=("auto",),
    ),
    max_stops: Param(
        float,
        None,
        "the most auto darkens, in stops (default: 1.5); a small cap limits what a bright photo that "
        "only looks over-exposed loses",
        gt=0,
        le=1.5,
        only_with={"stops": ("auto",)},
    ),
    headroom: Param(
        float,
        None,
        f"where auto's shoulder puts the clipped highlights, 0..1: 0 at the gain's grey, 1 at white "
        f"(default: {SHOULDER_HEADROOM})",
        ge=0,
        le=1,
        only_with={"stops": ("auto",)},
    ),
) -> np.ndarray:
    """Multiply the light by ``2 ** stops`` (sRGB decoded, scaled, encoded; clipped at white).

    With ``auto`` the change comes from the image (:func:`over_exposure`): nothing when no more
    than 3% of the levels are clipped in the channel with the median share (a cast or a
    saturated colour that clips one channel is no over-exposure), the full correction from 8%,
    which brings the linear mean of the unclipped levels to 0.16 (at most -1.5 stops); and
    nothing where the levels do not run up to the clip (a large white studio background clips
    without a band of near-whites below it). A product shot on white with bright colours still
    reads as over-exposed, so use auto on frames known to be over-exposed. Under a
    correction the highlights roll off along a shoulder, so what was clipped stays the brightest
    part of the frame instead of turning the same grey as the levels just below it.
    ``max_stops`` caps how far auto darkens: a bright photo that only looks over-exposed then
    loses little, while a real over-exposure still comes part of the way back. ``headroom``
    sets where the shoulder puts the clipped highlights, from the gain's level (0) to white
    (1, so a white background stays white). Reports ``stops``, and with auto ``clipped``,
    ``run_up`` and ``strength``.
    """
    if stops == "auto":
        clipped, run_up, mean, strength = over_exposure(ctx.stats)
        least = AUTO_EXPOSURE_MIN_GAIN if max_stops is None else 2.0**-max_stops
        gain = float(np.clip(AUTO_EXPOSURE_TARGET / max(mean, 1e-6), least, 1.0)) ** strength
        ctx.record("clipped", round(clipped, 4))
        ctx.record("run_up", round(run_up, 4))
        ctx.record("strength", round(strength, 4))
        ctx.record("stops", round(math.log2(gain), 4))
        top = SHOULDER_HEADROOM if headroom is None else headroom
        return x if gain == 1.0 else exposure_curve(x, gain, shoulder=True, headroom=top)
    ctx.record("stops", float(stops))
    return x if stops == 0 else exposure_curve(x, 2.0 ** float(stops))
