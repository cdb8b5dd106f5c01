"""Tone and contrast operators: curves on levels, most of them pointwise."""

from __future__ import annotations

import numpy as np

from imgenh.ops.registry import Param, operator


@operator(
    "gamma",
    kind="pointwise",
    summary="Power-law tone curve; value > 1 brightens the midtones.",
    formula="out = in ** (1 / value)",
    reference="ImageMagick -gamma",
    example={"value": 1.4},
)
def gamma(
    x: np.ndarray,
    ctx,
    *,
    value: Param(float, 1.0, "exponent is 1/value; > 1 brightens, < 1 darkens", gt=0, le=10),
) -> np.ndarray:
    """Gamma curve with ImageMagick's convention: ``out = in ** (1 / value)``."""
    return np.power(np.clip(x, 0.0, 1.0), 1.0 / value)
