"""Local corrections that hold back: shadows/highlights, document flattening, chroma noise, JPEG blocks.

Each operator here changes an image only where its own measurement says something is wrong:
a region darker than mid-grey on a large scale (:func:`shadows_highlights`), paper lit
unevenly (:func:`flatten`), colour noise that luma does not explain (:func:`denoise_chroma`),
steps across JPEG's 8x8 grid smaller than a real edge (:func:`deblock`). A flat mid-grey image,
an evenly lit page, a grey image and an image without block steps come back unchanged.

They work in float32 in [0, 1] (no float64 image); ``denoise_chroma`` and ``shadows_highlights``
are ``native`` operators that convert inside, so an image they leave alone costs no conversion
and the pointwise steps around them still fuse into one table. Large images compute their
smooth masks on a copy of at most :data:`WORK_SIDE` pixels a side, upsampled with the
guided filter's own linear model (He & Sun 2015, "Fast guided filter"), so edges stay sharp.
"""

from __future__ import annotations

import cv2
import numpy as np

from imgenh.ops.color import linear_to_srgb, srgb_to_linear
from imgenh.ops.contract import OpContext, ramp, unordered_range
from imgenh.ops.noise import blockiness, luma_noise_sigma
from imgenh.ops.registry import GIVEN, Param, operator
from imgenh.pixels import from_float, luma, max_value, to_float

WORK_SIDE = 512  # masks of larger images are computed on a copy this size (longer side)
_BASE_FLOOR = 0.02  # shadows_highlights: bases below this count as this (bounds the gain)
_GAIN_RANGE = (0.25, 4.0)  # shadows_highlights: at most two stops either way
_ILLUMINATION_FLOOR = 1.0 / 255.0  # flatten: never divide by less than one 8-bit level
_DEBLOCK_BAND = 64  # deblock: rows per band of the column pass


