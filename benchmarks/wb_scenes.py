"""Spectrally rendered scenes with exactly known illuminants, for training and judging white balance.

Used by ``benchmarks/train_white_balance.py`` (training set) and
``benchmarks/white_balance_eval.py`` (held-out set). colour-science supplies the data; it is a
test/benchmark dependency only and the package never imports this module.

A scene is a set of surfaces (measured reflectances: ColorChecker, BabelColor, PMC, CIE test
colour samples, NIST CQS, and convex mixtures of them) laid out as overlapping rectangles and
ellipses, lit by one or two lights (CIE daylight series, black bodies, CIE fluorescent,
LED and high-pressure lamps, measured light sources) and seen by a camera (spectral
sensitivities of real and synthetic cameras). Each pixel is ``shading * sum_lambda(R L S)``,
with texture, specular highlights (the light's own colour), noise and clipping; a two-light
scene blends two lights across the frame. Two renderings of every scene:

- ``linear``: linear camera RGB stored as 16-bit (estimate with ``linear: false``); the true
  illuminant is the camera's response to a perfect white (area-weighted for two lights).
- ``jpeg``: what users' files look like: the camera applies a wrong white balance (a daylight
  preset or a partial correction), its colour matrix to linear sRGB, the sRGB curve, 8 bits
  and JPEG compression (estimate with ``linear: true``); the truth goes through the same
  gains and matrix. A share ``TINT_SHARE`` of them also has a tint off the daylight /
  black-body locus (see :func:`draw_tint`): a camera's tint setting, an uncorrected green
  fluorescent or magenta LED, a scan; without it the wrong balances all lie along the locus
  and a model learns to read only part of a green or magenta cast.

A scene may also be rendered over-exposed (``over_stops`` of :func:`render`): more light after
the exposure is set, so the brightest surfaces clip; the light, and so the truth, do not change
(``white_balance_eval.py --over-stops``).

The split: training uses cameras ``TRAIN_CAMERAS``, the named lights in ``TRAIN_LIGHTS`` and
seeds from ``TRAIN_SEED``; evaluation uses ``HELD_OUT_CAMERAS`` (none of them seen in
training; Nikon 5100 is a real camera held out whole), the lights in ``HELD_OUT_LIGHTS`` and
seeds from ``HELD_OUT_SEED``, with daylight and black-body temperatures (and tints) drawn from
those seeds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

_PRINT_OPTIONS = np.get_printoptions()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour warns that matplotlib is missing
    import colour
    from colour.quality.datasets import SDS_TCS, SDS_VS
np.set_printoptions(**_PRINT_OPTIONS)  # colour switches numpy to legacy printing, which breaks doctests

SHAPE = colour.SpectralShape(400, 700, 10)
SCENE_TYPES = ("patches", "textured", "specular", "two_light", "dominant", "dim")
DOMAINS = ("linear", "jpeg")

TRAIN_CAMERAS = (
    "Sigma SDMerill (NPL)",
    "ACES RICD",
    "CIE 1931 sRGB",
    "Stiles-Burch 1955",
    *(f"gauss-{i}" for i in range(6)),
)
HELD_OUT_CAMERAS = ("Nikon 5100 (NPL)", "Stockman-Sharpe LMS", "gauss-100")
TRAIN_SEED, HELD_OUT_SEED = 1000, 9000
# Off-locus wrong balances of the jpeg domain: the share of scenes with one, and the range of its
# size |t| in log chromaticity. The quality benchmark's green cast (linear gains B 0.85, G 1.1,
# R 0.8) is t = 0.41; a CC30 green or magenta filter's worth is ~0.35-0.7.
TINT_SHARE = 0.35
TINT_SIZE = (0.05, 0.55)

_FLUO_TRAIN = [f"FL{i}" for i in range(1, 7)] + [f"FL3.{i}" for i in range(1, 9)]
_FLUO_HELD = [f"FL{i}" for i in range(7, 13)] + [f"FL3.{i}" for i in range(9, 16)]
TRAIN_LIGHTS = {
    "fluorescent": _FLUO_TRAIN
    + ["Cool White FL", "Triphosphor FL", "F32T8/TL830 (Triphosphor)", "F40/DX (Broadband FL)"],
    "led": [
        "LED-B1",
        "LED-B2",
        "LED-B3",
        "LED-V1",
        "3-LED-1 (457/540/605)",
        "4-LED-1 (461/526/576/624)",
        "Phosphor LED YAG",
    ],
    "other": ["HP1", "HP2", "HP3", "Incandescent", "Metal Halide", "MHC100/U/MP/4K"],
}
HELD_OUT_LIGHTS = {
    "fluorescent": _FLUO_HELD
    + ["Daylight FL", "F32T8/TL850 (Triphosphor)", "F34T12WW/RS/EW (Warm White FL)"],
    "led": [
        "LED-B4",
        "LED-B5",
        "LED-BH1",
        "LED-RGB1",
        "LED-V2",
        "3-LED-2 (473/545/616)",
        "Luxeon WW 2880",
        "PHOS-1",
    ],
    "other": ["HP4", "HP5", "60 A/W (Soft White)", "MHC100/U/MP/3K"],
}


def _values(sd) -> np.ndarray:
    """Values of a spectral distribution on SHAPE (interpolated, extrapolated flat)."""
    return np.asarray(sd.copy().align(SHAPE).values, dtype=np.float64)


@cache
def reflectances() -> np.ndarray:
    """Measured surface reflectances on SHAPE, shape (n, 31)."""
    sets = [colour.SDS_COLOURCHECKERS[n] for n in ("ColorChecker N Ohta", "BabelColor Average", "PMC")]
    sets += [SDS_TCS["CIE 2024"], SDS_VS["NIST CQS 9.0"]]
    rows = [_values(sd) for group in sets for sd in group.values()]
    return np.clip(np.array(rows), 0.0, 1.0)


def _gaussian_camera(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    wl = SHAPE.wavelengths
    peaks = (rng.uniform(585, 625), rng.uniform(520, 560), rng.uniform(440, 475))
    widths = rng.uniform(25, 50, 3)
    return np.stack([np.exp(-0.5 * ((wl - p) / w) ** 2) for p, w in zip(peaks, widths, strict=True)], axis=1)


@cache
def camera(name: str) -> np.ndarray:
    """Spectral sensitivities (31, 3) in R, G, B order of a named camera."""
    if name.startswith("gauss-"):
        return _gaussian_camera(int(name.split("-")[1]))
    if name == "ACES RICD":
        sens = colour.characterisation.MSDS_ACES_RICD
    elif name in colour.MSDS_CAMERA_SENSITIVITIES:
        sens = colour.MSDS_CAMERA_SENSITIVITIES[name]
    else:
        cmfs_name = {
            "CIE 1931 sRGB": "CIE 1931 2 Degree Standard Observer",
            "Stiles-Burch 1955": "Stiles & Burch 1955 2 Degree RGB CMFs",
            "Stockman-Sharpe LMS": "Stockman & Sharpe 2 Degree Cone Fundamentals",
        }[name]
        sens = colour.MSDS_CMFS[cmfs_name]
    values = np.asarray(sens.copy().align(SHAPE).values, dtype=np.float64)
    if name == "CIE 1931 sRGB":  # (L, M, S cone fundamentals act as R, G, B as they are)
        values = values @ colour.models.RGB_COLOURSPACE_sRGB.matrix_XYZ_to_RGB.T
    values = np.maximum(values, 0.0)  # negative lobes of colour-matching functions are not a sensor
    return values / values.max(axis=0)


@cache
def camera_matrix(name: str) -> np.ndarray:
    """3x3 camera RGB -> linear sRGB for white-balanced D65 scenes (ColorChecker least squares, white kept)."""
    sens = camera(name)
    d65 = _values(colour.SDS_ILLUMINANTS["D65"])
    cmfs = _values_multi(colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"])
    patches = np.array([_values(sd) for sd in colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"].values()])
    xyz = (patches * d65) @ cmfs / (d65 @ cmfs[:, 1])
    target = xyz @ np.asarray(colour.models.RGB_COLOURSPACE_sRGB.matrix_XYZ_to_RGB).T
    white = d65 @ sens
    cam = (patches * d65) @ sens / white
    m, *_ = np.linalg.lstsq(cam, target, rcond=None)
    m = m.T
    return m / m.sum(axis=1, keepdims=True)  # a white-balanced white maps to R = G = B = 1


def _values_multi(msds) -> np.ndarray:
    return np.asarray(msds.copy().align(SHAPE).values, dtype=np.float64)


@cache
def named_light(name: str) -> np.ndarray:
    sd = colour.SDS_ILLUMINANTS.get(name) or colour.SDS_LIGHT_SOURCES[name]
    return _values(sd)


def draw_light(rng: np.random.Generator, held_out: bool) -> tuple[str, np.ndarray]:
    """(kind, spectrum) of a random light from the split's pool."""
    pool = HELD_OUT_LIGHTS if held_out else TRAIN_LIGHTS
    kind = rng.choice(
        ["daylight", "blackbody", "fluorescent", "led", "other"], p=[0.32, 0.28, 0.18, 0.15, 0.07]
    )
    if kind == "daylight":
        xy = colour.temperature.CCT_to_xy_CIE_D(rng.uniform(4000, 12000))
        spd = _values(colour.sd_CIE_illuminant_D_series(xy))
    elif kind == "blackbody":
        spd = _values(colour.sd_blackbody(rng.uniform(1900, 5500)))
    else:
        spd = named_light(str(rng.choice(pool[kind])))
    return str(kind), spd / spd.max()


