"""Colour operators that mix channels: a 3x3 colour matrix and a 3D colour table (3D LUT).

Colours the user writes (matrix rows, offsets, table entries) are in R, G, B order, as in
``.cube`` files and colour-science; the kernels turn them to OpenCV's B, G, R inside.

Grey images: both operators treat a grey level ``v`` as the colour R = G = B = ``v`` and
return the Rec. 709 luma of the result (:data:`imgenh.pixels.LUMA_BGR`), so a grey image
gets the lightness change of the look and stays grey.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from imgenh.cube import CubeLut, read_cube, table_from_rows
from imgenh.ops.registry import Param, operator
from imgenh.pixels import LUMA_BGR, from_float, luma, to_float

INTERPOLATIONS = ("tetrahedral", "trilinear")
# Pixels interpolated per block: the index and weight arrays of a block stay in cache-sized
# pieces instead of a dozen full-size temporaries.
_BLOCK = 1 << 16


# --------------------------------------------------------------------------------------
# Colour matrix


def color_matrix_bgr(matrix_rgb, offset_rgb) -> np.ndarray:
    """The 3x4 matrix for ``cv2.transform`` on BGR pixels from a 3x3 RGB matrix and offset."""
    m = np.asarray(matrix_rgb, np.float64).reshape(3, 3)[::-1, ::-1]
    return np.hstack([m, np.asarray(offset_rgb, np.float64)[::-1, None]])


def apply_color_matrix(img: np.ndarray, matrix_rgb, offset_rgb=(0.0, 0.0, 0.0)) -> np.ndarray:
    """``out = M @ in + offset`` on every pixel, in the image's own depth.

    Parameters
    ----------
    img : ndarray
        (H, W, 3) BGR or (H, W) grey; uint8, uint16 or float32 in [0, 1].
    matrix_rgb : sequence of 9 floats
        The matrix, row by row, acting on (R, G, B) column vectors.
    offset_rgb : sequence of 3 floats
        Added after the matrix, in fractions of full scale.

    Returns
    -------
    ndarray
        Same shape and dtype; integer results are rounded and saturated, float ones are
        not clipped (the pipeline clips at its end).
    """
    full = color_matrix_bgr(matrix_rgb, offset_rgb)
    if img.ndim == 2:
        # R = G = B = v: each output is (row sum) v + offset; the luma of that is one affine map.
        full = np.array([[LUMA_BGR @ full[:, :3].sum(axis=1), LUMA_BGR @ full[:, 3]]])
    # In float32: OpenCV's 8-bit transform uses fixed-point weights that miss by up to 0.7 level.
    out = cv2.transform(to_float(img), full.astype(np.float32))
    return out if img.dtype == np.float32 else from_float(out, img.dtype)


def _check_color_matrix(p: dict) -> str | None:
    if len(p["matrix"]) != 9:
        return f"matrix needs 9 numbers, 3 rows of (R, G, B) (got {len(p['matrix'])})"
    return None


@operator(
    "color_matrix",
    kind="native",
    summary="Mix colour channels: a 3x3 matrix on (R, G, B) plus an offset (ImageMagick -color-matrix).",
    formula="[R', G', B'] = M [R, G, B] + offset; grey: luma of M [v, v, v] + offset",
    reference="numpy matrix product (ImageMagick -color-matrix)",
    example={"matrix": [1.1, -0.05, -0.05, -0.02, 1.04, -0.02, 0.0, -0.1, 1.1], "offset": [0.0, 0.0, 0.02]},
    check=_check_color_matrix,
)
def color_matrix(
    img: np.ndarray,
    ctx,
    *,
    matrix: Param(
        list,
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        "3x3 matrix, row by row, on (R, G, B): 9 numbers",
        item=float,
        length=9,
    ),
    offset: Param(
        list,
        [0.0, 0.0, 0.0],
        "added to (R, G, B) after the matrix, fraction of full scale",
        item=float,
        length=3,
    ),
) -> np.ndarray:
    """Channel mixing; see :func:`apply_color_matrix`."""
    return apply_color_matrix(img, matrix, offset)


# --------------------------------------------------------------------------------------
# 3D colour table


def _tetrahedral(planes: list, base: np.ndarray, f: tuple, n: int) -> list:
    """Interpolate in the tetrahedron of the cell that holds the fractions (Kasson et al. 1995).

    With the fractions sorted ``f1 >= f2 >= f3`` along axes ``a1, a2, a3``, the result is
    ``(1 - f1) c000 + (f1 - f2) c[a1] + (f2 - f3) c[a1 + a2] + f3 c111``; ``c[a1 + a2]`` is
    the far corner less the smallest axis. Ties pick the largest axis in r, g, b order and
    the smallest in b, g, r order, so the two always differ.
    """
    fr, fg, fb = f
    sr, sg = n * n, n
    # Node steps picked through 4-entry tables indexed by comparison bits (np.where with
    # scalars is several times slower).
    r_max = ((fr >= fg) & (fr >= fb)).view(np.uint8)
    step_max = np.array([1, sg, sr, sr], np.int32)[r_max * np.uint8(2) + (fg >= fb).view(np.uint8)]
    b_min = ((fb <= fg) & (fb <= fr)).view(np.uint8)
    step_min = np.array([sr, sg, 1, 1], np.int32)[b_min * np.uint8(2) + (fg <= fr).view(np.uint8)]
    f1 = np.maximum(np.maximum(fr, fg), fb)
    f3 = np.minimum(np.minimum(fr, fg), fb)
    f2 = fr + fg + fb - f1 - f3
    far = sr + sg + 1
    corners = (base, base + step_max, base + (far - step_min), base + far)
    weights = (1 - f1, f1 - f2, f2 - f3, f3)
    out = []
    for plane in planes:  # one 1-D gather per channel and corner: contiguous, no broadcasting
        acc = plane[corners[0]] * weights[0]
        for corner, weight in zip(corners[1:], weights[1:], strict=True):
            acc += plane[corner] * weight
        out.append(acc)
    return out


def _trilinear(planes: list, base: np.ndarray, f: tuple, n: int) -> list:
    """Trilinear interpolation: three rounds of linear blends between the cell's 8 corners."""
    fr, fg, fb = f
    out = []
    for plane in planes:
        blends = []
        for offset in (0, n, n * n, n * n + n):  # (r, g) corners: blend along b first
            lo = plane[base + offset]
            blends.append(lo + (plane[base + offset + 1] - lo) * fb)
        g0 = blends[0] + (blends[1] - blends[0]) * fg
        g1 = blends[2] + (blends[3] - blends[2]) * fg
        out.append(g0 + (g1 - g0) * fr)
    return out


