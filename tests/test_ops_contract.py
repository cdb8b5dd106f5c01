"""Contract tests over the whole registry: every operator, every depth and layout.

A new operator is covered here the moment it is registered, and this file fails if it
has no reference test of its own (a ``test_<name>_...`` function in tests/test_ops_*.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from imgenh.ops import REGISTRY
from imgenh.pipeline import Step, apply_steps

NAMES = sorted(REGISTRY)
TESTS = Path(__file__).parent


def example(name: str) -> list[Step]:
    spec = REGISTRY[name]
    params, errors = spec.resolve({k: v for k, v in spec.example_step().items() if k != "op"})
    assert not errors, errors
    return [Step(spec, params, 0)]


def layouts(photo8, photo16, gray8, gray16):
    return {
        "uint8-colour": photo8,
        "uint8-grey": gray8,
        "uint16-colour": photo16,
        "uint16-grey": gray16,
        "float32-colour": photo16.astype(np.float32) / 65535,
    }


@pytest.mark.parametrize("name", NAMES)
def test_contract_dtype_shape_and_input_untouched(name, photo8, photo16, gray8, gray16):
    spec = REGISTRY[name]
    for label, img in layouts(photo8, photo16, gray8, gray16).items():
        before = img.copy()
        out, reports = apply_steps(img, example(name))
        assert np.array_equal(img, before), f"{name} modified its input ({label})"
        assert out.dtype == img.dtype, f"{name} changed dtype on {label}"
        if spec.changes_shape:
            assert out.ndim in (2, 3) and out.size > 0
        else:
            assert out.shape == img.shape, f"{name} changed shape on {label}: {out.shape}"
        if out.dtype == np.float32:
            assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_contract_8_and_16_bit_agree(name, photo8):
    """The 16-bit path gives the 8-bit result (within rounding) on 8-bit data scaled by 257."""
    out8, _ = apply_steps(photo8, example(name))
    out16, _ = apply_steps(photo8.astype(np.uint16) * 257, example(name))
    diff = np.abs(out16.astype(np.float64) / 257 - out8)
    assert diff.mean() < 1.5, f"{name}: mean difference {diff.mean():.2f} levels between 8- and 16-bit"


@pytest.mark.parametrize("name", NAMES)
def test_contract_declaration_is_complete(name):
    spec = REGISTRY[name]
    assert spec.summary and spec.formula and spec.reference, (
        f"{name}: summary, formula and reference are required"
    )
    for pname, param in spec.params.items():
        assert param.help, f"{name}.{pname} has no help line"


def test_every_operator_has_a_reference_test():
    source = "\n".join(p.read_text() for p in TESTS.glob("test_ops_*.py") if p.name != Path(__file__).name)
    missing = [n for n in NAMES if not re.search(rf"def test_{n}_\w*\(", source)]
    assert not missing, f"operators without a test_<name>_... reference test: {missing}"
