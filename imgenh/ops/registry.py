"""The operator registry: one declaration per operator, everything else derived from it.

An operator is a function decorated with :func:`operator`. Its parameters are declared
as keyword-only arguments annotated with :class:`Param`; from that declaration the
registry derives YAML validation, ``imgenh ops``, the README table and the JSON Schema.

Operator kinds and the call each one receives are described in
:mod:`imgenh.ops.contract`.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from imgenh.ops.contract import KINDS

_REQUIRED = object()


class _Given:
    """Marks a condition met by any value: ``only_with={"white_at": GIVEN}``."""

    def __repr__(self) -> str:
        return "GIVEN"


GIVEN = _Given()


def yaml_text(value: Any) -> str:
    """A value as a pipeline file spells it: ``true``, ``null``, ``1.5``, ``shades_of_gray``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return f"{value:g}" if isinstance(value, float) else str(value)


class Param:
    """Declaration of one operator parameter.

    Parameters
    ----------
    type : type
        ``float``, ``int``, ``bool``, ``str`` or ``list``.
    default : object
        Value used when the step omits the parameter; ``None`` means "not set".
        Omit it to make the parameter required.
    help : str
        One line shown by ``imgenh ops NAME``.
    gt, ge, lt, le : float, optional
        Bounds for numbers (and for each item of a list of numbers).
    choices : sequence of str, optional
        Allowed values of a string parameter.
    odd : bool
        An integer that must be odd (kernel sizes).
    item : type, optional
        Type of each item of a ``list`` parameter (``float`` or ``list`` for pairs).
    length : int or tuple of int, optional
        Allowed list length(s).
    path : bool or callable
        A ``str`` naming a file: a relative value is resolved against the pipeline file's
        folder when the pipeline is loaded (against the current folder for Python data).
        A callable reads the file then (raising ``OSError`` or ``ValueError`` with a message
        naming it), so a missing or broken file stops the run before any image.
    pixels : bool
        A length or position in pixels: it does not scale with the image (``imgenh fit``, which
        works on shrunk copies, refuses to fit it).
    only_with : dict, optional
        The parameter has an effect only when each named parameter of the same operator has
        one of the listed values (``{"method": ("shades_of_gray", "gray_edge")}``), or any
        value but null for :data:`GIVEN` (``{"white_at": GIVEN}``). Giving it otherwise is
        an error; its default is never one.
    words : sequence of str, optional
        Words a number parameter also accepts in place of a number (e.g. ``auto``).
    """

    def __init__(
        self,
        type: type,
        default: Any = _REQUIRED,
        help: str = "",
        *,
        gt: float | None = None,
        ge: float | None = None,
        lt: float | None = None,
        le: float | None = None,
        choices: tuple[str, ...] | None = None,
        odd: bool = False,
        item: type | None = None,
        length: int | tuple[int, ...] | None = None,
        words: tuple[str, ...] | None = None,
        path: bool | Callable[[str], Any] = False,
        pixels: bool = False,
        only_with: dict[str, tuple | _Given] | None = None,
    ):
        if path and type is not str:
            raise TypeError("only a str parameter can be a path")
        self.only_with = dict(only_with or {})
        self.type = type
        self.default = default
        self.help = help
        self.gt, self.ge, self.lt, self.le = gt, ge, lt, le
        self.choices = tuple(choices) if choices else None
        self.odd = odd
        self.item = item
        self.length = (length,) if isinstance(length, int) else length
        self.words = tuple(words) if words else None
        self.path = path
        self.pixels = pixels

    @property
    def required(self) -> bool:
        """True when a step must give this parameter."""
        return self.default is _REQUIRED

    def condition_text(self) -> str:
        """When the parameter has an effect, e.g. ``method: shades_of_gray or gray_edge``; "" if always."""
        return " and ".join(
            name if allowed is GIVEN else f"{name}: {_one_of([yaml_text(v) for v in allowed])}"
            for name, allowed in self.only_with.items()
        )

    def unmet_conditions(self, values: dict[str, Any]) -> list[str]:
        """The names in :attr:`only_with` whose value in ``values`` makes this parameter unused."""
        unmet = []
        for name, allowed in self.only_with.items():
            if name not in values:  # that parameter is invalid itself: reported on its own
                continue
            value = values[name]
            if (value is None) if allowed is GIVEN else value not in allowed:
                unmet.append(name)
        return unmet

    def _check_number(self, value: float) -> str | None:
        if self.gt is not None and not value > self.gt:
            return f"must be > {self.gt:g}"
        if self.ge is not None and not value >= self.ge:
            return f"must be >= {self.ge:g}"
        if self.lt is not None and not value < self.lt:
            return f"must be < {self.lt:g}"
        if self.le is not None and not value <= self.le:
            return f"must be <= {self.le:g}"
        if self.odd and int(value) % 2 != 1:
            return "must be odd"
        return None

    def coerce(self, value: Any) -> Any:
        """Check ``value`` against the declaration and return it in canonical form.

        Raises
        ------
        ValueError
            With a message that states what is allowed, e.g. ``must be > 0 (got -1)``.
        """
        if value is None and self.default is None:
            return None
        got = f"(got {value!r})"
        if self.type is bool:
            if self.words and value in self.words:
                return value
            if not isinstance(value, bool):
                words = "".join(f" or {w}" for w in self.words or ())
                raise ValueError(f"must be true or false{words} {got}")
            return value
        if self.type in (int, float):
            if self.words and value in self.words:
                return value
            number = _as_number(value, self.type)
            if number is None:
                kind = "an integer" if self.type is int else "a number"
                words = "".join(f" or {w}" for w in self.words or ())
                raise ValueError(f"must be {kind}{words} {got}")
            problem = self._check_number(number)
            if problem:
                raise ValueError(f"{problem} {got}")
            return number
        if self.type is str:
            if not isinstance(value, str):
                raise ValueError(f"must be a string {got}")
            if self.choices and value not in self.choices:
                hint = did_you_mean(value, self.choices)
                raise ValueError(f"must be one of: {', '.join(self.choices)} {got}{hint}")
            return value
        if self.type is list:
            if not isinstance(value, list):
                raise ValueError(f"must be a list {got}")
            if self.length and len(value) not in self.length:
                counts = " or ".join(str(n) for n in self.length)
                raise ValueError(f"must have {counts} items {got}")
            if self.item is float:
                items = [_as_number(v, float) for v in value]
                if any(v is None for v in items):
                    raise ValueError(f"must be a list of numbers {got}")
                for v in items:
                    problem = self._check_number(v)
                    if problem:
                        raise ValueError(f"every item {problem} {got}")
                return items
            if self.item is list:
                pairs = []
                for v in value:
                    pair = [_as_number(p, float) for p in v] if isinstance(v, list) else None
                    if pair is None or len(pair) != 2 or any(p is None for p in pair):
                        raise ValueError(f"must be a list of [x, y] pairs {got}")
                    pairs.append(pair)
                return pairs
            return list(value)
        raise TypeError(f"unsupported parameter type {self.type!r}")  # a declaration bug


