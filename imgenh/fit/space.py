"""The parameters to fit in a user's pipeline: ``{fit: [lo, hi]}`` ranges and ``{fit: [a, b, ...]}`` choices.

In a pipeline file given to ``imgenh fit``, a parameter may be written as a marker instead of
a value::

    steps:
      - op: white_balance
        method: {fit: [gray_world, shades_of_gray]}    # choices (any type the parameter takes)
      - op: gamma
        value: {fit: [0.5, 3.0]}                       # a range of numbers: two numbers, lo < hi
      - op: white_balance
        method: manual
        gains: [{fit: [0.7, 1.4]}, 1, {fit: [0.7, 1.4]}]   # items of a list of numbers

Two numbers for a number parameter are a range (an ``int`` parameter stays a whole number);
anything else (names, true/false, three or more numbers, an odd-only kernel size) is a list
of choices. Each end and each choice is checked against the operator's declaration, and each
choice is checked in the step (a choice that leaves another parameter of the step unused is an
error). The rest of the file is validated as any pipeline, and every problem is reported
together, with the file's line: ``my.yaml:5: steps[1] gamma.value: fit: must be > 0 (got -1)``.

Interface (small and stable: the adaptive fit uses it for per-image parameters)::

    space = load_space("my.yaml")          # or parse_space(text, source, base_dir)
    space.params                           # [FitParam], in file order: step, op, name, item,
                                           #   low/high (a range) or choices, integer
    steps = space.steps_for(values)        # values: one per param, in that order -> list of step dicts
    space.document(values)                 # the whole pipeline as plain data (name, description, output kept)
    p.from_unit(u), p.to_unit(v)           # a range's value <-> [0, 1]

``steps_for`` returns steps that :func:`imgenh.pipeline_file.pipeline_from_steps` builds from any
folder: file parameters are already made absolute (relative to the pipeline file's folder).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from imgenh.errors import ConfigError
from imgenh.ops import get_op
from imgenh.ops.registry import Param, yaml_text
from imgenh.pipeline import Pipeline, Step

# The pipeline file's own reader and validator (YAML with lines, problems as ``file:line: where:
# message``), reused so a file with markers is read and reported exactly as any pipeline file.
from imgenh.pipeline_file import _build, _parse_yaml, _Problems, is_fit_marker
from imgenh.pipeline_ref import missing_file_hint, resolve

MARKER_FORMS = "{fit: [lo, hi]} (a range of numbers) or {fit: [a, b, ...]} (choices)"


@dataclass(frozen=True)
class FitParam:
    """One parameter to fit.

    Attributes
    ----------
    step : int
        Index of its step in ``steps``.
    op, name : str
        Operator and parameter name.
    item : int or None
        Index in a list of numbers (``gains: [{fit: ...}, 1, 1]``), None for the whole value.
    low, high : float or None
        A range's ends (both None for choices).
    choices : tuple or None
        The values to choose from (None for a range).
    integer : bool
        A range of whole numbers (an ``int`` parameter).
    """

    step: int
    op: str
    name: str
    item: int | None = None
    low: float | None = None
    high: float | None = None
    choices: tuple | None = None
    integer: bool = False

    @property
    def is_range(self) -> bool:
        """True for ``{fit: [lo, hi]}``, False for choices."""
        return self.choices is None

    @property
    def label(self) -> str:
        """How messages name it: ``steps[1] gamma.value``, ``steps[0] white_balance.gains[2]``."""
        item = "" if self.item is None else f"[{self.item}]"
        return f"steps[{self.step}] {self.op}.{self.name}{item}"

    def marker(self) -> str:
        """The marker as the file wrote it, e.g. ``{fit: [0.5, 3]}``."""
        values = (self.low, self.high) if self.is_range else self.choices
        return "{fit: [" + ", ".join(yaml_text(v) for v in values) + "]}"

    def from_unit(self, u: float) -> float | int:
        """The range's value at ``u`` in [0, 1] (clipped); whole numbers for an int parameter."""
        value = self.low + min(max(float(u), 0.0), 1.0) * (self.high - self.low)
        return int(round(value)) if self.integer else value

    def to_unit(self, value: float) -> float:
        """Where ``value`` lies in the range, 0 at ``low`` and 1 at ``high`` (clipped)."""
        return min(max((float(value) - self.low) / (self.high - self.low), 0.0), 1.0)

    def value(self, value: Any) -> Any:
        """``value`` checked and made canonical: clipped into a range (int rounded), or one of the choices.

        Raises
        ------
        ValueError
            A choice that is not one of :attr:`choices`.
        """
        if self.is_range:
            if self.integer:
                return self.from_unit(self.to_unit(value))
            # Clipped directly: going through [0, 1] and back would add float noise (0.55562 -> 0.5556200000000001).
            return min(max(float(value), float(self.low)), float(self.high))
        if value not in self.choices:
            raise ValueError(f"{self.label}: {value!r} is not one of the choices {list(self.choices)}")
        return value


