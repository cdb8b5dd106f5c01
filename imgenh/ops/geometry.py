"""Geometry operators: resizing with the aspect ratio kept."""

from __future__ import annotations

import math

import cv2
import numpy as np

from imgenh.ops.contract import OpContext
from imgenh.ops.registry import Param, operator

SIZE_PARAMS = ("width", "height", "long_side", "short_side", "scale")
ENLARGE_FILTERS = {"cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def _scaled_side(side: int, new: int, old: int) -> int:
    """``floor(side * new / old + 0.5)`` in exact integer arithmetic, at least 1."""
    return max(1, (2 * side * new + old) // (2 * old))


def target_size(
    height: int,
    width: int,
    *,
    new_width: int | None = None,
    new_height: int | None = None,
    long_side: int | None = None,
    short_side: int | None = None,
    scale: float | None = None,
) -> tuple[int, int]:
    """Output ``(height, width)`` for exactly one size constraint, aspect ratio kept.

    The constrained side gets exactly the requested length; the other side is
    ``floor(side * factor + 0.5)`` (rounded half up) and at least 1 pixel. With ``scale``
    both sides are rounded that way. On a square image ``long_side`` and ``short_side``
    constrain both sides; otherwise ties do not arise.

    Parameters
    ----------
    height, width : int
        Input size.
    new_width, new_height, long_side, short_side : int, optional
        Target length of that side.
    scale : float, optional
        Factor applied to both sides.

    Returns
    -------
    (int, int)
        Output height and width.
    """
    given = [v is not None for v in (new_width, new_height, long_side, short_side, scale)]
    if sum(given) != 1:
        raise ValueError(f"exactly one of {', '.join(SIZE_PARAMS)} must be set")
    if scale is not None:
        return max(1, _round_half_up(height * scale)), max(1, _round_half_up(width * scale))
    if long_side is not None:
        new_width, new_height = (long_side, None) if width >= height else (None, long_side)
    elif short_side is not None:
        new_width, new_height = (short_side, None) if width <= height else (None, short_side)
    if new_width is not None:
        return _scaled_side(height, new_width, width), new_width
    return new_height, _scaled_side(width, new_height, height)


def resize_image(
    img: np.ndarray, out_height: int, out_width: int, enlarge_filter: str = "lanczos", upscale: bool = True
) -> np.ndarray:
    """Resize to ``out_height`` x ``out_width`` with ``cv2.resize``.

    Shrinking (neither side grows) uses ``INTER_AREA``, the pixel-area average that does
    not alias. Enlarging (any side grows) uses ``enlarge_filter`` (``INTER_LANCZOS4`` or
    ``INTER_CUBIC``); their overshoot past the input range is clipped (saturation for
    integer images, [0, 1] for float32). With ``upscale=False`` an image that would be
    enlarged is returned unchanged (a copy).

    Parameters
    ----------
    img : ndarray
        (H, W) or (H, W, C) image, uint8, uint16 or float32.
    out_height, out_width : int
        Output size in pixels.
    enlarge_filter : {"lanczos", "cubic"}
        Interpolation when enlarging.
    upscale : bool
        Allow enlarging.

    Returns
    -------
    ndarray
        Same dtype and channels as ``img``.
    """
    height, width = img.shape[:2]
    if (out_height, out_width) == (height, width):
        return img.copy()
    enlarging = out_height > height or out_width > width
    if enlarging and not upscale:
        return img.copy()
    interpolation = ENLARGE_FILTERS[enlarge_filter] if enlarging else cv2.INTER_AREA
    out = cv2.resize(img, (out_width, out_height), interpolation=interpolation)
    if out.ndim < img.ndim:  # OpenCV drops a trailing channel axis of length 1
        out = out[..., None]
    if out.dtype == np.float32 and enlarging:
        np.clip(out, 0.0, 1.0, out=out)
    return out


def _one_size(p: dict) -> str | None:
    given = [name for name in SIZE_PARAMS if p[name] is not None]
    if len(given) != 1:
        got = ", ".join(given) if given else "none"
        return f"set exactly one of {', '.join(SIZE_PARAMS)} (got {got})"
    return None


@operator(
    "resize",
    kind="native",
    summary="Resize keeping the aspect ratio: area averaging to shrink, Lanczos (or cubic) to enlarge.",
    formula="factor from the one size given; other side = floor(side * factor + 0.5); "
    "INTER_AREA if shrinking, else INTER_LANCZOS4/INTER_CUBIC clipped",
    reference="cv2.resize (INTER_AREA / INTER_LANCZOS4 / INTER_CUBIC)",
    example={"long_side": 2048, "upscale": False},
    changes_shape=True,
    check=_one_size,
)
def resize(
    img: np.ndarray,
    ctx: OpContext,
    *,
    width: Param(int, None, "output width in pixels", ge=1, le=100000),
    height: Param(int, None, "output height in pixels", ge=1, le=100000),
    long_side: Param(int, None, "length of the longer side in pixels", ge=1, le=100000),
    short_side: Param(int, None, "length of the shorter side in pixels", ge=1, le=100000),
    scale: Param(float, None, "factor on both sides", gt=0, le=100),
    upscale: Param(bool, True, "allow enlarging; false leaves smaller images as they are"),
    enlarge_filter: Param(
        str,
        "lanczos",
        "interpolation when enlarging",
        choices=tuple(ENLARGE_FILTERS),
        only_with={"upscale": (True,)},
    ),
):
    """Resize operator; see :func:`target_size` and :func:`resize_image`."""
    out_height, out_width = target_size(
        img.shape[0],
        img.shape[1],
        new_width=width,
        new_height=height,
        long_side=long_side,
        short_side=short_side,
        scale=scale,
    )
    return resize_image(img, out_height, out_width, enlarge_filter, upscale)