@dataclass
class Scene:
    """One rendered scene: the image as the operator gets it and the true illuminant (B, G, R)."""

    image: np.ndarray  # BGR uint16 (linear domain) or uint8 (jpeg domain)
    illuminant: np.ndarray  # BGR, in the working space of the image
    scene_type: str
    domain: str
    camera: str
    light: str
    seed: int
    tint: float = 0.0  # off-locus wrong balance of a jpeg scene (draw_tint), 0 for none
    over_stops: float = 0.0  # stops of over-exposure after the exposure is set, 0 for none

    @property
    def balance(self) -> str:
        """How the camera's wrong balance lies: "on locus", or "green tint" / "magenta tint"."""
        return "on locus" if self.tint == 0 else ("green tint" if self.tint > 0 else "magenta tint")

    @property
    def linear(self) -> bool:
        """The operator's ``linear`` parameter for this image (jpeg files hold sRGB-encoded values)."""
        return self.domain == "jpeg"


def _smooth_field(rng: np.random.Generator, h: int, w: int, scale: float) -> np.ndarray:
    """A smooth random field in [0, 1] (upsampled noise)."""
    coarse = rng.random((max(int(h / scale), 2), max(int(w / scale), 2))).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field -= field.min()
    return field / max(float(field.max()), 1e-6)


