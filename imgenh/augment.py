"""Augmentation: random parameters in a pipeline, and the reproducible draws of each variant.

In a pipeline a parameter may be a range or a choice instead of a value, and a step may carry
a probability:

``{random: [lo, hi]}``
    uniform between ``lo`` and ``hi`` (integers: each whole number equally likely);
``{random: [lo, hi], log: true}``
    log-uniform (for factors such as gamma or scale: 0.5 as likely as 2 around 1);
``{choice: [a, b, c]}``
    one of the values, each equally likely (any type: numbers, names, true/false);
``p: 0.5`` (or ``probability: 0.5``)
    the step is applied with that probability. ``white_balance`` has a parameter of its own
    named ``p``; there, write ``probability:``.

Items of a list of numbers may be random each (``gains: [{random: [0.9, 1.1]}, 1, ...]``).
Ranges are checked against the parameter's declaration (both ends through ``Param.coerce``).

Each variant's draws depend only on (seed, the input's relative path, variant index, step
position, parameter name): every value comes from its own numpy Generator seeded by a
SHA-256 of those, so a re-run, another worker count, another order or a shard draws the same
values, and variant 7 is the same whether 8 or 80 variants are made.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from imgenh.errors import UsageError
from imgenh.ops.registry import Param

if TYPE_CHECKING:
    from imgenh.ops.registry import OpSpec
    from imgenh.pipeline import Pipeline, Step

DEFAULT_VARIANT_NAME = "{stem}_v{i}{ext}"
PROBABILITY_KEYS = ("p", "probability")
SPEC_FORMS = "{random: [lo, hi]}, {random: [lo, hi], log: true} or {choice: [a, b, ...]}"
_P_DRAW = "@p"  # the name the step's probability draw is seeded with (no parameter has it)


@dataclass(frozen=True)
class RandomValue:
    """One random parameter value: a uniform or log-uniform range, or a choice.

    Attributes
    ----------
    kind : {"uniform", "log", "choice"}
    values : tuple
        ``(lo, hi)`` for ranges (already coerced to the parameter's type), the items for choices.
    integer : bool
        Draw whole numbers (an ``int`` parameter's range).
    """

    kind: str
    values: tuple
    integer: bool = False

    def plain(self) -> dict[str, Any]:
        """The spec as a pipeline file writes it."""
        if self.kind == "choice":
            return {"choice": list(self.values)}
        return {"random": list(self.values), **({"log": True} if self.kind == "log" else {})}

    def draw(self, rng: np.random.Generator) -> Any:
        """One value; floats are rounded to 6 significant digits, so the report reproduces them exactly."""
        if self.kind == "choice":
            return self.values[int(rng.integers(len(self.values)))]
        lo, hi = self.values
        if self.integer:
            return int(rng.integers(lo, hi, endpoint=True))
        x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if self.kind == "log" else rng.uniform(lo, hi)
        return min(max(float(f"{x:.6g}"), lo), hi)


@dataclass(frozen=True)
class StepRandom:
    """The random part of one step.

    Attributes
    ----------
    params : dict
        Parameter name -> :class:`RandomValue`.
    items : dict
        Parameter name -> {item index -> :class:`RandomValue`} for lists of numbers.
    p : float
        Probability that the step is applied.
    """

    params: dict[str, RandomValue] = field(default_factory=dict)
    items: dict[str, dict[int, RandomValue]] = field(default_factory=dict)
    p: float = 1.0

    def plain(self, params: dict[str, Any]) -> dict[str, Any]:
        """The random parameters as plain data, given the step's ``params`` (for the pipeline's hash)."""
        out: dict[str, Any] = {name: spec.plain() for name, spec in self.params.items()}
        for name, specs in self.items.items():
            out[name] = [specs[i].plain() if i in specs else v for i, v in enumerate(params[name])]
        if self.p != 1.0:
            out["probability"] = self.p
        return out


def is_spec(value: Any) -> bool:
    """True for a value written as a random spec (a mapping with ``random`` or ``choice``)."""
    return isinstance(value, dict) and ("random" in value or "choice" in value)


# --- parsing and validation (pipeline_file calls split_random) ------------------------------


def _spec(param: Param, value: Any) -> tuple[RandomValue | None, str | None]:
    """A :class:`RandomValue` for ``param`` from ``value``, or the reason it is not one."""
    keys = set(value)
    if keys not in ({"random"}, {"random", "log"}, {"choice"}):
        return None, f"a random value is {SPEC_FORMS} (got {value!r})"
    if "choice" in value:
        items = value["choice"]
        if not isinstance(items, list) or not items:
            return None, f"choice: must be a non-empty list of values (got {items!r})"
        if param.path:
            return None, "a file parameter cannot be random"
        try:
            return RandomValue("choice", tuple(param.coerce(v) for v in items)), None
        except ValueError as exc:
            return None, f"choice: {exc}"
    ends, log = value["random"], value.get("log", False)
    if param.type not in (int, float):
        return (
            None,
            f"random: ranges are for numbers; use {{choice: [...]}} for a {param.type.__name__} parameter",
        )
    if param.odd:
        return None, "random: an odd-only parameter needs {choice: [3, 5, ...]}"
    if not isinstance(log, bool):
        return None, f"log: must be true or false (got {log!r})"
    if not isinstance(ends, list) or len(ends) != 2:
        return None, f"random: must be [lo, hi] (got {ends!r})"
    try:
        lo, hi = (param.coerce(v) for v in ends)
    except ValueError as exc:
        return None, f"random: {exc}"
    if lo > hi:
        return None, f"random: lo must be <= hi (got [{lo:g}, {hi:g}])"
    if log and (param.type is int or lo <= 0):
        return None, f"random: log: true needs a range of numbers above 0 (got [{lo:g}, {hi:g}])"
    return RandomValue("log" if log else "uniform", (lo, hi), param.type is int), None


def _probability(given: dict[str, Any], spec: OpSpec) -> tuple[float, list[tuple[str, str]]]:
    """The step's probability and the keys it was given under (removed from ``given``)."""
    keys = [k for k in PROBABILITY_KEYS if k in given and k not in spec.params]
    if not keys:
        return 1.0, []
    if len(keys) > 1:
        return 1.0, [(keys[1], "give the probability once (p or probability)")]
    value = given.pop(keys[0])
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    return (float(value) if ok else 1.0), (
        [] if ok else [(keys[0], f"must be between 0 and 1 (got {value!r})")]
    )


def split_random(
    spec: OpSpec, given: dict[str, Any]
) -> tuple[dict, StepRandom | None, list[tuple[str, str]]]:
    """Separate a step's random specs from its fixed values (the hook in ``pipeline_file``).

    Parameters
    ----------
    spec : OpSpec
        The step's operator.
    given : dict
        The step's parameters as written (without ``op``).

    Returns
    -------
    given : dict
        The parameters with each random spec replaced by a placeholder (the lower end, the
        first choice), so the usual validation checks everything else.
    random : StepRandom or None
        None when the step has nothing random.
    errors : list of (parameter name, message)
        E.g. ``("value", "random: must be > 0 (got -1)")``.
    """
    given = dict(given)
    p, errors = _probability(given, spec)
    params: dict[str, RandomValue] = {}
    items: dict[str, dict[int, RandomValue]] = {}
    for name, value in list(given.items()):
        param = spec.params.get(name)
        if param is None:
            continue  # the usual validation names the unknown parameter
        if is_spec(value) or isinstance(value, dict):
            parsed, problem = _spec(param, value)
            if problem:
                errors.append((name, problem))
                given.pop(name)
                continue
            params[name] = parsed
            given[name] = parsed.values[0]
        elif param.type is list and param.item is float and isinstance(value, list):
            found = _item_specs(param, name, value, errors)
            if found:
                items[name] = found
                given[name] = [found[i].values[0] if i in found else v for i, v in enumerate(value)]
    if not (params or items or p != 1.0):
        return given, None, errors
    return given, StepRandom(params, items, p), errors


def _item_specs(param: Param, name: str, value: list, errors: list) -> dict[int, RandomValue]:
    """Random items of a list of numbers, each checked against the item bounds."""
    found: dict[int, RandomValue] = {}
    # One item: the list's bounds on a single number.
    item = Param(float, 0.0, param.help, gt=param.gt, ge=param.ge, lt=param.lt, le=param.le)
    for i, v in enumerate(value):
        if isinstance(v, dict):
            parsed, problem = _spec(item, v)
            if problem:
                errors.append((name, f"item {i}: {problem}"))
            else:
                found[i] = parsed
    return found


def step_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A step's JSON Schema (from :func:`imgenh.ops.describe.step_schema`) that also takes random specs.

    Each parameter may be a random spec as well; ``p`` / ``probability`` give the step's
    probability (where the operator has no parameter of that name).
    """
    number = {"type": "number"}
    spec = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"random": {"type": "array", "items": number, "minItems": 2, "maxItems": 2},
                               "log": {"type": "boolean"}},
                "required": ["random"],
                "additionalProperties": False,
            },
            {
                "type": "object",
                "properties": {"choice": {"type": "array", "minItems": 1}},
                "required": ["choice"],
                "additionalProperties": False,
            },
        ]
    }  # fmt: skip
    props = {
        name: value if name == "op" else {"anyOf": [value, spec], "description": value.get("description", "")}
        for name, value in schema["properties"].items()
    }
    for key in PROBABILITY_KEYS:
        props.setdefault(
            key, {**number, "minimum": 0, "maximum": 1, "description": "probability of the step"}
        )
    return {**schema, "properties": props}


# --- drawing one variant (the worker calls draw) --------------------------------------------


def _rng(seed: int, key: str, variant: int, step: int, name: str) -> np.random.Generator:
    """A Generator that depends on these values only (SHA-256 of their JSON)."""
    text = json.dumps([seed, key, variant, step, name])
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "little"))


def draw_step(step: Step, seed: int, key: str, variant: int) -> tuple[dict[str, Any], bool]:
    """The concrete parameters of one random step for one variant, and whether it is applied."""
    rand: StepRandom = step.random
    values = dict(step.params)
    for name, spec in rand.params.items():
        values[name] = spec.draw(_rng(seed, key, variant, step.index, name))
    for name, specs in rand.items.items():
        values[name] = [
            specs[i].draw(_rng(seed, key, variant, step.index, f"{name}[{i}]")) if i in specs else v
            for i, v in enumerate(values[name])
        ]
    applied = rand.p >= 1.0 or _rng(seed, key, variant, step.index, _P_DRAW).random() < rand.p
    return values, applied


def draw(pipeline: Pipeline, key: str, variant: int) -> tuple[Pipeline, list[dict[str, Any]]]:
    """The pipeline of one variant: random values drawn, steps that lost their draw left out.

    Parameters
    ----------
    pipeline : Pipeline
        With random steps and a seed (:func:`for_run`).
    key : str
        The input's path relative to where it was found (POSIX), e.g. ``cats/a.jpg``.
    variant : int
        The variant index (0 for ``--seed`` without ``--variants``).

    Returns
    -------
    pipeline : Pipeline
        Concrete steps only.
    drawn : list of dict
        For the report, one per random step: ``{"step", "op", "variant", "seed", "applied",
        "drawn": {param: value}}``.

    Raises
    ------
    imgenh.pipeline.StepError
        When drawn values break a rule across parameters (e.g. levels black >= white).
    """
    from imgenh.pipeline import StepError

    seed = pipeline.seed or 0
    steps, drawn = [], []
    for step in pipeline.steps:
        if step.random is None:
            steps.append(step)
            continue
        values, applied = draw_step(step, seed, key, variant)
        chosen = {name: values[name] for name in (*step.random.params, *step.random.items)}
        drawn.append({"step": step.index, "op": step.op.name, "variant": variant, "seed": seed,
                      "applied": applied, "drawn": chosen})  # fmt: skip
        if not applied:
            continue
        # Each drawn value is inside its checked range; only a rule across parameters can break.
        problem = step.op.check(values) if step.op.check else None
        if problem:
            shown = ", ".join(f"{k}={v}" for k, v in chosen.items())
            raise StepError(f"{step.label}: drawn values ({shown}) are invalid: {problem}")
        steps.append(replace(step, params=values, random=None))
    return replace(pipeline, steps=steps), drawn


# --- a run: variants, seed, names -----------------------------------------------------------


def for_run(
    pipeline: Pipeline,
    variants: int | None,
    seed: int | None,
    *,
    in_place: bool = False,
    variant_name: str = DEFAULT_VARIANT_NAME,
) -> tuple[Pipeline, list[str]]:
    """The pipeline of a run with its seed set, and warnings; refuses what cannot be meant.

    Raises
    ------
    UsageError
        A pipeline with random parameters and neither ``--variants`` nor ``--seed`` (so a
        cleaning run is never randomised by accident) or with ``--in-place``; ``--variants`` on
        a pipeline with nothing random (every variant would be the same image); a bad
        ``--variant-name``.
    """
    if not pipeline.is_random:
        if variants is not None:
            raise UsageError(
                [f"--variants {variants}: {pipeline.source} has no random parameters, so every variant would "
                 "be the same image; give a parameter as {random: [lo, hi]} or a step p: 0.5"]
            )  # fmt: skip
        warnings = [f"--seed {seed}: {pipeline.source} has no random parameters"] if seed is not None else []
        return pipeline, warnings
    labels = ", ".join(s.label for s in pipeline.steps if s.random is not None)
    if variants is None and seed is None and pipeline.seed is None:
        raise UsageError(
            [f"{pipeline.source} has random parameters ({labels}): pass --variants N for N variants of "
             "each image (e.g. --variants 5 --seed 7), or --seed S for one variant"]
        )  # fmt: skip
    if in_place:
        raise UsageError([f"{pipeline.source} has random parameters ({labels}): give -o OUT, not --in-place"])
    problem = check_name_pattern(variant_name) if variants is not None else None
    if problem:
        raise UsageError([problem])
    chosen = seed if seed is not None else pipeline.seed if pipeline.seed is not None else 0
    return replace(pipeline, seed=chosen), []


def check_name_pattern(pattern: str) -> str | None:
    """Why ``--variant-name`` cannot name variants, or None. Placeholders: {stem}, {i}, {ext}."""
    try:
        sample = pattern.format(stem="a", i=1, ext=".jpg")
        other = pattern.format(stem="a", i=2, ext=".jpg")
    except (KeyError, IndexError, ValueError) as exc:
        return f"--variant-name {pattern!r}: use the placeholders {{stem}}, {{i}} and {{ext}} ({exc})"
    if sample == other:
        return f"--variant-name {pattern!r} must contain {{i}}, or every variant gets the same name"
    parts = PurePosixPath(sample).parts
    if not sample or sample.startswith("/") or ".." in parts or "\\" in sample:
        return (
            f"--variant-name {pattern!r}: must name a file beside the plain output (or in a folder below it)"
        )
    return None


def variant_names(name: PurePosixPath, variants: int | None, pattern: str = DEFAULT_VARIANT_NAME):
    """Output names and variant indexes for one output name (the hook in ``plan``).

    ``[(name, None)]`` without variants (``variants=None``), else ``pattern`` filled in for each
    ``i`` in ``range(variants)``: ``a.jpg`` -> ``a_v0.jpg``, ``a_v1.jpg``, ...

    Examples
    --------
    >>> [str(n) for n, _ in variant_names(PurePosixPath("x/a.jpg"), 2)]
    ['x/a_v0.jpg', 'x/a_v1.jpg']
    """
    if variants is None:
        return [(name, None)]
    return [(name.parent / pattern.format(stem=name.stem, i=i, ext=name.suffix), i) for i in range(variants)]
