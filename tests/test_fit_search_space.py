"""`{fit: ...}` markers in a pipeline: parsed against the operators' declarations, reported with lines."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from imgenh import load_pipeline
from imgenh.cli import main
from imgenh.errors import ConfigError
from imgenh.fit.space import load_space, parse_space


def write(tmp_path: Path, text: str, name: str = "my.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
    version: 1
    name: mine
    steps:
      - op: white_balance
        method: manual
        gains: [{fit: [0.7, 1.4]}, 1, {fit: [0.7, 1.4]}]
      - op: gamma
        value: {fit: [0.5, 3.0]}
      - op: clahe
        tiles: {fit: [2, 8]}
      - op: stretch
        linked: {fit: [true, false]}
      - op: white_balance
        method: {fit: [gray_world, shades_of_gray]}
    output:
      quality: 90
"""


def test_markers_become_ranges_and_choices_the_rest_stays(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    assert [p.label for p in space.params] == [
        "steps[0] white_balance.gains[0]",
        "steps[0] white_balance.gains[2]",
        "steps[1] gamma.value",
        "steps[2] clahe.tiles",
        "steps[3] stretch.linked",
        "steps[4] white_balance.method",
    ]
    gains, _, gamma, tiles, linked, method = space.params
    assert (gains.low, gains.high, gains.is_range) == (0.7, 1.4, True)
    assert (gamma.low, gamma.high) == (0.5, 3.0)
    assert tiles.integer and linked.choices == (True, False)
    assert method.choices == ("gray_world", "shades_of_gray")
    steps = space.steps_for([1.1, 0.9, 1.7, 4.6, False, "shades_of_gray"])
    assert steps == [
        {"op": "white_balance", "method": "manual", "gains": [1.1, 1, 0.9]},
        {"op": "gamma", "value": 1.7},
        {"op": "clahe", "tiles": 5},  # an int parameter stays a whole number
        {"op": "stretch", "linked": False},
        {"op": "white_balance", "method": "shades_of_gray"},
    ]
    assert isinstance(steps[2]["tiles"], int)
    doc = space.document([1.1, 0.9, 1.7, 4.6, False, "gray_world"])
    assert list(doc) == ["version", "name", "steps", "output"] and doc["output"] == {"quality": 90}
    # The template is untouched: another call starts from the markers again.
    assert space.steps_for([0.7, 1.4, 3.0, 2, True, "gray_world"])[1] == {"op": "gamma", "value": 3.0}


def test_values_are_clipped_into_ranges_and_checked_against_choices(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    steps = space.steps_for([9.0, -1.0, 0.1, 2.4, True, "gray_world"])
    assert steps[0]["gains"] == [1.4, 1, 0.7] and steps[1]["value"] == 0.5 and steps[2]["tiles"] == 2
    with pytest.raises(ValueError, match="not one of the choices"):
        space.steps_for([1, 1, 1, 2, True, "auto"])
    with pytest.raises(ValueError, match="5 values for 6"):
        space.steps_for([1, 1, 1, 2, True])
    gamma = space.params[2]
    assert gamma.from_unit(gamma.to_unit(1.25)) == pytest.approx(1.25)


def test_file_parameters_are_taken_from_the_pipeline_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    cube = tmp_path / "sub" / "film.cube"
    cube.write_text("LUT_3D_SIZE 2\n" + "0 0 0\n1 0 0\n0 1 0\n1 1 0\n0 0 1\n1 0 1\n0 1 1\n1 1 1\n")
    path = write(tmp_path / "sub", "version: 1\nsteps:\n  - op: lut3d\n    file: film.cube\n  - op: gamma\n"
                 "    value: {fit: [0.5, 2]}\n")  # fmt: skip
    steps = load_space(path).steps_for([1.0])
    assert steps[0]["file"] == str(cube)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  - op: gamma\n    value: {fit: [0, 3]}\n", "my.yaml:4: steps[0] gamma.value: fit: must be > 0 (got 0)"),
        ("  - op: levels\n    black: {fit: [0.3, 0.1]}\n", "my.yaml:4: steps[0] levels.black: fit: a range needs lo < hi"),
        ("  - op: levels\n    white: {fit: [0.5, 2]}\n", "my.yaml:4: steps[0] levels.white: fit: must be <= 1 (got 2)"),
        ("  - op: levels\n    white: {fit: [0.9]}\n", "my.yaml:4: steps[0] levels.white: fit: give a range [lo, hi] or at least"),
        ("  - op: stretch\n    linked: {fit: [true, maybe]}\n", "my.yaml:4: steps[0] stretch.linked: fit: must be true or false"),
        ("  - op: white_balance\n    method: {fit: [gray_world, grey]}\n", "steps[0] white_balance.method: fit: must be one of"),
        ("  - op: white_balance\n    method: {fit: [auto, auto]}\n", "my.yaml:4: steps[0] white_balance.method: fit: the same choice"),
        ("  - op: gamma\n    valu: {fit: [1, 3]}\n", "my.yaml:4: steps[0] gamma.valu: unknown parameter; did you mean 'value'?"),
        ("  - op: gamma\n    value: {fit: [1, 3], log: true}\n", "my.yaml:4: steps[0] gamma.value: a parameter to fit is"),
        ("  - op: white_balance\n    method: manual\n    gains: [{fit: [0, 2]}, 1, 1]\n",
         "my.yaml:5: steps[0] white_balance.gains[0]: fit: must be > 0 (got 0)"),
        ("  - op: white_balance\n    method: {fit: [manual, gray_world]}\n    gains: [1.1, 1, 0.9]\n",
         "my.yaml:5: steps[0] white_balance.gains: used only with method: manual (this step has method: "
         "gray_world) (when steps[0] white_balance.method is gray_world, one of its {fit:} choices)"),
        ("  - op: gamma\n    value: 1.2\n", "my.yaml:3: no parameter to fit"),
        ("  - op: gamma\n    value: {fit: [1, 2]}\n  - op: saturation\n    factor: {random: [1, 2]}\n",
         "my.yaml:5: steps[1] saturation: random values ({random}, {choice}, p) cannot be fitted"),
        # fit works on shrunk copies: a length in pixels found there would be wrong at full size
        ("  - op: sharpen\n    sigma: {fit: [0.5, 10]}\n",
         "my.yaml:4: steps[0] sharpen.sigma: fit: a length in pixels cannot be fitted"),
        ("  - op: median\n    size: {fit: [3, 5, 7]}\n", "steps[0] median.size: fit: a length in pixels"),
        # outputs are compared with the afters pixel by pixel: no step may change the size
        ("  - op: gamma\n    value: {fit: [1, 2]}\n  - op: resize\n    long_side: 16\n",
         "my.yaml:5: steps[1] resize: resize changes the image size"),
        ("  - op: gamma\n    value: {fit: [1, 2]}\nadaptive: {}\n",
         "my.yaml:5: adaptive: this file holds a fitted model"),
    ],
)  # fmt: skip
def test_bad_markers_are_reported_with_file_line_and_parameter(tmp_path, text, expected):
    path = write(tmp_path, "version: 1\nsteps:\n" + text)
    with pytest.raises(ConfigError) as info:
        load_space(path)
    assert any(expected in e for e in info.value.errors), info.value.errors