def _layout(rng: np.random.Generator, h: int, w: int, n_surfaces: int, dominant: bool) -> np.ndarray:
    """Index map of surfaces: a background and overlapping rectangles and ellipses."""
    index = np.zeros((h, w), np.int32)
    count = rng.integers(3, 8) if dominant else rng.integers(10, 45)
    for _ in range(count):
        k = int(rng.integers(1, n_surfaces)) if n_surfaces > 1 else 0
        size = rng.uniform(0.05, 0.25 if dominant else 0.45)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = size * h * rng.uniform(0.4, 1.0), size * w * rng.uniform(0.4, 1.0)
        if rng.random() < 0.5:
            y0, y1, x0, x1 = int(cy - ry), int(cy + ry), int(cx - rx), int(cx + rx)
            index[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = k
        else:
            cv2.ellipse(
                index, (int(cx), int(cy)), (int(rx), int(ry)), float(rng.uniform(0, 180)), 0, 360, k, -1
            )
    return index


def _palette(rng: np.random.Generator, dominant: bool) -> np.ndarray:
    """Reflectances of a scene's surfaces: measured ones and convex mixtures of them."""
    pool = reflectances()
    n = int(rng.integers(4, 10) if dominant else rng.integers(8, 30))
    picks = pool[rng.integers(0, len(pool), n)]
    mix = pool[rng.integers(0, len(pool), n)]
    t = rng.uniform(0, 1, (n, 1)) * (rng.random((n, 1)) < 0.5)
    return np.clip((1 - t) * picks + t * mix, 0.005, 1.0)


def _render_linear(rng, sens, lights, scene_type, size):
    """Camera RGB (H, W, 3, R G B order, float32, clipped) and the true illuminant (R, G, B)."""
    h, w = size
    dominant = scene_type == "dominant"
    palette = _palette(rng, dominant)
    index = _layout(rng, h, w, len(palette), dominant)
    intensity = [1.0] + [rng.uniform(0.6, 1.6) for _ in lights[1:]]
    norms = [k / (spd @ sens)[1] for k, spd in zip(intensity, lights, strict=True)]
    whites = [(spd @ sens) * n for spd, n in zip(lights, norms, strict=True)]
    responses = [((palette * spd) @ sens) * n for spd, n in zip(lights, norms, strict=True)]
    shading = 0.35 + 0.65 * _smooth_field(rng, h, w, rng.uniform(20, 120))
    if scene_type == "textured":
        texture = _smooth_field(rng, h, w, rng.uniform(1.5, 4))
        shading *= 1.0 - rng.uniform(0.2, 0.6) * texture
        other = rng.integers(0, len(palette), len(palette))
        blend = (_smooth_field(rng, h, w, rng.uniform(2, 8)) > rng.uniform(0.5, 0.8)).astype(np.float32)
    if scene_type == "two_light":
        angle = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:h, 0:w]
        ramp = (
            (np.cos(angle) * (xx - w / 2) + np.sin(angle) * (yy - h / 2)) / rng.uniform(0.05, 0.3) / max(h, w)
        )
        weight = (1.0 / (1.0 + np.exp(-ramp)))[..., None].astype(np.float32)
        img = weight * responses[0][index] + (1 - weight) * responses[1][index]
        truth = float(weight.mean()) * whites[0] + (1 - float(weight.mean())) * whites[1]
    else:
        img = responses[0][index]
        if scene_type == "textured":
            img = img * (1 - blend[..., None]) + responses[0][other][index] * blend[..., None]
        truth = whites[0]
    img = img * shading[..., None]
    if scene_type == "specular" or rng.random() < 0.15:
        img = img + _highlights(rng, h, w)[..., None] * truth
    return img.astype(np.float32), truth