@dataclass
class FitSpace:
    """A pipeline with parameters to fit.

    Attributes
    ----------
    steps : list of dict
        The steps as written, markers in place (file parameters made absolute).
    params : list of FitParam
        The parameters to fit, in file order.
    source : str
        The file name, for messages.
    header : dict
        The file's other top-level entries (``version``, ``name``, ``description``, ``output``).
    """

    steps: list[dict]
    params: list[FitParam]
    source: str = "<string>"
    header: dict = field(default_factory=dict)

    def steps_for(self, values) -> list[dict]:
        """Concrete steps: each parameter to fit set to its value in ``values`` (same order as ``params``).

        Raises
        ------
        ValueError
            Wrong number of values, or a value that is not one of a parameter's choices.
        """
        if len(values) != len(self.params):
            raise ValueError(f"{len(values)} values for {len(self.params)} parameters to fit")
        steps = copy.deepcopy(self.steps)
        for param, value in zip(self.params, values, strict=True):
            if param.item is None:
                steps[param.step][param.name] = param.value(value)
            else:
                steps[param.step][param.name][param.item] = param.value(value)
        return steps

    def document(self, values) -> dict:
        """The whole pipeline as plain data with ``values`` in place: a file ``imgenh run`` reads."""
        doc = {key: value for key, value in self.header.items() if key != "steps"}
        doc["steps"] = self.steps_for(values)
        if "output" in self.header:  # keep the file's order: output after steps
            doc["output"] = doc.pop("output")
        return doc

    def describe(self, values) -> list[str]:
        """One line per parameter: ``steps[1] gamma.value: {fit: [0.5, 3]} -> 1.84``."""
        return [
            f"{p.label}: {p.marker()} -> {yaml_text(p.value(v))}"
            for p, v in zip(self.params, values, strict=True)
        ]


def load_space(path: str | Path) -> FitSpace:
    """Read a pipeline file with ``{fit: ...}`` markers.

    Raises
    ------
    ConfigError
        The file cannot be read, a marker or anything else is invalid (``file:line: where: why``
        for every problem), or the file has no marker.
    """
    path = resolve(path)  # a file, or a built-in's name (as `imgenh run` takes it)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read pipeline file: {reason}{missing_file_hint(path)}"]) from None
    return parse_space(text, str(path), path.parent)


def parse_space(text: str, source: str = "<string>", base_dir: str | Path | None = None) -> FitSpace:
    """Parse pipeline YAML with ``{fit: ...}`` markers (see the module docstring).

    Examples
    --------
    >>> space = parse_space("version: 1\\nsteps:\\n  - op: gamma\\n    value: {fit: [0.5, 3]}\\n")
    >>> [p.label for p in space.params], space.steps_for([2.0])
    (['steps[0] gamma.value'], [{'op': 'gamma', 'value': 2.0}])
    """
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    data, lines = _parse_yaml(text, source)
    problems = _Problems(source, lines)
    steps = data.get("steps") if isinstance(data, dict) else None
    template = copy.deepcopy(steps) if isinstance(steps, list) else []
    params: list[FitParam] = []
    refused: set[int] = set()  # steps with a refused marker: what else their stand-in breaks is not news
    for index, step in enumerate(template):
        before = len(problems.errors)
        params += _step_markers(step, index, problems)
        if len(problems.errors) > before:
            refused.add(index)
    if isinstance(data, dict) and "adaptive" in data:  # a tuned file: its model was fitted to other values
        problems.add(
            ("adaptive",),
            "adaptive",
            "this file holds a fitted model; fit the pipeline it came from, or remove the block",
        )
        data = {k: v for k, v in data.items() if k != "adaptive"}
    placeholders = _with_values(template, params, [_first(p) for p in params])
    # Raises with every problem so far (the markers' too) when anything is wrong.
    reported = len(problems.errors)
    try:
        pipeline = _build(
            {**data, "steps": placeholders} if isinstance(data, dict) else data, problems, base_dir
        )
    except ConfigError:
        # A refused file marker leaves the step without its file: one clear error, not a second about that.
        follow_on = tuple(f"steps[{i}] " for i in refused)
        kept = [e for e in problems.errors[reported:] if not any(f in e for f in follow_on)]
        raise ConfigError(problems.errors[:reported] + kept) from None
    _check_choices(data, template, params, lines, base_dir, problems)
    for step in pipeline.steps:
        if step.random is not None:  # each evaluation would draw other values
            problems.add(
                ("steps", step.index), step.label, "random values ({random}, {choice}, p) cannot be fitted"
            )
    resizing = _resizing_step(pipeline)
    if resizing is not None:
        problems.add(
            ("steps", resizing.index),
            resizing.label,
            f"{resizing.op.name} changes the image size, and fit compares each output with its after pixel by "
            "pixel: fit the pipeline without it, then add it to the tuned file",
        )
    if not params:
        example = "e.g. `value: {fit: [0.5, 3]}`"
        problems.add(("steps",), "", f"no parameter to fit: write one as {MARKER_FORMS}, {example}")
    if problems.errors:
        raise ConfigError(problems.errors)
    for step, built in zip(template, pipeline.steps, strict=True):
        for name, param in built.op.params.items():
            if param.path and isinstance(step.get(name), str):
                step[name] = built.params[name]  # absolute, relative to the pipeline file's folder
    return FitSpace(template, params, source, dict(data))