def _as_number(value: Any, kind: type) -> float | int | None:
    if isinstance(value, str):
        # YAML 1.1 reads `1e-4` (no dot) as a string, and people quote numbers: accept what
        # is plainly a finite number.
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            return None
        return int(value)
    return float(value)


def _one_of(words: list[str]) -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def did_you_mean(name: str, candidates) -> str:
    """``; did you mean 'x'?`` for the nearest candidates (case-insensitive), or ``""``."""
    by_lower = {str(c).lower(): c for c in candidates}
    close = [
        by_lower[c] for c in difflib.get_close_matches(str(name).lower(), list(by_lower), n=3, cutoff=0.6)
    ]
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


@dataclass
class OpSpec:
    """Everything the registry knows about one operator."""

    name: str
    kind: str
    func: Callable
    params: dict[str, Param]
    summary: str
    formula: str = ""
    reference: str = ""
    example: dict[str, Any] = field(default_factory=dict)
    changes_shape: bool = False
    check: Callable[[dict], str | None] | None = None
    alpha: dict[str, Any] | None = None  # moves pixels: alpha goes through it too, with these params

    def resolve(self, given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Fill defaults and validate a step's parameters.

        Returns
        -------
        params : dict
            Every declared parameter with its value.
        errors : list of (parameter name or "", message)
        """
        errors: list[tuple[str, str]] = []
        values: dict[str, Any] = {}
        for key in given:
            if key not in self.params:
                hint = did_you_mean(key, self.params)
                allowed = ", ".join(self.params) or "none"
                errors.append((key, f"unknown parameter{hint} (parameters: {allowed})"))
        for name, param in self.params.items():
            if name in given:
                try:
                    values[name] = param.coerce(given[name])
                except ValueError as exc:
                    errors.append((name, f"{exc}"))
            elif param.required:
                errors.append((name, "is required"))
            else:
                values[name] = param.default
        errors += self._unused(given, values)
        if not errors and self.check:
            problem = self.check(values)
            if problem:
                errors.append(("", problem))
        return values, errors

    def _unused(self, given: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
        """Errors for given parameters that the other values make ineffective."""
        errors = []
        for name, param in self.params.items():
            unmet = param.unmet_conditions(values) if given.get(name) is not None and name in values else []
            if unmet:
                has = ", ".join(
                    f"no {other}"
                    if param.only_with[other] is GIVEN
                    else f"{other}: {yaml_text(values[other])}" + ("" if other in given else ", the default")
                    for other in unmet
                )
                errors.append((name, f"used only with {param.condition_text()} (this step has {has})"))
        return errors

    def example_step(self) -> dict[str, Any]:
        """An example YAML step for ``imgenh ops NAME``."""
        if self.example:
            return {"op": self.name, **self.example}
        step = {"op": self.name}
        for name, param in self.params.items():
            if not param.required and param.default is not None:
                step[name] = param.default
        return step


REGISTRY: dict[str, OpSpec] = {}


def operator(
    name: str,
    *,
    kind: str,
    summary: str,
    formula: str = "",
    reference: str = "",
    example: dict[str, Any] | None = None,
    changes_shape: bool = False,
    check: Callable[[dict], str | None] | None = None,
    alpha: dict[str, Any] | None = None,
):
    """Register an operator; its keyword-only ``Param`` annotations declare the parameters.

    Parameters
    ----------
    name : str
        The name used in pipeline files (``op: NAME``).
    kind : {"pointwise", "native", "float"}
        How the pipeline calls it (see the module docstring).
    summary : str
        One line for ``imgenh ops``.
    formula : str
        The definition in one line.
    reference : str
        The public implementation it is held to in tests.
    example : dict, optional
        Parameters of an example step.
    changes_shape : bool
        True for operators whose output size or channel count differs from the input.
    check : callable, optional
        ``check(params) -> message or None`` for rules that span parameters; the message
        does not name the operator (the caller prefixes ``steps[i] name:``).
    alpha : dict, optional
        For operators that move pixels (flip, rotate, crop...): the alpha plane goes through
        the operator too, as a grey image of its own depth, with these parameters replaced
        (e.g. ``{"fill": 0.0}``: what a warp brings in is transparent). None: alpha is only
        resized when the size changes (see :meth:`imgenh.pipeline.Pipeline.apply_image`).
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")

    def register(func: Callable) -> Callable:
        if name in REGISTRY:
            raise ValueError(f"operator {name!r} registered twice")
        params = {}
        for pname, p in inspect.signature(func, eval_str=True).parameters.items():
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                if not isinstance(p.annotation, Param):
                    raise TypeError(f"{name}.{pname}: annotate with Param(...)")
                params[pname] = p.annotation
        for pname, param in params.items():
            unknown = [other for other in param.only_with if other not in params or other == pname]
            if unknown:
                raise TypeError(f"{name}.{pname}: only_with names no other parameter: {unknown}")
            if not all(isinstance(a, tuple) or a is GIVEN for a in param.only_with.values()):
                raise TypeError(f"{name}.{pname}: only_with values are tuples of values, or GIVEN")
        REGISTRY[name] = OpSpec(
            name=name,
            kind=kind,
            func=func,
            params=params,
            summary=summary,
            formula=formula,
            reference=reference,
            example=example or {},
            changes_shape=changes_shape,
            check=check,
            alpha=alpha,
        )
        return func

    return register


def get_op(name: str) -> OpSpec:
    """Return the operator called ``name``.

    Raises
    ------
    KeyError
        With the nearest names, e.g. ``unknown operator 'gama'; did you mean 'gamma'?``.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        hint = did_you_mean(name, REGISTRY)
        raise KeyError(f"unknown operator {name!r}{hint} (see `imgenh ops`)") from None
