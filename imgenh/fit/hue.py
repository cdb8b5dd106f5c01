"""A hue-equivariant colour stage for the look model: a correction that depends on lightness and chroma only.

Photographic looks are mostly made of operations that treat every hue alike (saturation, a hue
shift, tone), so a colour correction learned on warm photos should carry over to blue ones. This
stage has that as its prior. Colours are described as HSL does (the hexagonal model of the
working RGB that ImageMagick's ``-modulate`` and most editors' hue/saturation sliders use)::

    L = (max + min) / 2,   C = max - min,   H = hexagonal hue in sextants [0, 6)

and the stage is

    out_L = L + shift(L, C),   out_C = C * scale(L, C),   out_H = H + turn(L, C)

so greys get only the lightness shift and every hue the same saturation change and hue turn.
``shift``, ``scale`` and ``turn`` are bilinear on a small ``(L, C)`` grid, each fitted by
regularised linear least squares on what the pairs show per pixel (smooth along both axes, pulled
toward the identity where no pixel is). The stage is written out as an ordinary ``lut3d`` table,
baked at the nodes of an ``N^3`` grid (:func:`bake`), so ``imgenh run`` needs no new operator.

A first version worked in an opponent space (lightness along the grey axis, the chroma vector
rotated and scaled in the plane orthogonal to it); it fitted the development looks about as well.
HSL was kept because its parameters read as the sliders' values: fitted to the Hald CLUT look
(``-modulate 100,70,93``), the turn comes out at the -12.6 degrees of that hue setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

# Largest chroma (max - min) of a colour in the RGB cube: the grid's C axis ends there.
MAX_CHROMA = 1.0
GRID_LIGHTNESS = 9  # nodes along L
GRID_CHROMA = 7  # nodes along C
# Regularisation, relative to the mean pixel weight of a node (as the colour table's): second
# differences along L and C, and a ridge toward the identity (shift 0, scale 1, turn 0).
HUE_SMOOTHNESS = 0.03
HUE_RIDGE = 1e-3
# Nodes per axis of the lut3d table the stage is baked into (trilinear).
HUE_TABLE_SIZE = 17


@dataclass
class HueStage:
    """The fitted stage: each of shape ``(GRID_LIGHTNESS, GRID_CHROMA)`` over the ``(L, C)`` grid.

    ``shift`` is added to the lightness, ``scale`` multiplies the chroma and ``turn`` is added to
    the hue (in sextants: 1 is 60 degrees).
    """

    shift: np.ndarray
    scale: np.ndarray
    turn: np.ndarray

    def apply_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """The stage on ``(P, 3)`` R, G, B values; float64, not clipped."""
        lightness, chroma, hue = hsl(rgb)
        idx, wts = grid_weights(lightness, chroma, self.shift.shape)
        shift, scale, turn = ((p.ravel()[idx] * wts).sum(axis=1) for p in (self.shift, self.scale, self.turn))
        return from_hsl(lightness + shift, chroma * np.maximum(scale, 0.0), hue + turn)


def hsl(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lightness ``(max + min) / 2``, chroma ``max - min`` and hexagonal hue in [0, 6) of ``(P, 3)`` R, G, B."""
    rgb = np.asarray(rgb, np.float64)
    top, bottom = rgb.max(axis=1), rgb.min(axis=1)
    chroma = top - bottom
    r, g, b = rgb.T
    safe = np.where(chroma > 0, chroma, 1.0)
    hue = np.where(
        top == r, ((g - b) / safe) % 6.0, np.where(top == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    )
    return (top + bottom) / 2, chroma, np.where(chroma > 0, hue, 0.0)


def from_hsl(lightness: np.ndarray, chroma: np.ndarray, hue: np.ndarray) -> np.ndarray:
    """R, G, B ``(P, 3)`` from :func:`hsl`'s lightness, chroma and hue (any real hue: it wraps)."""
    h = hue % 6.0
    middle = chroma * (1.0 - np.abs(h % 2.0 - 1.0))
    zero = np.zeros_like(h)
    sextant = np.minimum(h.astype(np.int64), 5)
    choices = [
        (chroma, middle, zero),
        (middle, chroma, zero),
        (zero, chroma, middle),
        (zero, middle, chroma),
        (middle, zero, chroma),
        (chroma, zero, middle),
    ]
    rgb = np.stack([np.choose(sextant, [c[k] for c in choices]) for k in range(3)], axis=1)
    return rgb + (lightness - chroma / 2)[:, None]


def grid_weights(
    lightness: np.ndarray, chroma: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(P, 4)`` of the ``(L, C)`` grid nodes around each colour and their bilinear weights."""
    ny, nc = shape
    py = np.clip(lightness, 0.0, 1.0) * (ny - 1)
    pc = np.clip(chroma / MAX_CHROMA, 0.0, 1.0) * (nc - 1)
    iy, ic = np.minimum(py.astype(np.int64), ny - 2), np.minimum(pc.astype(np.int64), nc - 2)
    fy, fc = py - iy, pc - ic
    base = iy * nc + ic
    idx = np.stack([base, base + 1, base + nc, base + nc + 1], axis=1)
    wts = np.stack([(1 - fy) * (1 - fc), (1 - fy) * fc, fy * (1 - fc), fy * fc], axis=1)
    return idx, wts


@lru_cache(maxsize=4)
def grid_roughness(shape: tuple[int, ...]) -> np.ndarray:
    """``D'D`` for second differences along each axis of a grid of nodes in row-major order (dense).

    Shared by this stage's ``(L, C)`` grid and the look model's ``N^3`` colour table.
    """
    total = np.zeros((int(np.prod(shape)),) * 2)
    for axis, n in enumerate(shape):
        d2 = np.diff(np.eye(n), 2, axis=0)
        term = np.ones((1, 1))
        for other, m in enumerate(shape):
            # (kron of the axis operators)' (kron ...) = kron of their own products: D'D per axis directly.
            term = np.kron(term, d2.T @ d2 if other == axis else np.eye(m))
        total += term
    return total


def _solve_grid(idx, wts, gain, rhs_values, prior_value: float, n: int) -> np.ndarray:
    """Minimise ``sum gain (w . p - target)^2`` (``rhs_values = gain * target``) over node values ``p``,
    plus the smoothness and ridge penalties toward ``prior_value``; ``n`` nodes."""
    pairs = (idx[:, :, None] * n + idx[:, None, :]).ravel()
    count = max(idx.shape[0], 1)
    gram = np.bincount(pairs, (gain[:, None, None] * wts[:, :, None] * wts[:, None, :]).ravel(), n * n)
    gram = gram.reshape(n, n) / count
    rhs = np.bincount(idx.ravel(), (wts * rhs_values[:, None]).ravel(), n) / count
    # Mean pixel weight of a node; a floor keeps the penalties alive when no pixel has any chroma.
    scale = max(np.trace(gram) / n, 1e-9)
    prior = grid_roughness((GRID_LIGHTNESS, GRID_CHROMA)) * (HUE_SMOOTHNESS * scale) + np.eye(n) * (
        HUE_RIDGE * scale
    )
    return np.linalg.solve(gram + prior, rhs + prior @ np.full(n, prior_value))


def fit_hue_stage(x: np.ndarray, y: np.ndarray) -> HueStage:
    """Fit the stage to ``y ~ H(x)``, both ``(P, 3)`` R, G, B.

    Each of the three node grids is its own linear least-squares problem on what the pairs show
    per pixel: the lightness change, the chroma ratio (weighted by chroma squared, as a chroma
    error is) and the hue change (wrapped to half a turn, weighted by chroma squared: a hue error
    moves a colour in proportion to its chroma).
    """
    shape = (GRID_LIGHTNESS, GRID_CHROMA)
    n = GRID_LIGHTNESS * GRID_CHROMA
    l_in, c_in, h_in = hsl(x)
    l_out, c_out, h_out = hsl(y)
    idx, wts = grid_weights(l_in, c_in, shape)
    c2 = c_in**2
    turned = (h_out - h_in + 3.0) % 6.0 - 3.0
    shift = _solve_grid(idx, wts, np.ones(l_in.size), l_out - l_in, 0.0, n)
    scale = _solve_grid(idx, wts, c2, c_in * c_out, 1.0, n)
    turn = _solve_grid(idx, wts, c2 * (c_out > 0), c2 * (c_out > 0) * turned, 0.0, n)
    return HueStage(shift.reshape(shape), scale.reshape(shape), turn.reshape(shape))


def table_nodes(size: int) -> np.ndarray:
    """The R, G, B colours ``(size^3, 3)`` of a ``size^3`` table's nodes, in ``[r, g, b]`` index order."""
    axis = np.linspace(0.0, 1.0, size)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def bake(function, size: int = HUE_TABLE_SIZE) -> np.ndarray:
    """A ``(size, size, size, 3)`` table (``[r, g, b]``) of ``function`` on ``(P, 3)`` R, G, B, clipped to [0, 1]."""
    values = np.clip(function(table_nodes(size)), 0.0, 1.0)
    return values.reshape(size, size, size, 3).astype(np.float32)
