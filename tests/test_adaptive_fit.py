"""``imgenh fit --adaptive``: per-image edits a global fit cannot follow, learned and predicted per image."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SAMPLES
from helpers import invoke_in

from imgenh import load_pipeline, pipeline_from_steps
from imgenh.colour_difference import mean_delta_e
from imgenh.fit import Pair, PairImages, fit_look
from imgenh.fit.adaptive import fit_adaptive
from imgenh.fit.pairs import resize_to_side
from imgenh.ops.tone import auto_gamma_value

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
EXPOSURES = (0.4, 0.55, 0.75, 1.0, 1.35, 1.8, 2.5)
HELD_OUT = (1, 4)  # exposures 0.55 and 1.35 of every photo: shots never fitted on
# A per-image edit no auto-correction step makes (so the per-image values must be predicted):
# exposure brought half-way to mid-grey (the square root of auto gamma's value), then a fixed look.
LOOK = [
    {"op": "sigmoid", "contrast": 5.0},
    {"op": "white_balance", "method": "manual", "gains": [1.1, 1.0, 0.88]},
]


def _edited(before: np.ndarray) -> np.ndarray:
    half_way = math.sqrt(auto_gamma_value(float(before.mean()) / 255))
    return pipeline_from_steps([{"op": "gamma", "value": half_way}, *LOOK]).apply(before)[0]


def _shots(side: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each photo at several exposures (before) and the same through the per-image edit (after)."""
    out = []
    for name in PHOTOS:
        img = resize_to_side(cv2.imread(str(SAMPLES / f"{name}.jpg")), side)
        for k, g in enumerate(EXPOSURES):
            before = pipeline_from_steps([{"op": "gamma", "value": g}]).apply(img)[0]
            out.append((f"{name}_{k}", before, _edited(before)))
    return out


def _pairs(shots) -> list[PairImages]:
    return [
        PairImages(Pair(key, Path(key), Path(key)), b.astype(np.float32) / 255, a.astype(np.float32) / 255)
        for key, b, a in shots
    ]


def test_adaptive_beats_a_global_fit_on_held_out_pairs_of_a_per_image_edit():
    shots = _shots(48)
    train = _pairs([s for s in shots if int(s[0][-1]) not in HELD_OUT])
    held = _pairs([s for s in shots if int(s[0][-1]) in HELD_OUT])
    result = fit_adaptive(train, holdout=0, seed=0)
    adaptive = result.pipeline()
    global_fit = pipeline_from_steps(fit_look(train, holdout=0, seed=0).steps)
    errors = {
        name: np.mean([mean_delta_e(p.apply(pair.before)[0], pair.after) for pair in held])
        for name, p in (("adaptive", adaptive), ("global", global_fit), ("nothing", pipeline_from_steps([])))
    }
    # One look for every exposure cannot undo them; the predicted per-image step can.
    assert errors["adaptive"] < 0.6 * errors["global"] < 0.6 * errors["nothing"], errors
    # The reported errors are those of the pipeline as written, adaptive model included.
    for pair, error in zip(train, result.errors, strict=True):
        _, reports = adaptive.apply(pair.before)
        predicted = [r for r in reports if "predicted" in r]
        assert {
            f"steps[{r['step']}] {k}": v for r in predicted for k, v in r["predicted"].items()
        } == error.predicted
        assert error.adaptive == pytest.approx(
            mean_delta_e(adaptive.apply(pair.before)[0], pair.after), abs=1e-3
        )
    gammas = [
        adaptive.apply(p.before)[1][1]["predicted"]["gamma"] for p in held if p.pair.key.startswith("coffee")
    ]
    assert gammas[0] > gammas[1]  # the darker exposure is brightened more


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adaptive")
    for part in ("before", "after"):
        (root / part).mkdir()
    for key, before, after in _shots(48):
        if key[-1] not in "01356" or key.startswith("chelsea"):  # five exposures of three photos
            continue
        cv2.imwrite(str(root / "before" / f"{key}.png"), before)
        cv2.imwrite(str(root / "after" / f"{key}.png"), after)
    return root


def test_cli_fits_writes_and_runs_an_adaptive_pipeline(folders):
    res = invoke_in(
        folders,
        [
            "fit",
            "--adaptive",
            "--before",
            "before",
            "--after",
            "after",
            "-o",
            "tuned.yaml",
            "--report",
            "fit.json",
        ],
    )
    assert res.exit_code == 0, res.output
    text = (folders / "tuned.yaml").read_text()
    assert text.startswith("# Fitted by imgenh fit --adaptive")
    assert "nothing done   global fit   adaptive" in text and "\nadaptive:\n" in text
    report = json.loads((folders / "fit.json").read_text())
    assert set(report["mean_ciede2000"]["held-out"]) == {"nothing_done", "global_fit", "adaptive"}
    assert all(pair["predicted"] for pair in report["pairs"])
    # Cross-validation chose predicted values (after any auto-correction steps) and says so.
    assert report["per_image_step"].endswith("predicted") and report["cross_validation"]["none"] > 0
    assert f"# Per-image step: {report['per_image_step']}." in text
    pipeline = load_pipeline(folders / "tuned.yaml")
    first = min(t.step for t in pipeline.adaptive.targets)
    assert [s.op.name for s in pipeline.steps[first : first + 3]] == ["white_balance", "levels", "saturation"]
    res = invoke_in(folders, ["run", "tuned.yaml", "before", "-o", "out", "--report", "run.json"])
    assert res.exit_code == 0, res.output
    images = json.loads((folders / "run.json").read_text())["images"]
    levels = {i["key"]: next(v["predicted"] for v in i["values"] if v.get("op") == "levels") for i in images}
    assert levels["coffee_0.png"] != levels["coffee_6.png"]  # two exposures, two sets of values


