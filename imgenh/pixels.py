"""Pixel helpers: depths, float conversion, lookup tables and Rec. 709 luma.

The one home of the helpers the pipeline and the operators share. It imports only numpy
and OpenCV, so any module (operators included) can import names from it directly.

Pixels are numpy arrays in OpenCV channel order (BGR), shape ``(H, W)`` or ``(H, W, C)``,
dtype uint8, uint16 or float32 in [0, 1].
"""

from __future__ import annotations

import functools
import mmap
import sys
import threading
from collections.abc import Callable, Hashable

import cv2
import numpy as np

# Rec. 709 luma weights (B, G, R), the digits ImageMagick uses for linked (luminance) statistics.
LUMA_BGR = np.array([0.072186, 0.715158, 0.212656])

# Luma is binned to this many levels (ImageMagick Q16's histogram of intensities).
LUMA_BINS = 65536


def max_value(dtype: np.dtype) -> float:
    """Largest level of an integer dtype; 1.0 for float images."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_float(img: np.ndarray) -> np.ndarray:
    """Integer image -> float32 in [0, 1] (a float image is returned as it is)."""
    if img.dtype == np.float32:
        return img
    out = img.astype(np.float32)
    out *= np.float32(1.0 / max_value(img.dtype))  # in place: one float copy, not two
    return out


# Float values per strip in from_float (~1 MB of float32).
_FLOAT_STRIP_VALUES = 1 << 18

# Float32 values per strip of an operator that makes many float temporaries of each strip
# (~256 KB each): they then stay in a core's L2 cache. Saturation at 12 MP: 64-row strips
# (~3 MB each) took ~1.7x the time of 5-row ones on a 2 MB-L2 Xeon (session 23).
CACHE_STRIP_VALUES = 1 << 16


def strip_rows(img: np.ndarray, values: int = CACHE_STRIP_VALUES) -> int:
    """Rows per strip of ``img`` so that a strip holds about ``values`` values (at least one row).

    Parameters
    ----------
    img : ndarray
        (H, W) or (H, W, C) image cut into strips of rows.
    values : int
        Values (pixels times channels) wanted per strip.
    """
    return max(1, values // max(1, img[:1].size))


def from_float(img: np.ndarray, dtype: np.dtype, full_scale: float = 1.0) -> np.ndarray:
    """Float image in [0, ``full_scale``] -> ``dtype``, rounding half up and saturating.

    Parameters
    ----------
    img : ndarray
        Float levels; values outside [0, ``full_scale``] are clipped.
    dtype : dtype
        uint8, uint16 or float32 (float32 output is divided by ``full_scale``).
    full_scale : float
        The input value that maps to the largest level (e.g. 100 for Lab L*).
    """
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        x = img if full_scale == 1.0 else img * np.float32(1.0 / full_scale)
        return np.clip(x, 0.0, 1.0, dtype=np.float32)
    top = max_value(dtype)
    img = np.asarray(img)
    if img.ndim == 0:
        return from_float(img.reshape(1), dtype, full_scale).reshape(())
    out = np.empty(img.shape, dtype)
    # Strips of rows: the float temporaries stay small (no two full-size float copies).
    rows = strip_rows(img, _FLOAT_STRIP_VALUES)
    for y0 in range(0, img.shape[0], rows):
        # One float32 factor, so a level k / top * full_scale comes back as k exactly.
        scaled = img[y0 : y0 + rows] * np.float32(top / full_scale)
        scaled += np.float32(0.5)
        np.clip(scaled, 0, top, out=scaled)
        out[y0 : y0 + rows] = scaled  # truncation of the non-negative values: round half up
    return out


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma (:data:`LUMA_BGR`) of a BGR float image (a grey image is its own luma)."""
    if img.ndim == 2:
        return img
    out = cv2.transform(img, LUMA_BGR.reshape(1, 3).astype(np.float32))
    # cv2.transform drops the channel axis of a one-channel result.
    return out if out.ndim == 2 else out[..., 0]


# Every 4th pixel of every 4th row: statistics that need no exact count (a mean, where the
# extremes sit) read as well from 1/16 of the pixels.
SAMPLE_STEP = 4