def interpolate_rgb(
    rgb: np.ndarray,
    table: np.ndarray,
    domain_min=(0.0, 0.0, 0.0),
    domain_max=(1.0, 1.0, 1.0),
    method="tetrahedral",
    bgr: bool = False,
) -> np.ndarray:
    """Look up ``(P, 3)`` colours in a 3D table.

    Parameters
    ----------
    rgb : ndarray
        float32 colours, shape ``(P, 3)``, R, G, B (B, G, R when ``bgr``); values outside the
        domain are clamped to it (the table's edge extends, as Resolve and ffmpeg do).
    table : ndarray
        Shape ``(N, N, N, 3)`` indexed ``[r, g, b]``.
    domain_min, domain_max : sequence of 3 floats
        Inputs mapped to the first and the last node of each axis (R, G, B).
    method : {"tetrahedral", "trilinear"}
    bgr : bool
        Colours in and out are B, G, R (an OpenCV image's pixels, no reordered copy).

    Returns
    -------
    ndarray
        float32, shape ``(P, 3)``, in the order of the input.
    """
    n = table.shape[0]
    planes = [np.ascontiguousarray(table[..., c], np.float32).ravel() for c in range(3)]
    lo = np.asarray(domain_min, np.float32)
    scale = (n - 1) / (np.asarray(domain_max, np.float32) - lo)
    axes = (2, 1, 0) if bgr else (0, 1, 2)  # input columns holding r, g, b
    kernel = _tetrahedral if method == "tetrahedral" else _trilinear
    out = np.empty((rgb.shape[0], 3), np.float32)
    for start in range(0, rgb.shape[0], _BLOCK):
        block = rgb[start : start + _BLOCK]
        cells, fracs = [], []
        for c, col in enumerate(axes):
            pos = np.clip((block[:, col] - lo[c]) * scale[c], 0, n - 1)
            cell = np.minimum(pos.astype(np.int32), n - 2)  # the last node belongs to the cell below
            cells.append(cell)
            fracs.append(pos - cell)
        base = (cells[0] * n + cells[1]) * n + cells[2]
        for col, values in zip(axes, kernel(planes, base, tuple(fracs), n), strict=True):
            out[start : start + _BLOCK, col] = values
    return out