def _highlights(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A few Gaussian specular blobs (strength relative to a white surface)."""
    out = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(rng.integers(1, 6)):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(2, 0.08 * max(h, w))
        out += rng.uniform(0.3, 2.0) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
    return out


def _expose(rng: np.random.Generator, img: np.ndarray, scene_type: str) -> np.ndarray:
    """Scale to an exposure (some highlights clip), add shot and read noise, clip to [0, 1]."""
    level = np.percentile(img.max(axis=2), 98)
    target = rng.uniform(0.02, 0.12) if scene_type == "dim" else rng.uniform(0.55, 1.4)
    img = img * (target / max(level, 1e-9))
    shot, read = rng.uniform(1e-5, 1e-3), rng.uniform(0.0, 0.003)
    noise = rng.standard_normal(img.shape).astype(np.float32)
    img = img + noise * np.sqrt(shot * np.maximum(img, 0) + read * read)
    return np.clip(img, 0.0, 1.0)


@cache
def tint_direction() -> np.ndarray:
    """Unit vector in linear sRGB's (ln R/G, ln B/G) perpendicular to the black-body locus, toward green.

    The locus direction is a 2850 K black body's colour relative to D65's; the perpendicular
    with both components negative raises G against R and B.
    """
    cmfs = _values_multi(colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"])
    to_srgb = np.asarray(colour.models.RGB_COLOURSPACE_sRGB.matrix_XYZ_to_RGB)
    warm = to_srgb @ (_values(colour.sd_blackbody(2850)) @ cmfs)
    d65 = to_srgb @ (named_light("D65") @ cmfs)
    locus = np.log(warm[[0, 2]] / warm[1]) - np.log(d65[[0, 2]] / d65[1])
    perp = np.array([-locus[1], locus[0]]) / np.linalg.norm(locus)
    return perp if perp.sum() < 0 else -perp


def draw_tint(seed: int) -> float:
    """Signed size of a scene's off-locus tint (0: none; > 0 green, < 0 magenta).

    Drawn from its own generator of ``seed``, so a scene without a tint renders exactly as it
    did before tints existed, and held-out scenes get theirs from their own seeds.
    """
    rng = np.random.default_rng((seed, 14))
    if rng.random() >= TINT_SHARE:
        return 0.0
    return float(rng.choice((-1.0, 1.0)) * rng.uniform(*TINT_SIZE))


def _to_jpeg(rng: np.random.Generator, cam: np.ndarray, truth: np.ndarray, cam_name: str, tint: float = 0.0):
    """A camera's JPEG with the wrong white balance (and ``tint``), and the truth in its linear sRGB."""
    sens = camera(cam_name)
    white_d65 = named_light("D65") @ sens
    preset = white_d65 if rng.random() < 0.5 else truth ** (a := rng.uniform(0.0, 0.8)) * white_d65 ** (1 - a)
    gains = preset[1] / preset
    matrix = camera_matrix(cam_name)
    # The tint acts on the output (as a camera's tint setting or an edit does): R/G and B/G move by it.
    tinted = np.ones(3)
    tinted[[0, 2]] = np.exp(tint * tint_direction())
    srgb = np.clip((np.clip(cam * gains, 0, 1) @ matrix.T) * tinted, 0.0, 1.0)
    encoded = np.rint(colour.cctf_encoding(srgb, function="sRGB") * 255).astype(np.uint8)
    ok, data = cv2.imencode(".jpg", encoded[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(75, 96))])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR), np.maximum(tinted * (matrix @ (gains * truth)), 1e-4)


