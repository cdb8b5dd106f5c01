"""Pipeline behaviour shared by all operators: errors name the step that failed."""

from __future__ import annotations

import numpy as np
import pytest

from imgenh.ops import get_op
from imgenh.pipeline import Step, StepError, apply_steps


def _step(name: str, index: int, **params) -> Step:
    spec = get_op(name)
    values, errors = spec.resolve(params)
    assert not errors, errors
    return Step(spec, values, index)


def test_operator_error_names_the_step():
    img = np.full((400, 600, 3), 128, np.uint8)
    steps = [_step("white_balance", 0, method="manual", white_at=[5000, 10])]
    with pytest.raises(StepError) as info:
        apply_steps(img, steps)
    assert str(info.value) == "steps[0] white_balance.white_at: [5000, 10] is outside the 600x400 image"
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_error_in_a_fused_pointwise_group_names_its_step(monkeypatch, dtype):
    # The second of two fused pointwise steps fails: the label is that step's, index included.
    spec = get_op("gamma")
    real = spec.func

    def failing(x, ctx, **params):
        if params["value"] == 3.0:
            raise RuntimeError("boom")
        return real(x, ctx, **params)

    monkeypatch.setattr(spec, "func", failing)
    steps = [_step("gamma", 0, value=1.5), _step("gamma", 1, value=3.0)]
    with pytest.raises(StepError, match=r"^steps\[1\] gamma: boom$"):
        apply_steps(np.zeros((4, 4), dtype), steps)


def test_memory_error_is_not_wrapped(monkeypatch):
    spec = get_op("gamma")

    def exhausted(x, ctx, **params):
        raise MemoryError("no room")

    monkeypatch.setattr(spec, "func", exhausted)
    with pytest.raises(MemoryError):
        apply_steps(np.zeros((4, 4), np.uint8), [_step("gamma", 0, value=2.0)])
