"""`imgenh fit PIPELINE`: the `{fit: ...}` parameters of a user's pipeline are searched.

Hidden pipelines: random pipelines of real operators with random parameters make the afters
of real photos; the same pipeline with markers in place of the values is fitted on some photos
and must reproduce the edit on photos it never saw.
"""

from __future__ import annotations

import json
import re
import textwrap
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from imgenh import load_pipeline, pipeline_from_steps
from imgenh.cli import main
from imgenh.colour_difference import mean_delta_e
from imgenh.fit.pairs import Pair, PairImages, resize_to_side
from imgenh.fit.search import DEFAULT_BUDGET, SEARCH_SIDE, fit_search, nelder_mead
from imgenh.fit.space import parse_space
from imgenh.pixels import to_float

SIDE = 96  # test photos' long side


def _photos() -> dict[str, np.ndarray]:
    """Real photos (sample_images and scikit-image's), BGR uint8, at most SIDE pixels a side."""
    photos = {}
    for path in sorted(SAMPLES.glob("*.jpg")):
        photos[path.stem] = cv2.imread(str(path), cv2.IMREAD_COLOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skimage import data

        for name in ("retina", "immunohistochemistry", "hubble_deep_field"):
            photos[name] = np.ascontiguousarray(getattr(data, name)()[..., :3][..., ::-1])
    return {k: np.ascontiguousarray(resize_to_side(v, SIDE)) for k, v in photos.items()}


PHOTOS = _photos()


def make_pairs(steps: list[dict]) -> list[PairImages]:
    """Each photo and what ``steps`` make of it (run on the 8-bit photo, as an editor would)."""
    pipeline = pipeline_from_steps(steps)
    pairs = []
    for key, photo in PHOTOS.items():
        after, _ = pipeline.apply(photo)
        pairs.append(PairImages(Pair(key, Path(key), Path(key)), to_float(photo), to_float(after)))
    return pairs


# Steps of hidden pipelines: (the step with true values drawn from rng, the same step with markers).
def _gamma(rng):
    v = round(float(rng.uniform(0.6, 1.8)), 3)
    return {"op": "gamma", "value": v}, {"op": "gamma", "value": {"fit": [0.4, 2.5]}}


def _levels(rng):
    black, white = round(float(rng.uniform(0, 0.08)), 3), round(float(rng.uniform(0.85, 1)), 3)
    return (
        {"op": "levels", "black": black, "white": white},
        {"op": "levels", "black": {"fit": [0, 0.2]}, "white": {"fit": [0.7, 1]}},
    )


def _saturation(rng):
    v = round(float(rng.uniform(0.6, 1.6)), 3)
    return {"op": "saturation", "factor": v}, {"op": "saturation", "factor": {"fit": [0.3, 2.0]}}


def _gains(rng):
    r, b = (round(float(rng.uniform(0.8, 1.2)), 3) for _ in range(2))
    return (
        {"op": "white_balance", "method": "manual", "gains": [r, 1, b]},
        {"op": "white_balance", "method": "manual", "gains": [{"fit": [0.6, 1.5]}, 1, {"fit": [0.6, 1.5]}]},
    )


def _stretch(rng):
    low, high = round(float(rng.uniform(0, 2)), 2), round(float(rng.uniform(98, 100)), 2)
    return (
        {"op": "stretch", "low": low, "high": high},
        {"op": "stretch", "low": {"fit": [0, 5]}, "high": {"fit": [95, 100]}},
    )


POOL = (_gamma, _levels, _saturation, _gains, _stretch)


def hidden_pipeline(seed: int) -> tuple[list[dict], list[dict]]:
    """Three different steps of the pool in random order with random values, and the same with markers."""
    rng = np.random.default_rng(seed)
    made = [POOL[i](rng) for i in rng.permutation(len(POOL))[:3]]
    return [m[0] for m in made], [m[1] for m in made]


def space_for(steps: list[dict]):
    import yaml

    return parse_space(yaml.safe_dump({"version": 1, "steps": steps}, sort_keys=False))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hidden_pipelines_are_recovered_on_held_out_photos(seed):
    truth, markers = hidden_pipeline(seed)
    result = fit_search(space_for(markers), make_pairs(truth), holdout=2, seed=0, budget=120)
    held = [e for e in result.errors if e.role == "held-out"]
    assert len(held) == 2 and result.evaluations <= 120
    assert result.mean_error("held-out") < 1.0, (truth, result.steps, result.errors)
    assert result.mean_error("held-out") < result.mean_error("held-out", fitted=False) / 4
    # The fitted file's steps are the user's steps with values in place: same operators, same order.
    assert [s["op"] for s in result.steps] == [s["op"] for s in truth]


def test_a_choice_is_recovered_with_the_numbers():
    truth = [{"op": "white_balance", "method": "white_patch"}, {"op": "gamma", "value": 1.4}]
    markers = [
        {"op": "white_balance", "method": {"fit": ["gray_world", "white_patch", "shades_of_gray"]}},
        {"op": "gamma", "value": {"fit": [0.5, 3.0]}},
    ]
    result = fit_search(space_for(markers), make_pairs(truth), holdout=2, seed=0, budget=120)
    assert result.values[0] == "white_patch"
    assert result.values[1] == pytest.approx(1.4, abs=0.05)
    assert result.mean_error("held-out") < 0.5


def test_an_int_parameter_stays_whole_and_is_recovered():
    truth = [{"op": "clahe", "clip_limit": 2.0, "tiles": 3}]
    markers = [{"op": "clahe", "clip_limit": 2.0, "tiles": {"fit": [1, 8]}}]
    result = fit_search(space_for(markers), make_pairs(truth), holdout=0, seed=0, budget=40)
    assert result.values == [3] and isinstance(result.steps[0]["tiles"], int)


def test_same_seed_same_result_and_the_budget_is_kept():
    truth, markers = hidden_pipeline(4)
    pairs = make_pairs(truth)
    first = fit_search(space_for(markers), pairs, seed=5, budget=30)
    again = fit_search(space_for(markers), pairs, seed=5, budget=30)
    assert first.values == again.values and first.errors == again.errors and first.steps == again.steps
    assert first.evaluations == 30


def test_nelder_mead_finds_a_minimum_inside_and_on_the_edge_of_the_box():
    count = [0]

    def spent() -> bool:
        return count[0] >= 400

    def bowl(centre):
        def f(x):
            count[0] += 1
            return float(np.sum((x - centre) ** 2 * [1.0, 10.0, 3.0]))

        return f

    for centre in (np.array([0.3, 0.7, 0.55]), np.array([1.2, 0.4, -0.5])):
        count[0] = 0
        x, fx = nelder_mead(bowl(centre), np.full(3, 0.5), 0.25, spent, f_tolerance=0.0)
        assert x == pytest.approx(np.clip(centre, 0, 1), abs=2e-3)


# --- the command line --------------------------------------------------------------------------

HIDDEN = [
    {"op": "white_balance", "method": "manual", "gains": [1.1, 1, 0.88]},
    {"op": "gamma", "value": 1.3},
    {"op": "saturation", "factor": 1.25},
]
MY_YAML = """
    # my look: the values are to be fitted
    version: 1
    name: warm look
    steps:
      - op: white_balance
        method: manual
        gains: [{fit: [0.7, 1.4]}, 1, {fit: [0.7, 1.4]}]   # warm it
      - op: gamma
        value: {fit: [0.5, 3.0]}
      - op: saturation
        factor: {fit: [0.5, 2]}
    output:
      quality: 92
"""


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """before/ with small 16-bit PNGs of the photos, after/ the same through HIDDEN, my.yaml with markers.

    16 bits, so that errors measured on the float working copies and on ``imgenh run``'s outputs
    differ by far less than 8-bit rounding at each step would make them differ (up to ~0.4 here).
    """
    root = tmp_path_factory.mktemp("fitsearch")
    for side in ("before", "after"):
        (root / side).mkdir()
    pipeline = pipeline_from_steps(HIDDEN)
    for key, photo in list(PHOTOS.items())[:6]:
        deep = photo.astype(np.uint16) * 257
        cv2.imwrite(str(root / "before" / f"{key}.png"), deep)
        cv2.imwrite(str(root / "after" / f"{key}.png"), pipeline.apply(deep)[0])
    (root / "my.yaml").write_text(textwrap.dedent(MY_YAML).lstrip())
    return root


def fit_cli(root: Path, *args: str):
    return CliRunner().invoke(
        main, ["fit", *args, "--before", str(root / "before"), "--after", str(root / "after")]
    )


def test_cli_tuned_file_runs_and_gives_the_reported_error(folders, tmp_path):
    tuned, report = tmp_path / "tuned.yaml", tmp_path / "fit.json"
    res = fit_cli(
        folders, str(folders / "my.yaml"), "-o", str(tuned), "--report", str(report), "--budget", "150"
    )
    assert res.exit_code == 0, res.output
    text = tuned.read_text()
    assert text.startswith(f"# Fitted by imgenh fit from {folders / 'my.yaml'}")
    assert "steps[1] gamma.value: {fit: [0.5, 3]} -> 1.3" in text
    assert "warm it" not in text  # comments of the user's file are not kept (the block says so)
    pipeline = load_pipeline(tuned)  # an ordinary pipeline, name and output settings kept
    assert pipeline.name == "warm look" and pipeline.output.quality == 92
    assert [s.op.name for s in pipeline.steps] == ["white_balance", "gamma", "saturation"]
    doc = json.loads(report.read_text())
    assert [f["parameter"] for f in doc["fitted"]][-1] == "steps[2] saturation.factor"
    assert doc["fitted"][2]["value"] == pytest.approx(1.3, abs=0.03)
    assert doc["mean_ciede2000"]["held-out"]["fitted"] < 0.5 and doc["evaluations"] <= 150
    # imgenh run applies the tuned file; its outputs are as far from the afters as reported.
    out = tmp_path / "out"
    run = CliRunner().invoke(main, ["run", str(tuned), str(folders / "before"), "-o", str(out)])
    assert run.exit_code == 0, run.output
    for pair in doc["pairs"]:
        made = cv2.imread(str(out / f"{pair['key']}.png"), cv2.IMREAD_UNCHANGED)
        after = cv2.imread(str(folders / "after" / f"{pair['key']}.png"), cv2.IMREAD_UNCHANGED)
        assert made.dtype == np.uint16
        assert mean_delta_e(made, after) == pytest.approx(pair["fitted"], abs=0.02)
    assert re.search(r"4 parameters in \d+ evaluations; mean CIEDE2000 train 0\.\d+", res.stderr)


def test_cli_bad_marker_exits_2_naming_the_line_before_reading_images(folders, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsteps:\n  - op: gamma\n    value: {fit: [-1, 3]}\n  - op: saturation\n"
                   "    factor: {fit: [0.5, 9]}\n")  # fmt: skip
    res = CliRunner().invoke(
        main,
        [
            "fit",
            str(bad),
            "--before",
            str(tmp_path),
            "--after",
            str(tmp_path),
            "-o",
            str(tmp_path / "t.yaml"),
        ],
    )
    assert res.exit_code == 2
    assert f"{bad}:4: steps[0] gamma.value: fit: must be > 0 (got -1)" in res.stderr
    assert f"{bad}:6: steps[1] saturation.factor: fit: must be <= 5 (got 9)" in res.stderr
    assert "pair" not in res.stderr and not (tmp_path / "t.yaml").exists()


def test_cli_refuses_cube_with_a_pipeline_and_budget_without_one(folders, tmp_path):
    res = fit_cli(folders, str(folders / "my.yaml"), "-o", str(tmp_path / "t.yaml"), "--cube", "x.cube")
    assert res.exit_code == 2 and "--cube exports the look model" in res.stderr
    res = fit_cli(folders, "-o", str(tmp_path / "t.yaml"), "--budget", "10")
    assert res.exit_code == 2 and "--budget is for a PIPELINE" in res.stderr


def test_cli_progress_bars_cover_the_search_and_the_look_cross_validation(folders, tmp_path):
    res = fit_cli(
        folders, str(folders / "my.yaml"), "-o", str(tmp_path / "t.yaml"), "--budget", "5", "--progress"
    )
    assert res.exit_code == 0, res.output
    assert "imgenh fit: loading" in res.stderr and "imgenh fit: searching" in res.stderr
    assert "5/5" in res.stderr
    res = fit_cli(folders, "-o", str(tmp_path / "look.yaml"), "--progress")
    assert res.exit_code == 0, res.output
    assert "imgenh fit: cross-validating" in res.stderr
    quiet = fit_cli(
        folders, str(folders / "my.yaml"), "-o", str(tmp_path / "t2.yaml"), "--budget", "5", "--no-progress"
    )
    assert "imgenh fit:" not in quiet.stderr


def test_help_states_the_budget_and_search_size():
    res = CliRunner().invoke(main, ["fit", "--help"])
    assert f"[default: {DEFAULT_BUDGET}]" in res.output and f"shrunk to {SEARCH_SIDE} px" in res.output


def test_a_pipeline_that_fails_for_every_value_is_a_clear_error():
    space = space_for(
        [{"op": "white_balance", "method": "manual", "white_at": [5000, 10], "strength": {"fit": [0.5, 1.0]}}]
    )
    with pytest.raises(ValueError, match=r"failed for every value tried: steps\[0\] white_balance.white_at"):
        fit_search(space, make_pairs([{"op": "gamma", "value": 1.2}])[:3], holdout=0, budget=10)


def test_a_grey_pair_is_run_as_grey_and_scored_in_colour(tmp_path):
    # imgenh run leaves a grey image's colour alone (white balance skips it); the fit must see the same.
    from imgenh.fit.pairs import load_pair
    from imgenh.fit.select import pipeline_errors

    grey = cv2.cvtColor(cv2.imread(str(SAMPLES / "astronaut.jpg")), cv2.COLOR_BGR2GRAY)[::4, ::4]
    edited = pipeline_from_steps([{"op": "gamma", "value": 1.3}]).apply(grey)[0]
    cv2.imwrite(str(tmp_path / "b.png"), grey)
    cv2.imwrite(str(tmp_path / "a.png"), edited)
    pair = load_pair(Pair("g", tmp_path / "b.png", tmp_path / "a.png"))
    assert pair.grey and pair.before.ndim == 3
    steps = [
        {"op": "white_balance", "method": "manual", "gains": [1.3, 1.0, 0.8]},
        {"op": "gamma", "value": 1.3},
    ]
    out, _ = pair.run(pipeline_from_steps(steps))
    assert out.shape == pair.before.shape and np.array_equal(out[..., 0], out[..., 2])  # still grey
    error = pipeline_errors(steps, [pair], ["train"])[0]
    assert error.fitted < 0.3 < error.nothing_done