def nearest_sample(img: np.ndarray, step: int = SAMPLE_STEP) -> np.ndarray:
    """Every ``step``-th pixel of every ``step``-th row (at least one of each), as a new array.

    OpenCV's nearest-neighbour shrink by a whole factor is that subsample: ~1.5 ms at 12 MP
    where numpy's strided copy takes ~13. Statistics that need no exact count (a mean, how far
    the extremes sit) read it instead of the whole image.
    """
    h, w = img.shape[:2]
    size = (max(1, w // step), max(1, h // step))
    return cv2.resize(img, size, interpolation=cv2.INTER_NEAREST)


def extreme_channel_counts(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Level counts of each pixel's darkest channel and of its brightest channel.

    Parameters
    ----------
    img : ndarray
        (H, W, C) BGR image: uint8 or uint16 (a count per level), or float32 in [0, 1]
        (counted as :func:`quantised_counts` counts).

    Returns
    -------
    darkest, brightest : ndarray of int64
        Shape (256,), (65536,) or (LUMA_BINS,).
    """
    # numpy on the interleaved channel views: ~2 ms for 0.75 MP where cv2.split alone took ~3.
    channels = [img[..., c] for c in range(img.shape[2])]
    darkest, brightest = functools.reduce(np.minimum, channels), functools.reduce(np.maximum, channels)
    if img.dtype.kind == "f":
        return quantised_counts(darkest), quantised_counts(brightest)
    return level_counts(darkest), level_counts(brightest)


def per_channel(x: np.ndarray, channels: int) -> np.ndarray:
    """Give a pointwise operator's input one column per channel.

    A shared table ``(N,)`` becomes ``(N, C)`` for a colour image, so a per-channel curve
    can set each column; tables ``(N, C)`` and images are returned as they are. Grey
    images (``channels == 1``) are left alone.
    """
    if channels > 1 and x.ndim == 1:
        return np.repeat(x[:, None], channels, axis=1)
    return x


def apply_table(
    img: np.ndarray, table: np.ndarray, dtype: np.dtype | None = None, out: np.ndarray | None = None
) -> np.ndarray:
    """Map an integer image through a table of levels in [0, 1].

    Parameters
    ----------
    img : ndarray
        uint8 or uint16 image.
    table : ndarray
        Shape ``(N,)`` (all channels) or ``(N, C)`` (per channel), N = 256 or 65536.
    dtype : dtype, optional
        Output dtype; the image's own by default (levels rounded and saturated).
    out : ndarray, optional
        A C-contiguous array of ``img``'s shape and the output dtype to write into; it may be
        ``img`` itself (each value is read before it is written). A new array by default.
    """
    dtype = np.dtype(dtype or img.dtype)
    if dtype == np.float32:
        lut = np.clip(table, 0.0, 1.0).astype(np.float32)
    else:
        lut = _rounded_levels(table, dtype)
    if out is None:
        out = np.empty(img.shape, dtype)
    elif out.shape != img.shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {dtype} array of shape {img.shape}")
    channels = 1 if img.ndim == 2 else img.shape[2]
    if img.dtype == np.uint8 and channels <= 4:
        # cv2.LUT takes an 8-bit image and a table of any depth (the output takes the table's).
        if lut.ndim == 1 or channels == 1:
            return cv2.LUT(img, lut if lut.ndim == 1 else np.ascontiguousarray(lut[:, 0]), dst=out)
        return _planar_lut(img, lut, out)
    if lut.ndim == 1:
        out[...] = lut[img]
    elif channels == 1:
        out[...] = lut[:, 0][img]
    else:
        for c in range(channels):
            out[..., c] = lut[:, c][img[..., c]]
    return out


def table_changes(img: np.ndarray, table: np.ndarray) -> bool:
    """True when :func:`apply_table` with ``table`` would change some value of the integer ``img``.

    Finer than :func:`is_identity_table`: a table that moves only levels the image does not
    hold changes nothing. The levels the table moves are marked and looked for strip by strip,
    so an image that changes (almost any, under a table that is not the identity) is told
    from its first strip.

    Parameters
    ----------
    img : ndarray
        uint8 or uint16 image, grey or colour.
    table : ndarray
        As for :func:`apply_table` (levels in [0, 1], rounded to ``img``'s levels).
    """
    lut = _rounded_levels(table, img.dtype)
    channels = 1 if img.ndim == 2 else img.shape[2]
    levels = np.arange(lut.shape[0], dtype=img.dtype)
    moved = per_channel(lut != (levels if lut.ndim == 1 else levels[:, None]), channels)
    if not moved.any():
        return False
    if img.dtype == np.uint8 and channels <= 4:
        # OpenCV's LUT marks the moved levels (one table per channel: a (256, 1, C) table).
        marks = moved.astype(np.uint8).reshape(256, 1, -1)

        def moved_in(rows: np.ndarray) -> bool:
            return cv2.countNonZero(cv2.LUT(rows, marks).reshape(rows.shape[0], -1)) > 0
    else:

        def moved_in(rows: np.ndarray) -> bool:
            flat = rows.reshape(-1, channels)
            return any(moved.reshape(-1, channels)[flat[:, c], c].any() for c in range(channels))

    step = strip_rows(img)
    return any(moved_in(img[y0 : y0 + step]) for y0 in range(0, img.shape[0], step))


def _rounded_levels(table: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A table of levels in [0, 1] as the integer levels of ``dtype`` it writes (rounded, saturated)."""
    top = max_value(dtype)
    return np.clip(np.rint(table * top), 0, top).astype(dtype)


def is_identity_table(table: np.ndarray, dtype: np.dtype) -> bool:
    """True when :func:`apply_table` with ``table`` would give every level of ``dtype`` back unchanged.

    A fused group of pointwise steps that changes nothing (a white balance held back to
    gains of 1, a stretch of strength 0) can then skip its pass over the image.

    Parameters
    ----------
    table : ndarray
        Shape ``(N,)`` or ``(N, C)``, levels in [0, 1], N the number of levels of ``dtype``.
    dtype : dtype
        uint8 or uint16 (always False for float32: a float table is not rounded).
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "ui" or table.shape[0] != int(max_value(dtype)) + 1:
        return False
    lut = _rounded_levels(table, dtype)
    levels = np.arange(lut.shape[0], dtype=dtype).reshape((-1,) + (1,) * (lut.ndim - 1))
    return bool((lut == levels).all())


# Rows per strip of _plane_strips (_planar_lut, channel_counts): three planes (~0.8 MB at 4000 wide) stay in cache.
_LUT_STRIP_ROWS = 64


def _planar_lut(img: np.ndarray, lut: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """One table per channel of an interleaved 8-bit image: ``out[..., c] = lut[img[..., c], c]``.

    OpenCV's multi-channel LUT runs ~15% slower than splitting strips into planes, looking each
    plane up with its own table and merging them back (12 MP: ~15 ms against ~13 ms). ``out``
    may be ``img`` itself: a strip is split into planes before it is written (None: a new array).
    """
    height, width, channels = img.shape
    out = np.empty(img.shape, lut.dtype) if out is None else out
    tables = [np.ascontiguousarray(lut[:, c]) for c in range(channels)]
    looked_up = [np.empty((min(_LUT_STRIP_ROWS, height), width), lut.dtype) for _ in range(channels)]
    for rows, src in _plane_strips(img):
        dst = [p[: rows.stop - rows.start] for p in looked_up]
        for c in range(channels):
            cv2.LUT(src[c], tables[c], dst=dst[c])
        cv2.merge(dst, out[rows])
    return out


def _plane_strips(img: np.ndarray):
    """Yield ``(rows, planes)``: each strip of :data:`_LUT_STRIP_ROWS` rows of an interleaved image,
    split into one contiguous plane per channel (buffers reused from strip to strip)."""
    height, width, channels = img.shape
    planes = [np.empty((min(_LUT_STRIP_ROWS, height), width), img.dtype) for _ in range(channels)]
    for y0 in range(0, height, _LUT_STRIP_ROWS):
        y1 = min(height, y0 + _LUT_STRIP_ROWS)
        src = [p[: y1 - y0] for p in planes]
        cv2.split(img[y0:y1], src)
        yield slice(y0, y1), src


def channel_counts(img: np.ndarray) -> list[np.ndarray]:
    """:func:`level_counts` of every channel of an integer image, in one pass.

    ``cv2.calcHist`` counts a contiguous 8-bit plane about twice as fast as one channel of an
    interleaved image, so an 8-bit image is split into planes strip by strip and each plane's
    counts accumulated (12 MP BGR: ~19 ms against ~39 for three :func:`level_counts`). 16-bit
    channels are counted one by one: there a 65536-bin count per strip costs what it saves.

    Parameters
    ----------
    img : ndarray
        (H, W) or (H, W, C) uint8 or uint16 array.

    Returns
    -------
    list of ndarray of int64, one per channel, shape (256,) or (65536,)
    """
    if img.ndim == 2 or img.shape[2] == 1:
        return [level_counts(img)]
    # Past 2**24 pixels a bin could pass float32's exact integers: round once, as level_counts
    # does, not per strip.
    if img.dtype != np.uint8 or img.shape[0] * img.shape[1] >= 1 << 24:
        return [level_counts(img, channel=c) for c in range(img.shape[2])]
    bins = int(max_value(img.dtype)) + 1
    hists = [np.zeros((bins, 1), np.float32) for _ in range(img.shape[2])]
    for _, planes in _plane_strips(img):
        for plane, hist in zip(planes, hists, strict=True):
            cv2.calcHist([plane], [0], None, [bins], [0, bins], hist=hist, accumulate=True)
    return [hist.ravel().astype(np.int64) for hist in hists]


def level_counts(img: np.ndarray, mask: np.ndarray | None = None, channel: int = 0) -> np.ndarray:
    """Pixel count of every level of one channel of an integer image (optionally only where ``mask``).

    Parameters
    ----------
    img : ndarray
        (H, W) or (H, W, C) uint8 or uint16 array.
    mask : ndarray, optional
        (H, W) bool or uint8 array; only non-zero positions count.
    channel : int
        The channel counted (0 for a grey image).

    Returns
    -------
    ndarray of int64, shape (256,) or (65536,)
    """
    bins = int(max_value(img.dtype)) + 1
    m = None if mask is None else mask.view(np.uint8) if mask.dtype == bool else mask
    # cv2.calcHist counts integer levels exactly and far faster than np.bincount, and reads one
    # channel of an interleaved image in place (no plane copy).
    hist = cv2.calcHist([np.ascontiguousarray(img)], [channel], m, [bins], [0, bins])
    return hist.ravel().astype(np.int64)


def quantised_counts(values: np.ndarray, bins: int = LUMA_BINS) -> np.ndarray:
    """Counts of float levels in [0, 1] rounded to ``bins`` evenly spaced levels.

    A value ``v`` counts at level ``floor(v * (bins - 1) + 0.5)``, clipped to the range.

    Parameters
    ----------
    values : ndarray
        float32 levels, any shape.
    bins : int
        Number of levels (65536 for ImageMagick Q16).

    Returns
    -------
    ndarray of int64, shape (bins,)
    """
    top = bins - 1
    plane = np.ascontiguousarray(values, dtype=np.float32).reshape(-1, 1)
    # Bins of width 1 on the scale v * top, centred on the integers: bin k holds [k - 0.5, k + 0.5).
    scaled = plane * np.float32(top)
    hist = cv2.calcHist([scaled], [0], None, [bins], [-0.5, top + 0.5])
    counts = hist.ravel().astype(np.int64)
    # calcHist drops values outside the range; clipping puts them in the end bins.
    lo, hi, _, _ = cv2.minMaxLoc(scaled)
    if lo < -0.5:
        counts[0] += int(np.count_nonzero(scaled < -0.5))
    if hi >= top + 0.5:
        counts[-1] += int(np.count_nonzero(scaled >= top + 0.5))
    return counts


# Rows per strip for whole-image statistics: the strip's temporaries stay in cache and no
# full-size 16-bit copy is made.
_STRIP_ROWS = 128


# Pixels per 65536-bin count of luma_counts: cv2.calcHist sets up a table of all 65536 levels on
# every call (~0.3 ms), so the luma, made in cache-sized strips, is counted in larger blocks
# (12 MP under a per-channel table: ~56 -> ~43 ms against 128-row strips made and counted alike).
_COUNT_PIXELS = 1 << 21


def luma_counts(img: np.ndarray, table: np.ndarray | None = None) -> np.ndarray:
    """Counts of the Rec. 709 luma of a BGR integer image on 65536 levels (ImageMagick Q16's).

    Each pixel's levels (after ``table`` when given) are taken as 16-bit values, as
    ImageMagick Q16 holds them, and :data:`LUMA_BGR` weighs them with ``cv2.transform``,
    which rounds to the nearest 16-bit level. The image is worked through in strips of rows,
    so no float or 16-bit copy of it is made; the counts equal those of the whole-image computation.

    Parameters
    ----------
    img : ndarray
        (H, W, 3) uint8 or uint16 image.
    table : ndarray, optional
        Pending levels in [0, 1], shape ``(N,)`` or ``(N, 3)`` (see :func:`apply_table`).

    Returns
    -------
    ndarray of int64, shape (65536,)
    """
    lut = _q16_table(img.dtype, table)
    height, width = img.shape[:2]
    # 8-bit: float temporaries in cache-sized strips; 16-bit: the pending table is applied to each
    # strip (its levels rounded anew each time), so strips stay large.
    block_rows = max(1, _COUNT_PIXELS // width)
    step = strip_rows(img) if lut is not None else _STRIP_ROWS
    block = np.empty((min(block_rows, height), width), np.uint16)
    counts = np.zeros(LUMA_BINS, np.int64)
    for y0 in range(0, height, block_rows):
        y1 = min(height, y0 + block_rows)
        for s0 in range(y0, y1, step):  # the float temporaries of a strip stay in cache
            s1 = min(y1, s0 + step)
            block[s0 - y0 : s1 - y0] = _q16_luma(img[s0:s1], table, lut)
        # Counts per block as integers: float32 histogram bins stop being exact above 2**24.
        hist = cv2.calcHist([block[: y1 - y0]], [0], None, [LUMA_BINS], [0, LUMA_BINS])
        counts += hist.ravel().astype(np.int64)
    return counts


def _q16_table(dtype: np.dtype, table: np.ndarray | None) -> np.ndarray | None:
    """An 8-bit image's pending levels as ImageMagick Q16 quanta (uint16), or None for 16-bit input."""
    if dtype != np.uint8:
        return None
    levels = np.arange(256) / 255.0 if table is None else table
    return np.clip(np.rint(levels * 65535.0), 0, 65535).astype(np.uint16)


def _q16_luma(pixels: np.ndarray, table: np.ndarray | None, lut: np.ndarray | None) -> np.ndarray:
    """The Q16 luma of BGR pixels (any 2-D layout), the one definition luma_counts counts.

    ``lut`` is :func:`_q16_table`'s for 8-bit pixels. Each pixel's weighted sum is rounded on
    its own, so a pixel's luma does not depend on its neighbours (the fast route of
    :func:`luma_counts_near` takes it for gathered pixels).
    """
    weights = LUMA_BGR.reshape(1, 3).astype(np.float32)
    if lut is not None:
        # The Q16 quanta as float32 (one shared table, or OpenCV's 3-channel LUT for one per
        # channel) and OpenCV's float transform, rounded to 16 bits, give the 16-bit transform's
        # luma to the bit (all 2**24 colours checked in tests/test_speed_paths_luma.py) at ~3/4
        # of its cost: the 16-bit one-row transform has no SIMD path.
        floats = lut.astype(np.float32)
        plane = cv2.transform(cv2.LUT(pixels, floats if lut.ndim == 1 else floats.reshape(-1, 1, 3)), weights)
        # Rounded half to even, as the 16-bit transform's saturate_cast (sums lie in 0..65535).
        return np.rint(plane, out=plane).astype(np.uint16)
    q16 = pixels if table is None else apply_table(pixels, table, np.uint16)
    return cv2.transform(q16, weights)


# The coarse luma of luma_counts_near (OpenCV's fixed-point 3x3 transform of the 8-bit levels)
# is within this many 8-bit levels of the exact Q16 luma / 257: 0.58 measured over all 2**24
# colours (tests/test_speed_paths_luma.py checks the bound).
COARSE_LUMA_SLACK = 0.75
# Coarse levels either side of a wanted one whose pixels get their exact luma: the least that
# keeps the wanted exact level (within the slack of the coarse one) inside the exact range.
_NEAR_LEVELS = 1
# Refining a pixel costs ~23 ns (find, gather, exact luma), counting the whole image exactly
# ~2.5 ns a pixel, the coarse count ~1: above this share of pixels to refine, the whole count
# is the faster route.
_NEAR_SHARE_LIMIT = 0.04
# Rows of the first look (every 8th row): a photo with a dense end goes straight to the whole count.
_LOOK_STEP = 8
# Gathered pixels are laid out in rows this wide (cv2.remap takes fewer than 32767 columns).
_GATHER_WIDTH = 4096
_COARSE_WEIGHTS = np.repeat(LUMA_BGR.reshape(1, 3), 3, axis=0).astype(np.float32)


def coarse_luma(img: np.ndarray) -> np.ndarray:
    """8-bit Rec. 709 luma of an 8-bit BGR image, within :data:`COARSE_LUMA_SLACK` of the exact one.

    OpenCV's 3x3 transform of 8-bit pixels runs in fixed point, ~2x faster than its one-row
    float transform; the first of the three equal outputs is kept.
    """
    height, width = img.shape[:2]
    out = np.empty((height, width), np.uint8)
    buf = np.empty((min(_STRIP_ROWS, height), width, 3), np.uint8)
    for y0 in range(0, height, _STRIP_ROWS):
        strip = img[y0 : y0 + _STRIP_ROWS]
        part = buf[: strip.shape[0]]
        cv2.transform(strip, _COARSE_WEIGHTS, dst=part)
        cv2.extractChannel(part, 0, dst=out[y0 : y0 + strip.shape[0]])
    return out


def luma_counts_near(
    img: np.ndarray, below: float, above: float, levels: tuple[int, ...] = ()
) -> tuple[np.ndarray, np.ndarray] | None:
    """Q16 luma counts whose running sum is exact near two ranks and some levels (8-bit colour only).

    :func:`luma_counts` gives the exact luma of every pixel (~28 ms at 12 MP). Here the 8-bit
    :func:`coarse_luma` is counted instead (~12 ms), and only the pixels whose coarse level
    lies next to a wanted place get their exact Q16 luma. The others are counted at 257 x
    their coarse level, which never moves one across a level flagged exact, so there
    ``np.cumsum(counts)`` equals the running count of :func:`luma_counts`.

    Parameters
    ----------
    img : ndarray
        (H, W, 3) uint8 image (no pending table: with one, applying it for the coarse luma
        cost as much as the exact count saved).
    below, above : float
        Pixel counts: the wanted places are where the running count from the bottom first
        exceeds ``below`` and where the count from the top first exceeds ``above``.
    levels : tuple of int
        Q16 levels whose running count is wanted too.

    Returns
    -------
    (counts, exact) or None
        ``counts`` int64 (65536,); ``exact`` bool (65536,), True where the running count up to
        and including that level is exact. None when the image is not 8-bit colour (or wider
        or taller than 32766 pixels), or when more than :data:`_NEAR_SHARE_LIMIT` of the pixels
        lie near the wanted places (a photo with a large black area): then :func:`luma_counts`
        is the faster route.
    """
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3 or max(img.shape[:2]) >= 32767:
        return None
    if (
        _selected_share(coarse_luma(img[::_LOOK_STEP]), below, above, levels, img.shape[0])
        > _NEAR_SHARE_LIMIT
    ):
        return None
    coarse = coarse_luma(img)
    hist = cv2.calcHist([coarse], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    selected = _near_levels(hist, below, above, levels)
    if hist[selected].sum() > _NEAR_SHARE_LIMIT * hist.sum():
        return None
    counts = _exact_counts_where(img, cv2.LUT(coarse, selected.astype(np.uint8)))
    # The other pixels at their coarse level's place on the Q16 scale.
    np.add.at(counts, np.arange(256) * 257, np.where(selected, 0, hist))
    return counts, _exact_levels(selected)


def _near_levels(hist: np.ndarray, below: float, above: float, levels: tuple[int, ...]) -> np.ndarray:
    """The coarse levels (bool, 256) whose pixels :func:`luma_counts_near` refines."""
    running = np.cumsum(hist)
    wanted = [
        int(np.searchsorted(running, below, side="right")),
        int(np.searchsorted(running, running[-1] - above, side="left")),
    ] + [int(round(level / 257)) for level in levels]
    selected = np.zeros(256, bool)
    for centre in wanted:
        selected[max(0, centre - _NEAR_LEVELS) : centre + _NEAR_LEVELS + 1] = True
    return selected


def _selected_share(
    sample: np.ndarray, below: float, above: float, levels: tuple[int, ...], rows: int
) -> float:
    """Share of a row sample's pixels :func:`luma_counts_near` would refine (ranks scaled to the sample)."""
    hist = cv2.calcHist([sample], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    scale = sample.shape[0] / rows
    return float(hist[_near_levels(hist, below * scale, above * scale, levels)].sum() / max(hist.sum(), 1))


def _exact_counts_where(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Q16 luma counts of the pixels where ``mask`` is non-zero (each pixel's own exact luma)."""
    counts = np.zeros(LUMA_BINS, np.int64)
    points = cv2.findNonZero(mask)
    if points is None:
        return counts
    # Gathered by cv2.remap (nearest, integer map): ~2x faster than numpy's fancy indexing.
    n = points.shape[0]
    rows = -(-n // _GATHER_WIDTH)
    where = np.zeros((rows * _GATHER_WIDTH, 2), np.int16)
    where[:n] = points.reshape(-1, 2)
    picked = cv2.remap(img, where.reshape(rows, _GATHER_WIDTH, 2), None, cv2.INTER_NEAREST)
    values = _q16_luma(picked, None, _q16_table(img.dtype, None)).reshape(-1)[:n]
    counts += np.bincount(values, minlength=LUMA_BINS)
    return counts


def _exact_levels(selected: np.ndarray) -> np.ndarray:
    """Q16 levels whose running count :func:`luma_counts_near` gets exactly, given the selected coarse levels.

    For a run a..b of selected coarse levels, a pixel of coarse level a - 1 or below has an
    exact luma of at most 257 (a - 1 + slack), one of level b + 1 or above at least
    257 (b + 1 - slack): between the two every pixel on either side is counted where it belongs.
    """
    exact = np.zeros(LUMA_BINS, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], selected.astype(np.int8), [0]])))
    for a, end in zip(edges[::2], edges[1::2], strict=True):
        b = end - 1
        lo = 0 if a == 0 else int(np.ceil(257 * (a - 1 + COARSE_LUMA_SLACK)))
        hi = LUMA_BINS - 1 if b == 255 else int(np.ceil(257 * (b + 1 - COARSE_LUMA_SLACK))) - 1
        exact[lo : hi + 1] = True
    return exact


# Every 8-bit BGR colour, as the code b | g << 8 | r << 16 (a pixel's bytes read as a little-endian
# integer, alpha masked off).
COLOURS_8BIT = 1 << 24
_CODE_MASK = 0x00FFFFFF
# Pixels per strip of a table lookup: the packed strip and its looked-up codes stay in cache.
_LOOKUP_PIXELS = 1 << 16


class ColourTables:
    """A per-colour function of 8-bit BGR images, through a table of every colour for large images.

    A function whose result at a pixel depends on that pixel's colour alone (and on its
    parameters, ``key``) is a table of its result for all 2**24 colours (64 MB, packed as
    uint32); looked up it costs one gather where the function may take ~20 float passes
    (saturation at 12 MP: ~40-55 against ~140-185 ms). Building the table costs the function
    on 2**24 pixels (~210-300 ms for saturation), once per process and key (only the latest
    table is kept).

    The route is chosen by the image's size alone, so an image's result does not depend on
    what the process did before (which images a worker happened to get): a float SIMD loop
    and its scalar tail may round a value's last bit differently, so the function's result
    for a colour can move by one level with the colour's place in a strip (1 pixel of 12 M
    on a corpus photo). Images of at least ``min_pixels`` take the table, made in one fixed
    layout; smaller ones the function itself. At the default (2**23, ~8 MP) a batch pays for
    the table from its second such image per process; a lone 12 MP image costs ~1.8 times
    the function's own time. Safe for threads sharing a process.

    Parameters
    ----------
    min_pixels : int
        Smallest image (pixels) that is looked up in a table.
    """

    def __init__(self, min_pixels: int = 1 << 23):
        self._lock = threading.Lock()
        self.min_pixels = min_pixels
        self._key: Hashable = None
        self._table: np.ndarray | None = None

    def apply(self, img: np.ndarray, key: Hashable, direct: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``direct(img)``, or its table for ``key`` looked up when ``img`` is 8-bit colour of ``min_pixels`` or more.

        Parameters
        ----------
        img : ndarray
            The image; only (H, W, 3) uint8 can take the table route.
        key : hashable
            What ``direct`` depends on besides the pixels (the same key, the same function).
        direct : callable
            The function on an image of any shape of the input's type, pixel by pixel.
        """
        colour8 = img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and sys.byteorder == "little"
        if not colour8 or img.shape[0] * img.shape[1] < self.min_pixels:
            return direct(img)
        return lookup_colours(img, self._table_for(key, direct))

    def _table_for(self, key: Hashable, direct) -> np.ndarray:
        with self._lock:
            if self._table is None or self._key != key:
                self._table = None  # the old table's memory goes before the new one is made
                self._table, self._key = colour_table(direct), key
            return self._table


def _packed(img: np.ndarray) -> np.ndarray:
    """(H, W) uint32: each pixel of an 8-bit BGR image as ``b | g << 8 | r << 16 | a << 24``, alpha 255."""
    return cv2.cvtColor(img, cv2.COLOR_BGR2BGRA).view(np.uint32)[..., 0]


def colour_table(direct: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``direct`` on every 8-bit BGR colour: uint32 (2**24,), entry ``code`` the packed result for that colour.

    Made in blocks of 16 red levels (1 M colours, ~3 MB): no full-size image of all colours.
    """
    # A mapping of its own, not the heap: the freed-memory setting keeps heap memory mapped, and a
    # 64 MB block there left holes the next frames did not fit (a 12 MP run: +96 MB peak RSS, not +64).
    table = np.frombuffer(mmap.mmap(-1, COLOURS_8BIT * 4), np.uint32)
    levels = np.arange(256, dtype=np.uint8)
    reds = 16
    block = np.empty((reds, 256, 256, 3), np.uint8)  # (red, green, blue): code order
    block[..., 0] = levels[None, None, :]
    block[..., 1] = levels[None, :, None]
    for r0 in range(0, 256, reds):
        block[..., 2] = levels[r0 : r0 + reds, None, None]
        out = direct(block.reshape(reds * 256, 256, 3))
        table[r0 << 16 : (r0 + reds) << 16] = _packed(out).reshape(-1)
    return table


def lookup_colours(img: np.ndarray, table: np.ndarray) -> np.ndarray:
    """An 8-bit BGR image through a :func:`colour_table`: each pixel's colour replaced by its entry.

    Strip by strip into reused buffers: each strip packed into codes (alpha masked off),
    gathered from the table, and unpacked into the result (12 MP: ~40 ms; new buffers per
    strip and numpy's bounds-checked gather took ~57).
    """
    height, width = img.shape[:2]
    out = np.empty_like(img)
    step = max(1, _LOOKUP_PIXELS // max(1, width))
    packed = np.empty((min(step, height), width, 4), np.uint8)
    found = np.empty((min(step, height), width), np.uint32)
    for y0 in range(0, height, step):
        rows = slice(y0, min(height, y0 + step))
        n = rows.stop - rows.start
        codes = cv2.cvtColor(img[rows], cv2.COLOR_BGR2BGRA, dst=packed[:n]).view(np.uint32)[..., 0]
        np.bitwise_and(codes, _CODE_MASK, out=codes)
        np.take(table, codes, out=found[:n], mode="clip")  # every code is in range: no bounds check
        cv2.cvtColor(found[:n].view(np.uint8).reshape(n, width, 4), cv2.COLOR_BGRA2BGR, dst=out[rows])
    return out