def apply_lut(img: np.ndarray, lut: CubeLut, method: str = "tetrahedral") -> np.ndarray:
    """Apply a 3D table to a float32 image in [0, 1].

    Parameters
    ----------
    img : ndarray
        float32, (H, W, 3) BGR or (H, W) grey (looked up as R = G = B, the luma of the
        result returned).
    lut : CubeLut
    method : {"tetrahedral", "trilinear"}

    Returns
    -------
    ndarray
        float32, same shape; not clipped (the pipeline clips at its end).
    """
    grey = img.ndim == 2
    pixels = np.repeat(img.reshape(-1, 1), 3, axis=1) if grey else img.reshape(-1, 3)
    out = interpolate_rgb(pixels, lut.table, lut.domain_min, lut.domain_max, method, bgr=True)
    bgr = out.reshape(img.shape[:2] + (3,))
    return luma(bgr) if grey else bgr


@lru_cache(maxsize=8)
def _cached_cube(path: str, mtime_ns: int, size: int) -> CubeLut:
    return read_cube(path)


def load_cube(path: str | Path) -> CubeLut:
    """Read a ``.cube`` file once per process (re-read when it changes)."""
    try:
        st = Path(path).stat()
    except OSError:
        return read_cube(path)  # raises CubeError naming the file
    return _cached_cube(str(path), st.st_mtime_ns, st.st_size)


def _check_lut3d(p: dict) -> str | None:
    if (p["file"] is None) == (p["table"] is None):
        return "give either file (a .cube file) or table (with size)"
    if p["table"] is not None:
        if p["size"] is None:
            return "table needs size (nodes per axis)"
        want = 3 * p["size"] ** 3
        if len(p["table"]) != want:
            return f"table needs 3 * size^3 = {want} numbers for size {p['size']} (got {len(p['table'])})"
    elif p["size"] is not None:
        return "size goes with table; a .cube file states its own LUT_3D_SIZE"
    return None


@operator(
    "lut3d",
    kind="float",
    summary="3D colour table (3D LUT) from a .cube file or inline, tetrahedral or trilinear.",
    formula="out = T(in), T interpolated between N^3 nodes (red fastest); grey: luma of T(v, v, v)",
    reference="colour.algebra.table_interpolation (Trilinear, Tetrahedral)",
    # size 2: the 8 corners of the cube, red fastest; a warm look (red up, blue down).
    example={
        "size": 2,
        "table": [0.03, 0, 0, 1, 0, 0, 0.03, 1, 0, 1, 1, 0, 0.03, 0, 0.9, 1, 0, 0.9, 0.03, 1, 0.9, 1, 1, 0.9],
    },
    check=_check_lut3d,
)
def lut3d(
    img: np.ndarray,
    ctx,
    *,
    file: Param(
        str, None, ".cube file (Adobe Cube 1.0 / Resolve), relative to the pipeline file", path=load_cube
    ),
    table: Param(list, None, "inline table: 3 * size^3 numbers, R G B per node, red fastest", item=float),
    size: Param(int, None, "nodes per axis of an inline table", ge=2, le=64),
    interpolation: Param(
        str, "tetrahedral", "tetrahedral (as Resolve, ffmpeg default) or trilinear", choices=INTERPOLATIONS
    ),
) -> np.ndarray:
    """Apply a 3D colour table; see :func:`apply_lut`."""
    if file is not None:
        lut = load_cube(file)
    else:
        lut = CubeLut(table_from_rows(np.asarray(table, np.float32).reshape(-1, 3), size))
    return apply_lut(img, lut, interpolation)
