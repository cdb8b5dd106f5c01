"""Pipeline files: strict parsing, errors that name file, line and step, hashing, schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

from imgenh.ops import REGISTRY
from imgenh.ops.describe import param_schema, type_text
from imgenh.ops.registry import Param, operator
from imgenh.pipeline_file import (
    ConfigError,
    load_pipeline,
    parse_pipeline,
    pipeline_from_steps,
    pipeline_schema,
)


def errors_of(text: str, source: str = "p.yaml") -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_pipeline(text, source)
    return info.value.errors


def test_valid_pipeline_fills_defaults_and_output():
    p = parse_pipeline("version: 1\nname: n\nsteps:\n  - op: gamma\n    value: 2\noutput:\n  quality: 80\n")
    assert [s.op.name for s in p.steps] == ["gamma"]
    assert p.steps[0].params["value"] == 2.0
    assert p.output.quality == 80 and p.output.format == "keep"
    assert p.name == "n"


def test_unknown_operator_suggests_nearest_with_line():
    (err,) = errors_of("version: 1\nsteps:\n  - op: gama\n")
    assert err.startswith("p.yaml:3: steps[0].op: unknown operator 'gama'; did you mean 'gamma'?")


def test_unknown_parameter_and_range_reported_together_with_lines():
    errs = errors_of("version: 1\nsteps:\n  - op: gamma\n    valu: 2\n  - op: gamma\n    value: -1\n")
    assert (
        errs[0]
        == "p.yaml:4: steps[0] gamma.valu: unknown parameter; did you mean 'value'? (parameters: value, auto)"
    )
    assert errs[1] == "p.yaml:6: steps[1] gamma.value: must be > 0 (got -1)"


def test_wrong_types_are_rejected():
    errs = errors_of("version: 1\nsteps:\n  - op: gamma\n    value: high\n  - op: gamma\n    auto: 1\n")
    assert "steps[0] gamma.value: must be a number (got 'high')" in errs[0]
    assert "steps[1] gamma.auto: must be true or false (got 1)" in errs[1]


def test_yaml_syntax_error_has_line_and_column():
    (err,) = errors_of("version: 1\nsteps: [\n  - op: gamma\n")
    assert err.startswith("p.yaml:3:3: YAML syntax error")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("steps: []\n", "version: is required"),
        ("version: 2\nsteps: []\n", "this imgenh reads pipeline version 1 (got 2)"),
        ("version: 1\nstep: []\n", "unknown key; did you mean 'steps'?"),
        ("version: 1\nsteps:\n  - gamma\n", "steps[0]: must be a mapping like `- op: gamma`"),
        ("version: 1\nsteps:\n  - value: 2\n", "steps[0]: needs `op:`"),
        (
            "version: 1\nsteps: []\noutput:\n  format: gif\n",
            "output.format: must be one of: keep, jpg, png, tiff, webp",
        ),
        ("version: 1\nsteps: []\noutput:\n  suffix: a/b\n", "output.suffix: may not contain path separators"),
        ("version: 1\nversion: 1\nsteps: []\n", "duplicate key 'version' (first on line 1)"),
        ("- 1\n- 2\n", "a pipeline file is a mapping"),
    ],
)
def test_strict_structure(text, expected):
    assert any(expected in e for e in errors_of(text)), errors_of(text)


def test_python_tags_are_refused_by_the_safe_loader():
    (err,) = errors_of("version: 1\nsteps: !!python/object/apply:os.system ['echo pwned']\n")
    assert "is not allowed" in err and err.startswith("p.yaml:2")


def test_load_pipeline_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read pipeline file"):
        load_pipeline(tmp_path / "nope.yaml")


def test_hash_changes_with_any_parameter_or_output_setting():
    a = pipeline_from_steps([{"op": "gamma", "value": 1.2}])
    assert a.hash() == pipeline_from_steps([{"op": "gamma", "value": 1.2}]).hash()
    assert a.hash() != pipeline_from_steps([{"op": "gamma", "value": 1.3}]).hash()
    assert a.hash() != a.with_output(quality=50).hash()
    # Spelling out a default does not change what the pipeline does, nor its hash.
    assert a.hash() == pipeline_from_steps([{"op": "gamma", "value": 1.2, "auto": False}]).hash()


def test_cli_style_overrides_are_validated():
    p = pipeline_from_steps([{"op": "gamma"}])
    assert p.with_output(format="png", suffix="_x").output.format == "png"
    with pytest.raises(ConfigError, match="--quality: must be <= 100"):
        p.with_output(quality=101)


def test_apply_runs_steps_in_order():
    p = pipeline_from_steps([{"op": "gamma", "value": 2.0}, {"op": "gamma", "value": 0.5}])
    img = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out, _ = p.apply(img)
    assert np.abs(out.astype(int) - img).max() <= 1  # the two curves cancel, rounded once


def test_schema_covers_every_operator_and_is_json():
    schema = pipeline_schema()
    titles = {s["title"] for s in schema["properties"]["steps"]["items"]["oneOf"]}
    assert titles == set(REGISTRY)
    json.dumps(schema)


def test_python_data_errors_name_the_step_without_a_line():
    with pytest.raises(ConfigError) as info:
        pipeline_from_steps(
            [{"op": "gamma", "value": -1}, {"op": "resize"}, {"op": "gama"}, "gamma"],
            quality=101,
            suffix="a/b",
        )
    assert info.value.errors == [
        "steps[0] gamma.value: must be > 0 (got -1)",
        "steps[1] resize: set exactly one of width, height, long_side, short_side, scale (got none)",
        "steps[2].op: unknown operator 'gama'; did you mean 'gamma'? (see `imgenh ops`)",
        "steps[3]: must be a mapping like `- op: gamma` (got 'gamma')",
        "output.quality: must be <= 100 (got 101)",
        "output.suffix: may not contain path separators or special characters (/) (got 'a/b')",
    ]


def test_python_data_is_validated_as_given_not_through_yaml():
    p = pipeline_from_steps([{"op": "gamma", "value": 2}], format="JPEG")
    assert p.source == "<python>" and p.output.format == "jpg" and p.steps[0].params["value"] == 2.0
    with pytest.raises(ConfigError, match=r"^steps\[0\] gamma.value: must be a number \(got \(1, 2\)\)$"):
        pipeline_from_steps([{"op": "gamma", "value": (1, 2)}])  # YAML could not even dump this


def test_same_problem_reads_the_same_from_yaml_and_from_python():
    (from_yaml,) = errors_of("version: 1\nsteps:\n  - op: white_balance\n    method: manual\n")
    with pytest.raises(ConfigError) as info:
        pipeline_from_steps([{"op": "white_balance", "method": "manual"}])
    assert from_yaml == "p.yaml:3: " + info.value.errors[0]
    assert info.value.errors[0].startswith("steps[0] white_balance: method manual needs exactly one of")


@pytest.fixture
def file_op():
    """A temporary operator with a file-name parameter (lut3d will be the first real one)."""

    @operator("test_file_op", kind="native", summary="test only", formula="out = in", reference="none")
    def file_op(
        img, ctx, *, table: Param(str, None, "a file", path=True), label: Param(str, "x", "not a path")
    ):
        return img

    yield "test_file_op"
    del REGISTRY["test_file_op"]


def test_path_params_resolve_against_the_pipeline_folder(tmp_path, file_op, monkeypatch):
    folder = tmp_path / "configs"
    folder.mkdir()
    text = "version: 1\nsteps:\n  - op: test_file_op\n    table: luts/warm.cube\n    label: luts/x\n"
    (folder / "p.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    step = load_pipeline("configs/p.yaml").steps[0]
    assert step.params["table"] == str(folder / "luts" / "warm.cube")
    assert step.params["label"] == "luts/x"  # only path parameters are resolved
    absolute = str(tmp_path / "elsewhere.cube")
    assert load_pipeline(folder / "p.yaml").steps[0].params["table"] == str(folder / "luts" / "warm.cube")
    assert pipeline_from_steps([{"op": file_op, "table": absolute}]).steps[0].params["table"] == absolute
    # Python data and YAML text without a file: the current folder, fixed at load time.
    assert pipeline_from_steps([{"op": file_op, "table": "a.cube"}]).steps[0].params["table"] == str(
        tmp_path / "a.cube"
    )
    assert parse_pipeline(text).steps[0].params["table"] == str(tmp_path / "luts" / "warm.cube")
    assert pipeline_from_steps([{"op": file_op}]).steps[0].params["table"] is None


def test_path_params_are_described_as_paths(file_op):

    param = REGISTRY[file_op].params["table"]
    assert type_text(param) == "path"
    assert param_schema(param)["anyOf"][0]["type"] == "string"
    with pytest.raises(TypeError, match="only a str parameter"):
        Param(int, 1, "n", path=True)
