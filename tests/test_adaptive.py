"""Adaptive pipelines, run side: features, the ``adaptive:`` block (round trip, checks), per-image application."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SAMPLES
from helpers import invoke_in

from imgenh import load_pipeline, pipeline_from_steps
from imgenh.adaptive import FEATURE_NAMES, AdaptiveModel, Target, feature_copy, image_features
from imgenh.boost import BoostedTrees
from imgenh.errors import ConfigError
from imgenh.io import Image
from imgenh.preview import render_sheet


def _exposures(img: np.ndarray, values=(0.4, 0.6, 0.8, 1.0, 1.4, 2.0, 2.8)) -> list[np.ndarray]:
    return [pipeline_from_steps([{"op": "gamma", "value": g}]).apply(img)[0] for g in values]


@pytest.fixture(scope="module")
def small() -> np.ndarray:
    return cv2.resize(cv2.imread(str(SAMPLES / "chelsea.jpg")), (90, 60), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def model(small) -> AdaptiveModel:
    """Predicts a gamma that brings each exposure back: dark images get a larger value."""
    images = _exposures(small)
    x = np.array([[image_features(i)[n] for n in FEATURE_NAMES] for i in images])
    y = 1.0 / np.array([0.4, 0.6, 0.8, 1.0, 1.4, 2.0, 2.8])
    trees = BoostedTrees(n_estimators=20, max_depth=2, seed=0).fit(x, y)
    return AdaptiveModel(FEATURE_NAMES, (Target(1, "value", (0.2, 4.0), trees),))


def _document(model: AdaptiveModel) -> dict:
    return {
        "version": 1,
        "steps": [{"op": "sigmoid", "contrast": 2.0}, {"op": "gamma", "value": 1.0}],
        "adaptive": model.to_dict(),
    }


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=100))
    return path


def test_features_are_named_bounded_and_follow_exposure(small):
    dark, bright = (image_features(i) for i in _exposures(small, (0.5, 2.0)))
    assert list(dark) == list(FEATURE_NAMES)
    assert all(np.isfinite(v) for v in dark.values())
    assert dark["luma_p50"] < bright["luma_p50"] and dark["luma_mean"] < bright["luma_mean"]
    assert 0 <= dark["luma_p01"] <= dark["luma_p50"] <= dark["luma_p99"] <= 1


def test_features_do_not_depend_on_size_or_depth(small):
    """Fit measures 384-pixel working copies in float, run measures full-size 8- or 16-bit files."""
    big = cv2.resize(small, (900, 600), interpolation=cv2.INTER_LINEAR)
    ref = image_features(cv2.resize(big, (384, 256), interpolation=cv2.INTER_AREA).astype(np.float32) / 255)
    for variant in (big, big.astype(np.uint16) * 257):
        got = image_features(variant)
        for name in FEATURE_NAMES:
            assert got[name] == pytest.approx(ref[name], abs=0.02), name
    assert feature_copy(big).shape[:2] == (85, 128)
    assert image_features(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))["log_red_green"] == 0.0


def test_model_round_trip_through_yaml(model, small, tmp_path):
    path = _write(tmp_path / "tuned.yaml", _document(model))
    loaded = load_pipeline(path)
    assert loaded.adaptive.to_dict() == model.to_dict()
    for img in _exposures(small, (0.5, 1.8)):
        assert loaded.adaptive.predict(img) == model.predict(img)
    plain = pipeline_from_steps(_document(model)["steps"])
    assert loaded.hash() != plain.hash()  # the model changes outputs, so it is part of the hash


def test_each_image_gets_its_own_parameters(model, small):
    pipeline = load_pipeline_doc(_document(model))
    dark, bright = _exposures(small, (0.45, 2.2))
    (out_dark, rep_dark), (_out_bright, rep_bright) = pipeline.apply(dark), pipeline.apply(bright)
    g_dark, g_bright = rep_dark[0]["predicted"]["value"], rep_bright[0]["predicted"]["value"]
    assert rep_dark[0]["step"] == 1 and rep_dark[0]["op"] == "gamma"
    assert g_dark > 1.5 > 1.0 > g_bright  # the dark one is brightened, the bright one darkened
    # The output is exactly the pipeline with the predicted value written in.
    concrete = pipeline_from_steps([{"op": "sigmoid", "contrast": 2.0}, {"op": "gamma", "value": g_dark}])
    assert np.array_equal(out_dark, concrete.apply(dark)[0])
    # apply_image and the preview go through the same prediction.
    image, values = pipeline.apply_image(Image(dark))
    assert np.array_equal(image.pixels, out_dark) and values[0] == rep_dark[0]
    sheet = render_sheet(pipeline, Image(dark), width=400)
    assert sheet.reports[0] == rep_dark[0]


def load_pipeline_doc(doc: dict):
    from imgenh.pipeline_file import parse_pipeline

    return parse_pipeline(yaml.safe_dump(doc, sort_keys=False), "tuned.yaml")


def test_run_reports_each_images_predicted_parameters(model, small, tmp_path):
    path = _write(tmp_path / "tuned.yaml", _document(model))
    (tmp_path / "in").mkdir()
    for name, img in zip(("dark", "bright"), _exposures(small, (0.45, 2.2)), strict=True):
        cv2.imwrite(str(tmp_path / "in" / f"{name}.png"), img)
    res = invoke_in(tmp_path, ["run", str(path), "in", "-o", "out", "--report", "run.json"])
    assert res.exit_code == 0, res.output
    images = {i["key"]: i for i in json.loads((tmp_path / "run.json").read_text())["images"]}
    gamma = {k: i["values"][0]["predicted"]["value"] for k, i in images.items()}
    assert gamma["dark.png"] > 1.5 > 1.0 > gamma["bright.png"]
    res = invoke_in(tmp_path, ["run", str(path), "in", "-o", "out2", "--report", "run.csv"])
    assert res.exit_code == 0 and '""predicted"": {""value""' in (tmp_path / "run.csv").read_text()


def _corrupt(doc: dict, change) -> dict:
    doc = copy.deepcopy(doc)
    change(doc["adaptive"])
    return doc


CORRUPTIONS = {
    "a tree's child": (
        lambda a: a["predicts"][0]["model"]["trees"][0]["left"].__setitem__(0, 99),
        "adaptive.predicts[0].model.trees[0].left[0]: must be a node after 0",
    ),
    "unknown feature": (
        lambda a: a["features"].__setitem__(0, "luma_p42"),
        "adaptive.features[0]: unknown feature 'luma_p42'",
    ),
    "step out of range": (
        lambda a: a["predicts"][0].__setitem__("step", 5),
        "adaptive.predicts[0].step: must be a step index, 0 to 1 (got 5)",
    ),
    "not a number parameter": (
        lambda a: a["predicts"][0].__setitem__("param", "auto"),
        "adaptive.predicts[0].param: must name a number parameter of steps[1] gamma (got 'auto')",
    ),
    "bounds past the declaration": (
        lambda a: a["predicts"][0].__setitem__("bounds", [0.5, 20]),
        "adaptive.predicts[0].bounds: [0.5, 20] is outside the parameter's bounds (> 0, <= 10)",
    ),
    "feature count": (
        lambda a: a["features"].pop(),
        "adaptive.predicts[0].model.n_features: must be 25 (one per feature)",
    ),
    "unknown key": (lambda a: a.__setitem__("trees", []), "adaptive.trees: unknown key"),
    "unknown scale": (
        lambda a: a["predicts"][0].__setitem__("scale", "cubic"),
        "adaptive.predicts[0].scale: must be one of linear, log (got 'cubic')",
    ),
    "unknown base feature": (
        lambda a: a["predicts"][0].__setitem__("base", {"intercept": 0.1, "luma_p42": 1.0}),
        "adaptive.predicts[0].base.luma_p42: unknown feature 'luma_p42'",
    ),
    "base weight not a number": (
        lambda a: a["predicts"][0].__setitem__("base", {"intercept": "high"}),
        "adaptive.predicts[0].base.intercept: must be a finite number (got 'high')",
    ),
}


def test_a_linear_base_on_a_log_scale_round_trips_and_predicts_exp_of_base_plus_trees(small, tmp_path):
    images = _exposures(small)
    x = np.array([[image_features(i)[n] for n in FEATURE_NAMES] for i in images])
    trees = BoostedTrees(n_estimators=5, max_depth=1, seed=0).fit(x, np.linspace(-0.1, 0.1, len(images)))
    base = (("intercept", 0.2), ("luma_mean", -0.5))
    target = Target(1, "value", (0.2, 4.0), trees, scale="log", base=base)
    doc = _document(AdaptiveModel(FEATURE_NAMES, (target,)))
    assert doc["adaptive"]["predicts"][0]["base"] == {"intercept": 0.2, "luma_mean": -0.5}
    pipeline = load_pipeline(_write(tmp_path / "tuned.yaml", doc))
    for img, row in zip(images, x, strict=True):
        expected = np.exp(0.2 - 0.5 * image_features(img)["luma_mean"] + trees.predict(row[None])[0])
        assert pipeline.apply(img)[1][0]["predicted"]["value"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_a_corrupted_model_is_refused_naming_file_line_and_field(model, tmp_path, case):
    change, message = CORRUPTIONS[case]
    path = _write(tmp_path / "tuned.yaml", _corrupt(_document(model), change))
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    (error,) = info.value.errors
    assert error.startswith(f"{path}:") and message in error
    line = int(error.split(":")[1])
    assert line > 1  # on the line of the field, not the top of the file
    res = invoke_in(tmp_path, ["run", str(path), str(tmp_path), "-o", str(tmp_path / "out")])
    assert res.exit_code == 2 and message in res.output


def test_the_line_points_at_the_bad_field(model, tmp_path):
    doc = _corrupt(_document(model), CORRUPTIONS["step out of range"][0])
    path = _write(tmp_path / "tuned.yaml", doc)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    line = int(info.value.errors[0].split(":")[1])
    assert path.read_text().splitlines()[line - 1].strip().startswith(("- step: 5", "step: 5"))


def test_schema_describes_the_adaptive_block():
    res = invoke_in(None, ["schema"])
    schema = json.loads(res.output)
    block = schema["properties"]["adaptive"]
    assert block["required"] == ["features", "predicts"]
    assert set(block["properties"]["features"]["items"]["enum"]) == set(FEATURE_NAMES)


@pytest.mark.parametrize(
    "pixels",
    [
        np.full((1, 1, 3), 200, np.uint8),
        np.zeros((3, 1, 3), np.uint16),
        np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
        np.full((5, 7), 40000, np.uint16),
    ],
    ids=["1x1", "black-16bit", "grey-float", "grey-16bit"],
)
def test_tiny_grey_and_deep_images_get_finite_predictions_in_bounds(model, pixels):
    features = image_features(pixels)
    assert all(np.isfinite(v) for v in features.values())
    pipeline = load_pipeline_doc(_document(model))
    out, reports = pipeline.apply(pixels)
    assert out.shape == pixels.shape and out.dtype == pixels.dtype
    assert 0.2 <= reports[0]["predicted"]["value"] <= 4.0


def test_predictions_a_step_cannot_take_leave_its_written_values(model, small):
    # Parameters are predicted one by one; a step that cannot take them (here hand-edited to
    # auto, where `value` has no effect) keeps its written values and the report says why.
    doc = _document(model)
    doc["steps"][1] = {"op": "gamma", "auto": True}
    pipeline = load_pipeline_doc(doc)
    out, reports = pipeline.apply(small)
    assert "kept" in reports[0] and "value" in reports[0]["kept"]
    written = pipeline_from_steps([{"op": "sigmoid", "contrast": 2.0}, {"op": "gamma", "auto": True}])
    assert np.array_equal(out, written.apply(small)[0])
