"""Gradient-domain operators: Fattal et al. (2002) tone compression and a gradient-magnitude map.

The kernels are plain functions of arrays so they can be used from Python:
:func:`solve_poisson_neumann` (a direct DCT Poisson solver), :func:`attenuation`
(the multi-scale gradient attenuation factor) and :func:`compress_log_luminance`
(the whole luminance part of Fattal's method).

Luminance is the Rec. 709 luma of the *stored* values (the same luma the rest of
imgenh uses). Because ``alpha`` is relative to the mean gradient magnitude, the
attenuation is unchanged when the log luminance is scaled, so working on
gamma-encoded values instead of linear ones only changes the output by a power
(apart from ``eps``): the choice does not change what the operator compresses.
"""

from __future__ import annotations

from statistics import NormalDist

import cv2
import numpy as np

from imgenh.ops.contract import OpContext
from imgenh.ops.noise import OPERATOR_SAMPLE_PIXELS, noise_sigma
from imgenh.ops.registry import Param, operator
from imgenh.pixels import LUMA_BGR, from_float, luma, max_value, to_float

# Gradients below this fraction of alpha are treated as this size, so the attenuation
# factor (|grad| / alpha) ** (beta - 1) stays finite in flat regions.
_GRAD_FLOOR = 0.01


def _eigenvalues(n: int) -> np.ndarray:
    """Eigenvalues of the 1-D Neumann second difference for the DCT-II basis of length ``n``."""
    return 2.0 * np.cos(np.pi * np.arange(n) / n) - 2.0


def solve_poisson_neumann(div: np.ndarray, overwrite: bool = False) -> np.ndarray:
    """Solve ``lap(u) = div`` on a grid with Neumann (zero normal derivative) boundary, directly by DCT.

    ``lap`` is the 5-point Laplacian with mirrored ghost pixels, i.e. the divergence
    (backward differences, zero flux in from outside) of forward-difference gradients
    that are zero across the last row/column. The DCT-II diagonalises it: the
    coefficient at frequency ``(k, l)`` is divided by
    ``(2 cos(pi k / H) - 2) + (2 cos(pi l / W) - 2)``.

    Parameters
    ----------
    div : ndarray, shape (H, W)
        Right-hand side (e.g. the divergence of a gradient field). Its mean is
        ignored: a Neumann problem is only solvable for zero-mean data, so the
        constant component is projected out.
    overwrite : bool
        Allow ``div``'s memory to be used for the transforms (it is then garbage): no
        further full-size array is allocated when it is contiguous with even sides.

    Returns
    -------
    ndarray, shape (H, W)
        The solution with zero mean (it is unique up to an additive constant): float32 for
        float32 ``div`` (half the memory and time of float64; the DCT is exact enough for
        images), float64 otherwise.

    Notes
    -----
    OpenCV's DCT needs even lengths (or 1). An odd axis is mirrored to twice its
    length: the mirrored problem's solution is symmetric and its first half is
    exactly the solution of the original problem.
    """
    dtype = np.float32 if np.asarray(div).dtype == np.float32 else np.float64
    f = np.asarray(div, dtype=dtype)
    if f.ndim != 2:
        raise ValueError(f"div must be 2-D (got shape {f.shape})")
    h, w = f.shape
    if h > 1 and h % 2:
        f = np.concatenate([f, f[::-1]], axis=0)
    if w > 1 and w % 2:
        f = np.concatenate([f, f[:, ::-1]], axis=1)
    f = np.ascontiguousarray(f)
    in_place = overwrite or f is not div  # f is already a copy when it was converted or mirrored
    coef = cv2.dct(f, dst=f) if in_place else cv2.dct(f)
    del f
    ey, ex = _eigenvalues(coef.shape[0]).astype(dtype), _eigenvalues(coef.shape[1]).astype(dtype)
    coef[0, 0] = 0.0  # the null space (constant) and any inconsistent mean of div
    # Divide in row blocks so no full-size eigenvalue array is allocated; (0, 0) is the null space.
    for start in range(0, coef.shape[0], 256):
        block = ey[start : start + 256, None] + ex[None, :]
        if start == 0:
            block[0, 0] = 1.0
        coef[start : start + 256] /= block
    return cv2.idct(coef, dst=coef)[:h, :w]


