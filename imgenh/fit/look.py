"""The look model of ``imgenh fit``: tone curves, a colour matrix and a small 3D colour table.

An edit someone made to a handful of photos is learned as three stages applied in order:

1. one tone curve per channel (piecewise linear through ``K`` evenly spaced knots),
2. a 3x3 colour matrix with an offset,
3. a small 3D colour table (``N^3`` nodes, trilinear) for what the first two cannot express.

Each stage is fitted by regularised least squares on pixels sampled from the working copies
(stage by stage, each on the output of the ones before): the curves with a roughness penalty
(integrated squared second derivative) under a monotonicity constraint, the matrix with a
ridge toward the identity, the table as lattice regression (Garcia & Gupta 2009) with a
smoothness penalty on its difference from the identity table. How much of that to use (the
number of knots, whether to add the matrix, the table size) is chosen by cross-validation
over pairs, so a few pairs give gentle curves and many pairs a full colour table; so is how
smooth the curves are (a ``-soft`` rung bends steep tone curves that the others keep stiff) and
whether one tone curve serves all three channels (``tone17`` rungs).

One rung (``tone17+hue``) puts a hue-equivariant colour stage (:mod:`imgenh.fit.hue`: lightness,
saturation and hue changes that depend on lightness and chroma, not on hue) in place of the
matrix and table: a look made of such operations, learned on warm photos, then carries over to
blue ones, where a table only extrapolates. The stage is written as an ordinary ``lut3d`` table.

The result is a list of ordinary pipeline steps (``curve``, ``color_matrix``, ``lut3d``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imgenh.colour_difference import delta_e_2000, lab_from_bgr
from imgenh.fit.hue import bake, fit_hue_stage, grid_roughness, table_nodes
from imgenh.ops.lut import interpolate_rgb


@dataclass(frozen=True)
class Complexity:
    """One rung of the complexity ladder cross-validation chooses from.

    Attributes
    ----------
    name : str
        Short label for reports, e.g. ``curves17+matrix+lut11``.
    knots : int
        Knots per tone curve; 0 for no curves.
    matrix : bool
        Whether a colour matrix follows the curves.
    table : int
        Nodes per axis of the colour table; 0 for none.
    roughness : float or None
        The curves' roughness penalty; None: ``CURVE_ROUGHNESS``.
    tied : bool
        One tone curve for all three channels (fitted on them pooled): it cannot tint greys.
    hue : bool
        A hue-equivariant colour stage (:mod:`imgenh.fit.hue`) follows the curves and matrix; the
        table (if any) then fits what it leaves, and both are baked into one ``lut3d`` table.
    """

    name: str
    knots: int
    matrix: bool
    table: int
    roughness: float | None = None
    tied: bool = False
    hue: bool = False


# Curves of a rung named ``...-soft``: a steep tone curve (sigmoid contrast) is bent only this
# softly, so cross-validation chooses the smoothness too, between the stiff rungs and this one.
# Chosen on benchmarks/fit_dev_splits.py's development checks only (README 2026-12-03, session
# fitlook): a matrix-free rung placed after curves2+matrix+lut5 improved or tied every look on
# every check at 17 knots and 1e-7, more so at 33 knots and 1e-8 and most at 65 knots and 1e-9
# (the best tried); at 1e-6, or placed before the tables, imgenh-random-12 lost.
SOFT_CURVE_ROUGHNESS = 1e-9

# Simplest first, roughly by parameter count. ``curves2`` is a gain and offset per channel, so
# ``curves2+matrix`` is an affine colour map, which extrapolates best to colours no pair shows.
# ``curves65-soft`` (three nearly free curves) counts as more than the smoothest small table.
# ``tone17`` is one tone curve for all three channels: it cannot tint greys, so the matrix and table
# that follow do all the colour work (per-channel curves fitted on warm photos lift blue, and the
# matrix then extrapolates that lift to blue photos: README 2026-12-03, session fitclut).
# No ``curves17+matrix+lut9``: between ``tone17+matrix+lut9`` and ``curves17+matrix+lut11`` it
# was chosen by the margin rule where the 11^3 table did better on every development check;
# without it every check's mean over the 8 looks and the Hald CLUT look improve or tie
# (benchmarks/README.md 2026-12-03, session fithald).
# ``tone17+hue`` (a tied tone curve, then the hue-equivariant stage of imgenh.fit.hue): where a look
# is made of hue-independent operations (the Hald CLUT look: HSL saturation and hue, a sigmoid) it
# cross-validates better than the tables and extrapolates to hues the pairs lack; where it is not,
# its cross-validated error is far above theirs. Placed before ``tone17+matrix+lut9`` rather than
# by its 206 parameters (before ``curves2+matrix+lut5``): on the development checks both places
# give the Hald CLUT look the same, and this one costs im-modulate less (check 0.69 vs 0.74,
# darker and more colourful 0.75 vs 1.12; benchmarks/README.md 2026-12-03, session fithue).
LADDER = (
    Complexity("curves2+matrix", 2, True, 0),
    Complexity("curves5", 5, False, 0),
    Complexity("curves9+matrix", 9, True, 0),
    Complexity("curves17+matrix", 17, True, 0),
    Complexity("curves2+matrix+lut5", 2, True, 5),
    Complexity("curves65-soft", 65, False, 0, SOFT_CURVE_ROUGHNESS),
    Complexity("curves17+matrix+lut5", 17, True, 5),
    Complexity("curves2+matrix+lut9", 2, True, 9),
    Complexity("tone17+hue", 17, False, 0, tied=True, hue=True),
    Complexity("tone17+matrix+lut9", 17, True, 9, tied=True),
    Complexity("curves17+matrix+lut11", 17, True, 11),
)

# Regularisation weights (on mean squared error in [0, 1] levels). Chosen on a development split
# of benchmarks/fit_looks.py's training photos (fit on 3, checked on 2 others; mean held-out
# CIEDE2000 over its 8 looks: roughness 1e-6 0.370, 1e-5 0.359, 1e-4 0.358, 1e-3 0.396; table
# smoothness 0.01/0.03/0.1 within 0.01), never on its held-out photos. 1e-4 bends steep
# sigmoids too little (a colour table then makes up for it), so 1e-5; the ``-soft`` rung
# (SOFT_CURVE_ROUGHNESS) is there for steep ones.
CURVE_ROUGHNESS = 1e-5  # times the integral of f''^2 over [0, 1]
CURVE_RIDGE = 1e-5  # pull toward the identity where a channel has no pixels
MATRIX_RIDGE = 1e-4
TABLE_SMOOTHNESS = 0.03  # relative to the mean pixel weight of a node
TABLE_RIDGE = 1e-3


@dataclass
class LookModel:
    """A fitted look: curves, then an optional matrix, then an optional table (R, G, B order).

    Attributes
    ----------
    curves : ndarray
        Shape ``(3, K)``: each channel's values at the knots ``linspace(0, 1, K)``.
    matrix : ndarray or None
        Shape ``(3, 3)``.
    offset : ndarray or None
        Shape ``(3,)``.
    table : ndarray or None
        Shape ``(N, N, N, 3)`` indexed ``[r, g, b]``.
    """

    curves: np.ndarray
    matrix: np.ndarray | None = None
    offset: np.ndarray | None = None
    table: np.ndarray | None = None

    @property
    def knots(self) -> np.ndarray:
        """x positions of the curve knots."""
        return np.linspace(0.0, 1.0, self.curves.shape[1])

    def after_curves(self, rgb: np.ndarray) -> np.ndarray:
        """The curves applied to ``(P, 3)`` R, G, B values."""
        return np.stack([np.interp(rgb[:, c], self.knots, self.curves[c]) for c in range(3)], axis=1).astype(
            np.float32
        )

    def before_table(self, rgb: np.ndarray) -> np.ndarray:
        """Curves and matrix: the input of the colour table."""
        out = self.after_curves(rgb)
        if self.matrix is not None:
            out = np.clip(out @ self.matrix.T.astype(np.float32) + self.offset.astype(np.float32), 0.0, 1.0)
        return out

    def apply_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """The whole look on ``(P, 3)`` R, G, B values in [0, 1]; float32, clipped to [0, 1]."""
        out = self.before_table(rgb)
        if self.table is not None:
            out = interpolate_rgb(out, self.table, method="trilinear")
        return np.clip(out, 0.0, 1.0)

    def steps(self, decimals: int = 5) -> list[dict]:
        """The look as pipeline steps (``curve`` per channel, ``color_matrix``, ``lut3d``).

        Identity parts are left out; values are rounded to ``decimals`` places.
        """
        steps = self.curve_steps(decimals)
        if self.matrix is not None:
            steps.append(
                {
                    "op": "color_matrix",
                    "matrix": [round(float(v), decimals + 1) for v in self.matrix.ravel()],
                    "offset": [round(float(v), decimals + 1) for v in self.offset],
                }
            )
        if self.table is not None:
            rows = self.table.transpose(2, 1, 0, 3).reshape(-1)  # red fastest
            steps.append(
                {
                    "op": "lut3d",
                    "size": int(self.table.shape[0]),
                    "table": [round(float(v), decimals) for v in rows],
                    "interpolation": "trilinear",
                }
            )
        return steps

    def curve_steps(self, decimals: int = 5) -> list[dict]:
        """The curves as ``curve`` steps: one on all channels, then what each channel adds to it.

        The common curve is the Rec. 709 luma-weighted mean of the three, so a grey photo
        (which per-channel curves leave alone) gets the tone of the look; each channel's curve
        ``f_c`` is then ``h_c(common(x))``, exact for piecewise-linear curves on the same knots
        (``h_c`` runs through the points ``(common(k), f_c(k))``). Identity curves are left out.
        """
        tol = 10.0**-decimals
        curves = np.clip(np.round(self.curves, decimals), 0.0, 1.0)
        common = np.round(LUMA_RGB @ curves, decimals)
        steps = []
        if np.abs(common - self.knots).max() > tol:
            steps.append(_linear_curve(self.knots, common, "all", decimals))
        # Where the common curve is flat all three are (each is non-decreasing): keep one point there.
        keep = np.concatenate([[True], np.diff(common) > tol / 2])
        for c, channel in enumerate(("red", "green", "blue")):
            if np.abs(curves[c] - common).max() > tol:
                steps.append(_linear_curve(common[keep], curves[c][keep], channel, decimals))
        return steps


# Rec. 709 luma weights in R, G, B order (imgenh.pixels.LUMA_BGR reversed): what a grey image keeps.
LUMA_RGB = np.array([0.212656, 0.715158, 0.072186])


def _linear_curve(x: np.ndarray, y: np.ndarray, channel: str, decimals: int) -> dict:
    points = [[round(float(a), decimals), round(float(b), decimals)] for a, b in zip(x, y, strict=True)]
    return {"op": "curve", "points": points, "interpolation": "linear", "channel": channel}


# --------------------------------------------------------------------------------------
# Stage fits


def _isotonic(v: np.ndarray) -> np.ndarray:
    """Euclidean projection onto non-decreasing sequences (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, count]
    for x in v:
        blocks.append([float(x), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, n2 = blocks.pop()
            m1, n1 = blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, n in blocks])


