"""white_balance method learned (and auto): the model file, rendered scenes, casts on photos, confidence."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import angle, run_with_report

from imgenh.ops.color import (
    FEATURE_NAMES,
    MODEL_PATH,
    ModelFileError,
    estimate_illuminant,
    estimate_learned,
    illuminant_features,
    kelvin_to_rgb,
    linear_to_srgb,
    load_white_balance_model,
    srgb_to_linear,
)
from imgenh.ops.registry import get_op

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"


def wb(img: np.ndarray, **params) -> tuple[np.ndarray, dict]:
    """white_balance as a one-step pipeline: the image and the step's report."""
    return run_with_report(img, "white_balance", **params)


# --------------------------------------------------------------------------------------
# The model file


def test_shipped_model_loads_once_and_is_small():
    model = load_white_balance_model()
    assert load_white_balance_model() is model  # cached per process
    assert MODEL_PATH.stat().st_size < 400_000
    assert model.illuminant.n_features == len(model.illuminant_inputs)
    # The illuminant trees do not see where the estimate lies across the locus (issue 14).
    assert set(model.illuminant_inputs) == set(FEATURE_NAMES) - {"base_u", "base_v"}


def _edited_copy(tmp_path: Path, edit) -> Path:
    data = json.loads(MODEL_PATH.read_text())
    edit(data)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="something else"), r"format: must be 'imgenh.white_balance_model'"),
        (lambda d: d["features"].pop(), r"features: do not match"),
        (lambda d: d.update(version=1), r"version: must be 2 \(this imgenh version's features\)"),
        (lambda d: d["illuminant_features"].append("hue"), r"illuminant_features: must be a list of names"),
        (lambda d: d["illuminant_features"].pop(), r"illuminant: must map 82 features to 2 outputs"),
        (
            lambda d: d["illuminant"]["trees"][3]["feature"].__setitem__(0, 999),
            r"illuminant: trees\[3\]\.feature\[0\]",
        ),
        (lambda d: d["error"]["weights"].__setitem__(0, "x"), r"error: weights\[0\]"),
        (lambda d: d["confidence"].update(good_deg=-1), r"confidence: must map"),
        (lambda d: d["illuminant"].update(n_outputs=3), r"illuminant: "),
    ],
)
def test_an_edited_model_file_is_an_error_naming_file_and_field(tmp_path, edit, message):
    path = _edited_copy(tmp_path, edit)
    with pytest.raises(ModelFileError, match=f"^{path}: {message}"):
        load_white_balance_model(path)


def test_a_corrupt_or_missing_model_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(MODEL_PATH.read_text()[:5000])
    with pytest.raises(ModelFileError, match=f"^{path}: not valid JSON \\(line 1, column"):
        load_white_balance_model(path)
    with pytest.raises(ModelFileError, match="cannot read the white-balance model"):
        load_white_balance_model(tmp_path / "absent.json")


# --------------------------------------------------------------------------------------
# Rendered scenes (colour-science, test dependency)


@pytest.fixture(scope="module")
def scenes():
    options = np.get_printoptions()
    pytest.importorskip("colour")
    np.set_printoptions(**options)  # colour switches numpy to legacy printing, which breaks doctests
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import wb_scenes

    # Held-out cameras, lights and seeds, small: 16 scenes of 96 x 128 pixels.
    return [wb_scenes.render(wb_scenes.HELD_OUT_SEED + 5000 + i, True, size=(96, 128)) for i in range(16)]


def test_learned_estimate_on_rendered_scenes(scenes):
    learned = [angle(estimate_learned(s.image, linear=s.linear)[0], s.illuminant) for s in scenes]
    sog = [
        angle(estimate_illuminant(s.image, "shades_of_gray", p=6, linear=s.linear), s.illuminant)
        for s in scenes
    ]
    # Measured on these 16 scenes: learned mean 4.96, shades of gray p 6 5.30 degrees.
    assert np.mean(learned) < 6.0
    assert np.mean(learned) < np.mean(sog)


# --------------------------------------------------------------------------------------
# Photos under casts


def photo(name: str, side: int = 160) -> np.ndarray:
    img = cv2.imread(str(SAMPLES / name))
    scale = side / max(img.shape[:2])
    return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


