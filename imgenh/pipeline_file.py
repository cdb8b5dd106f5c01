"""Pipeline data -> a validated :class:`~imgenh.pipeline.Pipeline`, from YAML or from Python.

YAML is read with the safe loader only, keeping the line each value starts on; Python data
(:func:`pipeline_from_steps`) is validated by the same code without lines. Every problem
is reported, all together, naming the step and parameter: from a file
``low.yaml:7: steps[1] gamma.value: must be > 0 (got -1)``, from Python data
``steps[1] gamma.value: must be > 0 (got -1)``.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from imgenh import augment, pipeline_ref
from imgenh.adaptive import AdaptiveError, adaptive_schema, parse_adaptive
from imgenh.errors import ConfigError
from imgenh.ops import REGISTRY, describe, get_op
from imgenh.ops.registry import OpSpec, did_you_mean
from imgenh.pipeline import OUTPUT_PARAMS, SCHEMA_VERSION, OutputSettings, Pipeline, Step, check_output
from imgenh.pipeline_ref import builtin_text
from imgenh.yaml_errors import syntax_error_text

__all__ = [
    "OUTPUT_PARAMS",
    "SCHEMA_VERSION",
    "ConfigError",
    "builtin_pipelines",
    "builtin_text",
    "check_output",
    "load_for_run",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_schema",
    "pipeline_from_steps",
    "steps_from_cli",
    "with_cli_steps",
]

TOP_KEYS = ("version", "name", "description", "steps", "output", "adaptive")


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
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError([f"{where}: unsafe or unknown YAML tag: {problem}"]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([syntax_error_text(exc, text, source)]) from None
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
    adaptive = _build_adaptive(data.get("adaptive"), steps, problems) if "adaptive" in data else None
    return Pipeline(steps=steps, output=output, source=problems.source, adaptive=adaptive, **text_fields)


def _build_adaptive(value: Any, steps: list[Step], problems: _Problems):
    """The ``adaptive:`` block (per-image parameters), checked against the steps; the first problem is raised."""
    try:
        return parse_adaptive(value, steps)
    except AdaptiveError as exc:
        problems.add(("adaptive", *exc.path), exc.field, exc.message)
        raise ConfigError(problems.errors) from None


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
    op_where = f"{where}.op" if where.startswith("steps[") else where  # `--step 2: unknown operator`
    if not isinstance(step, dict):
        problems.add(path, where, f"must be a mapping like `- op: gamma` (got {step!r})")
        return None
    if "op" not in step:
        problems.add(path, where, "needs `op:` naming the operator (see `imgenh ops`)")
        return None
    name = step["op"]
    if not isinstance(name, str):
        problems.add((*path, "op"), op_where, f"must be an operator name (got {name!r})")
        return None
    try:
        return get_op(name)
    except KeyError as exc:
        problems.add((*path, "op"), op_where, exc.args[0])
        return None


def _build_step(step: Any, index: int, problems: _Problems, base_dir: Path, where: str = "") -> Step | None:
    """One validated step; ``where`` names it in messages (default ``steps[index]``)."""
    where, path = where or f"steps[{index}]", ("steps", index)
    spec = _step_spec(step, where, path, problems)
    if spec is None:
        return None
    if _still_to_fit(step, spec, where, path, problems):
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
            problem = _unreadable(param.path, params[name])
            if problem:
                problems.add((*path, name), f"{where} {spec.name}.{name}", problem)
                return None
    return Step(spec, params, index, where, random=random)


def _unreadable(reader: Any, filename: str) -> str | None:
    """Why a file a step names cannot be used, found at load rather than at the first image."""
    if not callable(reader):
        return None
    try:
        reader(filename)
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def is_fit_marker(value: Any) -> bool:
    """True for a parameter written as ``{fit: ...}``: a value ``imgenh fit`` searches (imgenh.fit.space)."""
    return isinstance(value, dict) and "fit" in value


def _still_to_fit(step: dict, spec: OpSpec, where: str, path: DataPath, problems: _Problems) -> bool:
    """Report ``{fit: ...}`` markers: a pipeline to fit runs only once ``imgenh fit`` has set its values."""
    found = False
    for key, value in step.items():
        if key not in spec.params:
            continue  # an unknown name is reported as such (with a did-you-mean), not as still to fit
        if is_fit_marker(value) or (isinstance(value, list) and any(is_fit_marker(v) for v in value)):
            name = problems.source if problems.lines is not None else "PIPELINE"
            message = (
                f"is still to be fitted ({{fit: ...}}); run `imgenh fit {name} --before B --after A "
                "-o tuned.yaml` first, then use tuned.yaml"
            )
            problems.add((*path, key), f"{where} {spec.name}.{key}", message)
            found = True
    return found


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
    """Read and validate a pipeline file, or a built-in pipeline by name (``"default"``).

    A string that names an existing file is that file; otherwise a built-in name (see
    ``imgenh configs``) is that built-in. Relative file parameters are taken from the
    pipeline file's folder.

    Raises
    ------
    ConfigError
        When the file cannot be read or is invalid, or the name is unknown; messages name
        file, line and step.
    """
    path = pipeline_ref.resolve(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        hint = pipeline_ref.missing_file_hint(path) if isinstance(exc, FileNotFoundError) else ""
        raise ConfigError([f"{path}: cannot read pipeline file: {reason}{hint}"]) from None
    return parse_pipeline(text, str(path), base_dir=path.parent)


def load_for_run(
    words: list[str] | tuple[str, ...], steps: list[str] | tuple[str, ...]
) -> tuple[Pipeline, list[str]]:
    """``imgenh run``'s pipeline and inputs from its positional words and ``-s`` steps.

    See :func:`imgenh.pipeline_ref.split_run_args` for which word is the pipeline.

    Raises
    ------
    ConfigError
        Every problem of the pipeline file and of the steps, together.
    """
    ref, inputs = pipeline_ref.split_run_args(words, bool(steps))
    errors: list[str] = []
    pipeline = None
    try:
        pipeline = load_pipeline(ref) if ref is not None else None
    except ConfigError as exc:
        errors += exc.errors
    try:
        pipeline = with_cli_steps(pipeline, steps)
    except ConfigError as exc:
        errors += exc.errors
    if errors:
        raise ConfigError(errors)
    return pipeline, inputs


def builtin_pipelines() -> dict[str, Pipeline]:
    """Every built-in pipeline by name (``imgenh configs``)."""
    return {name: load_pipeline(pipeline_ref.builtin_path(name)) for name in pipeline_ref.builtin_names()}


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


# --- steps given on the command line (-s/--step) -------------------------------------------

STEP_FORM = "-s 'OP KEY=VALUE ...', e.g. -s 'gamma value=1.2'"


def _words(text: str) -> list[str]:
    """Split on spaces outside quotes and brackets, so ``gains=[1.1, 1, 0.9]`` stays one word."""
    words, current, depth, quote = [], "", 0, ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(depth - 1, 0)
        elif char.isspace() and depth == 0:
            if current:
                words.append(current)
            current = ""
            continue
        current += char
    return [*words, current] if current else words


def _cli_value(text: str) -> Any:
    """A value as YAML reads it (number, true/false, string, [flow, list]); ValueError if it cannot."""
    if not text.strip():
        raise ValueError("needs a value after '='")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValueError(f"cannot read {text!r} as a YAML value ({problem})") from None
    finally:
        loader.dispose()


def _cli_step(text: str, where: str, problems: _Problems) -> dict[str, Any] | None:
    """``gamma value=1.2`` -> ``{"op": "gamma", "value": 1.2}``, or None after reporting why not."""
    words = _words(text)
    if not words or "=" in words[0]:
        got = f" (got {text!r})" if text.strip() else ""
        problems.add((), where, f"starts with the operator's name: {STEP_FORM}{got}")
        return None
    step: dict[str, Any] = {"op": words[0]}
    label, before = f"{where} {words[0]}", len(problems.errors)
    for word in words[1:]:
        key, eq, value = word.partition("=")
        if not eq or not key:
            problems.add((), label, f"{word!r} is not KEY=VALUE: {STEP_FORM}")
        elif key in step:
            problems.add((), f"{label}.{key}", "given twice")
        else:
            try:
                step[key] = _cli_value(value)
            except ValueError as exc:
                problems.add((), f"{label}.{key}", str(exc))
    return step if len(problems.errors) == before else None


def steps_from_cli(texts: list[str] | tuple[str, ...]) -> list[dict[str, Any]]:
    """Parse ``-s/--step`` texts into step data, ``["gamma value=1.2"]`` -> ``[{"op": "gamma", "value": 1.2}]``.

    Each text is the operator's name, then ``KEY=VALUE`` words; a value is read as YAML
    reads a value (``1.2``, ``true``, ``gray_world``, ``[1.1, 1, 0.9]``, ``'a b'``).

    Raises
    ------
    ConfigError
        Naming the step as ``--step N`` (counted from 1), e.g.
        ``--step 1 gamma: '1.2' is not KEY=VALUE: ...``.

    Examples
    --------
    >>> steps_from_cli(["white_balance method=manual gains=[1.1, 1, 0.9]"])
    [{'op': 'white_balance', 'method': 'manual', 'gains': [1.1, 1, 0.9]}]
    """
    problems = _Problems("--step", None)
    steps = [_cli_step(text, f"--step {n}", problems) for n, text in enumerate(texts, 1)]
    if problems.errors:
        raise ConfigError(problems.errors)
    return steps


def with_cli_steps(pipeline: Pipeline | None, texts: list[str] | tuple[str, ...]) -> Pipeline:
    """``pipeline`` (or an empty one) with the ``-s/--step`` steps appended, validated like YAML steps.

    Relative file parameters are taken from the current folder; messages name ``--step N``,
    e.g. ``--step 1 gamma.value: must be > 0 (got -1)``, at validation and when a step fails
    on an image.

    Raises
    ------
    ConfigError
        Every problem of every step.
    """
    base = pipeline if pipeline is not None else Pipeline(steps=[], source="--step")
    problems = _Problems("--step", None)
    added = []
    for number, text in enumerate(texts, 1):
        step = _cli_step(text, f"--step {number}", problems)
        if step is None:
            continue
        built = _build_step(step, len(base.steps) + len(added), problems, Path.cwd(), f"--step {number}")
        if built is not None:
            added.append(built)
    if problems.errors:
        raise ConfigError(problems.errors)
    return replace(base, steps=[*base.steps, *added])


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
            "adaptive": adaptive_schema(),
        },
        "required": ["version", "steps"],
        "additionalProperties": False,
    }
