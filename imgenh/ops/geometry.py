"""Geometry operators: resize, flip, rotate, affine warps and crops; every one keeps the depth."""

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
    width: Param(int, None, "output width in pixels", ge=1, le=100000, pixels=True),
    height: Param(int, None, "output height in pixels", ge=1, le=100000, pixels=True),
    long_side: Param(int, None, "length of the longer side in pixels", ge=1, le=100000, pixels=True),
    short_side: Param(int, None, "length of the shorter side in pixels", ge=1, le=100000, pixels=True),
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


# --- flips, rotations, crops and affine warps (augmentation) --------------------------------

BORDERS = {
    "reflect": cv2.BORDER_REFLECT_101,
    "replicate": cv2.BORDER_REPLICATE,
    "constant": cv2.BORDER_CONSTANT,
}
INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
FLIP_CODES = {"horizontal": 1, "vertical": 0, "both": -1}
# When alpha goes through a warp, the area brought in from outside the image is transparent.
WARP_ALPHA = {"fill": 0.0}


def _keep_channels(out: np.ndarray, img: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing channel axis of length 1: put it back."""
    return out[..., None] if out.ndim < img.ndim else out


@operator(
    "flip",
    kind="native",
    summary="Mirror the image left-right, top-bottom, or both.",
    formula="horizontal: out[y, x] = in[y, W-1-x]; vertical: out[y, x] = in[H-1-y, x]; both: both",
    reference="cv2.flip (flipCode 1, 0, -1) and numpy slicing img[:, ::-1] / img[::-1]",
    example={"direction": "horizontal"},
    alpha={},
)
def flip(
    img: np.ndarray,
    ctx: OpContext,
    *,
    direction: Param(str, "horizontal", "which way to mirror", choices=tuple(FLIP_CODES)),
):
    """Flip operator: ``cv2.flip`` with the code for ``direction``."""
    return _keep_channels(cv2.flip(img, FLIP_CODES[direction]), img)


def _quarter_turns(angle: float) -> int | None:
    """k for an angle that is a whole number of quarter turns (counter-clockwise), else None."""
    turns = angle / 90.0
    return int(round(turns)) % 4 if turns == round(turns) else None


def rotation_matrix(
    height: int, width: int, angle: float, expand: bool
) -> tuple[np.ndarray, tuple[int, int]]:
    """Forward 2x3 matrix (input -> output pixel coordinates) and output ``(height, width)``.

    Rotation is counter-clockwise by ``angle`` degrees about the pixel-grid centre
    ``((W-1)/2, (H-1)/2)``. With ``expand`` the output holds every input pixel centre: its
    sides are ``round(|(W-1) cos| + |(H-1) sin| + 1)`` (and likewise for the height, rounded
    half to even) and the rotated corners' minimum lands on pixel 0, as in
    ``skimage.transform.rotate(resize=True)``. Quarter turns use exact cosines and sines.
    """
    k = _quarter_turns(angle)
    if k is not None:
        cos, sin = ((1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0))[k]
    else:
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    # y points down, so a counter-clockwise turn on screen is x' = c x + s y, y' = -s x + c y
    m = np.array([[cos, sin, 0.0], [-sin, cos, 0.0]])
    m[:, 2] = [cx, cy] - m[:, :2] @ [cx, cy]
    if not expand:
        return m, (height, width)
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float)
    moved = corners @ m.T
    low, high = moved.min(axis=0), moved.max(axis=0)
    m[:, 2] -= low
    out_w, out_h = (int(v) for v in np.around(high - low + 1))
    return m, (max(out_h, 1), max(out_w, 1))


def warp(
    img: np.ndarray,
    matrix: np.ndarray,
    out_size: tuple[int, int],
    border: str = "reflect",
    fill: float = 0.0,
    interpolation: str = "linear",
) -> np.ndarray:
    """``cv2.warpAffine`` with a forward matrix, a border mode and a fill given as a fraction of white.

    Parameters
    ----------
    img : ndarray
        (H, W) or (H, W, C); uint8, uint16 or float32 (kept).
    matrix : ndarray
        2x3 forward matrix (input -> output coordinates).
    out_size : (int, int)
        Output height and width.
    border : {"reflect", "replicate", "constant"}
        How pixels from outside the input are made (reflect mirrors without repeating the edge).
    fill : float
        Level of the constant border, 0 (black) to 1 (white).
    interpolation : {"nearest", "linear", "cubic"}

    Returns
    -------
    ndarray
        Same dtype and channels; float32 clipped to [0, 1] (cubic overshoots).
    """
    top = 1.0 if img.dtype == np.float32 else float(np.iinfo(img.dtype).max)
    value = fill * top if img.dtype == np.float32 else round(fill * top)
    channels = 1 if img.ndim == 2 else img.shape[2]
    out = cv2.warpAffine(
        img,
        matrix.astype(np.float64),
        (out_size[1], out_size[0]),
        flags=INTERPOLATIONS[interpolation],
        borderMode=BORDERS[border],
        borderValue=(value,) * min(channels, 4),
    )
    out = _keep_channels(out, img)
    if out.dtype == np.float32 and interpolation == "cubic":
        np.clip(out, 0.0, 1.0, out=out)
    return out


# Declared once, shared by rotate and affine.
BORDER = Param(str, "reflect", "how the area from outside the image is filled", choices=tuple(BORDERS))
FILL = Param(float, 0.0, "border constant: level, 0 (black) to 1 (white)", ge=0, le=1)
INTERPOLATION = Param(str, "linear", "how pixels are resampled", choices=tuple(INTERPOLATIONS))


@operator(
    "rotate",
    kind="native",
    summary="Rotate by any angle (counter-clockwise) about the centre; keep the size or expand to fit.",
    formula="forward matrix [[c, s, tx], [-s, c, ty]] about ((W-1)/2, (H-1)/2); expand: sides "
    "round(|(W-1)c| + |(H-1)s| + 1); quarter turns without expand change: np.rot90",
    reference="cv2.warpAffine with cv2.getRotationMatrix2D's matrix; skimage.transform.rotate; np.rot90",
    example={"angle": 15, "border": "reflect"},
    changes_shape=True,
    alpha=WARP_ALPHA,
)
def rotate(
    img: np.ndarray,
    ctx: OpContext,
    *,
    angle: Param(float, 0.0, "degrees, counter-clockwise", ge=-360, le=360),
    expand: Param(bool, False, "grow the canvas to hold the whole image; false keeps the size (crops)"),
    border: BORDER,
    fill: FILL,
    interpolation: INTERPOLATION,
):
    """Rotate operator: exact quarter turns (np.rot90) when the size allows, else :func:`warp`."""
    height, width = img.shape[:2]
    k = _quarter_turns(angle)
    if k is not None and (expand or k % 2 == 0 or height == width):
        return np.ascontiguousarray(np.rot90(img, k))
    matrix, out_size = rotation_matrix(height, width, angle, expand)
    return warp(img, matrix, out_size, border, fill, interpolation)


def affine_matrix(
    height: int,
    width: int,
    *,
    scale: float = 1.0,
    angle: float = 0.0,
    shear_x: float = 0.0,
    shear_y: float = 0.0,
    translate_x: float = 0.0,
    translate_y: float = 0.0,
) -> np.ndarray:
    """Forward 2x3 matrix: scale, then shear, then rotate, about the centre; then translate.

    ``M = T(c + t) R(angle) Sh(shear_x, shear_y) S(scale) T(-c)`` with ``c = ((W-1)/2, (H-1)/2)``,
    ``Sh = [[1, tan(shear_x)], [tan(shear_y), 1]]`` (degrees), ``R`` counter-clockwise on screen
    and ``t = (translate_x W, translate_y H)``.
    """
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    rot = np.array([[cos, sin], [-sin, cos]])
    shear = np.array([[1.0, math.tan(math.radians(shear_x))], [math.tan(math.radians(shear_y)), 1.0]])
    linear = rot @ shear * scale
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    shift = centre + [translate_x * width, translate_y * height] - linear @ centre
    return np.hstack([linear, shift[:, None]])


@operator(
    "affine",
    kind="native",
    summary="Affine warp about the centre: scale, shear, rotate and translate; the size is kept.",
    formula="forward matrix T(c + t) R(angle) Sh(shear_x, shear_y) S(scale) T(-c), c = ((W-1)/2, (H-1)/2), "
    "t = (translate_x W, translate_y H)",
    reference="cv2.warpAffine with the matrix built in numpy; skimage.transform.warp",
    example={"scale": 1.1, "shear_x": 5, "translate_x": 0.05},
    alpha=WARP_ALPHA,
)
def affine(
    img: np.ndarray,
    ctx: OpContext,
    *,
    scale: Param(float, 1.0, "zoom factor (> 1 enlarges the content)", gt=0, le=10),
    angle: Param(float, 0.0, "rotation in degrees, counter-clockwise", ge=-360, le=360),
    shear_x: Param(float, 0.0, "horizontal shear in degrees: x moves by tan(shear_x) * y", gt=-80, lt=80),
    shear_y: Param(float, 0.0, "vertical shear in degrees: y moves by tan(shear_y) * x", gt=-80, lt=80),
    translate_x: Param(float, 0.0, "shift right, as a fraction of the width", ge=-1, le=1),
    translate_y: Param(float, 0.0, "shift down, as a fraction of the height", ge=-1, le=1),
    border: BORDER,
    fill: FILL,
    interpolation: INTERPOLATION,
):
    """Affine operator: :func:`affine_matrix`, then :func:`warp` to the same size."""
    height, width = img.shape[:2]
    matrix = affine_matrix(
        height,
        width,
        scale=scale,
        angle=angle,
        shear_x=shear_x,
        shear_y=shear_y,
        translate_x=translate_x,
        translate_y=translate_y,
    )
    return warp(img, matrix, (height, width), border, fill, interpolation)


def crop_box(
    height: int,
    width: int,
    *,
    scale: float | None = None,
    box_width: int | None = None,
    box_height: int | None = None,
    x: float | None = None,
    y: float | None = None,
    left: int | None = None,
    top: int | None = None,
) -> tuple[int, int, int, int]:
    """The crop ``(top, left, height, width)`` in pixels.

    Size: ``scale`` times each side, or ``box_width`` and/or ``box_height`` (one alone keeps the
    image's aspect); sides are rounded half up and at least 1. A box larger than the image
    shrinks, keeping its aspect, until it fits. Position: ``left``/``top`` in pixels (a box that
    would reach past the right or bottom edge moves back inside: ``min(left, W - w)``), else
    ``x``/``y`` place the box in the room left over (0 left/top, 0.5 centre, 1 right/bottom):
    ``left = round(x * (W - w))``.
    """
    if scale is not None:
        h, w = max(1, _round_half_up(height * scale)), max(1, _round_half_up(width * scale))
    elif box_width is not None and box_height is not None:
        h, w = box_height, box_width
    elif box_width is not None:
        h, w = _scaled_side(height, box_width, width), box_width
    else:
        h, w = box_height, _scaled_side(width, box_height, height)
    fit = min(1.0, width / w, height / h)
    if fit < 1.0:
        h, w = max(1, min(height, _round_half_up(h * fit))), max(1, min(width, _round_half_up(w * fit)))
    col = left if left is not None else _round_half_up((0.5 if x is None else x) * (width - w))
    row = top if top is not None else _round_half_up((0.5 if y is None else y) * (height - h))
    # A pixel box past the edge of a smaller image (batches mix sizes) moves back inside.
    return min(row, height - h), min(col, width - w), h, w


def _check_crop(p: dict) -> str | None:
    if (p["scale"] is None) == (p["width"] is None and p["height"] is None):
        return "set scale, or width and/or height (in pixels)"
    for pixels, fraction in (("left", "x"), ("top", "y")):
        if p[pixels] is not None and p[fraction] is not None:
            return f"set {pixels} (pixels) or {fraction} (fraction of the room), not both"
    return None


@operator(
    "crop",
    kind="native",
    summary="Cut out a box: a fraction of each side or a size in pixels, placed by fraction or pixels.",
    formula="size: scale * side, or width/height (one alone keeps the aspect), shrunk to fit; "
    "left = round(x * (W - w)) or min(left, W - w); out = in[top:top+h, left:left+w]",
    reference="numpy slicing img[top:top+h, left:left+w]",
    example={"scale": 0.8, "x": 0.5, "y": 0.5},
    changes_shape=True,
    check=_check_crop,
    alpha={},
)
def crop(
    img: np.ndarray,
    ctx: OpContext,
    *,
    scale: Param(float, None, "box side as a fraction of each image side (keeps the aspect)", gt=0, le=1),
    width: Param(int, None, "box width in pixels", ge=1, le=100000, pixels=True),
    height: Param(int, None, "box height in pixels", ge=1, le=100000, pixels=True),
    x: Param(float, None, "horizontal place in the room left over: 0 left, 0.5 centre, 1 right", ge=0, le=1),
    y: Param(float, None, "vertical place in the room left over: 0 top, 0.5 centre, 1 bottom", ge=0, le=1),
    left: Param(
        int, None, "left edge in pixels (instead of x); kept inside the image", ge=0, le=100000, pixels=True
    ),
    top: Param(
        int, None, "top edge in pixels (instead of y); kept inside the image", ge=0, le=100000, pixels=True
    ),
):
    """Crop operator; see :func:`crop_box`."""
    row, col, h, w = crop_box(
        img.shape[0],
        img.shape[1],
        scale=scale,
        box_width=width,
        box_height=height,
        x=x,
        y=y,
        left=left,
        top=top,
    )
    return img[row : row + h, col : col + w].copy()