# ---------------------------------------------------------------------------------------------
# guided filter (He, Sun, Tang 2010), the edge-aware smoother shared by the operators below
# ---------------------------------------------------------------------------------------------


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2 radius + 1)^2 window, borders reflected (OpenCV's BORDER_REFLECT_101)."""
    return cv2.boxFilter(x, cv2.CV_32F, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT_101)


def guided_coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float):
    """The guided filter's local linear model ``q = a * guide + b`` (He et al. 2010, Algorithm 1).

    Parameters
    ----------
    guide, src : ndarray
        float32 (H, W) planes.
    radius : int
        Window radius in pixels (window side ``2 radius + 1``).
    eps : float
        Regularisation: edges whose local variance is well above ``eps`` are kept.

    Returns
    -------
    mean_a, mean_b : ndarray
        The window means of the coefficients; ``mean_a * guide + mean_b`` is the filtered plane.
    """
    radius = max(1, int(radius))
    mean_i, mean_p = _box(guide, radius), _box(src, radius)
    cov_ip = _box(guide * src, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-preserving smoothing of ``src`` steered by ``guide`` (He et al. 2010), float32.

    Images longer than :data:`WORK_SIDE` are filtered on an area-shrunk copy (radius scaled
    with it) and the coefficients upsampled bilinearly before ``a * guide + b`` at full size
    (He & Sun 2015); smaller images are filtered directly.
    """
    h, w = guide.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale >= 1.0:
        mean_a, mean_b = guided_coefficients(guide, src, radius, eps)
        return mean_a * guide + mean_b
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small_i = cv2.resize(guide, size, interpolation=cv2.INTER_AREA)
    small_p = small_i if src is guide else cv2.resize(src, size, interpolation=cv2.INTER_AREA)
    mean_a, mean_b = guided_coefficients(small_i, small_p, max(1, round(radius * scale)), eps)
    mean_a = cv2.resize(mean_a, (w, h), interpolation=cv2.INTER_LINEAR)
    mean_b = cv2.resize(mean_b, (w, h), interpolation=cv2.INTER_LINEAR)
    return mean_a * guide + mean_b


def _radius_pixels(fraction: float, shape: tuple[int, ...]) -> int:
    """A radius given as a fraction of the shorter side, in pixels (at least 1)."""
    return max(1, round(fraction * min(shape[0], shape[1])))


# ---------------------------------------------------------------------------------------------
# shadows / highlights
# ---------------------------------------------------------------------------------------------


def shadow_highlight_gain(base: np.ndarray, shadows: float, highlights: float) -> np.ndarray:
    """Per-pixel gain from the smooth base luma (Moroney 2000's non-linear masking, split in two).

    ``e = 2 ** (highlights * max(2 base - 1, 0) - shadows * max(1 - 2 base, 0))`` is the exponent
    a pixel's neighbourhood gets (below 1 brightens, above 1 darkens; 1 at mid-grey), and the
    gain is ``b ** (e - 1)`` with ``b = max(base, 0.02)``, i.e. ``b ** e / b``, limited to two stops.
    """
    b = np.maximum(base, np.float32(_BASE_FLOOR))
    up = np.maximum(np.float32(1.0) - 2.0 * b, 0.0) * np.float32(shadows)
    down = np.maximum(2.0 * b - np.float32(1.0), 0.0) * np.float32(highlights)
    exponent = np.exp2(down - up) - np.float32(1.0)
    gain = np.exp(exponent * np.log(b))
    return np.clip(gain, *_GAIN_RANGE).astype(np.float32, copy=False)


# dark_range: the share of a frame in deep shadow, read on a coarse map of linear luma (each cell
# the mean of about 1/1000 of the frame, slightly smoothed): the cells DARK_STOPS or more below the
# brightest tenth. Clean photos read 0-0.15 (0.2-0.47 for a few with a large shaded area or a
# silhouette); the lower half of a frame 2.7 stops darker reads 0.15-0.5 (benchmarks/quality.py).
DARK_STOPS = 3.0
DARK_MAP_SIDE = 32


def dark_share(img: np.ndarray) -> float:
    """Share (0..1) of the frame in deep shadow: :data:`DARK_STOPS` below its brightest tenth.

    Parameters
    ----------
    img : ndarray
        BGR or grey; uint8, uint16 or float32 in [0, 1].
    """
    h, w = img.shape[:2]
    k = max(1, min(h, w) // (4 * DARK_MAP_SIDE))  # a whole-factor shrink on the stored levels first
    small = cv2.resize(img, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA) if k > 1 else img
    light = srgb_to_linear(to_float(small))
    y = luma(light.astype(np.float32, copy=False))
    scale = DARK_MAP_SIDE / max(y.shape)
    size = (max(1, round(y.shape[1] * scale)), max(1, round(y.shape[0] * scale)))
    cells = cv2.GaussianBlur(cv2.resize(y, size, interpolation=cv2.INTER_AREA), (0, 0), 1.5)
    return float(np.mean(cells < np.percentile(cells, 90) * 2.0**-DARK_STOPS))


# backlight_range: zone metering, as a camera's backlight detection does: how many stops the
# brightest tones of the lower part of the frame (its bottom BACKLIGHT_ZONE) sit below those of the
# upper part (99th percentile of linear luma in each). A subject in the shade of a bright sky reads
# well above 0; most scenes read about 0 (their highlights are spread over the frame), a sunset
# over dark land 1-2.3, and a lower half 2.7 stops darker about 2.7 more than its clean photo
# (benchmarks/quality.py's dev sets: 6 of 96 clean photos above 1.5, 93 of 96 backlit ones). Read
# on about 256 samples across the shorter side.
BACKLIGHT_ZONE = 0.4
BACKLIGHT_MAP_SIDE = 64
_LUMA_FLOOR = 1e-4  # linear luma: a black zone counts as this (bounds the stops)


def backlight_stops(img: np.ndarray) -> float:
    """Stops by which the lower part's highlights sit below the upper part's (zone metering).

    Parameters
    ----------
    img : ndarray
        BGR or grey; uint8, uint16 or float32 in [0, 1].

    Returns
    -------
    float
        ``log2(p99(top) / p99(bottom))`` of linear luma over the top and bottom
        :data:`BACKLIGHT_ZONE` of the rows (sampled on a regular grid of at least
        ``4 * BACKLIGHT_MAP_SIDE`` points across the shorter side); negative when the bottom is
        the brighter.
    """
    # Every k-th pixel of every k-th row, not an area shrink: the metering then costs ~1 ms at 12 MP
    # where a shrink passes over the whole frame (~13 ms), and a 99th percentile of 100 000 samples
    # is as steady.
    k = max(1, min(img.shape[:2]) // (4 * BACKLIGHT_MAP_SIDE))
    light = srgb_to_linear(to_float(np.ascontiguousarray(img[::k, ::k])))
    y = luma(light.astype(np.float32, copy=False))
    rows = max(1, int(round(y.shape[0] * BACKLIGHT_ZONE)))
    top = float(np.percentile(y[:rows], 99)) + _LUMA_FLOOR
    bottom = float(np.percentile(y[-rows:], 99)) + _LUMA_FLOOR
    return float(np.log2(top / bottom))


def _range_check(p: dict) -> str | None:
    return unordered_range(p, dark_range=("none", "full"), backlight_range=("none", "full"))


@operator(
    "shadows_highlights",
    kind="native",
    summary="Lift shadows and pull highlights by an edge-aware luma mask; mid-grey areas stay as they are.",
    formula="base = guided(luma, luma, radius, eps); e = 2^(highlights*max(2base-1,0) - shadows*max(1-2base,0)); "
    "out = in * clip(max(base,0.02)^(e-1), 1/4, 4), gain lowered so no channel passes 1",
    reference="Moroney 2000 (local colour correction by non-linear masking) on a He et al. 2010 guided-filter "
    "mask; checked against a numpy implementation of both",
    example={"shadows": 0.8, "highlights": 0.0, "radius": 0.04},
    check=_range_check,
)
def shadows_highlights(
    img: np.ndarray,
    ctx: OpContext,
    *,
    shadows: Param(float, 0.8, "lift of dark neighbourhoods (0 = none; 1 = gamma 0.5 on black)", ge=0, le=3),
    highlights: Param(float, 0.0, "pull of bright neighbourhoods (0 = none)", ge=0, le=3),
    radius: Param(float, 0.04, "mask radius as a fraction of the shorter side", gt=0, le=0.5),
    eps: Param(float, 0.01, "edge-preservation of the mask (smaller keeps weaker edges)", gt=0, le=1),
    dark_range: Param(
        list,
        None,
        "[none, full]: lift shadows only as far as the frame has a large part in deep shadow (the share "
        "of a coarse linear-luma map 3 stops below its brightest tenth): none at or below none, all from "
        "full; a backlit subject reads 0.15-0.5, most photos less",
        item=float,
        length=2,
        ge=0,
        le=1,
    ),
    backlight_range: Param(
        list,
        None,
        "[none, full] in stops: lift shadows only as far as the lower part of the frame is backlit, its "
        "brightest tones this far below the upper part's (zone metering: 99th percentile of linear luma "
        "over the bottom and top 40%), and only in that lower part (faded in from 40% to 60% of the "
        "height; the upper part is left as it is): none at or below none, all from full; most photos read "
        "about 0, a sunset over dark land 1-2.3",
        item=float,
        length=2,
        ge=-10,
        le=10,
    ),
    backlight_lift: Param(
        float,
        None,
        "with backlight_range: lift the lower part in linear light by the stops the meter reads, at most "
        "this many, where its edge-aware neighbourhood is dark, instead of the shadows curve (which lifts "
        "a backlit subject about a stop and a half); shadows scales it",
        gt=0,
        le=4,
        only_with={"backlight_range": GIVEN},
    ),
):
    """Shadows/highlights operator; see :func:`shadow_highlight_gain`.

    ``dark_range`` scales ``shadows`` by how much of the frame lies in deep shadow
    (:func:`dark_share`, reported as ``dark_share``), ``backlight_range`` by how far the lower
    part's highlights sit below the upper part's (:func:`backlight_stops`, reported as
    ``backlight_stops``, and then lifts only the lower zone: :func:`lower_zone_weight`; a
    ``highlights`` pull still acts on the whole frame); with
    either, the ``shadows`` applied are reported too. With ``backlight_lift`` the lower part is
    lifted by :func:`backlit_lift` instead (the stops reported as ``lift``), then ``highlights``
    pulls as before. An image the step leaves alone comes back as it is (the same array, at its
    own depth).
    """
    if dark_range is not None:
        share = dark_share(img)
        shadows *= ramp(share, *dark_range)
        ctx.record("dark_share", round(share, 4))
    if backlight_range is not None and shadows > 0.0:
        stops = backlight_stops(img)
        shadows *= ramp(stops, *backlight_range)
        ctx.record("backlight_stops", round(stops, 3))
    if dark_range is not None or backlight_range is not None:
        ctx.record("shadows", round(shadows, 4))
    if shadows == 0.0 and highlights == 0.0:
        return img
    out = to_float(img)
    if backlight_lift is not None and shadows > 0.0:
        lift = shadows * min(stops, backlight_lift)
        ctx.record("lift", round(lift, 3))
        if lift > 0.0:
            out = backlit_lift(out, lift, radius, eps)
        shadows = 0.0
        if highlights == 0.0:
            return out if img.dtype == np.float32 else from_float(out, img.dtype)
    rows = lower_zone_weight(img.shape[0]) if backlight_range is not None else None
    out = _shadows_highlights(out, shadows, highlights, radius, eps, rows)
    return out if img.dtype == np.float32 else from_float(out, img.dtype)


def backlit_lift(img: np.ndarray, stops: float, radius: float, eps: float) -> np.ndarray:
    """Lift a backlit lower part by ``stops`` in linear light, where its neighbourhood is dark.

    The gain is ``1 + (2 ** stops - 1) * row * dark`` per pixel: ``row`` is
    :func:`lower_zone_weight`; ``dark`` ramps from 0 where the edge-aware base (a guided filter of
    linear luma, ``radius`` and ``eps`` as in :func:`shadows_highlights`) sits ``stops / 2`` below
    the upper zone's highlights (its 99th percentile, on the meter's sampling grid) to 1 at
    ``stops`` below, so what is lit in the lower part (a bright sky in water, a lamp) keeps its
    level. The gain is lowered where it would push a channel past white, so hue and saturation
    hold.

    Parameters
    ----------
    img : ndarray
        float32 BGR or grey in [0, 1] (sRGB levels).
    stops : float
        The lift where the lower part is dark, > 0.
    radius, eps : float
        The mask's radius (a fraction of the shorter side) and edge preservation.

    Returns
    -------
    ndarray
        float32, same shape, in [0, 1].
    """
    light = srgb_to_linear(img).astype(np.float32, copy=False)
    y = luma(light)
    base = guided_filter(y, y, _radius_pixels(radius, img.shape), eps)
    k = max(1, min(y.shape) // (4 * BACKLIGHT_MAP_SIDE))  # the meter's sampling grid
    top_zone = y[: max(1, int(round(y.shape[0] * BACKLIGHT_ZONE))) : k, ::k]
    top = float(np.percentile(top_zone, 99)) + _LUMA_FLOOR
    below = np.log2(np.float32(top) / np.maximum(base, np.float32(_LUMA_FLOOR)))
    dark = np.clip((below - np.float32(stops / 2)) / np.float32(stops / 2), 0.0, 1.0, out=below)
    rows = lower_zone_weight(img.shape[0])[:, None]
    gain = np.float32(1.0) + np.float32(2.0**stops - 1.0) * rows * dark
    # Channel by channel, not .max(axis=2): a reduction over the last axis is ~10x slower.
    peak = np.maximum(np.maximum(light[..., 0], light[..., 1]), light[..., 2]) if light.ndim == 3 else light
    headroom = np.float32(1.0) / np.maximum(peak, np.float32(1e-6))  # not in place: grey peak is light
    np.minimum(gain, np.maximum(headroom, np.float32(1.0), out=headroom), out=gain)
    light *= gain[..., None] if light.ndim == 3 else gain
    out = linear_to_srgb(light)
    return np.clip(out, 0.0, 1.0, out=out)


def lower_zone_weight(height: int) -> np.ndarray:
    """Per-row weight of a backlit lift: 0 over the upper zone, 1 over the lower, smoothstep between.

    The zones are the ones :func:`backlight_stops` compares (top and bottom
    :data:`BACKLIGHT_ZONE` of the rows), so the lift goes only where the meter found the shade.
    """
    t = (np.arange(height, dtype=np.float32) + np.float32(0.5)) / np.float32(height)
    x = np.clip((t - BACKLIGHT_ZONE) / (1.0 - 2.0 * BACKLIGHT_ZONE), 0.0, 1.0)
    return (x * x * (3.0 - 2.0 * x)).astype(np.float32)


def _shadows_highlights(
    img: np.ndarray,
    shadows: float,
    highlights: float,
    radius: float,
    eps: float,
    row_weight: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`shadows_highlights` on a float32 image in [0, 1]; ``row_weight`` fades the lift by row."""
    y = luma(img)
    base = guided_filter(y, y, _radius_pixels(radius, img.shape), eps)
    gain = shadow_highlight_gain(base, shadows, highlights)
    if row_weight is not None:  # the lift (gains above 1) fades by row; a highlights pull stays whole
        faded = np.float32(1.0) + (gain - np.float32(1.0)) * row_weight[:, None]
        gain = np.where(gain > 1.0, faded, gain)
    # Where a brightening gain would push a channel past white, lower it: hue and saturation hold.
    peak = img.max(axis=2) if img.ndim == 3 else img
    headroom = np.float32(1.0) / np.maximum(peak, np.float32(1e-6))
    gain = np.where(gain > 1.0, np.minimum(gain, np.maximum(headroom, 1.0)), gain)
    out = img * (gain[..., None] if img.ndim == 3 else gain)
    return np.clip(out, 0.0, 1.0, out=out)


# ---------------------------------------------------------------------------------------------
# flatten (uneven paper lighting)
# ---------------------------------------------------------------------------------------------


def paper_illumination(img: np.ndarray, size: float) -> np.ndarray:
    """Estimate how the paper is lit: a large closing (removes ink) of a shrunk copy, smoothed.

    Per channel, on a copy of at most :data:`WORK_SIDE` pixels a side (area averaging): a
    morphological closing with an elliptic element ``size`` x the longer side across (borders
    replicated), a Gaussian blur with sigma of half that width, then a bilinear resize back.

    Returns
    -------
    ndarray
        float32, same shape as ``img``.
    """
    h, w = img.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    small_size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(img, small_size, interpolation=cv2.INTER_AREA) if scale < 1.0 else img
    side = max(3, 2 * round(size * max(small_size) / 2) + 1)
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
    closed = cv2.morphologyEx(small, cv2.MORPH_CLOSE, element, borderType=cv2.BORDER_REPLICATE)
    smooth = cv2.GaussianBlur(closed, (0, 0), side / 2.0, borderType=cv2.BORDER_REPLICATE)
    if scale < 1.0:
        smooth = cv2.resize(smooth, (w, h), interpolation=cv2.INTER_LINEAR)
    return smooth.reshape(img.shape)


@operator(
    "flatten",
    kind="float",
    summary="Even out uneven paper lighting: divide by the paper's estimated illumination (documents).",
    formula="illum = blur(close(shrink(in), ellipse size*long side)); out = clip(white * in / max(illum, 1/255))",
    reference="divide by a morphological-closing background (scipy.ndimage.grey_closing in the test); "
    "a synthetic page under a known light gradient comes out flat",
    example={"size": 0.05, "white": 1.0},
)
def flatten(
    img: np.ndarray,
    ctx: OpContext,
    *,
    size: Param(
        float, 0.05, "closing width as a fraction of the longer side (wider than the ink)", gt=0, le=0.5
    ),
    white: Param(float, 1.0, "level the paper is brought to", gt=0, le=1),
):
    """Flatten operator; see :func:`paper_illumination`."""
    illumination = np.maximum(paper_illumination(img, size), np.float32(_ILLUMINATION_FLOOR))
    out = img * (np.float32(white) / illumination)
    return np.clip(out, 0.0, 1.0, out=out)


# ---------------------------------------------------------------------------------------------
# chroma noise and JPEG blocks
# ---------------------------------------------------------------------------------------------


@operator(
    "denoise_chroma",
    kind="native",
    summary="Smooth only colour noise: guided-filter Cr and Cb (YCrCb) steered by luma; luma untouched.",
    formula="Y, Cr, Cb = YCrCb(in); Cr' = guided(Y, Cr, radius, eps), Cb' likewise; out = BGR(Y, Cr', Cb')",
    reference="He et al. 2010 guided filter on OpenCV's YCrCb (Rec. 601); checked against numpy formulas",
    example={"radius": 3, "eps": 0.002},
)
def denoise_chroma(
    img: np.ndarray,
    ctx: OpContext,
    *,
    radius: Param(int, 3, "window radius in pixels", ge=1, le=50, pixels=True),
    eps: Param(float, 0.002, "edge-preservation (luma variance above this keeps colour edges)", gt=0, le=1),
    strength: Param(
        float,
        1.0,
        "share of the smoothing applied: 0 = none, 1 = all; auto = by how noisy (luma noise sigma) or "
        "blocky (JPEG grid) the image is, so a clean photo is left as it is",
        ge=0,
        le=1,
        words=("auto",),
    ),
    block_radius: Param(
        int,
        None,
        "window radius where the JPEG grid, not noise, sets strength auto (default: radius); a JPEG's "
        "colour comes in 16-pixel blocks, coarser than noise grain",
        ge=1,
        le=50,
        pixels=True,
        only_with={"strength": ("auto",)},
    ),
):
    """Chroma-noise operator: a grey image has no chroma and comes back as it is.

    Native, not float: it returns the image at its own depth, so the pointwise steps that
    usually follow (white balance, stretch) still fuse into one lookup table instead of
    running on a float image (at 12 MP: ~0.8 s saved in `default`). Below full ``strength``
    the result is blended with the input; ``auto`` takes it from :func:`chroma_noise_strength`
    (reported with the two measures it reads); with ``block_radius`` the window widens to it
    where the JPEG grid, not the noise, sets that strength (reported as ``radius``): JPEG keeps
    colour at half resolution in 8x8 blocks, so its colour steps are 16 pixels apart, while
    noise grain is a pixel or two. An image it leaves alone (grey, or ``strength``
    0) comes back as it is: the same array, not a copy (~7 ms saved on a clean 12 MP photo).
    """
    if img.ndim == 2:
        return img
    if strength == "auto":
        strength, sigma, blocks = chroma_noise_strength(img, ctx)
        ctx.record("noise_sigma", round(sigma, 3))
        ctx.record("blockiness", round(blocks, 3))
        ctx.record("strength", round(strength, 4))
        if block_radius is not None and ramp(blocks, *AUTO_BLOCKINESS) > ramp(sigma, *AUTO_NOISE_SIGMA):
            radius = block_radius
            ctx.record("radius", radius)
    if strength == 0.0:
        return img
    smoothed = _denoise_chroma_full(img, radius, eps)
    if strength < 1.0:
        cv2.addWeighted(img, 1.0 - strength, smoothed, strength, 0.0, dst=smoothed)
    return smoothed


# strength: auto. Smoothing chroma costs a clean photo ~0.2-0.4 CIEDE2000 (fine colour detail goes)
# and gains about as much on a noisy or heavily compressed one, so it is applied by how much there
# is to remove: luma noise sigma ramping 4 -> 7 levels (colour noise comes with luma noise; JPEG's
# halved chroma hides it from a direct estimate), or the JPEG grid's blockiness ramping 1.3 -> 2.0
# (clean photos read 1.0-1.25, quality 12 reads 1.5-7). Chosen on benchmarks/quality.py's tuning set.
AUTO_NOISE_SIGMA = (4.0, 7.0)
AUTO_BLOCKINESS = (1.3, 2.0)


def chroma_noise_strength(img: np.ndarray, ctx: OpContext | None = None) -> tuple[float, float, float]:
    """How much chroma smoothing an image calls for (``denoise_chroma strength: auto``).

    Parameters
    ----------
    img : ndarray, shape (H, W, 3)
        BGR, uint8, uint16 or float32.
    ctx : OpContext, optional
        The step's context: the noise sigma is then read once per image
        (:func:`imgenh.ops.noise.luma_noise_sigma`).

    Returns
    -------
    strength : float
        0..1, the larger of the two ramps (:data:`AUTO_NOISE_SIGMA`, :data:`AUTO_BLOCKINESS`).
    sigma : float
        Luma noise sigma in 8-bit levels (:func:`imgenh.ops.noise.luma_noise_sigma`).
    blocks : float
        JPEG grid blockiness (:func:`imgenh.ops.noise.blockiness`).
    """
    sigma = luma_noise_sigma(img, ctx)
    blocks = blockiness(img)
    strength = max(ramp(sigma, *AUTO_NOISE_SIGMA), ramp(blocks, *AUTO_BLOCKINESS))
    return strength, sigma, blocks


def _denoise_chroma_full(img: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """The guided filter of Cr and Cb at full strength (small images whole, large ones in strips)."""
    h, w = img.shape[:2]
    if max(h, w) <= WORK_SIDE:
        ycc = cv2.cvtColor(to_float(img), cv2.COLOR_BGR2YCrCb)
        y = np.ascontiguousarray(ycc[..., 0])
        for c in (1, 2):
            ycc[..., c] = guided_filter(y, np.ascontiguousarray(ycc[..., c]), radius, eps)
        return from_float(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR), img.dtype)
    return _denoise_chroma_strips(img, radius, eps)


_CHROMA_STRIP_ROWS = 32  # rows per strip: the float temporaries of a strip stay in cache
_AREA_STRIP_ROWS = 64  # rows per strip of _area_means' integral (~3 MB of int32 at 4000 wide)


def _strips(height: int) -> list[slice]:
    return [slice(y, min(y + _CHROMA_STRIP_ROWS, height)) for y in range(0, height, _CHROMA_STRIP_ROWS)]


# OpenCV's YCrCb (Rec. 601) for float images: Y weights (B, G, R), chroma offset, and the inverse
# map's chroma columns: (B, G, R) = Y + _CR_TO_BGR * (Cr - 0.5) + _CB_TO_BGR * (Cb - 0.5).
_Y_BGR = (0.114, 0.587, 0.299)
_CHROMA_DELTA = 0.5
_CR_TO_BGR = np.array([0.0, -0.714, 1.403], np.float32)
_CB_TO_BGR = np.array([1.773, -0.344, 0.0], np.float32)


def _area_means(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area means of a colour image's levels on a ``size`` grid (OpenCV's INTER_AREA shrink), float32.

    The image's integral (running sums) read at the cell corners gives every cell's sum, exact
    for any ratio. On 8-bit images it is much cheaper than OpenCV's area resize at a non-integer
    ratio (12 MP: ~13 ms against ~25 ms with the float copies that needs); deeper images need
    float64 sums, which cost more than the resize (:func:`_area_shrink`). The integral is taken
    strip by strip (integers, exact); of each strip only the rows around the corners and its last
    row are kept, at the two columns around each corner. An integral is linear between whole rows
    and columns (the pixels between are constant), so a corner between them is read by linear
    interpolation.
    """
    sw, sh = size
    h, w, channels = img.shape
    rows_per = _AREA_STRIP_ROWS
    xs, ys = np.arange(sw + 1) * w / sw, np.arange(sh + 1) * h / sh  # corners, the last exactly w, h
    left = np.minimum(xs.astype(np.int64), w - 1)
    columns = np.concatenate([left, left + 1])
    last = (h - 1) // rows_per
    strip = np.minimum(ys.astype(np.int64) // rows_per, last)  # the strip each corner row is read from
    local = ys - strip * rows_per
    top = np.minimum(local.astype(np.int64), np.minimum(rows_per, h - strip * rows_per) - 1)
    exact_in_32 = img.dtype == np.uint8 and 255 * rows_per * w < 2**31  # a strip's sums fit in int32
    depth = cv2.CV_32S if exact_in_32 else cv2.CV_64F
    frac = (xs - left)[None, :, None]
    read = np.empty((2 * (sh + 1) + last + 1, sw + 1, channels), np.float64)
    at = 0
    for k, y0 in enumerate(range(0, h, rows_per)):
        sums = cv2.integral(img[y0 : y0 + rows_per], sdepth=depth)  # (n + 1, w + 1, C), row 0 zeros
        mine = top[strip == k]
        wanted = np.concatenate([mine, mine + 1, [sums.shape[0] - 1]])
        both = np.take(np.take(sums, wanted, axis=0), columns, axis=1).astype(np.float64)
        read[at : at + wanted.size] = both[:, : sw + 1] + frac * (both[:, sw + 1 :] - both[:, : sw + 1])
        at += wanted.size
    # Rows of `read`: per strip, its corners' upper rows, their lower rows, then its last row.
    counts = np.bincount(strip, minlength=last + 1)
    ends = np.cumsum(2 * counts + 1) - 1
    carry = np.cumsum(read[ends], axis=0) - read[ends]  # the sums of the strips above each strip
    # A corner's upper row: its index + the corners of the strips above (read twice) + their last rows.
    upper = np.arange(sh + 1) + np.repeat(np.cumsum(counts) - counts + np.arange(last + 1), counts)
    grid = read[upper]
    grid += (local - top)[:, None, None] * (read[upper + counts[strip]] - grid)
    grid += carry[strip]
    cells = np.diff(np.diff(grid, axis=0), axis=1)
    return (cells * (sw * sh / (w * h))).astype(np.float32)


def _area_shrink(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area means as :func:`_area_means`, by OpenCV's area resize, which is separable: along the
    rows of each strip of float levels (no full-size float copy), then down the narrow result."""
    sw, sh = size
    narrow = np.empty((img.shape[0], sw, img.shape[2]), np.float32)
    for rows in _strips(img.shape[0]):
        strip = img[rows].astype(np.float32, copy=False)
        narrow[rows] = cv2.resize(strip, (sw, rows.stop - rows.start), interpolation=cv2.INTER_AREA)
    return cv2.resize(narrow, (sw, sh), interpolation=cv2.INTER_AREA)


def _denoise_chroma_strips(img: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """:func:`denoise_chroma` of a large colour image, strip by strip: no full-size float copy.

    The computation of :func:`guided_filter`'s shrunk route on float YCrCb, reordered (equal
    up to float rounding). The shrunk copy is :func:`_area_means` (8 bits) or :func:`_area_shrink`
    of the levels. The filtered chroma is ``a Y + b`` per channel, so going back to BGR is
    ``gain * Y + offset`` per channel, with gain and offset linear in the coefficients: they are
    formed on the small copy and enlarged instead of a and b. OpenCV's bilinear resize is
    separable, so the enlargement runs down the columns once (full height, small width) and along
    the rows strip by strip (down full-height column blocks instead measured ~1.5x slower: the
    multiply and add then miss the cache).
    """
    h, w = img.shape[:2]
    scale = WORK_SIDE / max(h, w)
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
    top = float(max_value(img.dtype))
    # Area means of the levels, then YCrCb: the same as area means of YCrCb (a linear map).
    small = _area_means(img, (sw, sh)) if img.dtype == np.uint8 else _area_shrink(img, (sw, sh))
    small *= np.float32(1.0 / top)
    small = cv2.cvtColor(small, cv2.COLOR_BGR2YCrCb)
    small_y = np.ascontiguousarray(small[..., 0])
    small_radius = max(1, round(radius * scale))
    a_cr, b_cr = guided_coefficients(small_y, np.ascontiguousarray(small[..., 1]), small_radius, eps)
    a_cb, b_cb = guided_coefficients(small_y, np.ascontiguousarray(small[..., 2]), small_radius, eps)
    # gain = 1 + a_cr CR + a_cb CB and offset = top ((b_cr - 0.5) CR + (b_cb - 0.5) CB), per channel.
    to_bgr = np.stack([_CR_TO_BGR, _CB_TO_BGR], axis=1)
    gain = cv2.transform(cv2.merge([a_cr, a_cb]), np.hstack([to_bgr, np.ones((3, 1), np.float32)]))
    shift = -_CHROMA_DELTA * to_bgr.sum(axis=1, keepdims=True)
    offset = cv2.transform(cv2.merge([b_cr, b_cb]), np.hstack([to_bgr, shift]) * np.float32(top))
    tall_gain, tall_offset = (cv2.resize(x, (sw, h), interpolation=cv2.INTER_LINEAR) for x in (gain, offset))
    return _gain_times_y_plus_offset(img, tall_gain, tall_offset)


def _gain_times_y_plus_offset(img: np.ndarray, tall_gain: np.ndarray, tall_offset: np.ndarray) -> np.ndarray:
    """``gain * Y + offset`` per channel, at the image's depth: the (full height, small width) fields
    are enlarged along the rows strip by strip, with Y from the image's levels as they are."""
    h, w = img.shape[:2]
    to_y = np.array([_Y_BGR] * 3, np.float32)  # Y in each of three channels
    depth = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.uint16): cv2.CV_16U}.get(img.dtype, cv2.CV_32F)
    out = np.empty_like(img)
    for rows in _strips(h):
        size = (w, rows.stop - rows.start)
        y = cv2.transform(img[rows].astype(np.float32, copy=False), to_y)
        bgr = cv2.resize(tall_gain[rows], size, interpolation=cv2.INTER_LINEAR)
        cv2.multiply(bgr, y, dst=bgr)
        # The offset added, rounded and saturated to the output depth in one pass.
        cv2.add(
            bgr,
            cv2.resize(tall_offset[rows], size, interpolation=cv2.INTER_LINEAR),
            dst=out[rows],
            dtype=depth,
        )
    if depth == cv2.CV_32F:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def _deblock_axis(x: np.ndarray, threshold: float, block: int, axis: int) -> None:
    """Soften steps across the block boundaries along ``axis``, in place on ``x``.

    The four pixels around every boundary (p1 p0 | q0 q1) are strided views of ``x``, so the
    pass reads and writes only them (no gather, no transposed copy).
    """
    count = (x.shape[axis] - 2) // block  # boundaries at block, 2 block, ... with q1 inside
    if count <= 0:
        return

    def side(offset: int) -> np.ndarray:
        index = [slice(None)] * x.ndim
        first = block + offset
        index[axis] = slice(first, first + block * (count - 1) + 1, block)
        return x[tuple(index)]

    p1, p0, q0, q1 = (side(k) for k in (-2, -1, 0, 1))
    step = q0 - p0
    # A step is a block artefact only if it is small and both sides are smooth (else: a real edge).
    calm = np.float32(threshold / 2.0)
    soft = (np.abs(step) < np.float32(threshold)) & (np.abs(p1 - p0) < calm) & (np.abs(q1 - q0) < calm)
    d = np.where(soft, step, np.float32(0.0)) * np.float32(0.125)
    p1 += d
    p0 += 3 * d
    q0 -= 3 * d
    q1 -= d


