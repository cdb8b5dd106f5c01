"""Compile a list of steps into stages and apply them to one image.

Pixels are numpy arrays in OpenCV channel order (BGR), shape ``(H, W)`` or ``(H, W, C)``,
dtype uint8, uint16 or float32 in [0, 1]. Consecutive pointwise steps are fused into one
lookup table per channel; the image turns into float32 once, at the first float step,
and back to its own depth once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:  # imgenh.ops imports this module; import only for type checkers
    from imgenh.ops.registry import OpSpec

# Rec. 709 luma weights, the ones ImageMagick uses for linked (luminance) statistics.
LUMA_BGR = np.array([0.072186, 0.715158, 0.212656])


def max_value(dtype: np.dtype) -> float:
    """Largest level of an integer dtype; 1.0 for float images."""
    dtype = np.dtype(dtype)
    return float(np.iinfo(dtype).max) if dtype.kind in "ui" else 1.0


def to_float(img: np.ndarray) -> np.ndarray:
    """Integer image -> float32 in [0, 1] (a float image is returned as it is)."""
    if img.dtype == np.float32:
        return img
    return img.astype(np.float32) * np.float32(1.0 / max_value(img.dtype))


def from_float(img: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float image in [0, 1] -> ``dtype``, rounding to nearest and saturating."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return np.clip(img, 0.0, 1.0, dtype=np.float32)
    top = max_value(dtype)
    scaled = np.clip(img * np.float32(top) + np.float32(0.5), 0, top)
    return scaled.astype(dtype)


def luma(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of a BGR float image (a grey image is its own luma)."""
    if img.ndim == 2:
        return img
    out = cv2.transform(img, LUMA_BGR.reshape(1, 3).astype(np.float32))
    return out if out.ndim == 2 else out[..., 0]


