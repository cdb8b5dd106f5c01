"""Operators, one family per module; importing this package registers them all."""

from imgenh.ops import color, filters, geometry, gradient, lut, tone  # noqa: F401  (registration)
from imgenh.ops.registry import REGISTRY, OpSpec, Param, get_op, operator

__all__ = ["REGISTRY", "OpSpec", "Param", "get_op", "operator"]
