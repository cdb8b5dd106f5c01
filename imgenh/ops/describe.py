"""Render operator declarations: text for ``imgenh ops``, Markdown for README, JSON Schema.

Everything here is derived from the registry's :class:`~imgenh.ops.registry.Param`
declarations through one table, :data:`TYPES`, that names each parameter type in text and
in JSON Schema.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from imgenh.ops import REGISTRY
from imgenh.ops.registry import OpSpec, Param

if TYPE_CHECKING:
    from imgenh.pipeline import Pipeline

# Param type -> (name shown by `imgenh ops`, JSON Schema type)
TYPES: dict[type, tuple[str, str]] = {
    bool: ("bool", "boolean"),
    int: ("int", "integer"),
    float: ("float", "number"),
    str: ("str", "string"),
    list: ("list", "array"),
}
PAIR = "[x, y]"  # how an item of a list of pairs is shown


def type_text(param: Param) -> str:
    """Human-readable type, e.g. ``float``, ``path``, ``list[float] (3 items)``."""
    text, _ = TYPES[param.type]
    if param.path:
        return "path"
    if param.type is list:
        inner = PAIR if param.item is list else TYPES[param.item][0] if param.item else "any"
        text = f"list[{inner}]"
        if param.length:
            text += " (" + " or ".join(str(n) for n in param.length) + " items)"
    return text


def range_text(param: Param) -> str:
    """The allowed values as text, e.g. ``> 0 and <= 10`` or ``one of: a, b``."""
    if param.choices:
        return "one of: " + ", ".join(param.choices)
    parts = []
    for sym, bound in ((">", param.gt), (">=", param.ge), ("<", param.lt), ("<=", param.le)):
        if bound is not None:
            parts.append(f"{sym} {bound:g}")
    if param.odd:
        parts.append("odd")
    return " and ".join(parts)


def param_line(name: str, param: Param) -> str:
    """Two lines for ``imgenh ops NAME``: name, type, default and range; then the help."""
    default = "required" if param.required else f"default {param.default!r}"
    allowed = range_text(param)
    allowed = f"; {allowed}" if allowed else ""
    return f"  {name:<14} {type_text(param):<18} {default}{allowed}\n      {help_text(param)}"


def help_text(param: Param) -> str:
    """The parameter's help, with when it has an effect: ``Minkowski norm (only with method: gray_edge)``."""
    condition = param.condition_text()
    return f"{param.help} (only with {condition})" if condition else param.help


def operator_list() -> str:
    """Every operator, one line each: name, kind and summary (``imgenh ops``)."""
    width = max(len(n) for n in REGISTRY)
    return "\n".join(
        f"{name:<{width}}  {spec.kind:<9}  {spec.summary}" for name, spec in sorted(REGISTRY.items())
    )


def operator_text(spec: OpSpec) -> str:
    """One operator in full: summary, formula, reference, parameters, example step (``imgenh ops NAME``)."""
    lines = [f"{spec.name} ({spec.kind}): {spec.summary}"]
    if spec.formula:
        lines.append(f"formula:   {spec.formula}")
    if spec.reference:
        lines.append(f"reference: {spec.reference}")
    lines.append("parameters:" if spec.params else "parameters: none")
    lines += [param_line(name, param) for name, param in spec.params.items()]
    lines.append("example step:")
    step = spec.example_step()
    lines.append(f"  - op: {step.pop('op')}")
    # JSON is valid YAML and keeps lists on one line
    lines += [f"    {key}: {json.dumps(value)}" for key, value in step.items()]
    return "\n".join(lines)


def operator_table() -> str:
    """The Markdown operator table for README.md (``imgenh ops --markdown``)."""
    rows = ["| operator | kind | what it does | reference |", "|---|---|---|---|"]
    for name, spec in sorted(REGISTRY.items()):
        rows.append(f"| `{name}` | {spec.kind} | {spec.summary} | {spec.reference or '-'} |")
    return "\n".join(rows)


def steps_text(pipeline: Pipeline) -> str:
    """``2 steps: gamma, stretch`` (or ``0 steps: no steps``), as ``imgenh validate`` prints it."""
    names = ", ".join(s.op.name for s in pipeline.steps) or "no steps"
    count = len(pipeline.steps)
    return f"{count} step{'s' * (count != 1)}: {names}"


def pipelines_table(pipelines: dict[str, Pipeline], markdown: bool = False) -> str:
    """Named pipelines, one line each: name, what for (the description up to its first colon), steps.

    Markdown gives README's table (``imgenh configs --markdown``); text is ``imgenh configs``.
    """
    rows = []
    for name, pipeline in sorted(pipelines.items()):
        purpose = " ".join(pipeline.description.split(":", 1)[0].split())
        rows.append((name, purpose, ", ".join(s.op.name for s in pipeline.steps)))
    if markdown:
        lines = ["| name | for | steps |", "|---|---|---|"]
        return "\n".join(lines + [f"| `{n}` | {purpose} | {steps} |" for n, purpose, steps in rows])
    width = max((len(n) for n, _, _ in rows), default=0)
    return "\n".join(f"{n:<{width}}  {purpose} ({steps})" for n, purpose, steps in rows)


# --- JSON Schema -------------------------------------------------------------------------


def _items_schema(param: Param) -> dict[str, Any]:
    if param.item is list:  # [x, y] pairs of numbers
        return {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
    return {"type": TYPES[param.item][1]}


def param_schema(param: Param) -> dict[str, Any]:
    """JSON Schema of one parameter: type, bounds or choices, default, and null when unset."""
    schema: dict[str, Any] = {"description": help_text(param), "type": TYPES[param.type][1]}
    if param.choices:
        schema["enum"] = list(param.choices)
    if param.item is not None:
        schema["items"] = _items_schema(param)
    if param.type is list and param.length and len(param.length) == 1:
        schema["minItems"] = schema["maxItems"] = param.length[0]
    if param.type in (int, float):
        for key, bound in (
            ("exclusiveMinimum", param.gt),
            ("minimum", param.ge),
            ("exclusiveMaximum", param.lt),
            ("maximum", param.le),
        ):
            if bound is not None:
                schema[key] = bound
    if not param.required and param.default is not None:
        schema["default"] = param.default
    if param.default is None:
        schema = {"anyOf": [schema, {"type": "null"}], "description": help_text(param)}
    return schema


def step_schema(spec: OpSpec) -> dict[str, Any]:
    props = {"op": {"const": spec.name}}
    props.update({p: param_schema(param) for p, param in spec.params.items()})
    return {
        "title": spec.name,
        "description": spec.summary,
        "type": "object",
        "properties": props,
        "required": ["op"] + [p for p, param in spec.params.items() if param.required],
        "additionalProperties": False,
    }
