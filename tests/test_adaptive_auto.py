"""``imgenh fit --adaptive`` with auto-correction steps: an edit that starts from "auto" buttons.

An editor's per-image edit often starts from an auto-correction (auto white balance, auto levels,
auto exposure) and then applies one look. The adaptive fit tries such steps in front of the look
(imgenh.fit.auto_prefix) and keeps them when cross-validation over the pairs says they explain
the edit; a global edit gets none.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import SAMPLES
from helpers import invoke_in

from imgenh import load_pipeline, pipeline_from_steps
from imgenh.colour_difference import mean_delta_e
from imgenh.fit import Pair, PairImages, fit_look
from imgenh.fit.adaptive import fit_adaptive
from imgenh.fit.pairs import resize_to_side

FITTED = ("astronaut", "chelsea", "coffee")
NEW_PHOTO = "rocket"
AUTO = [
    {"op": "white_balance", "method": "gray_world"},
    {"op": "stretch"},
    {"op": "gamma", "auto": True},
]
LOOK = [{"op": "sigmoid", "contrast": 4.0, "midpoint": 0.45}, {"op": "saturation", "factor": 1.2}]


def _shots(name: str, count: int, seed: int) -> list[np.ndarray]:
    """``count`` shots of a sample photo (48 px) at random exposures and colour casts, BGR uint8."""
    rng = np.random.default_rng(seed)
    img = resize_to_side(cv2.imread(str(SAMPLES / f"{name}.jpg")), 48)
    out = []
    for _ in range(count):
        red, blue = np.exp(rng.uniform(-0.25, 0.25, 2))
        capture = [
            {"op": "white_balance", "method": "manual", "gains": [round(red, 3), 1.0, round(blue, 3)]},
            {"op": "gamma", "value": float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))},
        ]
        out.append(pipeline_from_steps(capture).apply(img)[0])
    return out


def _pairs(edit: list[dict], names, count: int, seed: int) -> list[PairImages]:
    pipeline = pipeline_from_steps(edit)
    return [
        PairImages(
            Pair(f"{name}/{k}", Path(name), Path(name)),
            before.astype(np.float32) / 255,
            pipeline.apply(before)[0].astype(np.float32) / 255,
        )
        for i, name in enumerate(names)
        for k, before in enumerate(_shots(name, count, seed + i))
    ]


def _groups(pairs) -> list[str]:
    return [p.pair.key.split("/")[0] for p in pairs]


def _held_out_error(pipeline, pairs) -> float:
    return float(np.mean([mean_delta_e(pipeline.apply(p.before)[0], p.after) for p in pairs]))


def test_an_auto_correction_then_a_look_is_recovered_with_the_auto_steps():
    train = _pairs(AUTO + LOOK, FITTED, 3, seed=1)
    # Held out: another photo, and new exposures and casts of the fitted ones.
    held = _pairs(AUTO + LOOK, (NEW_PHOTO,), 3, seed=7) + _pairs(AUTO + LOOK, FITTED, 1, seed=9)
    result = fit_adaptive(train, holdout=0, seed=0, groups=_groups(train))
    assert result.chosen == "auto: white_balance gray_world + stretch + gamma auto"
    assert result.model is None and result.steps[:3] == AUTO
    adaptive = _held_out_error(result.pipeline(), held)
    plain = _held_out_error(
        pipeline_from_steps(fit_look(train, holdout=0, seed=0, groups=_groups(train)).steps), held
    )
    assert adaptive < 0.3 * plain and adaptive < 1.0, (adaptive, plain)
    # The comment block names the chosen step and every candidate's cross-validated error.
    text = result.comment_block()
    chosen = next(c for c in result.candidates if c.label == result.chosen)
    assert f"{result.chosen} {chosen.cv_error:.2f}" in text and "none " in text
    assert f"# Per-image step: {result.chosen}." in text
    assert chosen.cv_error == min(c.cv_error for c in result.candidates)


@pytest.fixture(scope="module")
def auto_folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("auto")
    for part in ("before", "after"):
        (root / part).mkdir()
    for pair in _pairs(AUTO + LOOK, FITTED, 3, seed=1):
        name = pair.pair.key.replace("/", "_") + ".png"
        cv2.imwrite(str(root / "before" / name), np.rint(pair.before * 255).astype(np.uint8))
        cv2.imwrite(str(root / "after" / name), np.rint(pair.after * 255).astype(np.uint8))
    return root


def test_cli_writes_the_auto_steps_as_normal_steps_that_run_applies(auto_folders):
    args = ["fit", "--adaptive", "--before", "before", "--after", "after", "-o", "tuned.yaml"]
    res = invoke_in(auto_folders, [*args, "--holdout", "0"])
    assert res.exit_code == 0, res.output
    text = (auto_folders / "tuned.yaml").read_text()
    data = yaml.safe_load(text)
    assert "adaptive" not in data and data["steps"][:3] == AUTO  # no model: ordinary steps
    assert "# Per-image step: auto: white_balance gray_world + stretch + gamma auto." in text
    assert [s.op.name for s in load_pipeline(auto_folders / "tuned.yaml").steps[:3]] == [
        "white_balance",
        "stretch",
        "gamma",
    ]
    new = auto_folders / "new"
    new.mkdir()
    expected = {}
    for k, before in enumerate(_shots(NEW_PHOTO, 2, seed=11)):
        cv2.imwrite(str(new / f"{k}.png"), before)
        expected[f"{k}.png"] = pipeline_from_steps(AUTO + LOOK).apply(before)[0]
    res = invoke_in(auto_folders, ["run", "tuned.yaml", "new", "-o", "out"])
    assert res.exit_code == 0, res.output
    for name, after in expected.items():
        out = cv2.imread(str(auto_folders / "out" / name))
        nothing = mean_delta_e(cv2.imread(str(new / name)), after)
        assert mean_delta_e(out, after) < min(2.0, 0.2 * nothing), name


def test_a_global_edit_gets_no_per_image_step():
    train = _pairs(LOOK, FITTED, 3, seed=1)
    result = fit_adaptive(train, holdout=0, seed=0, groups=_groups(train))
    assert result.chosen == "none" and result.model is None
    assert result.steps == fit_look(train, holdout=0, seed=0, groups=_groups(train)).steps
    text = result.render()
    assert "\nadaptive:" not in text and "no per-image step that beats the global look" in text
    # Same seed, same candidates, same file.
    again = fit_adaptive(train, holdout=0, seed=0, groups=_groups(train))
    assert again.render() == text and [c.cv_error for c in again.candidates] == [
        c.cv_error for c in result.candidates
    ]
