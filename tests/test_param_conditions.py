"""A parameter the chosen method (or setting) does not use is an error naming what uses it (issue 9, point 9)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from imgenh.cli import main
from imgenh.ops import REGISTRY
from imgenh.ops.registry import GIVEN, Param, operator
from imgenh.pipeline import run_op
from imgenh.pipeline_file import ConfigError, parse_pipeline, pipeline_from_steps, pipeline_schema


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_pipeline(text, "p.yaml")
    return info.value.errors


def test_p_with_auto_white_balance_names_the_methods_that_use_it():
    text = "version: 1\nsteps:\n  - op: white_balance\n    method: auto\n    p: 3\n"
    assert errors_of(text) == [
        "p.yaml:5: steps[0] white_balance.p: used only with method: shades_of_gray or gray_edge "
        "(this step has method: auto)"
    ]


def test_a_default_setting_is_named_as_the_default():
    (err,) = errors_of("version: 1\nsteps:\n  - op: white_balance\n    order: 2\n")
    assert err == (
        "p.yaml:4: steps[0] white_balance.order: used only with method: gray_edge "
        "(this step has method: auto, the default)"
    )


def test_gamma_value_with_auto_is_an_error():
    (err,) = errors_of("version: 1\nsteps:\n  - op: gamma\n    value: 1.2\n    auto: true\n")
    assert err == "p.yaml:4: steps[0] gamma.value: used only with auto: false (this step has auto: true)"


def test_a_parameter_that_needs_another_one_says_so():
    with pytest.raises(ConfigError) as info:
        pipeline_from_steps([{"op": "white_balance", "method": "manual", "gains": [1, 1, 1], "window": 7}])
    assert info.value.errors == [
        "steps[0] white_balance.window: used only with white_at (this step has no white_at)"
    ]


def test_the_methods_own_parameters_and_defaults_are_fine():
    pipeline = pipeline_from_steps(
        [
            {"op": "white_balance", "method": "gray_edge", "p": 2, "order": 2, "sigma": 2},
            {"op": "white_balance", "method": "manual", "white_at": [1, 1], "window": 3},
            {"op": "white_balance", "method": "gray_world", "saturated": 0.9, "gains": None},
            {"op": "denoise", "method": "nlmeans", "h": 0.05, "template": 5},
            {"op": "gamma", "auto": True},
            {"op": "resize", "width": 10, "upscale": True, "enlarge_filter": "cubic"},
        ]
    )
    assert len(pipeline.steps) == 6


def _unused_cases():
    """Every declared condition on a value, broken: (operator, parameter, its value, the other setting)."""
    for name, spec in sorted(REGISTRY.items()):
        example = spec.example_step()
        for pname, param in spec.params.items():
            for other, allowed in param.only_with.items():
                if allowed is GIVEN:
                    continue
                setting = spec.params[other]
                # A number-or-word setting (strength: 0..1 or auto) is broken by a number.
                choices = setting.choices or ((*setting.words, 0.5) if setting.words else (True, False))
                wrong = next(c for c in choices if c not in allowed)
                value = example.get(pname, param.default)
                if value is None:
                    value = {
                        "gains": [1, 1, 1],
                        "white": [0.5, 0.5, 0.5],
                        "white_at": [1, 1],
                        "kelvin": 5000,
                        "cast_range": [0.3, 1.0],
                        "disagreement_range": [15, 30],
                        "average_range": [0.15, 0.3],
                        "block_radius": 6,
                    }.get(pname, 0.5)
                yield name, pname, value, {other: wrong}


CASES = list(_unused_cases())


def test_conditions_are_declared_where_methods_differ():
    declared = {(name, pname) for name, pname, _, _ in CASES}
    assert {("gamma", "value"), ("white_balance", "p"), ("white_balance", "percentile")} <= declared
    assert {("denoise", "h"), ("denoise", "diameter"), ("resize", "enlarge_filter")} <= declared


@pytest.mark.parametrize(("name", "pname", "value", "setting"), CASES, ids=[f"{c[0]}.{c[1]}" for c in CASES])
def test_every_declared_condition_is_enforced(name, pname, value, setting):
    (other, wrong) = next(iter(setting.items()))
    with pytest.raises(ConfigError) as info:
        pipeline_from_steps([{"op": name, pname: value, **setting}])
    shown = json.dumps(wrong) if isinstance(wrong, bool) else wrong
    assert f"steps[0] {name}.{pname}: used only with {other}: " in info.value.errors[0]
    assert info.value.errors[0].endswith(f"(this step has {other}: {shown})")


def test_run_op_refuses_unused_parameters_too(photo8):
    with pytest.raises(ValueError, match=r"denoise\.h: used only with method: nlmeans"):
        run_op(photo8, "denoise", method="bilateral", h=0.1)
    assert run_op(photo8, "denoise", method="bilateral", diameter=5).shape == photo8.shape


def test_ops_and_schema_show_when_a_parameter_applies():
    res = CliRunner().invoke(main, ["ops", "white_balance"])
    assert "Minkowski norm (1 = mean) (only with method: shades_of_gray or gray_edge)" in res.stdout
    steps = pipeline_schema()["properties"]["steps"]["items"]["oneOf"]
    gamma = next(s for s in steps if s["title"] == "gamma")
    assert gamma["properties"]["value"]["description"].endswith("(only with auto: false)")


def test_a_condition_must_name_another_parameter_of_the_operator():
    with pytest.raises(TypeError, match="only_with names no other parameter"):

        @operator("test_bad_condition", kind="native", summary="test only")
        def bad(img, ctx, *, a: Param(float, 1.0, "a", only_with={"mode": ("x",)})):
            return img

    with pytest.raises(TypeError, match="only_with values are tuples"):

        @operator("test_bad_condition", kind="native", summary="test only")
        def bad_value(
            img, ctx, *, m: Param(str, "ab", "m"), a: Param(float, 1.0, "a", only_with={"m": "ab"})
        ):
            return img

    assert "test_bad_condition" not in REGISTRY
    assert np.all(run_op(np.zeros((2, 2), np.uint8), "gamma", auto=True) == 0)
