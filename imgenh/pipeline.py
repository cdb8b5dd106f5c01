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

from imgenh.pixels import (
    LUMA_BGR,
    LUMA_BINS,
    apply_table,
    from_float,
    level_counts,
    luma,
    max_value,
    quantised_counts,
    to_float,
)

if TYPE_CHECKING:  # imgenh.ops imports this module; import only for type checkers
    from imgenh.ops.registry import OpSpec


class Stats:
    """Histogram statistics of an image as it stands after a pending lookup table.

    Pointwise operators ask for means and histograms here. For integer images the
    per-channel histograms are counted once per fused group of steps (``raw_counts`` is
    shared between them) and remapped through the pending table, so no pixel is scanned
    twice; luminance statistics need the pixels themselves and are counted when asked.

    Parameters
    ----------
    image : ndarray
        The image before the pending table (integer) or the current float image.
    table : ndarray, optional
        Pending levels, shape ``(N,)`` or ``(N, C)``, for an integer image; None is the
        identity.
    raw_counts : dict, optional
        Cache of the per-channel level counts of ``image``, shared by every ``Stats`` of
        the same image.
    """

    FLOAT_BINS = LUMA_BINS

    def __init__(self, image: np.ndarray, table: np.ndarray | None = None, raw_counts: dict | None = None):
        self._image = image
        self._table = table
        self._raw = {} if raw_counts is None else raw_counts
        self.channels = 1 if image.ndim == 2 else image.shape[2]
        self._hist: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def _plane(self, channel: int) -> np.ndarray:
        return self._image if self._image.ndim == 2 else self._image[..., channel]

    def _raw_counts(self, channel: int) -> np.ndarray:
        if channel not in self._raw:
            if self._image.dtype.kind in "ui":
                self._raw[channel] = level_counts(self._image, channel=channel)
            else:
                self._raw[channel] = quantised_counts(self._plane(channel), self.FLOAT_BINS)
        return self._raw[channel]

    def _table_levels(self, channel: int, bins: int) -> np.ndarray:
        if self._table is None:
            return np.linspace(0.0, 1.0, bins)
        return self._table if self._table.ndim == 1 else self._table[:, channel]

    def _luma_counts(self) -> np.ndarray:
        """Counts of the Rec. 709 luma rounded to 65536 levels (ImageMagick's intensity histogram)."""
        if self._image.dtype.kind not in "ui":
            return quantised_counts(luma(self.materialise()), self.FLOAT_BINS)
        # Integer images: the levels as 16-bit values (ImageMagick Q16's quanta), then a 16-bit
        # cv2.transform, which rounds the weighted sum to the nearest 16-bit level itself.
        if self._table is not None:
            q16 = apply_table(self._image, self._table, np.uint16)
        elif self._image.dtype == np.uint8:
            q16 = cv2.LUT(self._image, (np.arange(256, dtype=np.uint16) * 257))
        else:
            q16 = self._image
        return level_counts(cv2.transform(q16, LUMA_BGR.reshape(1, 3).astype(np.float32)))

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
            result = (np.linspace(0.0, 1.0, self.FLOAT_BINS), self._luma_counts())
        elif channel is None or channel == "luma":
            parts = [self.histogram(c) for c in range(self.channels)]
            result = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        else:
            counts = self._raw_counts(int(channel))
            result = (self._table_levels(int(channel), counts.size), counts)
        self._hist[channel] = result
        return result

    def mean(self, channel: int | str | None = None) -> float:
        """Mean level of a channel (see :meth:`histogram` for ``channel``)."""
        levels, counts = self.histogram(channel)
        return float(np.dot(levels, counts) / max(counts.sum(), 1))


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


class StepError(Exception):
    """An operator failed on an image; the message names the step (``steps[i] name: why``)."""


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

    def __call__(self, x: np.ndarray, ctx: OpContext) -> np.ndarray:
        """Run the operator, turning any failure into a :class:`StepError` that names this step.

        MemoryError passes through as it is, so callers can still tell it apart.
        """
        try:
            return self.op.func(x, ctx, **self.params)
        except MemoryError:
            raise
        except Exception as exc:
            raise StepError(f"{self.label}: {exc}") from exc


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

    Raises
    ------
    StepError
        An operator failed; the message starts with the step's label, e.g.
        ``steps[0] white_balance: white_balance.white_at: [5000, 10] is outside the 600x400 image``.
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
                    img = np.asarray(step(img, ctx), dtype=np.float32)
                    contexts.append((step, ctx))
            else:
                bins = int(max_value(img.dtype)) + 1
                table = np.linspace(0.0, 1.0, bins)
                raw_counts: dict = {}  # the image's level counts, counted once for the whole group
                for i, step in enumerate(stage):
                    ctx = context(img, Stats(img, table if i else None, raw_counts))
                    table = np.asarray(step(table, ctx), dtype=np.float64)
                    contexts.append((step, ctx))
                img = apply_table(img, table)
        else:
            step = stage[0]
            if step.op.kind == "float":
                img = to_float(img)
            ctx = context(img)
            img = step(img, ctx)
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

    Raises
    ------
    ValueError
        A parameter is invalid (the message names it).
    StepError
        The operator failed on these pixels.

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
