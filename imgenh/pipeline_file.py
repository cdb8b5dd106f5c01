"""Pipeline data -> a validated :class:`~imgenh.pipeline.Pipeline`, from YAML or from Python.

YAML is read with the safe loader only, keeping the line each value starts on; Python data
(:func:`pipeline_from_steps`) is validated by the same code without lines. Every problem
is reported, all together, naming the step and parameter: from a file
``low.yaml:7: steps[1] gamma.value: must be > 0 (got -1)``, from Python data
``steps[1] gamma.value: must be > 0 (got -1)``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from imgenh import augment
from imgenh.errors import ConfigError
from imgenh.ops import REGISTRY, describe, get_op
from imgenh.ops.registry import OpSpec, did_you_mean
from imgenh.pipeline import OUTPUT_PARAMS, SCHEMA_VERSION, OutputSettings, Pipeline, Step, check_output

__all__ = [
    "OUTPUT_PARAMS",
    "SCHEMA_VERSION",
    "ConfigError",
    "check_output",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_schema",
    "pipeline_from_steps",
]

TOP_KEYS = ("version", "name", "description", "steps", "output")


# --- problems, with lines when the data came from YAML ------------------------------------

DataPath = tuple[Any, ...]  # keys and list indexes from the document root, e.g. ("steps", 0, "value")


class _Problems:
    """Collects error lines: ``source:line: where: message`` for YAML, ``where: message`` for Python data.

    Parameters
    ----------
    source : str
        The file name (YAML) or ``<python>``.
    lines : dict or None
        Line of each value by its :data:`DataPath`; None for Python data. A value without a
        line of its own is reported on the line of its nearest enclosing value.
    """

    def __init__(self, source: str, lines: dict[DataPath, int] | None):
        self.source = source
        self.lines = lines
        self.errors: list[str] = []

    def add(self, path: DataPath, where: str, message: str) -> None:
        text = f"{where}: {message}" if where else message
        if self.lines is not None:
            while path and path not in self.lines:
                path = path[:-1]
            text = f"{self.source}:{self.lines.get(path, 1)}: {text}"
        self.errors.append(text)


# --- YAML with line numbers -------------------------------------------------------------

_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


def _convert(
    node: yaml.Node, loader: yaml.SafeLoader, path: DataPath, lines: dict, problems: _Problems
) -> Any:
    """Plain data from a YAML node; records the line of every value in ``lines``."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Only plain data: tags such as !!python/object are refused, never constructed.
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {node.tag!r} is not allowed", node.start_mark
        )
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, loader, (*path, i), lines, problems) for i, item in enumerate(node.value)]
    if not isinstance(node, yaml.MappingNode):
        return loader.construct_object(node, deep=True)
    out: dict[str, Any] = {}
    key_lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        kline = key_node.start_mark.line + 1
        if not isinstance(key, str):
            problems.errors.append(f"{problems.source}:{kline}: keys must be strings (got {key!r})")
        elif key in out:
            first = key_lines[key]
            problems.errors.append(
                f"{problems.source}:{kline}: duplicate key {key!r} (first on line {first})"
            )
        else:
            out[key] = _convert(value_node, loader, (*path, key), lines, problems)
            key_lines[key] = kline
    return out


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[DataPath, int]]:
    """The document as plain data (None when empty) and the line of every value."""
    loader = yaml.SafeLoader(text)
    problems = _Problems(source, {})
    lines: dict[DataPath, int] = {}
    try:
        node = loader.get_single_node()
        data = None if node is None else _convert(node, loader, (), lines, problems)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        kind = (
            "unsafe or unknown YAML tag"
            if isinstance(exc, yaml.constructor.ConstructorError)
            else "YAML syntax error"
        )
        raise ConfigError([f"{where}: {kind}: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: YAML error: {exc}"]) from None
    finally:
        loader.dispose()
    if problems.errors:
        raise ConfigError(problems.errors)
    return data, lines


# --- validation of plain data -------------------------------------------------------------