def test_cli_adaptive_pipeline_fit_parameters_become_per_image(folders):
    # The user's pipeline can express the edit only with its gamma chosen per image.
    (folders / "my.yaml").write_text(
        "version: 1\nsteps:\n  - op: gamma\n    value: {fit: [0.3, 3.0]}\n"
        "  - op: sigmoid\n    contrast: {fit: [0.5, 8.0]}\n"
        "  - op: white_balance\n    method: manual\n    gains: [1.1, 1.0, 0.88]\n"
    )
    args = ["fit", "my.yaml", "--adaptive", "--before", "before", "--after", "after", "-o", "t.yaml"]
    res = invoke_in(folders, [*args, "--report", "p.json", "--budget", "60"])
    assert res.exit_code == 0, res.output
    report = json.loads((folders / "p.json").read_text())
    assert report["predicts"] == ["steps[0] gamma.value", "steps[1] sigmoid.contrast"]
    train = report["mean_ciede2000"]["train"]
    assert train["adaptive"] < train["global_fit"] < train["nothing_done"]
    pipeline = load_pipeline(folders / "t.yaml")
    assert [t.step for t in pipeline.adaptive.targets] == [0, 1]
    dark = cv2.imread(str(folders / "before" / "coffee_0.png"))
    bright = cv2.imread(str(folders / "before" / "coffee_6.png"))
    value = [pipeline.apply(img)[1][0]["predicted"]["value"] for img in (dark, bright)]
    assert value[0] > value[1]


def test_cli_refuses_what_adaptive_cannot_do(folders):
    res = invoke_in(folders, ["fit", "--adaptive", "--before", "before", "--after", "after", "-o", "t.yaml",
                              "--cube", "t.cube"])  # fmt: skip
    assert res.exit_code == 2 and "--cube" in res.output
    (folders / "choices.yaml").write_text("version: 1\nsteps:\n  - op: white_balance\n"
                                          "    method: {fit: [gray_world, white_patch]}\n")  # fmt: skip
    args = ["fit", "choices.yaml", "--adaptive", "--before", "before", "--after", "after", "-o", "t.yaml"]
    res = invoke_in(folders, [*args, "--budget", "10"])
    assert res.exit_code == 2 and "{fit: [lo, hi]}" in res.output and "fitted once" in res.output


def test_a_gray_world_edit_is_predicted_for_a_cast_outside_the_training_casts():
    # Training shots carry mild casts only (red and blue gains 0.9-1.1); the held-out shots are
    # far outside them. Gray world's gains are a near-linear function of the image's log chroma,
    # which the linear base of each prediction carries beyond the casts it was fitted on; trees
    # alone stop at the most extreme training cast.
    edit = pipeline_from_steps(
        [
            {"op": "white_balance", "method": "gray_world"},
            {"op": "sigmoid", "contrast": 4.0, "midpoint": 0.45},
        ]
    )

    def shot(img, red, blue):
        before = pipeline_from_steps([{"op": "white_balance", "method": "manual", "gains": [red, 1.0, blue]}])
        b = before.apply(img)[0]
        return b.astype(np.float32) / 255, edit.apply(b)[0].astype(np.float32) / 255

    photos = {n: resize_to_side(cv2.imread(str(SAMPLES / f"{n}.jpg")), 48) for n in PHOTOS}
    casts = [(0.9, 1.1), (1.1, 0.9), (1.0, 1.0), (0.92, 0.95), (1.08, 1.05)]
    train = [
        PairImages(Pair(f"{n}/{k}", Path(n), Path(n)), *shot(img, *c))
        for n, img in photos.items()
        for k, c in enumerate(casts)
    ]
    held = [shot(img, *c) for img in photos.values() for c in ((1.45, 0.7), (0.7, 1.4))]
    result = fit_adaptive(train, holdout=0, seed=0, groups=[p.pair.key.split("/")[0] for p in train])
    pipeline = result.pipeline()
    adaptive = np.mean([mean_delta_e(pipeline.apply(b)[0], a) for b, a in held])
    nothing = np.mean([mean_delta_e(b, a) for b, a in held])
    assert adaptive < 0.3 * nothing, (adaptive, nothing)
    assert adaptive < 3.0, adaptive