def _monotone_quadratic(h: np.ndarray, b: np.ndarray, iterations: int = 400) -> np.ndarray:
    """Minimise ``v'Hv/2 - b'v`` over non-decreasing ``v`` (accelerated projected gradient)."""
    v = np.linalg.solve(h, b)
    if np.all(np.diff(v) >= 0):
        return v
    step = 1.0 / np.linalg.eigvalsh(h)[-1]
    v = _isotonic(v)
    z, t = v.copy(), 1.0
    for _ in range(iterations):
        v_next = _isotonic(z - step * (h @ z - b))
        t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
        z = v_next + (t - 1) / t_next * (v_next - v)
        v, t = v_next, t_next
    return v


def _second_difference(k: int) -> np.ndarray:
    d = np.zeros((k - 2, k))
    for i in range(k - 2):
        d[i, i : i + 3] = (1.0, -2.0, 1.0)
    return d


def fit_curve(
    x: np.ndarray, y: np.ndarray, knots: int, weight: np.ndarray | None = None, roughness: float | None = None
) -> np.ndarray:
    """Monotone piecewise-linear curve through ``knots`` even knots fitted to ``y ~ f(x)``.

    Minimises ``mean((f(x) - y)^2) + roughness * int f''^2 + CURVE_RIDGE * |f - id|^2``
    over non-decreasing knot values (``roughness`` defaults to ``CURVE_ROUGHNESS``);
    returns them clipped to [0, 1].
    """
    roughness = CURVE_ROUGHNESS if roughness is None else roughness
    pos = np.clip(x, 0.0, 1.0).astype(np.float64) * (knots - 1)
    i = np.minimum(pos.astype(np.int64), knots - 2)
    w = pos - i
    p = np.ones(x.size) if weight is None else weight.astype(np.float64)
    n = max(p.sum(), 1e-12)
    gram = np.zeros((knots, knots))
    np.add.at(gram, (i, i), p * (1 - w) ** 2 / n)
    np.add.at(gram, (i + 1, i + 1), p * w**2 / n)
    np.add.at(gram, (i, i + 1), p * w * (1 - w) / n)
    gram[np.tril_indices(knots, -1)] = gram.T[np.tril_indices(knots, -1)]
    rhs = (np.bincount(i, p * (1 - w) * y, knots) + np.bincount(i + 1, p * w * y, knots)) / n
    d2 = _second_difference(knots)
    identity = np.linspace(0.0, 1.0, knots)
    h = gram + roughness * (knots - 1) ** 3 * d2.T @ d2 + CURVE_RIDGE * np.eye(knots)
    return np.clip(_monotone_quadratic(h, rhs + CURVE_RIDGE * identity), 0.0, 1.0)


