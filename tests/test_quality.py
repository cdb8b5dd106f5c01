"""Quality figures against their definitions and reference libraries (scikit-image)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import SAMPLES
from skimage.color import rgb2gray
from skimage.measure import shannon_entropy

from imgenh.quality import FIGURE_NAMES, FIGURES, colourfulness, deltas, figures


def _sample(name: str, side: int | None = None) -> np.ndarray:
    img = cv2.imread(str(SAMPLES / name), cv2.IMREAD_UNCHANGED)
    if side:
        img = cv2.resize(img, (side, side * img.shape[0] // img.shape[1]), interpolation=cv2.INTER_AREA)
    return img


def _hasler_suesstrunk(bgr: np.ndarray) -> float:
    """The paper's formula, written out in float64 (population statistics over all pixels)."""
    b, g, r = (bgr[..., c].astype(np.float64) for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())


def test_figures_table_names_every_figure():
    assert [name for name, _ in FIGURES] == list(FIGURE_NAMES)
    assert all(len(text) > 20 for _, text in FIGURES)
    assert list(figures(np.zeros((4, 4, 3), np.uint8))) == list(FIGURE_NAMES)


@pytest.mark.parametrize(
    "rgb_pixels, expected",
    [
        # half pure red, half pure green: rg = +-255, yb = 127.5 -> sd_rg 255, mean_yb 127.5
        ([(255, 0, 0), (0, 255, 0)], 255 + 0.3 * 127.5),
        # one colour: no spread, M = 0.3 * |(rg, yb)| = 0.3 * |(100, 100)|
        ([(200, 100, 50)], 0.3 * math.hypot(100, 100)),
        # neutral greys: rg = yb = 0
        ([(0, 0, 0), (128, 128, 128), (255, 255, 255)], 0.0),
        # blue and yellow: rg = 0, yb = -255 / +255 -> sd 255, mean 0
        ([(0, 0, 255), (255, 255, 0)], 255.0),
    ],
)
def test_colourfulness_on_hand_made_images(rgb_pixels, expected):
    rgb = np.array(rgb_pixels, np.uint8).reshape(1, -1, 3).repeat(6, axis=0).repeat(5, axis=1)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    assert colourfulness(bgr) == pytest.approx(expected, abs=1e-6)
    # the same image as 16-bit and float32: M is defined on 0..255 values whatever the depth
    assert colourfulness(bgr.astype(np.uint16) * 257) == pytest.approx(expected, abs=1e-3)
    assert colourfulness(bgr.astype(np.float32) / 255) == pytest.approx(expected, abs=0.01)


def test_colourfulness_matches_the_formula_on_photos_and_its_scale():
    for name in ("astronaut.jpg", "chelsea.jpg", "rocket_dim_warm.jpg"):
        img = _sample(name, 200)
        assert colourfulness(img) == pytest.approx(_hasler_suesstrunk(img), rel=1e-5)
    # The paper's scale: a grey photo is "not colourful", a saturated one "highly" (> 59)
    assert colourfulness(_sample("camera.png")) == 0.0
    assert figures(_sample("astronaut.jpg"))["colourfulness"] > 59


def test_entropy_is_skimage_entropy_of_the_8bit_luma():
    grey = _sample("camera.png")
    # on uint8 skimage counts unique values, which are exactly the 256 bins
    assert figures(grey)["entropy"] == pytest.approx(shannon_entropy(grey), abs=1e-5)
    bgr = _sample("coffee.jpg", 240)
    luma8 = np.rint(rgb2gray(bgr[..., ::-1]) * 255).astype(np.uint8)
    # skimage's luma weights are 0.2125/0.7154/0.0721: a few pixels round the other way
    assert figures(bgr)["entropy"] == pytest.approx(shannon_entropy(luma8), abs=0.01)


def test_entropy_of_16bit_uses_256_bins_not_unique_values():
    img16 = _sample("coffee_16bit.png", 240)
    luma = rgb2gray(img16[..., ::-1].astype(np.float64) / 65535)
    counts, _ = np.histogram(np.rint(luma * 255), bins=256, range=(-0.5, 255.5))
    p = counts[counts > 0] / counts.sum()
    expected = -np.sum(p * np.log2(p))
    assert figures(img16)["entropy"] == pytest.approx(expected, abs=0.01)
    assert shannon_entropy(img16) > 9  # what the unique-value count would have said