def test_every_problem_is_reported_together(tmp_path):
    path = write(tmp_path, "version: 1\nsteps:\n  - op: gamma\n    value: {fit: [0, 3]}\n  - op: gama\n"
                 "  - op: saturation\n    factor: 9\n")  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_space(path)
    text = "\n".join(info.value.errors)
    assert (
        "my.yaml:4: steps[0] gamma.value" in text
        and "my.yaml:5: steps[1].op: unknown operator 'gama'" in text
    )
    assert "my.yaml:7: steps[2] saturation.factor: must be <= 5" in text


def test_an_odd_only_parameter_takes_choices():
    space = parse_space("version: 1\nsteps:\n  - op: gradient_magnitude\n    ksize: {fit: [3, 5]}\n")
    assert space.params[0].choices == (3, 5)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_run_and_validate_refuse_a_pipeline_still_to_fit(tmp_path, command):
    path = write(tmp_path, GOOD)
    args = [command, str(path)] + ([str(tmp_path), "-o", str(tmp_path / "out")] if command == "run" else [])
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
    assert f"{path}:8: steps[1] gamma.value: is still to be fitted" in res.stderr
    assert f"run `imgenh fit {path} --before B --after A -o tuned.yaml` first" in res.stderr
    with pytest.raises(ConfigError, match="gains: is still to be fitted"):
        load_pipeline(path)


def test_a_fitted_value_keeps_its_digits_and_stays_in_its_range():
    space = parse_space("version: 1\nsteps:\n  - op: white_balance\n    cast_range: [{fit: [0.1, 1]}, 2]\n")
    param = space.params[0]
    assert (param.value(0.55562), param.value(5), param.value(-1)) == (0.55562, 1.0, 0.1)
    assert space.steps_for([0.55562])[0]["cast_range"] == [0.55562, 2]


def test_a_built_in_name_is_read_like_run_reads_it(tmp_path):
    with pytest.raises(ConfigError, match="no parameter to fit"):  # found, but nothing in it to fit
        load_space("low_light")
    with pytest.raises(ConfigError, match="a built-in has that name: use `low_light`"):
        load_space(tmp_path / "low_light.yaml")


def test_a_range_is_checked_against_the_other_parameters_where_most_of_it_lies():
    # low 5 < high holds for almost all of [3, 99.5]; the search scores the rest as bad points.
    space = parse_space("version: 1\nsteps:\n  - op: stretch\n    low: 5\n    high: {fit: [3, 99.5]}\n")
    assert space.params[0].low == 3
    with pytest.raises(ConfigError, match="low must be < high"):  # nowhere valid: still refused
        parse_space("version: 1\nsteps:\n  - op: stretch\n    low: 50\n    high: {fit: [3, 10]}\n")


def test_a_misspelt_parameter_with_a_marker_is_unknown_not_still_to_fit(tmp_path):
    path = write(tmp_path, "version: 1\nsteps:\n  - op: gamma\n    valu: {fit: [0.5, 2]}\n")
    res = CliRunner().invoke(main, ["validate", str(path)])
    assert res.exit_code == 2
    assert "gamma.valu: unknown parameter; did you mean 'value'?" in res.output
    assert "still to be fitted" not in res.output


def test_a_refused_file_marker_is_one_error_not_a_second_about_the_missing_file(tmp_path):
    path = write(tmp_path, "version: 1\nsteps:\n  - op: lut3d\n    file: {fit: [a.cube, b.cube]}\n"
                 "  - op: gamma\n    value: -1\n")  # fmt: skip
    with pytest.raises(ConfigError) as info:
        load_space(path)
    assert [e.replace(str(tmp_path) + "/", "") for e in info.value.errors] == [
        "my.yaml:4: steps[0] lut3d.file: fit: a file parameter cannot be fitted",
        "my.yaml:6: steps[1] gamma.value: must be > 0 (got -1)",  # other steps' problems still all reported
    ]