class Stats:
    """Histogram statistics of an image as it stands after a pending lookup table.

    Pointwise operators ask for percentiles and means here. For integer images the
    per-channel histograms are counted once and remapped through the pending table,
    so no pixel is scanned twice; luminance statistics need the pixels themselves and
    materialise the image only when asked.

    Parameters
    ----------
    image : ndarray
        The image before the pending table (integer) or the current float image.
    table : ndarray, optional
        Pending levels, shape ``(N,)`` or ``(N, C)``, for an integer image.
    """

    FLOAT_BINS = 65536

    def __init__(self, image: np.ndarray, table: np.ndarray | None = None):
        self._image = image
        self._table = table
        self.channels = 1 if image.ndim == 2 else image.shape[2]
        self._hist: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def _raw_counts(self, channel: int) -> np.ndarray:
        plane = self._image if self._image.ndim == 2 else self._image[..., channel]
        if self._image.dtype.kind in "ui":
            bins = int(max_value(self._image.dtype)) + 1
            return np.bincount(plane.ravel(), minlength=bins)
        q = np.clip(plane * (self.FLOAT_BINS - 1) + 0.5, 0, self.FLOAT_BINS - 1).astype(np.uint32)
        return np.bincount(q.ravel(), minlength=self.FLOAT_BINS)

    def _levels(self, channel: int, bins: int) -> np.ndarray:
        if self._table is None:
            return np.linspace(0.0, 1.0, bins)
        return self._table if self._table.ndim == 1 else self._table[:, channel]

    def materialise(self) -> np.ndarray:
        """The current image as float32 in [0, 1] (pending table applied)."""
        if self._table is None:
            return to_float(self._image)
        return apply_table(self._image, self._table, np.float32)

    def histogram(self, channel: int | str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Levels and their pixel counts.

        Parameters
        ----------
        channel : int, None or "luma"
            A channel index (BGR order), None for all channels pooled, or "luma" for
            Rec. 709 luminance.

        Returns
        -------
        levels, counts : ndarray
            ``levels`` in [0, 1]; possibly unsorted after a non-monotone table.
        """
        if channel in self._hist:
            return self._hist[channel]
        if channel == "luma" and self.channels >= 3:
            y = luma(self.materialise())
            q = np.clip(y * (self.FLOAT_BINS - 1) + 0.5, 0, self.FLOAT_BINS - 1).astype(np.uint32)
            counts = np.bincount(q.ravel(), minlength=self.FLOAT_BINS)
            result = (np.linspace(0.0, 1.0, self.FLOAT_BINS), counts)
        elif channel is None or channel == "luma":
            parts = [self.histogram(c) for c in range(self.channels)]
            result = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        else:
            counts = self._raw_counts(int(channel))
            result = (self._levels(int(channel), counts.size), counts)
        self._hist[channel] = result
        return result

    def percentile(self, q: float, channel: int | str | None = None) -> float:
        """Smallest level at or below which ``q`` percent of the pixels lie."""
        levels, counts = self.histogram(channel)
        order = np.argsort(levels, kind="stable")
        cum = np.cumsum(counts[order])
        idx = int(np.searchsorted(cum, q / 100.0 * cum[-1], side="left"))
        return float(levels[order][min(idx, len(order) - 1)])

    def mean(self, channel: int | str | None = None) -> float:
        """Mean level of a channel (see :meth:`histogram` for ``channel``)."""
        levels, counts = self.histogram(channel)
        return float(np.dot(levels, counts) / max(counts.sum(), 1))


def per_channel(x: np.ndarray, channels: int) -> np.ndarray:
    """Give a pointwise operator's input one column per channel.

    A shared table ``(N,)`` becomes ``(N, C)`` for a colour image, so a per-channel curve
    can set each column; tables ``(N, C)`` and images are returned as they are. Grey
    images (``channels == 1``) are left alone.
    """
    if channels > 1 and x.ndim == 1:
        return np.repeat(x[:, None], channels, axis=1)
    return x


def apply_table(img: np.ndarray, table: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """Map an integer image through a table of levels in [0, 1].

    Parameters
    ----------
    img : ndarray
        uint8 or uint16 image.
    table : ndarray
        Shape ``(N,)`` (all channels) or ``(N, C)`` (per channel), N = 256 or 65536.
    dtype : dtype, optional
        Output dtype; the image's own by default (levels rounded and saturated).
    """
    dtype = np.dtype(dtype or img.dtype)
    top = max_value(dtype)
    if dtype == np.float32:
        lut = np.clip(table, 0.0, 1.0).astype(np.float32)
    else:
        lut = np.clip(np.rint(table * top), 0, top).astype(dtype)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if img.dtype == np.uint8 and dtype == np.uint8:
        if lut.ndim == 1 or channels == 1:
            return cv2.LUT(img, lut if lut.ndim == 1 else lut[:, 0])
        return cv2.LUT(img, lut.reshape(256, 1, channels))
    if lut.ndim == 1:
        return lut[img]
    if channels == 1:
        return lut[:, 0][img]
    out = np.empty(img.shape, dtype)
    for c in range(channels):
        out[..., c] = lut[:, c][img[..., c]]
    return out


@dataclass
class OpContext:
    """What an operator may ask of the pipeline besides its pixels and parameters.

    Attributes
    ----------
    channels : int
        1 for grey, 3 for colour (alpha is never passed to operators).
    depth_max : float
        Largest level of the image as read (255, 65535), for operators that quantise.
    stats : Stats or None
        Histogram statistics, for pointwise operators.
    values : dict
        Values the operator reports (see :meth:`record`).
    """

    channels: int
    depth_max: float
    stats: Stats | None = None
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def is_color(self) -> bool:
        """True for a three-channel (BGR) image."""
        return self.channels >= 3

    def record(self, key: str, value: Any) -> None:
        """Report a value (e.g. an estimated illuminant) for the run report."""
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        self.values[key] = value


@dataclass(frozen=True)
class Step:
    """One validated step of a pipeline: the operator and all its parameter values."""

    op: OpSpec
    params: dict[str, Any]
    index: int

    @property
    def label(self) -> str:
        """``steps[i] name``, the way error messages name a step."""
        return f"steps[{self.index}] {self.op.name}"


def _stages(steps: list[Step]) -> list[list[Step]]:
    """Group consecutive pointwise steps; every other step stands alone."""
    stages: list[list[Step]] = []
    for step in steps:
        if step.op.kind == "pointwise" and stages and stages[-1][0].op.kind == "pointwise":
            stages[-1].append(step)
        else:
            stages.append([step])
    return stages


def apply_steps(pixels: np.ndarray, steps: list[Step]) -> tuple[np.ndarray, list[dict]]:
    """Apply ``steps`` to one image.

    Parameters
    ----------
    pixels : ndarray
        uint8, uint16 or float32 image without alpha, not modified.
    steps : list of Step

    Returns
    -------
    image : ndarray
        The result, in the input's dtype.
    reports : list of dict
        ``{"step": i, "op": name, ...values}`` for each step that reported values.
    """
    if pixels.dtype not in (np.uint8, np.uint16, np.float32):
        raise TypeError(f"unsupported pixel type {pixels.dtype}; expected uint8, uint16 or float32")
    dtype = pixels.dtype
    depth_max = max_value(dtype)
    img = pixels
    reports: list[dict] = []

    def context(image: np.ndarray, stats: Stats | None = None) -> OpContext:
        return OpContext(channels=1 if image.ndim == 2 else image.shape[2], depth_max=depth_max, stats=stats)

    for stage in _stages(steps):
        contexts = []
        if stage[0].op.kind == "pointwise":
            if img.dtype == np.float32:
                for step in stage:
                    ctx = context(img, Stats(img))
                    img = np.asarray(step.op.func(img, ctx, **step.params), dtype=np.float32)
                    contexts.append((step, ctx))
            else:
                bins = int(max_value(img.dtype)) + 1
                table = np.linspace(0.0, 1.0, bins)
                for step in stage:
                    ctx = context(img, Stats(img, table))
                    table = np.asarray(step.op.func(table, ctx, **step.params), dtype=np.float64)
                    contexts.append((step, ctx))
                img = apply_table(img, table)
        else:
            step = stage[0]
            if step.op.kind == "float":
                img = to_float(img)
            ctx = context(img)
            img = step.op.func(img, ctx, **step.params)
            contexts.append((step, ctx))
        for step, ctx in contexts:
            if ctx.values:
                reports.append({"step": step.index, "op": step.op.name, **ctx.values})
    if img.dtype != dtype or dtype == np.float32:  # float steps may overshoot [0, 1]
        img = from_float(to_float(img), dtype)
    return img, reports


def run_op(pixels: np.ndarray, name: str, **params: Any) -> np.ndarray:
    """Apply one operator to an array, the way a one-step pipeline would.

    Parameters
    ----------
    pixels : ndarray
        BGR or grey image, uint8, uint16 or float32 in [0, 1].
    name : str
        Operator name (see ``imgenh ops``).
    **params
        The operator's parameters; omitted ones take their defaults.

    Returns
    -------
    ndarray
        The result, same dtype as ``pixels``.

    Examples
    --------
    >>> import numpy as np
    >>> run_op(np.full((2, 2), 64, np.uint8), "gamma", value=2.0)[0, 0]
    np.uint8(128)
    """
    from imgenh.ops import get_op

    spec = get_op(name)
    values, errors = spec.resolve(params)
    if errors:
        raise ValueError(
            "; ".join(f"{name}.{key}: {msg}" if key else f"{name}: {msg}" for key, msg in errors)
        )
    out, _ = apply_steps(pixels, [Step(spec, values, 0)])
    return out