def render(seed: int, held_out: bool, size: tuple[int, int] = (192, 256), over_stops: float = 0.0) -> Scene:
    """Render the scene of ``seed`` from the training (or held-out) pools, ``over_stops`` over-exposed."""
    rng = np.random.default_rng(seed)
    cams = HELD_OUT_CAMERAS if held_out else TRAIN_CAMERAS
    cam_name = str(rng.choice(cams))
    sens = camera(cam_name)
    scene_type = str(rng.choice(SCENE_TYPES))
    domain = str(rng.choice(DOMAINS))
    kind, spd = draw_light(rng, held_out)
    lights, label = [spd], kind
    if scene_type == "two_light":
        kind2, spd2 = draw_light(rng, held_out)
        lights.append(spd2)
        label = f"{kind}+{kind2}"
    cam, truth = _render_linear(rng, sens, lights, scene_type, size)
    cam = _expose(rng, cam, scene_type)
    if over_stops:
        cam = np.clip(cam * np.float32(2.0**over_stops), 0.0, 1.0)
    tint = 0.0
    if domain == "linear":
        image = np.rint(cam[..., ::-1] * 65535).astype(np.uint16)
        illuminant = truth[::-1]
    else:
        tint = draw_tint(seed)
        image, truth_srgb = _to_jpeg(rng, cam, truth, cam_name, tint)
        illuminant = truth_srgb[::-1]
    return Scene(
        image, illuminant / illuminant.sum(), scene_type, domain, cam_name, label, seed, tint, over_stops
    )


def angular_error(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between two colour vectors (180 when one is zero)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if not (na > 0 and nb > 0):
        return 180.0
    return float(np.degrees(np.arccos(np.clip(a @ b / na / nb, -1.0, 1.0))))