CASTS = {
    "tungsten": kelvin_to_rgb(2850) / kelvin_to_rgb(6504),
    "blue shade": kelvin_to_rgb(9000) / kelvin_to_rgb(6504),
    "green": np.array([0.8, 1.0, 0.75]),
}


def cast_photo(img: np.ndarray, cast_rgb: np.ndarray, amount: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo under ``amount`` (0..1, in log) of a cast, applied in linear light; the cast (B, G, R)."""
    cast_bgr = np.asarray(cast_rgb, float)[::-1] ** amount
    cast_bgr /= cast_bgr.max()
    linear = srgb_to_linear(img / 255.0) * cast_bgr
    return np.rint(linear_to_srgb(np.clip(linear, 0, 1)) * 255).astype(np.uint8), cast_bgr


@pytest.mark.parametrize("name", ["astronaut.jpg", "coffee.jpg", "chelsea.jpg", "rocket.jpg"])
def test_casts_on_photos_are_recovered(name):
    img = photo(name)
    neutral = estimate_learned(img)[0]  # the photo's own light: the reference the casts move
    errors = []
    for cast in CASTS.values():
        for amount in (0.33, 0.67, 1.0):
            cast_img, cast_bgr = cast_photo(img, cast, amount)
            errors.append(angle(estimate_learned(cast_img)[0], neutral * cast_bgr))
    # Within the held-out figures of the model before issue 14's retraining (mean 4.70,
    # worst-25% 10.38 degrees; README has today's); measured means 0.5-3.4 and largest 4.9 over
    # these photos (before: 1.3-2.8 and 4.9).
    assert np.mean(errors) < 4.70 and np.max(errors) < 10.38, np.round(errors, 2)


TINTS = {  # linear gains R, G, B off the black-body locus: the quality benchmark's green, and a magenta
    "green": (0.8, 1.1, 0.85),
    "magenta": (1.1, 0.85, 1.05),
}


def mean_uv(img: np.ndarray) -> np.ndarray:
    """(ln R/G, ln B/G) of the mean linear colour: global gains move it by exactly their log ratios."""
    mean = srgb_to_linear(img.reshape(-1, 3) / 255.0).mean(axis=0)
    return np.log(mean[[2, 0]] / mean[1])


@pytest.mark.parametrize("name", ["astronaut.jpg", "chelsea.jpg", "rocket.jpg"])
@pytest.mark.parametrize("tint", TINTS)
def test_green_and_magenta_tints_on_photos_are_removed_by_auto(name, tint):
    # Issue 14: the model read ~60% of a green cast (it had learned that lights lie near the
    # black-body locus). Users expect auto to take a fluorescent-green or magenta-LED tint off a
    # photo: the output of the tinted photo should land where the untinted photo's output does.
    img = photo(name)
    cast, _ = cast_photo(img, np.array(TINTS[tint]), 1.0)
    reference = mean_uv(run_with_report(img, "white_balance", method="auto")[0])
    out, _ = wb(cast, method="auto")
    before = np.linalg.norm(mean_uv(cast) - mean_uv(img))
    left = np.linalg.norm(mean_uv(out) - reference)
    # Measured share removed (green / magenta): astronaut 0.79 / 0.88, chelsea 0.96 / 0.87,
    # rocket 0.78 / 0.95; the model before: 0.64 / 0.23, 0.68 / 0.20, 0.55 / 0.59.
    assert left < 0.3 * before, (left, before)


def test_locus_direction_agrees_with_colour_science():
    # The feature base_along_locus projects on the black-body locus at neutral; the rendered
    # scenes' tints (benchmarks/wb_scenes.py, colour-science's CIE 1931 observer) lie across it.
    pytest.importorskip("colour")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import wb_scenes

    from imgenh.ops.color import LOCUS_DIRECTION

    across = -wb_scenes.tint_direction()  # (ln R/G, ln B/G) toward green -> (u, v) = (ln G/R, ln G/B)
    assert abs(float(LOCUS_DIRECTION @ across)) < np.sin(np.radians(0.5))
    assert LOCUS_DIRECTION[0] < 0 < LOCUS_DIRECTION[1]  # warmer: more red than green, less blue


# --------------------------------------------------------------------------------------
# Confidence and strength auto


def warmth(img: np.ndarray) -> float:
    """log(R / B) of the mean linear colour."""
    mean = srgb_to_linear(img.reshape(-1, 3) / 255.0).mean(axis=0)
    return float(np.log(mean[2] / max(mean[0], 1e-4)))


def test_candle_lit_room_keeps_its_warmth_with_strength_auto():
    # A dim room under a 2000 K flame: dark, and one warm colour everywhere.
    img, _ = cast_photo(photo("coffee.jpg"), kelvin_to_rgb(2000) / kelvin_to_rgb(6504), 1.0)
    dim = np.rint(img * 0.3).astype(np.uint8)
    full, _ = wb(dim, method="learned")
    auto, report = wb(dim, method="learned", strength="auto")
    assert report["adaptation"] <= 0.35  # dim and flame-warm: the cast is part of the scene
    assert report["strength"] == pytest.approx(report["confidence"] * report["adaptation"], abs=1e-3)
    assert warmth(auto) > 0.6 * warmth(dim)  # most of the warmth kept
    assert warmth(full) < 0.5 * warmth(dim)  # while full strength would remove it


def test_a_clear_cast_on_a_colourful_photo_is_mostly_removed_with_strength_auto():
    img, _ = cast_photo(photo("astronaut.jpg"), CASTS["tungsten"], 1.0)
    out, report = wb(img, strength="auto")
    assert report["confidence"] > 0.5
    reference, _ = wb(photo("astronaut.jpg"), method="learned")
    assert abs(warmth(out) - warmth(reference)) < 0.5 * abs(warmth(img) - warmth(reference))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (2, 2), (40, 60)])
def test_tiny_and_single_colour_images_get_low_confidence_not_nan(shape):
    img = np.zeros((*shape, 3), np.uint8)
    img[:] = (40, 120, 200)
    out, report = wb(img, strength="auto")
    assert out.shape == img.shape and out.dtype == np.uint8
    assert report["confidence"] < 0.1 and np.isfinite(report["expected_error"])
    assert np.all(np.isfinite(report["gains"])) and np.all(np.isfinite(report["illuminant"]))
    assert np.abs(out.astype(int) - img).max() <= 10  # little correction when unsure


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1)])
@pytest.mark.parametrize(
    "method", ["auto", "learned", "gray_world", "white_patch", "shades_of_gray", "gray_edge"]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_every_method_handles_1x1_1xn_nx1(shape, method, dtype):
    rng = np.random.default_rng(0)
    img = rng.uniform(0.1, 0.9, (*shape, 3))
    img = (
        (img * 255).astype(dtype)
        if dtype == np.uint8
        else (img * 65535).astype(dtype)
        if dtype == np.uint16
        else img.astype(dtype)
    )
    out, report = wb(img, method=method)
    assert out.shape == img.shape and out.dtype == img.dtype
    assert np.all(np.isfinite(report["gains"]))


def test_features_are_finite_for_degenerate_images():
    for img in (
        np.zeros((1, 1, 3), np.uint8),
        np.full((5, 5, 3), 255, np.uint8),
        np.zeros((3, 3, 3), np.float32),
    ):
        features, _ = illuminant_features(img)
        assert features.shape == (len(FEATURE_NAMES),) and np.all(np.isfinite(features))


def test_linear_false_estimates_on_stored_values():
    # Issue 9.6: auto decoded already-linear data as sRGB. The same light stored linearly
    # (linear: false) and sRGB-encoded (linear: true) must give the same estimate.
    img = photo("chelsea.jpg")
    linear16 = np.rint(srgb_to_linear(img / 255.0) * 65535).astype(np.uint16)
    from_linear, _ = estimate_learned(linear16, linear=False)
    from_srgb, _ = estimate_learned(img, linear=True)
    # The feature "decoded_srgb" differs between the two (the model learned linear camera RGB
    # and camera JPEGs apart), so a difference remains: measured 2.4 deg (0.6 with the model
    # before issue 14's retraining; on astronaut, coffee, rocket 1.4, 6.2, 5.6 now and 1.4, 6.5,
    # 5.5 before). Decoding the linear values as sRGB, as auto did, is further off.
    assert angle(from_linear, from_srgb) < 3.0
    decoded_twice, _ = estimate_learned(linear16, linear=True)
    assert angle(decoded_twice, from_srgb) > angle(from_linear, from_srgb) + 2.0  # measured 7.1 vs 2.4
    _, report = wb(linear16, linear=False)
    assert report["linear"] is False and angle(report["illuminant"], from_linear[::-1]) < 1e-6


def test_report_carries_confidence_beside_illuminant_and_gains():
    _, report = wb(photo("coffee.jpg"))
    assert report["method"] == "auto" and report["estimator"] == {"method": "learned"}
    assert set(report) >= {"illuminant", "gains", "confidence", "expected_error", "disagreement"}
    assert 0.0 <= report["confidence"] <= 1.0


def test_strength_auto_is_refused_for_manual_and_bad_words():
    spec = get_op("white_balance")
    _, errors = spec.resolve({"method": "manual", "kelvin": 3000, "strength": "auto"})
    assert errors and "strength auto needs an estimated light" in errors[0][1]
    _, errors = spec.resolve({"strength": "half"})
    assert errors == [("strength", "must be a number or auto (got 'half')")]


def test_cli_report_json_has_confidence_beside_illuminant_and_gains(tmp_path):
    (tmp_path / "in").mkdir()
    cv2.imwrite(
        str(tmp_path / "in" / "cast.png"), cast_photo(photo("coffee.jpg", 96), CASTS["green"], 1.0)[0]
    )
    (tmp_path / "p.yaml").write_text("version: 1\nsteps:\n  - op: white_balance\n    strength: auto\n")
    proc = subprocess.run(
        [sys.executable, "-m", "imgenh", "run", "p.yaml", "in", "-o", "out", "--report", "r.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (image,) = json.loads((tmp_path / "r.json").read_text())["images"]
    (values,) = [v for v in image["values"] if v.get("op") == "white_balance"]
    assert {"illuminant", "gains", "confidence", "expected_error", "adaptation", "strength"} <= set(values)
    assert values["estimator"] == {"method": "learned"} and 0 <= values["strength"] <= 1


# ----------------------------------------------------------------------------------------
# cast_range: hold back where the estimate is more likely the scene than the light


def _cast_image(light_rgb: tuple[float, float, float]) -> np.ndarray:
    """A colourful 8-bit image whose linear mean is neutral, lit by ``light_rgb`` (linear gains)."""
    rng = np.random.default_rng(7)
    lin = rng.uniform(0.05, 0.35, (48, 48, 3))
    lin *= 0.2 / lin.reshape(-1, 3).mean(axis=0)  # gray world sees exactly the light below
    lin *= np.array(light_rgb[::-1])
    return np.round(linear_to_srgb(np.clip(lin, 0, 1)) * 255).astype(np.uint8)


def test_cast_size_is_the_log_chromaticity_distance_from_neutral():
    from imgenh.ops.color import cast_size

    assert cast_size(np.array([0.3, 0.3, 0.3])) == 0.0
    # B, G, R = 1, 1, e: ln(R/G) = 1, ln(B/G) = 0
    assert cast_size(np.array([1.0, 1.0, np.e])) == pytest.approx(1.0)
    assert cast_size(np.array([0.5, 1.0, 2.0])) == pytest.approx(np.hypot(np.log(2), np.log(0.5)))


@pytest.mark.parametrize(
    ("light", "held"),
    [
        ((1.08, 1.0, 0.95), 0.0),  # near neutral (cast ~0.1): the scene's own balance, left
        ((1.35, 1.0, 0.62), 1.0),  # tungsten-like (cast ~0.55 > 2 x 0.25): the full strength
        ((2.4, 1.0, 0.35), 0.0),  # one colour filling the frame (cast ~1.4 >= 1.4 x 0.9): left
    ],
)
def test_cast_range_corrects_only_plausible_casts(light, held):
    img = _cast_image(light)
    out, report = wb(img, method="gray_world", strength=0.8, cast_range=[0.25, 0.9])
    assert report["strength"] == pytest.approx(0.8 * held, abs=1e-3)
    size = np.hypot(np.log(light[0] / light[1]), np.log(light[2] / light[1]))
    assert report["cast"] == pytest.approx(size, abs=0.02)
    if held == 0.0:
        assert np.array_equal(out, img)
    else:
        full, _ = wb(img, method="gray_world", strength=0.8)
        assert np.array_equal(out, full)


def test_cast_range_fades_linearly_between_its_ends():
    img = _cast_image((1.2, 1.0, 0.85))  # cast ~0.24: between 0.2 and 0.4
    _, report = wb(img, method="gray_world", strength=1.0, cast_range=[0.2, 3.0])
    assert report["strength"] == pytest.approx((report["cast"] - 0.2) / 0.2, abs=1e-3)


def test_cast_range_validation():
    spec = get_op("white_balance")
    _, errors = spec.resolve({"cast_range": [0.5, 0.2]})
    assert errors and "small < large" in errors[0][1]
    _, errors = spec.resolve({"method": "manual", "kelvin": 3000, "cast_range": [0.2, 1.0]})
    assert errors and errors[0][0] == "cast_range"


# ----------------------------------------------------------------------------------------
# disagreement_range: hold back where the classic estimates point at different lights


def _one_colour_scene() -> np.ndarray:
    """A green circuit-board-like scene with small white highlights, under a neutral light.

    Gray world reads it as a green light, white patch as neutral: the estimates disagree.
    """
    rng = np.random.default_rng(3)
    lin = np.empty((64, 64, 3))
    lin[:] = (0.04, 0.22, 0.05)  # B, G, R: a saturated green
    lin *= rng.uniform(0.7, 1.3, (64, 64, 1))
    lin[rng.random((64, 64)) < 0.03] = 0.9  # white solder points
    return np.round(linear_to_srgb(np.clip(lin, 0, 1)) * 255).astype(np.uint8)


def test_disagreement_range_leaves_a_scene_the_estimates_read_differently():
    img = _one_colour_scene()
    free, free_report = wb(img, method="auto", strength=0.6)
    assert free_report["disagreement"] > 20
    assert not np.array_equal(free, img)  # without the range it is "corrected"
    out, report = wb(img, method="auto", strength=0.6, disagreement_range=[5, 15])
    assert report["strength"] == 0.0
    assert np.array_equal(out, img)


def test_disagreement_range_keeps_a_cast_the_estimates_agree_on():
    img = _cast_image((1.35, 1.0, 0.62))  # tungsten-like light over neutral statistics
    full, _ = wb(img, method="auto", strength=0.6)
    out, report = wb(img, method="auto", strength=0.6, disagreement_range=[15, 30])
    assert report["disagreement"] < 15
    assert report["strength"] == 0.6 and np.array_equal(out, full)


def test_disagreement_range_fades_linearly_between_its_ends():
    img = _one_colour_scene()
    _, probe = wb(img, method="learned", strength=1.0)
    d = probe["disagreement"]
    _, report = wb(img, method="learned", strength=1.0, disagreement_range=[d - 10, d + 30])
    assert report["strength"] == pytest.approx(0.75, abs=1e-3)  # a quarter of the way down


def test_disagreement_range_validation():
    spec = get_op("white_balance")
    _, errors = spec.resolve({"disagreement_range": [30, 15]})
    assert errors and "full < none" in errors[0][1]
    _, errors = spec.resolve({"method": "gray_world", "disagreement_range": [15, 30]})
    assert errors and errors[0][0] == "disagreement_range"


# ----------------------------------------------------------------------------------------
# average_range: correct a cast only as far as the image's average colour shows it


def _grey_room_with_warm_lamps() -> np.ndarray:
    """A grey wall lit by neutral light, with two warm lamps glowing in it (set C's free_by_Peter_Nerlich).

    The frame averages to grey; the learned estimator reads the lamps as a warm light.
    """
    rng = np.random.default_rng(5)
    lin = np.full((96, 96, 3), 0.2) * rng.uniform(0.8, 1.2, (96, 96, 1))
    rows, cols = np.mgrid[:96, :96]
    for row, col in ((20, 25), (22, 70)):
        glow = np.clip(1 - np.hypot(rows - row, cols - col) / 18, 0, 1)[..., None]
        lin = lin * (1 - glow) + glow * np.array([0.55, 0.8, 0.95])  # B, G, R: a warm lamp
    return np.round(linear_to_srgb(np.clip(lin, 0, 1)) * 255).astype(np.uint8)


def test_average_range_leaves_a_grey_room_whose_lamps_read_as_a_cast():
    img = _grey_room_with_warm_lamps()
    free, free_report = wb(img, method="auto", strength=0.6)
    illuminant = free_report["illuminant"]  # R, G, B
    assert illuminant[0] > 1.5 * illuminant[2]  # the learned estimate: a warm light
    assert free_report["average_cast"] < 0.15  # but the frame averages to grey
    assert np.abs(free.astype(int) - img).max() > 10  # without the range the wall turns blue
    out, report = wb(img, method="auto", strength=0.6, average_range=[0.15, 0.3])
    assert report["strength"] == 0.0
    assert np.array_equal(out, img)


def test_average_range_keeps_a_cast_the_average_shows():
    img = _cast_image((1.35, 1.0, 0.62))  # tungsten-like light over neutral statistics
    full, _ = wb(img, method="auto", strength=0.6)
    out, report = wb(img, method="auto", strength=0.6, average_range=[0.15, 0.3])
    assert report["average_cast"] > 0.3
    assert report["strength"] == 0.6 and np.array_equal(out, full)


def test_average_range_rises_linearly_between_its_ends():
    img = _cast_image((1.35, 1.0, 0.62))
    _, probe = wb(img, method="learned", strength=1.0)
    a = probe["average_cast"]
    _, report = wb(img, method="learned", strength=1.0, average_range=[a - 0.1, a + 0.3])
    assert report["strength"] == pytest.approx(0.25, abs=2e-3)  # a quarter of the way up


def test_average_range_validation():
    spec = get_op("white_balance")
    _, errors = spec.resolve({"average_range": [0.3, 0.15]})
    assert errors and "none < full" in errors[0][1]
    _, errors = spec.resolve({"method": "gray_world", "average_range": [0.15, 0.3]})
    assert errors and errors[0][0] == "average_range"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("share", [1e-5, 2e-3, 0.05])
def test_clipped_blocks_match_an_exact_area_shrink(share, dtype):
    # Every block of the whole-factor shrink that averages a clipped value (in any one channel)
    # is found, however many are clipped; rows and columns past the last whole block are left out.
    from imgenh.ops.color import _clipped_blocks

    rng = np.random.default_rng(3)
    h, w, k = 83, 128, 12
    img = rng.integers(0, 240, (h * k + 5, w * k + 7, 3)).astype(dtype)
    clip = rng.random(img.shape) < share / 3
    top = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    img[clip] = top
    img[h * k :, :, 0] = top  # past the last whole block row: not counted
    below = top * 0.98
    mask = (img[: h * k, : w * k] > below).any(axis=2).astype(np.float64)
    exact = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA) > 0
    assert exact.any()
    assert np.array_equal(_clipped_blocks(img, k, (w, h), below), exact)


def test_one_clipped_pixel_makes_its_feature_cell_unusable():
    # A shrunk uint8 mask rounded one clipped pixel among ~900 back to "unclipped".
    from imgenh.ops.color import _feature_copy

    img = np.full((960, 1280, 3), 120, np.uint8)
    img[500, 700] = 255
    _, usable, clipped = _feature_copy(img, True, 0.98, 0.02)
    cell = (500 * 96 // 960, 700 * 128 // 1280)
    assert clipped[cell] and not usable[cell]
    assert clipped.sum() == 1


@pytest.mark.parametrize(
    ("shape", "k"), [((1000, 1290), 11), ((961, 1283), 11), ((192, 256), 2), ((90, 128), 1)]
)
def test_feature_copy_is_the_mean_of_whole_blocks(shape, k):
    # The learned features read an area shrink by a whole factor k (the longer side to at most
    # 128): each small pixel the mean of a k x k block, the last rows and columns past a multiple
    # of k left out. Measured 9 ms at 12 MP, where the shrink to exactly 128 a side took 26 ms.
    from imgenh.ops.color import _feature_copy

    rng = np.random.default_rng(5)
    img = rng.integers(20, 240, (*shape, 3), dtype=np.uint8)
    work, usable, _ = _feature_copy(img, True, 0.98, 0.02)
    h, w = shape[0] // k, shape[1] // k
    blocks = img[: h * k, : w * k].reshape(h, k, w, k, 3).mean(axis=(1, 3))
    assert work.shape == (h, w, 3) and max(h, w) <= 128 and usable.all()
    levels = linear_to_srgb(work.astype(np.float64)) * 255  # back to stored levels
    assert np.abs(levels - blocks).max() <= 0.5 + 1e-3  # each block's mean, rounded to a level


def test_an_over_exposed_render_clips_more_and_keeps_its_light(scenes):
    import wb_scenes  # on sys.path through the scenes fixture

    seed = scenes[0].seed
    plain = wb_scenes.render(seed, True, size=(96, 128))
    over = wb_scenes.render(seed, True, size=(96, 128), over_stops=1.3)
    top = np.iinfo(plain.image.dtype).max
    assert np.mean(over.image == top) > np.mean(plain.image == top) + 0.05
    np.testing.assert_array_equal(over.illuminant, plain.illuminant)
    assert over.over_stops == 1.3 and plain.over_stops == 0.0


# ----------------------------------------------------------------------------------------
# warm_limit: remove warmth along the black-body locus only up to a limit


def _tint(light_bgr: np.ndarray) -> float:
    """Position of a light across the black-body locus (log chromaticity): its green or magenta tint."""
    from imgenh.ops.color import LOCUS_DIRECTION, log_chroma

    return float(log_chroma(light_bgr) @ np.array([-LOCUS_DIRECTION[1], LOCUS_DIRECTION[0]]))


@pytest.mark.parametrize(("kelvin", "warmth"), [(6504, 0.0), (4500, 0.48), (2850, 1.50), (10000, -0.39)])
def test_warmth_is_the_position_along_the_black_body_locus(kelvin, warmth):
    from imgenh.ops.color import limit_warmth

    light = kelvin_to_rgb(kelvin)[::-1]
    capped, measured = limit_warmth(light, 5.0)
    assert measured == pytest.approx(warmth, abs=0.01)
    assert np.array_equal(capped, light)  # within the limit: the light as it was


def test_warm_limit_removes_warmth_up_to_the_limit_and_the_tint_in_full():
    from imgenh.ops.color import LOCUS_DIRECTION, limit_warmth, log_chroma

    tungsten = kelvin_to_rgb(2850)[::-1]
    green = tungsten * np.array([0.9, 1.15, 0.9])  # the same light with a green tint
    for light in (tungsten, green):
        capped, warmth = limit_warmth(light, 0.5)
        left = log_chroma(capped)
        assert left @ LOCUS_DIRECTION == pytest.approx(0.5, abs=1e-9)
        assert _tint(capped) == pytest.approx(_tint(light), abs=1e-9)
        assert capped.sum() == pytest.approx(light.sum())


def test_warm_limit_on_a_tungsten_lit_scene():
    # A tungsten light (warmth 1.5) seen by gray world: with warm_limit 0.5 the output keeps a
    # light 1.0 along the locus (~3450 K) and no tint; a 5000 K light (0.34) is corrected in full.
    from imgenh.ops.color import limit_warmth

    img = _cast_image(tuple(kelvin_to_rgb(2850) / kelvin_to_rgb(2850)[1]))
    out, report = wb(img, method="gray_world", warm_limit=0.5)
    assert report["warmth"] == pytest.approx(1.5, abs=0.03)
    left = estimate_illuminant(out, "gray_world")
    assert limit_warmth(left, 5.0)[1] == pytest.approx(1.0, abs=0.05)
    assert _tint(left) == pytest.approx(0, abs=0.02)
    mild = _cast_image(tuple(kelvin_to_rgb(5000) / kelvin_to_rgb(5000)[1]))
    limited, report = wb(mild, method="gray_world", warm_limit=0.5)
    assert report["warmth"] < 0.5 and np.array_equal(limited, wb(mild, method="gray_world")[0])


def test_warm_limit_validation():
    spec = get_op("white_balance")
    _, errors = spec.resolve({"warm_limit": -0.1})
    assert errors and errors[0][0] == "warm_limit"
    _, errors = spec.resolve({"method": "manual", "kelvin": 3000, "warm_limit": 0.5})
    assert errors and errors[0][0] == "warm_limit"
