"""One-off steps without YAML: `imgenh run -s 'gamma value=1.2' photos -o out` (issue 9, point 16)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from helpers import invoke_in

from imgenh.pipeline_file import ConfigError, load_pipeline, steps_from_cli, with_cli_steps

GAMMA = "version: 1\nsteps:\n  - op: gamma\n    value: 1.5\n"


def invoke(args, cwd: Path):
    return invoke_in(cwd, args)


@pytest.fixture
def tree(tmp_path, photo8) -> Path:
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), photo8)
    (tmp_path / "g.yaml").write_text(GAMMA)
    return tmp_path


def test_values_are_read_as_yaml_reads_them():
    assert steps_from_cli(
        [
            "white_balance method=manual gains=[1.1, 1, 0.9]",
            "gamma auto=true",
            "stretch low=1e-1 linked=false",
        ]
    ) == [
        {"op": "white_balance", "method": "manual", "gains": [1.1, 1, 0.9]},
        {"op": "gamma", "auto": True},
        {"op": "stretch", "low": "1e-1", "linked": False},  # YAML 1.1: a string; the declaration reads it
    ]
    assert steps_from_cli(["curve  points='[[0, 0], [1, 1]]'", "median"]) == [
        {"op": "curve", "points": "[[0, 0], [1, 1]]"},
        {"op": "median"},
    ]


def test_steps_alone_do_what_the_same_yaml_does(tree):
    res = invoke(["run", "-s", "gamma value=1.5", "photos", "-o", "by_step"], tree)
    assert res.exit_code == 0, res.output
    assert invoke(["run", "g.yaml", "photos", "-o", "by_file"], tree).exit_code == 0
    assert (tree / "by_step" / "a.png").read_bytes() == (tree / "by_file" / "a.png").read_bytes()


def test_steps_are_appended_after_the_pipeline(tree):
    res = invoke(
        ["run", "g.yaml", "-s", "resize width=24", "--step", "median size=3", "photos", "-o", "o"], tree
    )
    assert res.exit_code == 0, res.output
    both = (
        "version: 1\nsteps:\n  - op: gamma\n    value: 1.5\n  - op: resize\n    width: 24\n  - op: median\n"
    )
    (tree / "both.yaml").write_text(both)
    assert invoke(["run", "both.yaml", "photos", "-o", "ref"], tree).exit_code == 0
    assert (tree / "o" / "a.png").read_bytes() == (tree / "ref" / "a.png").read_bytes()
    pipeline = with_cli_steps(load_pipeline(tree / "g.yaml"), ["resize width=24"])
    assert [s.label for s in pipeline.steps] == ["steps[0] gamma", "--step 1 resize"]


def test_with_steps_the_first_word_is_a_pipeline_only_if_it_looks_like_one(tree):
    (tree / "default").mkdir()  # a folder named like a built-in is an input
    cv2.imwrite(str(tree / "default" / "b.png"), cv2.imread(str(tree / "photos" / "a.png")))
    res = invoke(["run", "-s", "gamma value=1.2", "default", "photos", "-o", "o", "--report", "-"], tree)
    assert res.exit_code == 0, res.output
    assert sorted(r["key"] for r in json.loads(res.stdout)["images"]) == ["a.png", "b.png"]
    res = invoke(["run", "-s", "gamma value=1.2", "low_light", "photos", "-o", "o2", "-n"], tree)
    assert res.exit_code == 0 and "default" not in res.stdout  # low_light: a built-in, not an input
    res = invoke(["run", "-s", "gamma value=1.2", "missing.yaml", "photos", "-o", "o3"], tree)
    assert res.exit_code == 2 and "missing.yaml: cannot read pipeline file" in res.stderr


def test_step_errors_name_the_step_and_come_with_the_pipeline_errors(tree):
    (tree / "bad.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 0\n")
    args = ["run", "bad.yaml", "-s", "gamma value=-1", "-s", "gama", "-s", "gamma 1.2", "photos", "-o", "o"]
    res = invoke(args, tree)
    assert res.exit_code == 2 and not (tree / "o").exists()
    assert res.stderr.splitlines() == [
        "imgenh: error: bad.yaml:4: steps[0] gamma.value: must be > 0 (got 0)",
        "imgenh: error: --step 1 gamma.value: must be > 0 (got -1)",
        "imgenh: error: --step 2: unknown operator 'gama'; did you mean 'gamma'? (see `imgenh ops`)",
        "imgenh: error: --step 3 gamma: '1.2' is not KEY=VALUE: -s 'OP KEY=VALUE ...', e.g. -s 'gamma value=1.2'",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "--step 1: starts with the operator's name"),
        ("value=1.2", "--step 1: starts with the operator's name: -s 'OP KEY=VALUE ...'"),
        ("gamma value=1 value=2", "--step 1 gamma.value: given twice"),
        ("gamma value=", "--step 1 gamma.value: needs a value after '='"),
        ("white_balance gains=[1, 2", "--step 1 white_balance.gains: cannot read '[1, 2' as a YAML value"),
        ("white_balance p=3", "--step 1 white_balance.p: used only with method: shades_of_gray or gray_edge"),
    ],
)
def test_malformed_steps(text, message):
    with pytest.raises(ConfigError) as info:
        with_cli_steps(None, [text])
    assert info.value.errors[0].startswith(message), info.value.errors


def test_a_step_failing_on_an_image_is_named_as_given(tree):
    step = "white_balance method=manual white_at=[5000, 1]"
    res = invoke(["run", "-s", step, "photos", "-o", "o", "--report", "-"], tree)
    assert res.exit_code == 1
    (image,) = json.loads(res.stdout)["images"]
    assert "--step 1 white_balance.white_at: [5000, 1] is outside the 96x64 image" in image["reason"]


def test_changing_a_step_redoes_the_outputs(tree):
    first = invoke(["run", "-s", "gamma value=1.2", "photos", "-o", "o"], tree)
    assert "1 processed" in first.stderr
    assert (
        "0 processed, 1 skipped" in invoke(["run", "-s", "gamma value=1.2", "photos", "-o", "o"], tree).stderr
    )
    assert "1 processed" in invoke(["run", "-s", "gamma value=1.3", "photos", "-o", "o"], tree).stderr


def test_without_pipeline_or_steps_run_says_what_is_missing(tree):
    res = invoke(["run"], tree)
    assert res.exit_code == 2 and res.stderr.startswith(
        "imgenh: error: missing PIPELINE: a pipeline file, a built-in"
    )