@operator(
    "deblock",
    kind="float",
    summary="Soften JPEG 8x8 block edges: small steps across the block grid become ramps, real edges stay.",
    formula="at each grid boundary (p1 p0 | q0 q1), d = q0 - p0; if |d| < threshold and |p1-p0|, |q1-q0| "
    "< threshold/2: p1 += d/8, p0 += 3d/8, q0 -= 3d/8, q1 -= d/8 (columns, then rows)",
    reference="the formula (a simplified H.264 in-loop deblocking decision); checked against a plain loop",
    example={"threshold": 0.04},
)
def deblock(
    img: np.ndarray,
    ctx: OpContext,
    *,
    threshold: Param(
        float, 0.04, "largest step (fraction of full scale) taken for a block edge", gt=0, le=0.5
    ),
    block: Param(
        int, 8, "block size of the grid, anchored at the top-left pixel (JPEG: 8)", ge=4, le=64, pixels=True
    ),
):
    """Deblocking operator; run it first, before any resize or crop moves the grid."""
    out = img.copy()
    # Vertical boundaries (between columns) in bands of rows, so the strided pixels stay in cache.
    for top in range(0, out.shape[0], _DEBLOCK_BAND):
        _deblock_axis(out[top : top + _DEBLOCK_BAND], threshold, block, axis=1)
    _deblock_axis(out, threshold, block, axis=0)  # then horizontal ones
    return np.clip(out, 0.0, 1.0, out=out)