def test_brightness_contrast_and_clipping_on_a_known_image():
    # 10% black, 5% white, the rest mid-grey 128 (luma of an equal-RGB pixel is its value)
    grey = np.full((20, 50), 128, np.uint8)
    grey[:2] = 0
    grey[2:3] = 255
    values = grey.astype(np.float64) / 255
    f = figures(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert f["clipped_shadows"] == pytest.approx(10.0)
    assert f["clipped_highlights"] == pytest.approx(5.0)
    assert f["brightness"] == pytest.approx(values.mean(), abs=1e-6)
    assert f["contrast"] == pytest.approx(values.std(), abs=1e-6)
    # a photo: skimage's rgb2gray mean and standard deviation
    bgr = _sample("chelsea.jpg", 200)
    luma = rgb2gray(bgr[..., ::-1])
    f = figures(bgr)
    assert f["brightness"] == pytest.approx(luma.mean(), abs=2e-3)
    assert f["contrast"] == pytest.approx(luma.std(), abs=2e-3)


def test_cast_is_the_angle_of_the_linear_gray_world_illuminant():
    linear = np.array([0.8, 0.4, 0.4])  # R, G, B in linear light
    # IEC 61966-2-1 encoding, written out (importing colour-science changes numpy's print
    # options for the whole session, which breaks the doctests)
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    bgr = np.rint(np.tile(encoded[::-1], (8, 8, 1)) * 65535).astype(np.uint16)
    expected = math.degrees(math.acos(linear.sum() / (np.linalg.norm(linear) * math.sqrt(3))))
    assert figures(bgr)["cast_degrees"] == pytest.approx(expected, abs=0.01)
    # gray world averages linear values: half black and half that colour has the same cast
    bgr[:4] = 0
    assert figures(bgr)["cast_degrees"] == pytest.approx(expected, abs=0.01)
    assert figures(np.full((4, 4, 3), 77, np.uint8))["cast_degrees"] == 0.0


@pytest.mark.parametrize("sigma", [3.0, 6.0, 12.0])
@pytest.mark.parametrize("name", ["astronaut.jpg", "rocket.jpg", "smooth"])
def test_noise_estimate_within_15_percent_of_added_noise(sigma, name):
    # clean scenes: a smooth gradient, or a photo with little grain of its own, squeezed into
    # levels 30..225 so the added noise is not clipped
    rng = np.random.default_rng(7)
    if name == "smooth":
        yy, xx = np.mgrid[0:300, 0:400].astype(np.float32)
        base = np.dstack([60 + xx / 4, 80 + yy / 3, 150 - xx / 8]).astype(np.float32)
    else:
        base = _sample(name, 400).astype(np.float32) * (195 / 255) + 30
    noisy = np.clip(np.rint(base + rng.normal(0, sigma, base.shape)), 0, 255).astype(np.uint8)
    # noise added per channel; luma mixes the channels: sigma_Y = sigma * |weights|
    expected = sigma * math.sqrt(0.212656**2 + 0.715158**2 + 0.072186**2)
    assert figures(noisy)["noise_sigma"] == pytest.approx(expected, rel=0.15)
    grey = np.clip(np.rint(base[..., 1] + rng.normal(0, sigma, base.shape[:2])), 0, 255).astype(np.uint8)
    assert figures(grey)["noise_sigma"] == pytest.approx(sigma, rel=0.15)


def test_sharpness_falls_as_the_image_is_blurred():
    img = _sample("astronaut.jpg")
    scores = [figures(img if s == 0 else cv2.GaussianBlur(img, (0, 0), s))["sharpness"] for s in (0, 1, 2, 4)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] > 3 * scores[2]


def test_sharpness_does_not_depend_on_resolution():
    big = cv2.GaussianBlur(
        cv2.resize(_sample("coffee.jpg"), (2000, 1333), interpolation=cv2.INTER_CUBIC), (0, 0), 1
    )
    half = cv2.resize(big, (1000, 667), interpolation=cv2.INTER_AREA)
    a, b = figures(big)["sharpness"], figures(half)["sharpness"]
    assert a == pytest.approx(b, rel=0.1)
    # the plain Laplacian variance at native resolution would differ several-fold
    lap = [cv2.Laplacian(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var() for x in (big, half)]
    assert lap[1] > 2.5 * lap[0]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("channels", [0, 1, 3, 4])
def test_tiny_images_give_finite_numbers(dtype, channels):
    for h, w in ((1, 1), (1, 7), (3, 2)):
        shape = (h, w) if channels == 0 else (h, w, channels)
        img = np.ones(shape, dtype) if dtype == np.float32 else np.full(shape, 100, dtype)
        values = figures(img)
        assert all(math.isfinite(v) for v in values.values()), values


def test_depths_and_alpha_agree():
    img8 = _sample("chelsea.jpg", 160)
    f8 = figures(img8)
    f16 = figures(img8.astype(np.uint16) * 257)
    ffloat = figures(img8.astype(np.float32) / 255)
    rgba = figures(np.dstack([img8, np.zeros(img8.shape[:2], np.uint8)]))
    assert rgba == f8  # alpha is ignored, even when fully transparent
    for name in FIGURE_NAMES:
        assert f16[name] == pytest.approx(f8[name], rel=0.02, abs=0.02), name
        assert ffloat[name] == pytest.approx(f8[name], rel=0.02, abs=0.02), name


def test_deltas_are_after_minus_before():
    before = figures(_sample("rocket_dim_warm.jpg", 160))
    after = figures(cv2.convertScaleAbs(_sample("rocket_dim_warm.jpg", 160), alpha=2.0))
    d = deltas(before, after)
    assert d["brightness"] == pytest.approx(after["brightness"] - before["brightness"], abs=1e-6)
    assert d["brightness"] > 0.04


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="int32"):
        figures(np.zeros((4, 4), np.int32))
    with pytest.raises(ValueError, match="shape"):
        figures(np.zeros((0, 4), np.uint8))


def test_sampling_large_images_changes_little(monkeypatch):
    import imgenh.ops.noise as noise
    import imgenh.quality as quality

    rng = np.random.default_rng(3)
    img = np.clip(_sample("coffee.jpg", 400) + rng.normal(0, 4, (266, 400, 3)), 0, 255).astype(np.uint8)
    full = figures(img)
    for module in (quality, noise):  # the noise estimate and its bands live in ops/noise.py
        monkeypatch.setattr(module, "SAMPLE_PIXELS", 30_000)  # a quarter of the pixels
    monkeypatch.setattr(noise, "BAND_PIXELS", 4_000)  # bands of 10 rows, as a 12 MP image has ~65
    sampled = figures(img)
    assert sampled["colourfulness"] == pytest.approx(full["colourfulness"], rel=0.02)
    assert sampled["noise_sigma"] == pytest.approx(full["noise_sigma"], rel=0.1)
    assert {k: v for k, v in sampled.items() if k not in ("colourfulness", "noise_sigma")} == {
        k: v for k, v in full.items() if k not in ("colourfulness", "noise_sigma")
    }
