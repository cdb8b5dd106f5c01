"""The operator contract: what an operator receives and may rely on.

An operator is a function ``fn(x, ctx: OpContext, **params)`` registered with
:func:`imgenh.ops.registry.operator`. Pointwise operators read image statistics from
``ctx.stats`` (a :class:`Stats`). An operator that finds a parameter unusable on a given
image raises :class:`ParamError` naming the parameter; the pipeline adds the step's label
(``steps[i] name.param: ...``). Checks declared with ``operator(check=...)`` return plain
messages too (no operator name): the one caller adds ``steps[i] name:``.

Operator kinds and the call each one receives:

``pointwise``
    ``fn(x, ctx, **params) -> y``. ``x`` holds normalised levels in [0, 1]: either a
    lookup table (shape ``(N,)`` or ``(N, C)``) or a float image (``(H, W)`` or
    ``(H, W, C)``). The function must be elementwise with the channel on the last axis,
    so consecutive pointwise steps can be fused into one lookup table. Image statistics
    (histogram percentiles, channel means) come from ``ctx.stats``.
``native``
    ``fn(img, ctx, **params) -> img`` on the image as it is (uint8, uint16 or float32
    in [0, 1]); the operator keeps the dtype. It never writes into ``img``, and may return
    ``img`` itself when it changes nothing (the pipeline never writes into a step's result
    in place, so the caller's array stays as it was).
``float``
    ``fn(img, ctx, **params) -> img`` on a float32 image in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from imgenh.pixels import (
    LUMA_BINS,
    apply_table,
    channel_counts,
    extreme_channel_counts,
    is_identity_table,
    luma,
    luma_counts,
    luma_counts_near,
    nearest_sample,
    quantised_counts,
    to_float,
)

if TYPE_CHECKING:
    from imgenh.ops.scene import SceneLight

KINDS = ("pointwise", "native", "float")


def ramp(value: float, start: float, end: float) -> float:
    """0 at or below ``start``, 1 at or beyond ``end``, linear between: how ``auto`` settings hold back."""
    return float(np.clip((value - start) / (end - start), 0.0, 1.0))


def unordered_range(params: dict[str, Any], **ends: tuple[str, str]) -> str | None:
    """The error for the first ``[a, b]`` range parameter given with ``a >= b``, else None.

    ``ends`` names each range parameter's two ends for the message, e.g.
    ``unordered_range(p, noise_range=("none", "full"))`` ->
    ``"noise_range must be [none, full] with none < full"``.
    """
    for name, (first, second) in ends.items():
        value = params.get(name)
        if value is not None and not value[0] < value[1]:
            return f"{name} must be [{first}, {second}] with {first} < {second}"
    return None


class ParamError(ValueError):
    """A parameter that is valid on its own but unusable on this image (e.g. a pixel outside it).

    Parameters
    ----------
    param : str
        The parameter's name, without the operator's.
    message : str
        What is wrong, e.g. ``[5000, 10] is outside the 600x400 image``.
    """

    def __init__(self, param: str, message: str):
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


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
        self._current: np.ndarray | None = None

    def _plane(self, channel: int) -> np.ndarray:
        return self._image if self._image.ndim == 2 else self._image[..., channel]

    def _raw_counts(self, channel: int) -> np.ndarray:
        if channel not in self._raw:
            if self._image.dtype.kind in "ui":
                # Every caller reads all the channels (pooled mean, per-channel stretch, exposure):
                # counted in one pass, about the cost of two channels counted apart.
                self._raw.update(enumerate(channel_counts(self._image)))
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
        # Integer images: the levels as 16-bit values (ImageMagick Q16's quanta), strip by strip.
        return luma_counts(self._image, self._table)

    def luma_histogram_near(
        self, low: float, high: float, levels: tuple[float, ...] = ()
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """A Rec. 709 luma histogram exact only near two percentiles and some levels (faster).

        Parameters
        ----------
        low, high : float
            Percentiles: the places where the running count from the bottom first exceeds
            ``low`` percent of the pixels and from the top ``100 - high`` percent.
        levels : tuple of float
            Levels in [0, 1] whose running count is wanted too.

        Returns
        -------
        (levels, counts, exact) or None
            As :meth:`histogram` ``("luma")``, and ``exact`` (bool per level): the running count
            ``np.cumsum(counts)`` is exact at the levels where it is True (see
            :func:`imgenh.pixels.luma_counts_near`). None when this image has no such route
            (not 8-bit colour, or a pending table that changes levels): use :meth:`histogram`.
        """
        pending = self._table is not None and not is_identity_table(self._table, self._image.dtype)
        if pending or self._image.dtype != np.uint8 or self.channels < 3:
            return None
        total = self._image.shape[0] * self._image.shape[1]
        wanted = tuple(int(np.ceil(level * (self.FLOAT_BINS - 1))) for level in levels)
        near = luma_counts_near(self._image, low * (total / 100.0), (100.0 - high) * (total / 100.0), wanted)
        if near is None:
            return None
        return (np.linspace(0.0, 1.0, self.FLOAT_BINS), *near)

    def extreme_histograms(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """Histograms of each pixel's darkest channel and of its brightest, as the image stands.

        From :func:`imgenh.pixels.nearest_sample` (every 4th pixel of every 4th row; pending
        table applied), for judgements that need no exact count. A colour image only.

        Returns
        -------
        darkest, brightest : (levels, counts)
            As :meth:`histogram` returns them.
        """
        if "extremes" not in self._hist:
            sample = nearest_sample(self._image)
            if self._table is not None:
                sample = apply_table(sample, self._table)
            darkest, brightest = extreme_channel_counts(sample)
            levels = np.linspace(0.0, 1.0, darkest.size)
            self._hist["extremes"] = ((levels, darkest), (levels, brightest))
        return self._hist["extremes"]

    def sampled_histogram(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """Levels and counts of one channel over every 4th pixel of every 4th row, as the image stands.

        From :func:`imgenh.pixels.nearest_sample` (pending table applied), for judgements that
        need no exact count (shares of the frame): about 1/16 of the cost of :meth:`histogram`
        (~1.5 ms against ~19 ms for a 12 MP photo's three channels).

        Returns
        -------
        levels, counts : ndarray
            As :meth:`histogram` returns them.
        """
        if "sampled" not in self._hist:
            sample = nearest_sample(self._image)
            if self._table is not None:
                sample = apply_table(sample, self._table)
            if sample.dtype.kind in "ui":
                counts = channel_counts(sample)
            else:
                planes = [sample] if sample.ndim == 2 else [sample[..., c] for c in range(sample.shape[2])]
                counts = [quantised_counts(plane, self.FLOAT_BINS) for plane in planes]
            self._hist["sampled"] = [(np.linspace(0.0, 1.0, c.size), c) for c in counts]
        return self._hist["sampled"][channel]

    def image(self) -> np.ndarray:
        """The current image at its own depth (pending table applied), for estimators that need pixels.

        Integer images come back as the separate steps would have left them (levels rounded);
        made once per ``Stats``.
        """
        if self._table is None or is_identity_table(self._table, self._image.dtype):
            return self._image
        if self._current is None:
            self._current = apply_table(self._image, self._table)
        return self._current

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
        if channel not in self._hist and self._image.dtype.kind == "f" and self._table is None:
            # The histogram's mean without counting it (~2.5 ms -> ~0.4 ms on a 384 px working copy).
            value = quantised_mean(self._float_values(channel), self.FLOAT_BINS)
            if np.isfinite(value):  # NaN, which counting skips, falls through to the counts
                return value
        levels, counts = self.histogram(channel)
        return float(np.dot(levels, counts) / max(counts.sum(), 1))

    def _float_values(self, channel: int | str | None) -> np.ndarray:
        if channel is None or self.channels == 1:
            return self._image
        if channel == "luma":
            return luma(self.materialise())
        return self._plane(int(channel))


def quantised_mean(values: np.ndarray, bins: int = LUMA_BINS) -> float:
    """Mean of float levels rounded as :func:`imgenh.pixels.quantised_counts` counts them.

    Equal (to float64 rounding) to the mean of those counts' levels, without the histogram.
    """
    top = bins - 1
    levels = np.floor(np.asarray(values, dtype=np.float32) * np.float32(top) + np.float32(0.5))
    np.clip(levels, 0, top, out=levels)
    return float(levels.sum(dtype=np.float64) / top / max(levels.size, 1))


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
    scene : SceneLight or None
        How bright the scene was, when the file recorded the camera's exposure (EXIF).
    measures : dict
        Measurements of the image as it enters the step (see :meth:`measure`), shared by the
        steps that see the same image.
    """

    channels: int
    depth_max: float
    stats: Stats | None = None
    values: dict[str, Any] = field(default_factory=dict)
    scene: SceneLight | None = None
    measures: dict[Hashable, Any] = field(default_factory=dict)

    def measure(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """A measurement of the step's input image, computed once while the image is unchanged.

        A step that leaves the image as it is hands the next one the same array, and the same
        ``measures``: two steps that read the same figure (e.g. the noise sigma that both
        denoise steps of ``default`` hold back by) pay for it once. ``key`` names the figure and
        whatever it depends on besides the pixels.
        """
        if key not in self.measures:
            self.measures[key] = compute()
        return self.measures[key]

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