def forward_gradient(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences ``(d/dx, d/dy)``, zero across the last column/row (Neumann boundary)."""
    gx = np.empty_like(h)
    gy = np.empty_like(h)
    np.subtract(h[:, 1:], h[:, :-1], out=gx[:, :-1])
    np.subtract(h[1:], h[:-1], out=gy[:-1])
    gx[:, -1] = 0
    gy[-1] = 0
    return gx, gy


def divergence(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Backward-difference divergence of a field built by :func:`forward_gradient` (the adjoint pair)."""
    div = gx + gy
    div[:, 1:] -= gx[:, :-1]
    div[1:] -= gy[:-1]
    return div


def _central_magnitude(h: np.ndarray, scale: float) -> np.ndarray:
    """|grad h| from central differences (edge-replicated) divided by ``scale``."""
    diff = np.array([[-1.0, 0.0, 1.0]], np.float32)
    gx = cv2.filter2D(h, cv2.CV_32F, diff, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(h, cv2.CV_32F, diff.T, borderType=cv2.BORDER_REPLICATE)
    mag = _hypot(gx, gy)
    mag *= np.float32(1.0 / scale)
    return mag


def _hypot(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """``sqrt(gx ** 2 + gy ** 2)`` into ``gx`` (``gy`` is overwritten).

    numpy's squares, sum and square root are exactly rounded: ``cv2.magnitude``'s result moves
    by an ulp with the memory alignment of its buffers, so outputs differed from run to run.
    """
    mag = np.multiply(gx, gx, out=gx)
    mag += np.multiply(gy, gy, out=gy)
    return np.sqrt(mag, out=mag)


def attenuation(
    h: np.ndarray,
    alpha: float = 0.1,
    beta: float = 0.85,
    min_size: int = 32,
    noise: float = 0.0,
    eps: float = 1e-3,
) -> np.ndarray:
    """Fattal's multi-scale gradient attenuation factor Phi for a log-luminance image.

    A Gaussian pyramid ``H_0 = h, H_{k+1} = pyrDown(H_k)`` is built while half the
    shorter side is at least ``min_size``. At each level the central-difference
    gradient magnitude ``g_k = |grad H_k|`` (edge-replicated, differences divided by
    ``2 ** (k + 1)``) gives ``phi_k = (max(g_k, a_k / 100) / a_k) ** (beta - 1)`` with
    ``a_k = alpha * mean(g_k)`` (phi_k = 1 on a flat level); the floor keeps phi finite
    where the gradient vanishes. Phi starts as phi at the coarsest level and is
    carried up by bilinear upsampling and multiplication with each finer level's phi.

    Parameters
    ----------
    h : ndarray, shape (H, W), float32
        Log luminance.
    alpha : float
        Gradient magnitude left unchanged, as a fraction of the level's mean magnitude;
        larger gradients are attenuated, smaller ones amplified.
    beta : float
        Attenuation exponent in (0, 1]; 1 gives Phi = 1 (no change).
    min_size : int
        Smallest shorter side of a pyramid level.
    noise : float
        Noise sigma of the luminance ``exp(h) - eps`` (fraction of full scale); 0 = Fattal's Phi.
        Otherwise Phi is never above 1 where the finest gradient is at noise level: see
        :func:`hold_noise_back`.
    eps : float
        The ``eps`` of ``h = log(L + eps)`` (used with ``noise`` only).

    Returns
    -------
    ndarray, shape (H, W), float32
    """
    h = np.asarray(h, dtype=np.float32)
    if beta == 1.0:
        return np.ones_like(h)
    levels = [h]
    while min(levels[-1].shape) // 2 >= max(min_size, 1) and min(levels[-1].shape) >= 2:
        levels.append(cv2.pyrDown(levels[-1]))
    phi_total = None
    for k in range(len(levels) - 1, 0, -1):  # the coarse levels: a quarter of the pixels or fewer
        phi = _level_phi(_central_magnitude(levels[k], 2.0 ** (k + 1)), alpha, beta)
        if phi_total is not None:
            phi *= cv2.resize(phi_total, (phi.shape[1], phi.shape[0]), interpolation=cv2.INTER_LINEAR)
        phi_total = phi
    floor = _NoiseFloor(levels[1] if len(levels) > 1 else h, h.shape, noise)
    del levels[2:]
    return _finest_phi(h, phi_total, floor, alpha, beta)


def _level_phi(g: np.ndarray, alpha: float, beta: float, mean: float | None = None) -> np.ndarray:
    """``phi = (max(g, a / 100) / a) ** (beta - 1)``, ``a = alpha * mean(g)``, in place (1 where the level is flat)."""
    mean = float(g.mean(dtype=np.float64)) if mean is None else mean  # float64: no order-dependent rounding
    if not mean > 0:
        g[...] = 1.0
        return g
    a = alpha * mean
    # (g / a) ** (beta - 1), with g floored so flat areas stay finite.
    np.maximum(g, np.float32(_GRAD_FLOOR * a), out=g)
    g *= np.float32(1.0 / a)
    return _power(g, beta - 1)


def _power(x: np.ndarray, p: float) -> np.ndarray:
    """``x ** p`` in place for positive float32 ``x``, as ``exp(p log x)``: OpenCV's SIMD log and exp
    take ~60% of the time of ``cv2.pow`` with a non-integer exponent, within 3e-7 of it."""
    cv2.log(x, dst=x)
    x *= np.float32(p)
    return cv2.exp(x, dst=x)


# Rows per strip of the finest level of :func:`attenuation`, and of the strips below: ~256 KB of a
# 4000-wide float32 plane, so a strip and its temporaries stay in L2 (12 MP, the whole operator,
# session 23: 16-row strips ~620 ms against ~665 with 64).
_PHI_STRIP_ROWS = 16


class _UpsampledRows:
    """Rows of ``cv2.resize(plane, (width, height), interpolation=INTER_LINEAR)``, made strip by strip.

    When the height doubles exactly (a pyramid level of an even-height plane), each output row
    blends the same two source rows with the same weights as the whole resize does, so a strip
    resized from its source rows (and one row of context on each side) is that resize's rows to
    the bit, and no full-size plane is made. Otherwise the whole resize is made once.
    """

    def __init__(self, plane: np.ndarray, shape: tuple[int, int]):
        self.plane, self.width = plane, shape[1]
        self.whole = None
        if tuple(plane.shape) == tuple(shape):
            self.whole = plane
        elif shape[0] != 2 * plane.shape[0]:
            self.whole = cv2.resize(plane, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """Rows ``y0:y1`` of the resized plane (a view of it when it was made whole)."""
        if self.whole is not None:
            return self.whole[y0:y1]
        top, bottom = max(y0 // 2 - 1, 0), min((y1 + 1) // 2 + 1, self.plane.shape[0])
        part = cv2.resize(
            self.plane[top:bottom], (self.width, 2 * (bottom - top)), interpolation=cv2.INTER_LINEAR
        )
        return part[y0 - 2 * top : y1 - 2 * top]


def _finest_phi(
    h: np.ndarray, coarse_phi: np.ndarray | None, floor: _NoiseFloor, alpha: float, beta: float
) -> np.ndarray:
    """Phi at the finest level: ``coarse_phi`` (None: no coarser level) upsampled, times the finest
    level's phi, held back for noise where there is a ``floor`` (see :func:`hold_noise_back`).

    The finest |grad h| is formed strip by strip into the plane that then becomes Phi (its mean
    is needed before any strip's phi); the upsampled coarse Phi and the noise floor are made a
    strip at a time too, so the full planes are ``h`` and Phi.
    """
    height = h.shape[0]
    strips = [(y0, min(y0 + _PHI_STRIP_ROWS, height)) for y0 in range(0, height, _PHI_STRIP_ROWS)]
    phi_total = np.empty_like(h)
    total = 0.0
    for y0, y1 in strips:
        top, bottom = max(y0 - 1, 0), min(y1 + 1, height)  # one row of context for central differences
        g = _central_magnitude(h[top:bottom], 2.0)[y0 - top : y0 - top + y1 - y0]
        total += float(g.sum(dtype=np.float64))
        phi_total[y0:y1] = g
    mean = total / h.size
    upsampled = None if coarse_phi is None else _UpsampledRows(coarse_phi, h.shape)
    for y0, y1 in strips:
        g = phi_total[y0:y1]
        keep = floor.keep(g, y0, y1)
        phi = _level_phi(g, alpha, beta, mean)  # in place: g's rows of phi_total
        if upsampled is not None:
            phi *= upsampled.rows(y0, y1)
        if keep is not None:
            hold_noise_back(phi, keep)
    return phi_total


# Gradients up to this many noise sigmas are noise-level: the central-difference magnitude of
# white noise of sigma s is Rayleigh with scale s / sqrt(2), 99% of it below 3.03 of that.
_NOISE_FLOOR_SIGMAS = 3.0 / np.sqrt(2.0)


class _NoiseFloor:
    """The noise floor ``f = 3 / sqrt(2) * noise / (L + eps)`` of the finest |grad h| (see
    :func:`hold_noise_back`), made strip by strip from ``coarse`` (``h`` one pyramid level down)
    upsampled to ``shape``; none when there is none in float32 (noise 0 or vanishing)."""

    def __init__(self, coarse: np.ndarray, shape: tuple[int, int], noise: float):
        self.factor = np.float32(_NOISE_FLOOR_SIGMAS * noise)
        self.log_lum = None  # log(L + eps), upsampled
        if _NOISE_FLOOR_SIGMAS * noise >= np.finfo(np.float32).tiny:
            self.log_lum = _UpsampledRows(coarse, shape)

    def keep(self, g: np.ndarray, y0: int, y1: int) -> np.ndarray | None:
        """:func:`_noise_keep` of rows ``y0:y1`` of the finest |grad h| ``g`` (None: no floor)."""
        if self.log_lum is None:
            return None
        floor = np.negative(self.log_lum.rows(y0, y1))
        cv2.exp(floor, dst=floor)  # 1 / (L + eps)
        floor *= self.factor
        return _noise_keep(g, floor)


def _noise_keep(g: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """The share ``t = clip(g / f - 1, 0, 1)`` of amplification kept (a new array; ``g`` is only read)."""
    # numpy with scalars: OpenCV reads a 4-tuple against a 1x1 plane as a 4x1 array
    t = np.divide(g, floor)
    t -= np.float32(1.0)
    return np.minimum(np.maximum(t, np.float32(0.0), out=t), np.float32(1.0), out=t)


def hold_noise_back(phi: np.ndarray, keep: np.ndarray) -> None:
    """Cap the amplification of noise-level gradients, in place: Phi <= 1 below the noise floor.

    Noise of sigma ``noise`` in the luminance is ``noise / (L + eps)`` in ``h = log(L + eps)``,
    so the floor of the finest gradient magnitude ``g`` (central differences / 2, as in
    :func:`attenuation`) is ``f = 3 / sqrt(2) * noise / (L + eps)`` (``L + eps`` from ``h`` one
    pyramid level down, so the floor is not itself noisy; ``h`` itself when the image is too
    small for a pyramid). Where Phi > 1 (Fattal amplifies gradients below ``alpha`` times the
    mean), the excess is kept in proportion ``keep = t = clip((g - f) / f, 0, 1)`` of the finest
    gradient ``g`` (:func:`_noise_keep`; overwritten): none below the floor, all of it above
    twice the floor. Attenuation (Phi < 1) is left as is.
    """
    excess = np.maximum(np.subtract(phi, np.float32(1.0)), np.float32(0.0))
    # phi - excess * (1 - t) = (phi - excess) + excess * t
    np.subtract(phi, excess, out=phi)
    np.add(phi, np.multiply(excess, keep, out=keep), out=phi)


def compress_log_luminance(
    lum: np.ndarray,
    alpha: float = 0.1,
    beta: float = 0.85,
    eps: float = 1e-3,
    min_size: int = 32,
    noise: float = 0.0,
    overwrite: bool = False,
) -> np.ndarray:
    """Fattal's gradient-domain compression of a luminance image, returning the new log luminance.

    ``H = log(lum + eps)``; ``G = grad H * Phi`` (forward differences, Phi from
    :func:`attenuation`); ``I`` solves ``lap(I) = div G`` with Neumann boundary.

    Parameters
    ----------
    lum : ndarray, shape (H, W)
        Luminance >= 0.
    alpha, beta, min_size, noise
        See :func:`attenuation` (``noise``: 0 = Fattal's formula, no noise floor).
    eps : float
        Added before the log so black stays finite.
    overwrite : bool
        Allow a float32 ``lum``'s memory to hold ``H`` (``lum`` is then garbage): one full-size
        plane fewer at the peak.

    Returns
    -------
    ndarray, shape (H, W), float32
        The compressed log luminance ``I`` (zero mean; exp(I) is the new luminance up to a factor).
    """
    if overwrite and isinstance(lum, np.ndarray) and lum.dtype == np.float32:
        h = np.add(lum, np.float32(eps), out=lum)
    else:
        h = np.asarray(lum, dtype=np.float32) + np.float32(eps)
    np.log(h, out=h)
    phi = attenuation(h, alpha, beta, min_size, noise, eps) if beta != 1.0 else None
    div = attenuated_divergence(h, phi, overwrite=True)  # phi is this function's own plane
    del h, phi
    return solve_poisson_neumann(div, overwrite=True)


# Rows per strip of the fused gradient and divergence: its temporaries stay in cache.
_DIV_STRIP_ROWS = 16


def attenuated_divergence(h: np.ndarray, phi: np.ndarray | None, overwrite: bool = False) -> np.ndarray:
    """``divergence(*(phi * g for g in forward_gradient(h)))`` strip by strip, without the two gradient planes.

    The same operations in the same order as :func:`forward_gradient`, the products with
    ``phi`` (None: 1) and :func:`divergence`, so the result is the same to the bit; only a
    strip of each gradient exists at a time. With ``overwrite`` the result is written into
    ``phi`` (a strip's rows of ``phi`` are read before they are written, and never again).
    """
    height = h.shape[0]
    div = phi if overwrite and phi is not None else np.empty_like(h)
    above = None  # the attenuated y-gradient of the row above the strip
    for y0 in range(0, height, _DIV_STRIP_ROWS):
        y1 = min(y0 + _DIV_STRIP_ROWS, height)
        part = h[y0:y1]
        gx = np.empty_like(part)
        np.subtract(part[:, 1:], part[:, :-1], out=gx[:, :-1])
        gx[:, -1] = 0
        gy = np.empty_like(part)
        inner = min(y1, height - 1) - y0  # rows with a row below them
        np.subtract(h[y0 + 1 : y0 + 1 + inner], part[:inner], out=gy[:inner])
        gy[inner:] = 0
        if phi is not None:
            gx *= phi[y0:y1]
            gy *= phi[y0:y1]
        out = np.add(gx, gy, out=div[y0:y1])
        out[:, 1:] -= gx[:, :-1]
        out[1:] -= gy[:-1]
        if above is not None:
            out[0] -= above
        above = gy[-1].copy()
    return div


# Past this many pixels, percentiles are read from an even sample (every k-th pixel): exact
# enough for a normalisation and ~10x cheaper on 12 MP than a full partition.
_PERCENTILE_SAMPLE = 1_000_000
# protect: the output luminance rolls off above this level so the brightest pixel lands on 1.
_KNEE = 0.8
# A luminance spread below this many times what the noise alone spreads is not stretched at all;
# one above this plus 1 times it is stretched fully (in between, a blend).
_NOISE_SPREAD_KEEP = 1.5


@operator(
    "gradient_normalize",
    kind="native",
    summary="Gradient-domain tone mapping (Fattal et al. 2002): compresses large luminance steps, keeps "
    "detail; never amplifies noise-level gradients, rolls highlights off instead of clipping, keeps hue.",
    formula="I = poisson(div(grad log(L+eps) * Phi)), Phi = prod_k up((|grad H_k|/(alpha*mean))^(beta-1)), "
    "Phi <= 1 where |grad H| < 3/sqrt2 noise/(L+eps); L_out = pct_norm(exp I) (highlights rolled off); "
    "C_out = ((C+eps)/(L+eps))^s * L_out, scaled down per pixel (not clipped) past 1",
    reference="Fattal, Lischinski, Werman 2002 (formula; DCT solver checked against a sparse direct solve); "
    "noise: Donoho & Johnstone 1994 wavelet MAD",
    example={"alpha": 0.1, "beta": 0.85, "saturation": 0.6},
    check=lambda p: None if p["low"] < p["high"] else "low must be below high",
)
def gradient_normalize(
    img: np.ndarray,
    ctx: OpContext,
    *,
    alpha: Param(float, 0.1, "gradients above alpha * mean |grad| are attenuated", gt=0, le=10),
    beta: Param(float, 0.85, "attenuation exponent; 1 = none, smaller compresses more", gt=0, le=1),
    saturation: Param(float, 0.6, "colour exponent s in (C/L)^s * L_out; 1 keeps ratios", ge=0, le=2),
    low: Param(float, 0.5, "percentile of the new luminance mapped to 0", ge=0, lt=100),
    high: Param(
        float,
        99.5,
        "percentile of the new luminance mapped to 1 (highlights protect: levels past 0.8 then roll off)",
        gt=0,
        le=100,
    ),
    eps: Param(float, 0.004, "added to luminance before the log (~1 level of 8 bits)", ge=1e-6, le=1),
    min_size: Param(int, 32, "shorter side of the coarsest pyramid level", ge=2),
    noise: Param(
        float,
        "auto",
        "luma noise sigma in 8-bit levels: gradients at that level are never amplified and a spread "
        "within the noise is not stretched; auto = estimated from the image, 0 = off (Fattal's formula)",
        ge=0,
        le=64,
        words=("auto",),
    ),
    highlights: Param(
        str,
        "protect",
        "protect: levels past the high percentile roll off so only the brightest reaches 1; "
        "clip: they clip at 1",
        choices=("protect", "clip"),
    ),
) -> np.ndarray:
    """Compress the dynamic range in the gradient domain (Fattal, Lischinski and Werman 2002).

    The luminance (Rec. 709 luma of the stored values) is compressed by
    :func:`compress_log_luminance`, with gradients at the noise level never amplified
    (:func:`hold_noise_back`; ``noise`` from :func:`imgenh.ops.noise.noise_sigma`, recorded as
    ``noise_sigma``); ``exp(I)`` is mapped linearly so its ``low`` and ``high`` percentiles
    become 0 and 1 (:func:`_map_luminance`: highlights rolled off, a spread within the noise
    not stretched); colour is restored with ``C_out = ((C_in + eps) / (L_in + eps)) **
    saturation * L_out`` (``eps`` keeps the noise of near-black pixels from turning into
    colour), a pixel past 1 scaled down as a whole so its hue stays. A flat image (no spread
    to normalise) keeps its luminance.
    """
    lum = _float_luma(img)
    if noise == "auto":
        noise = noise_sigma(img, OPERATOR_SAMPLE_PIXELS, weights=None if img.ndim == 2 else LUMA_BGR)
        ctx.record("noise_sigma", round(noise, 3))
    sigma = noise / 255.0
    lum_spread = _percentiles(lum, (low, high)) if sigma > 0 else None
    # lum's memory holds the log luminance (a grey float32 input is the caller's: never written).
    out_lum = compress_log_luminance(lum, alpha, beta, eps, min_size, sigma, overwrite=lum is not img)
    del lum
    # Subtract the maximum before exp: the solve fixes I only up to a constant, which the
    # percentile normalisation below removes anyway, and a large I would overflow float32.
    out_lum -= out_lum.max()
    cv2.exp(out_lum, dst=out_lum)
    out_lum = _map_luminance(out_lum, img, (low, high), lum_spread, highlights == "protect", sigma, ctx)
    if img.ndim == 2:
        return out_lum if img.dtype == np.float32 else from_float(out_lum, img.dtype)
    return _restore_colour(img, out_lum, saturation, eps)


# Rows per strip of the luma of an integer image and of the colour restoration (as above).
_STRIP_ROWS = 16


def _float_luma(img: np.ndarray) -> np.ndarray:
    """Rec. 709 luma in [0, 1] as float32 (a grey float32 image is returned as it is).

    An integer colour image is weighed strip by strip: no float copy of the image is made.
    """
    if img.dtype == np.float32 or img.ndim == 2:
        return luma(to_float(img))
    weights = (LUMA_BGR / max_value(img.dtype)).reshape(1, 3).astype(np.float32)
    lum = np.empty(img.shape[:2], np.float32)
    for y0 in range(0, img.shape[0], _STRIP_ROWS):
        rows = slice(y0, y0 + _STRIP_ROWS)
        part = cv2.transform(img[rows].astype(np.float32), weights)
        lum[rows] = part if part.ndim == 2 else part[..., 0]  # transform drops a single channel axis
    return lum


def _percentiles(plane: np.ndarray, q: tuple[float, float]) -> tuple[float, float]:
    """Percentiles ``q`` of a plane (0 and 100 exact; others from an even sample past 1 MP)."""
    flat = plane.reshape(-1)
    inner = [p for p in q if 0 < p < 100]
    if inner:
        # Sorted first: numpy's partition for several ranks at once took ~12 ms on a 1 M sample,
        # the sort (SIMD) and a partition of sorted values ~8; the values are the same multiset,
        # so the percentiles are the same to the bit.
        sample = np.sort(flat[:: max(1, flat.size // _PERCENTILE_SAMPLE)])
        found = dict(zip(inner, np.percentile(sample, inner).tolist(), strict=True))
    return tuple(float(flat.min() if p <= 0 else flat.max() if p >= 100 else found[p]) for p in q)


def _map_luminance(
    e: np.ndarray,
    img: np.ndarray,
    q: tuple[float, float],
    lum_spread: tuple[float, float] | None,
    protect: bool,
    sigma: float,
    ctx: OpContext,
) -> np.ndarray:
    """Map the compressed luminance ``e = exp(I)`` to [0, 1], in place; see :func:`gradient_normalize`.

    ``y = (e - lo) / (hi - lo)`` with ``lo, hi`` the ``q`` percentiles of ``e``, 0 below. Above 1:
    clipped, or with ``protect`` rolled off past ``_KNEE`` (``k + v / (1 + v / c)``, ``v = y - k``,
    slope 1 at the knee, ``c`` chosen so the largest ``y`` lands on 1). Noise: when the input
    luminance spreads (``lum_spread``: its ``q`` percentiles) less than ``_NOISE_SPREAD_KEEP``
    times what Gaussian noise of ``sigma`` alone spreads, the image is noise on a flat field: it
    keeps the luminance of ``img``; up to one more such spread the result is blended in (weight
    recorded as ``stretch``).
    """
    lo, hi = _percentiles(e, q)
    ctx.record("percentiles", [lo, hi])
    # Below float32 resolution the spread is round-off, not image content.
    if not hi - lo > max(1e-6 * abs(hi), 1e-30):  # 1e-30: a larger 1 / (hi - lo) overflows float32
        return _own_luma(img)
    weight = 1.0
    if sigma > 0:
        z = NormalDist()
        tails = [min(max(p / 100.0, 1e-5), 1 - 1e-5) for p in q]
        noise_spread = (z.inv_cdf(tails[1]) - z.inv_cdf(tails[0])) * sigma
        weight = min(max((lum_spread[1] - lum_spread[0]) / noise_spread - _NOISE_SPREAD_KEEP, 0.0), 1.0)
        ctx.record("stretch", round(weight, 4))
        if weight == 0.0:
            return _own_luma(img)
    top = (float(e.max()) - lo) / (hi - lo)
    for y0 in range(0, e.shape[0], _STRIP_ROWS):  # the passes of a strip stay in cache
        y = e[y0 : y0 + _STRIP_ROWS]
        y -= np.float32(lo)
        y *= np.float32(1.0 / (hi - lo))
        cv2.max(y, (0.0,) * 4, dst=y)
        if protect and top > 1.0:
            _roll_off(y, top)
        cv2.min(y, (1.0,) * 4, dst=y)
    if weight < 1.0:
        cv2.addWeighted(e, weight, _float_luma(img), 1.0 - weight, 0.0, dst=e)
    return e


def _own_luma(img: np.ndarray) -> np.ndarray:
    """The luma of ``img`` as a plane of its own (never the caller's array)."""
    lum = _float_luma(img)
    return lum.copy() if lum is img else lum


def _roll_off(y: np.ndarray, top: float) -> None:
    """``y -> k + v / (1 + v / c)`` above the knee ``k`` (``v = y - k``), in place, so ``top`` maps to 1."""
    inv_c = np.float32(1.0 / (1.0 - _KNEE) - 1.0 / (top - _KNEE))
    # The few brightest pixels only: no full-size arithmetic. A mask, not a flattened view: the
    # solve's result of an odd-width image is a strided view, whose reshape would be a copy.
    above = y > np.float32(_KNEE)
    v = y[above] - np.float32(_KNEE)
    y[above] = np.float32(_KNEE) + v / (np.float32(1.0) + v * inv_c)


def _colour_scales(img: np.ndarray, out_lum: np.ndarray, saturation: float, eps: float):
    """``(rows, scale)`` for each strip of :data:`_STRIP_ROWS` rows of ``img``: the scale
    ``L_out / (L + eps) ** saturation`` of :func:`_restore_colour` on those rows, formed a strip
    at a time (from the luma of the strip) so no full-size plane of it or of ``L`` is made."""
    for y0 in range(0, img.shape[0], _STRIP_ROWS):
        rows = slice(y0, y0 + _STRIP_ROWS)
        yield rows, _colour_scale(_float_luma(img[rows]), out_lum[rows], saturation, eps)


def _colour_scale(lum: np.ndarray, out_lum: np.ndarray, saturation: float, eps: float) -> np.ndarray:
    """``L_out / (L + eps) ** saturation`` (see :func:`_restore_colour`), written into ``lum``."""
    scale = np.add(lum, np.float32(eps), out=lum)
    if saturation != 1.0:
        _power(scale, -float(saturation))
    else:
        np.reciprocal(scale, out=scale)
    scale *= out_lum
    return scale


def _restore_colour(img: np.ndarray, out_lum: np.ndarray, saturation: float, eps: float) -> np.ndarray:
    """``C_out = ((C + eps) / (L + eps)) ** saturation * L_out``, strip by strip, at ``img``'s depth; a
    pixel whose largest channel passes 1 is divided by it (all channels: its hue stays).

    Written ``(C + eps) ** s * scale`` with ``scale = L_out / (L + eps) ** s`` (a strip at a time,
    from :func:`_colour_scales`): the power of a ratio costs one power per value and one per pixel,
    not a division too; on an integer image ``(C + eps) ** s`` is a table of its levels. Ratios
    (C + eps) / (L + eps): in near-black areas, where C and L are mostly sensor or JPEG noise,
    the ratio tends to 1 (grey) instead of blowing the noise up into colour blotches once the
    shadows are lifted; elsewhere it is C / L to within eps / L.
    """
    if img.dtype != np.float32:
        return _restore_colour_levels(img, out_lum, saturation, eps)
    out = np.empty(img.shape, img.dtype)
    for rows, scale in _colour_scales(img, out_lum, saturation, eps):
        part = cv2.add(img[rows], (float(np.float32(eps)),) * 4)
        if saturation != 1.0:
            cv2.pow(part, float(saturation), dst=part)
        # A saturated colour can overshoot 1: the pixel is scaled down as a whole (a per-channel
        # clip would shift its hue, a bright blue towards violet). Its peak is scale * max channel.
        b, g, r = cv2.split(part)
        factor = _peak_factor(scale, cv2.max(cv2.max(b, g, dst=b), r, dst=b))
        cv2.multiply(part, cv2.merge([factor] * 3), dst=out[rows])
        cv2.min(out[rows], (1.0,) * 4, dst=out[rows])  # float round-off only
    return out


def _peak_factor(scale: np.ndarray, peak: np.ndarray) -> np.ndarray:
    """``scale / max(scale * peak, 1)``, written into ``peak``: the factor that keeps a pixel's largest channel <= 1."""
    # numpy for the planes: OpenCV reads a 4-tuple against a 1x1 plane as a 4x1 array
    np.maximum(np.multiply(peak, scale, out=peak), np.float32(1.0), out=peak)
    return np.divide(scale, peak, out=peak)


def _restore_colour_levels(img: np.ndarray, out_lum: np.ndarray, saturation: float, eps: float) -> np.ndarray:
    """:func:`_restore_colour` of an integer image, plane by plane: ``(C + eps) ** s`` is a table of the
    levels, and the largest channel is found on the levels themselves (the table is increasing)."""
    top = max_value(img.dtype)
    powers = ((np.arange(int(top) + 1) / top + eps) ** saturation).astype(np.float32)
    depth = cv2.CV_8U if img.dtype == np.uint8 else cv2.CV_16U

    def table(levels: np.ndarray) -> np.ndarray:
        return cv2.LUT(levels, powers) if img.dtype == np.uint8 else powers[levels]

    out = np.empty(img.shape, img.dtype)
    for rows, scale in _colour_scales(img, out_lum, saturation, eps):
        planes = cv2.split(img[rows])
        factor = _peak_factor(scale, table(cv2.max(cv2.max(planes[0], planes[1]), planes[2])))
        # Each channel times the factor, to the output's levels, rounded and saturated in one pass.
        cv2.merge(
            [cv2.multiply(table(p), factor, scale=float(top), dtype=depth) for p in planes], dst=out[rows]
        )
    return out


@operator(
    "gradient_magnitude",
    kind="float",
    summary="Normalised Sobel gradient-magnitude map of the luminance (grey output).",
    formula="m = sqrt(Sobel_x(L)^2 + Sobel_y(L)^2); out = min(m / percentile(m, p), 1)",
    reference="cv2.Sobel + numpy; skimage.filters.sobel(mode='mirror') up to its 1/(4*sqrt 2) scale",
    example={"ksize": 3, "percentile": 99.5},
    changes_shape=True,
)
def gradient_magnitude(
    img: np.ndarray,
    ctx: OpContext,
    *,
    ksize: Param(int, 3, "Sobel aperture (1, 3, 5 or 7)", ge=1, le=7, odd=True),
    percentile: Param(float, 100.0, "percentile of the magnitude mapped to 1 (100 = maximum)", gt=0, le=100),
) -> np.ndarray:
    """Sobel gradient magnitude of the Rec. 709 luma, divided by a high percentile (default the maximum).

    Borders use OpenCV's default reflection (``gfedcb|abcdefgh|gfedcba``). A flat
    image gives all zeros. The output is a grey ``(H, W)`` float32 map in [0, 1].
    """
    return sobel_magnitude(luma(img), ksize, percentile)


def sobel_magnitude(lum: np.ndarray, ksize: int = 3, percentile: float = 100.0) -> np.ndarray:
    """Normalised Sobel magnitude of a 2-D float image (see :func:`gradient_magnitude`).

    Parameters
    ----------
    lum : ndarray, shape (H, W)
    ksize : int
        Sobel aperture, 1, 3, 5 or 7.
    percentile : float
        Percentile of the magnitude that maps to 1; larger values are clipped.

    Returns
    -------
    ndarray, shape (H, W), float32 in [0, 1]
    """
    lum = np.asarray(lum, dtype=np.float32)
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=ksize)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=ksize)
    mag = _hypot(gx, gy)
    del gy
    top = float(mag.max()) if percentile >= 100 else float(np.percentile(mag, percentile))
    if top <= 0:
        return np.zeros_like(mag)
    mag *= np.float32(1.0 / top)
    return np.minimum(mag, np.float32(1.0), out=mag)