def fit_matrix(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine ``y ~ M x + o`` by ridge regression toward the identity; returns ``(M, o)``."""
    a = np.hstack([x.astype(np.float64), np.ones((x.shape[0], 1))])
    n = max(x.shape[0], 1)
    prior = np.vstack([np.eye(3), np.zeros((1, 3))])
    w = np.linalg.solve(a.T @ a / n + MATRIX_RIDGE * np.eye(4), a.T @ y / n + MATRIX_RIDGE * prior)
    return w[:3].T, w[3]


def _trilinear_weights(z: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Node indices ``(P, 8)`` (flat, ``[r, g, b]`` order) and trilinear weights of each point."""
    pos = np.clip(z, 0.0, 1.0).astype(np.float64) * (size - 1)
    i = np.minimum(pos.astype(np.int64), size - 2)
    f = pos - i
    base = (i[:, 0] * size + i[:, 1]) * size + i[:, 2]
    idx, wts = [], []
    for dr in (0, 1):
        for dg in (0, 1):
            for db in (0, 1):
                idx.append(base + (dr * size + dg) * size + db)
                wr = f[:, 0] if dr else 1 - f[:, 0]
                wg = f[:, 1] if dg else 1 - f[:, 1]
                wb = f[:, 2] if db else 1 - f[:, 2]
                wts.append(wr * wg * wb)
    return np.stack(idx, axis=1), np.stack(wts, axis=1)


def fit_table(z: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Colour table ``y ~ T(z)`` by lattice regression, smooth in its difference from the identity.

    Returns
    -------
    ndarray
        Shape ``(size, size, size, 3)`` indexed ``[r, g, b]``.
    """
    nodes = size**3
    idx, wts = _trilinear_weights(z, size)
    n = max(z.shape[0], 1)
    pairs = (idx[:, :, None] * nodes + idx[:, None, :]).ravel()
    gram = (
        np.bincount(pairs, (wts[:, :, None] * wts[:, None, :]).ravel(), nodes * nodes).reshape(nodes, nodes)
        / n
    )
    rhs = (
        np.stack([np.bincount(idx.ravel(), (wts * y[:, c : c + 1]).ravel(), nodes) for c in range(3)], axis=1)
        / n
    )
    scale = np.trace(gram) / nodes  # mean pixel weight of a node
    prior = grid_roughness((size,) * 3) * (TABLE_SMOOTHNESS * scale) + np.eye(nodes) * (TABLE_RIDGE * scale)
    table = np.linalg.solve(gram + prior, rhs + prior @ table_nodes(size))
    return table.reshape(size, size, size, 3).astype(np.float32)


# Chroma (CIE Lab C*) at which a pixel counts half as much for the tone curves.
NEUTRAL_CHROMA = 10.0


def neutral_weight(rgb: np.ndarray) -> np.ndarray:
    """Weights that favour near-neutral pixels: ``1 / (1 + (C* / NEUTRAL_CHROMA)^2)``.

    Colour edits (saturation, hue shifts) leave greys alone, so the tone curves are fitted
    mostly where they alone act; what is left for colourful pixels is the table's.
    """
    lab = lab_from_bgr(rgb[:, None, ::-1])[:, 0]
    return 1.0 / (1.0 + (lab[:, 1] ** 2 + lab[:, 2] ** 2) / NEUTRAL_CHROMA**2)


def fit_base(
    x: np.ndarray, y: np.ndarray, knots: int, matrix: bool, roughness: float | None = None, tied: bool = False
) -> LookModel:
    """The curves (and matrix) of a model: everything but the colour table.

    ``knots`` 0: identity curves; ``roughness`` is the curves' penalty (None: ``CURVE_ROUGHNESS``);
    ``tied``: one curve for the three channels pooled.
    """
    if not knots:  # no curves: the stages that follow see the before colours
        base = LookModel(np.stack([np.linspace(0.0, 1.0, 2)] * 3))
        if matrix:
            base.matrix, base.offset = fit_matrix(x, y)
        return base
    weight = neutral_weight(x)
    if tied:
        curve = fit_curve(x.T.ravel(), y.T.ravel(), knots, np.tile(weight, 3), roughness)
        base = LookModel(np.stack([curve] * 3))
    else:
        base = LookModel(np.stack([fit_curve(x[:, c], y[:, c], knots, weight, roughness) for c in range(3)]))
    if matrix:
        base.matrix, base.offset = fit_matrix(base.after_curves(x), y)
    return base


def fit_model(x: np.ndarray, y: np.ndarray, level: Complexity, bases: dict | None = None) -> LookModel:
    """Fit the stages of ``level`` to before ``x`` and after ``y`` colours, ``(P, 3)`` R, G, B.

    ``bases`` caches curves and matrices by ``(knots, matrix, roughness, tied)`` for calls on the same
    data (cross-validation fits several table sizes on one base).
    """
    key = (level.knots, level.matrix, level.roughness, level.tied)
    bases = {} if bases is None else bases
    if key not in bases:
        bases[key] = fit_base(x, y, level.knots, level.matrix, level.roughness, level.tied)
    base = bases[key]
    model = LookModel(base.curves, base.matrix, base.offset)
    if level.hue:
        model.table = fit_hue_table(model.before_table(x), y, level.table)
    elif level.table:
        model.table = fit_table(model.before_table(x), y, level.table)
    return model


def fit_hue_table(z: np.ndarray, y: np.ndarray, residual_size: int = 0) -> np.ndarray:
    """The hue-equivariant stage fitted to ``y ~ H(z)``, then a ``residual_size^3`` table for what it
    leaves (0: none), baked together into one ``HUE_TABLE_SIZE^3`` table indexed ``[r, g, b]``."""
    stage = fit_hue_stage(z, y)
    if not residual_size:
        return bake(stage.apply_rgb)
    staged = np.clip(stage.apply_rgb(z), 0.0, 1.0).astype(np.float32)
    residual = fit_table(staged, y, residual_size)

    def both(rgb: np.ndarray) -> np.ndarray:
        inner = np.clip(stage.apply_rgb(rgb), 0.0, 1.0).astype(np.float32)
        return interpolate_rgb(inner, residual, method="trilinear")

    return bake(both)


def rgb_delta_e(rgb1: np.ndarray, rgb2: np.ndarray) -> np.ndarray:
    """CIEDE2000 between ``(P, 3)`` R, G, B rows in [0, 1]."""
    return delta_e_2000(lab_from_bgr(rgb1[:, None, ::-1]), lab_from_bgr(rgb2[:, None, ::-1]))[:, 0]