def _resizing_step(pipeline: Pipeline) -> Step | None:
    """The first step that changes the size of a small test image, or None."""
    img = np.zeros((24, 32, 3), np.uint8)
    for step in pipeline.steps:
        if step.random is not None:
            continue
        try:
            out, _ = Pipeline(steps=[step]).apply(img)
        except Exception:  # a step that needs more than a blank image is checked by the search itself
            continue
        if out.shape[:2] != img.shape[:2]:
            return step
    return None


def _first(param: FitParam) -> Any:
    """A value standing in for the marker while the rest of the step is validated.

    A range stands in by its middle: a rule across parameters (stretch low < high) is then
    judged where most of the range lies, not at one end (the search scores the values a rule
    refuses as bad points).
    """
    return param.from_unit(0.5) if param.is_range else param.choices[0]


def _with_values(template: list, params: list[FitParam], values: list) -> list:
    steps = copy.deepcopy(template)
    for param, value in zip(params, values, strict=True):
        if param.item is None:
            steps[param.step][param.name] = value
        else:
            steps[param.step][param.name][param.item] = value
    return steps


def _step_markers(step: Any, index: int, problems: _Problems) -> list[FitParam]:
    """The markers of one step, parsed; a bad marker is reported and replaced by the parameter's default."""
    if not isinstance(step, dict) or not isinstance(step.get("op"), str):
        return []
    try:
        spec = get_op(step["op"])
    except KeyError:
        return []  # the pipeline's validation names the unknown operator
    found = []
    for name, value in list(step.items()):
        param = spec.params.get(name)
        where, path = f"steps[{index}] {spec.name}.{name}", ("steps", index, name)
        if param is None:
            if is_fit_marker(value):
                step[name] = None  # validation reports the unknown parameter, with a hint
            continue
        if is_fit_marker(value):
            fitted, problem = _marker(param, value, index, spec.name, name, None)
        elif param.type is list and param.item is float and isinstance(value, list):
            found += _item_markers(param, value, (index, spec.name, name), problems)
            continue
        else:
            continue
        if problem:
            problems.add(path, where, problem)
            step[name] = None if param.required else param.default
        else:
            found.append(fitted)
    return found


def _item_markers(param: Param, value: list, at: tuple, problems: _Problems) -> list[FitParam]:
    """Markers among the items of a list of numbers, each checked against the item bounds."""
    index, op, name = at
    item_param = Param(float, 0.0, gt=param.gt, ge=param.ge, lt=param.lt, le=param.le)
    found = []
    for i, v in enumerate(value):
        if not is_fit_marker(v):
            continue
        fitted, problem = _marker(item_param, v, index, op, name, i)
        if problem:
            problems.add(("steps", index, name, i), f"steps[{index}] {op}.{name}[{i}]", problem)
            value[i] = 1.0  # a stand-in, so the rest of the step is still checked
        else:
            found.append(fitted)
    return found


def _marker(param: Param, value: dict, step: int, op: str, name: str, item: int | None):
    """A :class:`FitParam` from a marker, or None and the reason it is not one."""
    if set(value) != {"fit"}:
        return None, f"a parameter to fit is {MARKER_FORMS} (got {value!r})"
    options = value["fit"]
    if not isinstance(options, list) or len(options) < 2:
        return None, f"fit: give a range [lo, hi] or at least two choices (got {options!r})"
    if param.path:
        return None, "fit: a file parameter cannot be fitted"
    if param.pixels:
        # The search runs on copies shrunk to SEARCH_SIDE: a length in pixels found there is wrong at full size.
        return None, "fit: a length in pixels cannot be fitted (fit works on shrunk copies); give it a value"
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in options)
    try:
        coerced = [param.coerce(v) for v in options]
    except ValueError as exc:
        return None, f"fit: {exc}"
    if param.type in (int, float) and not param.odd and len(options) == 2 and numbers:
        low, high = coerced
        if not low < high:
            return None, f"fit: a range needs lo < hi (got [{yaml_text(low)}, {yaml_text(high)}])"
        return FitParam(step, op, name, item, low, high, integer=param.type is int), None
    if len({repr(v) for v in coerced}) < len(coerced):
        return None, f"fit: the same choice is given twice (got {options!r})"
    return FitParam(step, op, name, item, choices=tuple(coerced)), None


def _check_choices(data, template, params, lines, base_dir, problems: _Problems) -> None:
    """Each choice must make a valid step with the rest of it (e.g. ``method`` vs ``gains``)."""
    if problems.errors:
        return  # the placeholders already fail: those errors say more
    base = [_first(p) for p in params]
    for k, param in enumerate(params):
        for choice in (param.choices or ())[1:]:
            values = [*base[:k], choice, *base[k + 1 :]]
            trial = _Problems(problems.source, lines)
            try:
                _build({**data, "steps": _with_values(template, params, values)}, trial, base_dir)
            except ConfigError:
                when = f" (when {param.label} is {yaml_text(choice)}, one of its {{fit:}} choices)"
                problems.errors += [e + when for e in trial.errors if e not in problems.errors]
