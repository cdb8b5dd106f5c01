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

import cv2
import numpy as np

from imgenh.ops.contract import OpContext
from imgenh.ops.registry import Param, operator
from imgenh.pixels import luma

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
    mag = cv2.magnitude(gx, gy, gx)
    mag *= np.float32(1.0 / scale)
    return mag


def attenuation(h: np.ndarray, alpha: float = 0.1, beta: float = 0.85, min_size: int = 32) -> np.ndarray:
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
    for k in range(len(levels) - 1, -1, -1):
        g = _central_magnitude(levels[k], 2.0 ** (k + 1))
        mean = float(g.mean())
        if mean > 0:
            a = alpha * mean
            # (g / a) ** (beta - 1), with g floored so flat areas stay finite.
            np.maximum(g, np.float32(_GRAD_FLOOR * a), out=g)
            g *= np.float32(1.0 / a)
            phi = cv2.pow(g, beta - 1, dst=g)
        else:
            phi = np.ones_like(g)
        if phi_total is None:
            phi_total = phi
        else:
            size = (phi.shape[1], phi.shape[0])
            phi_total = cv2.resize(phi_total, size, interpolation=cv2.INTER_LINEAR)
            phi_total *= phi
    return phi_total


def compress_log_luminance(
    lum: np.ndarray, alpha: float = 0.1, beta: float = 0.85, eps: float = 1e-3, min_size: int = 32
) -> np.ndarray:
    """Fattal's gradient-domain compression of a luminance image, returning the new log luminance.

    ``H = log(lum + eps)``; ``G = grad H * Phi`` (forward differences, Phi from
    :func:`attenuation`); ``I`` solves ``lap(I) = div G`` with Neumann boundary.

    Parameters
    ----------
    lum : ndarray, shape (H, W)
        Luminance >= 0.
    alpha, beta, min_size
        See :func:`attenuation`.
    eps : float
        Added before the log so black stays finite.

    Returns
    -------
    ndarray, shape (H, W), float32
        The compressed log luminance ``I`` (zero mean; exp(I) is the new luminance up to a factor).
    """
    h = np.asarray(lum, dtype=np.float32) + np.float32(eps)
    np.log(h, out=h)
    # Phi first: its pyramid and temporaries are gone before the two gradient planes exist.
    phi = attenuation(h, alpha, beta, min_size) if beta != 1.0 else None
    gx, gy = forward_gradient(h)
    del h
    if phi is not None:
        gx *= phi
        gy *= phi
        del phi
    div = divergence(gx, gy)
    del gx, gy
    return solve_poisson_neumann(div, overwrite=True)


@operator(
    "gradient_normalize",
    kind="float",
    summary="Gradient-domain tone mapping (Fattal et al. 2002): compresses large luminance steps, keeps detail.",
    formula="I = poisson(div(grad log(L+eps) * Phi)), Phi = prod_k up((|grad H_k|/(alpha*mean))^(beta-1)); "
    "L_out = pct_norm(exp I); C_out = ((C+eps)/(L+eps))^s * L_out",
    reference="Fattal, Lischinski, Werman 2002 (formula; DCT solver checked against a sparse direct solve)",
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
    high: Param(float, 99.5, "percentile of the new luminance mapped to 1", gt=0, le=100),
    eps: Param(float, 0.004, "added to luminance before the log (~1 level of 8 bits)", ge=1e-6, le=1),
    min_size: Param(int, 32, "shorter side of the coarsest pyramid level", ge=2),
) -> np.ndarray:
    """Compress the dynamic range in the gradient domain (Fattal, Lischinski and Werman 2002).

    The luminance (Rec. 709 luma of the stored values) is compressed by
    :func:`compress_log_luminance`; ``exp(I)`` is mapped linearly so its ``low`` and
    ``high`` percentiles become 0 and 1; colour is restored with
    ``C_out = ((C_in + eps) / (L_in + eps)) ** saturation * L_out`` (``eps`` keeps the
    noise of near-black pixels from turning into colour). A flat image (no spread to
    normalise) keeps its luminance.
    """
    lum = luma(img).astype(np.float32, copy=False)
    out_lum = compress_log_luminance(lum, alpha, beta, eps, min_size)
    # Subtract the maximum before exp: the solve fixes I only up to a constant, which the
    # percentile normalisation below removes anyway, and a large I would overflow float32.
    out_lum -= out_lum.max()
    np.exp(out_lum, out=out_lum)
    lo, hi = np.percentile(out_lum, [low, high])
    ctx.record("percentiles", [float(lo), float(hi)])
    # Below float32 resolution the spread is round-off, not image content.
    if hi - lo > max(1e-6 * abs(hi), 1e-30):  # 1e-30: a larger 1 / (hi - lo) overflows float32
        out_lum -= lo
        out_lum *= 1.0 / (hi - lo)
        cv2.min(cv2.max(out_lum, (0.0,) * 4, dst=out_lum), (1.0,) * 4, dst=out_lum)
    else:
        out_lum = lum.copy()
    if img.ndim == 2:
        return out_lum
    scale = _colour_scale(lum, out_lum, saturation, eps)  # lum is ours (a fresh plane): reused
    del out_lum, lum  # freed before the output image is allocated
    return _restore_colour(img, scale, saturation, eps)


# Rows per strip of the colour restoration: its float temporaries stay in cache.
_STRIP_ROWS = 64


def _colour_scale(lum: np.ndarray, out_lum: np.ndarray, saturation: float, eps: float) -> np.ndarray:
    """The plane ``L_out / (L + eps) ** saturation`` of :func:`_restore_colour`, written into ``lum``."""
    scale = np.add(lum, np.float32(eps), out=lum)
    if saturation != 1.0:
        cv2.pow(scale, -float(saturation), dst=scale)
    else:
        np.reciprocal(scale, out=scale)
    scale *= out_lum
    return scale


def _restore_colour(img: np.ndarray, scale: np.ndarray, saturation: float, eps: float) -> np.ndarray:
    """``C_out = clip(((C + eps) / (L + eps)) ** saturation * L_out)``, strip by strip.

    Written ``(C + eps) ** s * scale`` with ``scale = L_out / (L + eps) ** s`` (one plane, from
    :func:`_colour_scale`): the power of a ratio costs one power per value and one per pixel,
    not a division too. Ratios (C + eps) / (L + eps): in near-black areas, where C and L are
    mostly sensor or JPEG noise, the ratio tends to 1 (grey) instead of blowing the noise up
    into colour blotches once the shadows are lifted; elsewhere it is C / L to within eps / L.
    """
    s = np.float32(saturation)
    eps32 = np.float32(eps)
    out = np.empty(img.shape, np.float32)
    for y0 in range(0, img.shape[0], _STRIP_ROWS):
        rows = slice(y0, y0 + _STRIP_ROWS)
        part = cv2.add(img[rows], (float(eps32),) * 4)
        if saturation != 1.0:
            cv2.pow(part, float(s), dst=part)
        part *= scale[rows, :, None]
        # Saturated colours overshoot 1; clip so the kernel is usable on its own, outside a pipeline.
        cv2.min(cv2.max(part, (0.0,) * 4, dst=part), (1.0,) * 4, dst=out[rows])  # ~5x np.clip
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
    mag = cv2.magnitude(gx, gy)
    del gx, gy
    top = float(mag.max()) if percentile >= 100 else float(np.percentile(mag, percentile))
    if top <= 0:
        return np.zeros_like(mag)
    mag *= np.float32(1.0 / top)
    return np.minimum(mag, np.float32(1.0), out=mag)