def _build(data: Any, problems: _Problems, base_dir: Path) -> Pipeline:
    """Validate a whole document; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        problems.add((), "", "a pipeline file is a mapping with `version:` and `steps:`")
        raise ConfigError(problems.errors)
    _check_header(data, problems)
    text_fields = {}
    for key in ("name", "description"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            problems.add((key,), key, f"must be a string (got {value!r})")
        text_fields[key] = value if isinstance(value, str) else ""
    steps = _build_steps(data.get("steps"), "steps" in data, problems, base_dir)
    output = _build_output(data.get("output"), problems)
    if problems.errors:
        raise ConfigError(problems.errors)
    return Pipeline(steps=steps, output=output, source=problems.source, **text_fields)


def _check_header(data: dict, problems: _Problems) -> None:
    for key in data:
        if key not in TOP_KEYS:
            hint = did_you_mean(key, TOP_KEYS)
            problems.add((key,), key, f"unknown key{hint} (allowed: {', '.join(TOP_KEYS)})")
    if "version" not in data:
        problems.add((), "version", f"is required; add `version: {SCHEMA_VERSION}` at the top")
    elif isinstance(data["version"], bool) or data["version"] != SCHEMA_VERSION:
        message = f"this imgenh reads pipeline version {SCHEMA_VERSION} (got {data['version']!r})"
        problems.add(("version",), "version", message)


def _build_steps(value: Any, given: bool, problems: _Problems, base_dir: Path) -> list[Step]:
    if not given:
        problems.add((), "steps", "is required: a list of `- op: NAME` entries (see `imgenh ops`)")
        return []
    if not isinstance(value, list):
        problems.add(("steps",), "steps", "must be a list of `- op: NAME` entries")
        return []
    steps = [_build_step(step, index, problems, base_dir) for index, step in enumerate(value)]
    return [step for step in steps if step is not None]


def _build_output(value: Any, problems: _Problems) -> OutputSettings:
    if value is None:
        return OutputSettings()
    if not isinstance(value, dict):
        problems.add(("output",), "output", "must be a mapping (format, quality, suffix, metadata)")
        return OutputSettings()
    values, found = check_output(value)
    for key, message in found:
        problems.add(("output", key), f"output.{key}", message)
    return OutputSettings(**values)


def _step_spec(step: Any, where: str, path: DataPath, problems: _Problems) -> OpSpec | None:
    """The operator a step names, or None after reporting why there is none."""
    if not isinstance(step, dict):
        problems.add(path, where, f"must be a mapping like `- op: gamma` (got {step!r})")
        return None
    if "op" not in step:
        problems.add(path, where, "needs `op:` naming the operator (see `imgenh ops`)")
        return None
    name = step["op"]
    if not isinstance(name, str):
        problems.add((*path, "op"), f"{where}.op", f"must be an operator name (got {name!r})")
        return None
    try:
        return get_op(name)
    except KeyError as exc:
        problems.add((*path, "op"), f"{where}.op", exc.args[0])
        return None


def _build_step(step: Any, index: int, problems: _Problems, base_dir: Path) -> Step | None:
    where, path = f"steps[{index}]", ("steps", index)
    spec = _step_spec(step, where, path, problems)
    if spec is None:
        return None
    # Augmentation hook: random specs and a step probability become StepRandom, placeholders stay.
    given, random, found = augment.split_random(spec, {k: v for k, v in step.items() if k != "op"})
    params, fixed_found = spec.resolve(given)
    found += [(key, message) for key, message in fixed_found if key not in dict(found)]
    for key, message in found:
        label = f"{where} {spec.name}.{key}" if key else f"{where} {spec.name}"
        problems.add((*path, key) if key else path, label, message)
    if found:
        return None
    for name, param in spec.params.items():
        if param.path and params[name] is not None:
            # A file named by the pipeline: relative to the pipeline file's folder, fixed now.
            params[name] = os.path.abspath(base_dir / params[name])
    return Step(spec, params, index, random=random)


# --- entry points --------------------------------------------------------------------------


def parse_pipeline(text: str, source: str = "<string>", base_dir: str | Path | None = None) -> Pipeline:
    """Parse and validate pipeline YAML text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Name used in error messages (usually the file path).
    base_dir : str or Path, optional
        Folder that relative file parameters are resolved against; the current folder by default.

    Raises
    ------
    ConfigError
        Listing every problem with ``source:line``.

    Examples
    --------
    >>> p = parse_pipeline("version: 1\\nsteps:\\n  - op: gamma\\n    value: 1.2\\n")
    >>> [s.op.name for s in p.steps]
    ['gamma']
    """
    data, lines = _parse_yaml(text, source)
    return _build(data, _Problems(source, lines), Path(base_dir) if base_dir is not None else Path.cwd())


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file; relative file parameters are taken from its folder.

    Raises
    ------
    ConfigError
        When the file cannot be read or is invalid; messages name file, line and step.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError([f"{path}: cannot read pipeline file: {reason}"]) from None
    return parse_pipeline(text, str(path), base_dir=path.parent)


def pipeline_from_steps(steps: list[dict[str, Any]], **output: Any) -> Pipeline:
    """Build a pipeline from Python data, e.g. ``[{"op": "gamma", "value": 1.2}]``.

    Relative file parameters are resolved against the current folder.

    Raises
    ------
    ConfigError
        When a step or output setting is invalid; messages name the step and parameter,
        e.g. ``steps[0] gamma.value: must be > 0 (got -1)``.
    """
    data = {"version": SCHEMA_VERSION, "steps": steps, "output": output or None}
    return _build(data, _Problems("<python>", None), Path.cwd())


def pipeline_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a pipeline file, generated from the operator registry."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "imgenh pipeline",
        "type": "object",
        "properties": {
            "version": {"const": SCHEMA_VERSION},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "steps": {
                "type": "array",
                "items": {  # steps, whose parameters may be random specs (imgenh.augment)
                    "oneOf": [
                        augment.step_schema(describe.step_schema(s)) for _, s in sorted(REGISTRY.items())
                    ]
                },
            },
            "output": {
                "type": "object",
                "properties": {k: describe.param_schema(p) for k, p in OUTPUT_PARAMS.items()},
                "additionalProperties": False,
            },
        },
        "required": ["version", "steps"],
        "additionalProperties": False,
    }
