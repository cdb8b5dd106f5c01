"""Pipeline files: YAML (safe loader only) -> a validated :class:`Pipeline`.

Every problem is reported with file, line and step, e.g.
``low.yaml:7: steps[1] gamma.value: must be > 0 (got -1)``, and all problems in a file
are reported together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from imgenh.errors import UsageError
from imgenh.io import Image
from imgenh.ops import REGISTRY, get_op
from imgenh.ops.registry import Param, did_you_mean
from imgenh.pipeline import Step, apply_steps

SCHEMA_VERSION = 1
FORMATS = ("keep", "jpg", "png", "tiff", "webp")
METADATA = ("keep", "strip")
OUTPUT_PARAMS: dict[str, Param] = {
    "format": Param(str, "keep", "output format; keep = same as the input", choices=FORMATS),
    "quality": Param(int, 92, "JPEG/WebP quality", ge=1, le=100),
    "suffix": Param(str, "", "inserted before the extension, e.g. _enh"),
    "metadata": Param(
        str, "keep", "keep EXIF/XMP/ICC where the format can hold them, or strip", choices=METADATA
    ),
}
TOP_KEYS = ("version", "name", "description", "steps", "output")


class ConfigError(UsageError):
    """A pipeline file (or CLI override) is invalid; ``errors`` holds one line per problem."""


@dataclass(frozen=True)
class OutputSettings:
    """How results are written: format, quality, file-name suffix and metadata policy."""

    format: str = "keep"
    quality: int = 92
    suffix: str = ""
    metadata: str = "keep"


@dataclass
class Pipeline:
    """A validated pipeline: named steps plus output settings.

    Use :func:`load_pipeline` or :func:`parse_pipeline` to build one; :meth:`apply` runs it
    on an array.
    """

    steps: list[Step]
    output: OutputSettings = field(default_factory=OutputSettings)
    name: str = ""
    description: str = ""
    source: str = "<dict>"

    def apply(self, pixels: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        """Apply the steps to one image (BGR or grey; uint8, uint16 or float32 in [0, 1]).

        Returns
        -------
        image : ndarray
            Same dtype as ``pixels``.
        reports : list of dict
            Values the operators reported (e.g. white-balance illuminant), one dict per step.
        """
        return apply_steps(pixels, self.steps)

    def apply_image(self, image: Image) -> tuple[Image, list[dict]]:
        """Apply the steps to a read image; alpha follows any size change, metadata is kept.

        Returns
        -------
        image : Image
            A new Image (the input is not modified).
        reports : list of dict
            As :meth:`apply`.
        """
        pixels, reports = apply_steps(image.pixels, self.steps)
        alpha = image.alpha
        if alpha is not None and pixels.shape[:2] != alpha.shape:
            # A geometry step changed the size. Alpha follows: area averaging when it
            # shrinks, bilinear when it grows (Lanczos would ring on hard mask edges).
            h, w = pixels.shape[:2]
            interp = cv2.INTER_AREA if h * w < alpha.size else cv2.INTER_LINEAR
            alpha = cv2.resize(alpha, (w, h), interpolation=interp)
        return replace(image, pixels=pixels, alpha=alpha, notes=list(image.notes)), reports

    def canonical(self) -> dict[str, Any]:
        """The pipeline as plain data with every default filled in (what the hash covers)."""
        return {
            "version": SCHEMA_VERSION,
            "steps": [{"op": s.op.name, **s.params} for s in self.steps],
            "output": {
                "format": self.output.format,
                "quality": self.output.quality,
                "suffix": self.output.suffix,
                "metadata": self.output.metadata,
            },
        }

    def hash(self) -> str:
        """SHA-256 (hex, 16 chars) of :meth:`canonical`: changes when any step or output setting does."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_output(self, **overrides: Any) -> Pipeline:
        """A copy with some output settings replaced (CLI flags win over the file).

        Raises
        ------
        ConfigError
            When an override is invalid.
        """
        values = {}
        errors = []
        for key, value in overrides.items():
            if value is None:
                continue
            try:
                values[key] = OUTPUT_PARAMS[key].coerce(_output_value(key, value))
            except ValueError as exc:
                errors.append(f"--{key}: {exc}")
        if "suffix" in values:
            errors += [f"--suffix: {msg}" for msg in _suffix_problems(values["suffix"])]
        if errors:
            raise ConfigError(errors)
        return replace(self, output=replace(self.output, **values))


FORMAT_ALIASES = {"jpeg": "jpg", "tif": "tiff"}


def _output_value(key: str, value: Any) -> Any:
    """Formats and metadata modes in any case, with the usual aliases (JPEG -> jpg, tif -> tiff)."""
    if key in ("format", "metadata") and isinstance(value, str):
        value = value.strip().lower()
        return FORMAT_ALIASES.get(value, value) if key == "format" else value
    return value


def _suffix_problems(suffix: str) -> list[str]:
    bad = [c for c in suffix if c in '/\\:*?"<>|\0' or ord(c) < 32]
    if bad:
        shown = " ".join(sorted(set(bad)))
        return [f"may not contain path separators or special characters ({shown}) (got {suffix!r})"]
    return []


# --- YAML with line numbers -------------------------------------------------------------


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")


@dataclass
class _Node:
    """A YAML value with the line it starts on (1-based)."""

    value: Any
    line: int


def _convert(node: yaml.Node, constructor: yaml.SafeLoader, source: str, errors: list[str]) -> _Node:
    line = node.start_mark.line + 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        # Only plain data: tags such as !!python/object are refused, never constructed.
        raise yaml.constructor.ConstructorError(
            None, None, f"tag {node.tag!r} is not allowed", node.start_mark
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = constructor.construct_object(key_node, deep=True)
            kline = key_node.start_mark.line + 1
            if not isinstance(key, str):
                errors.append(f"{source}:{kline}: keys must be strings (got {key!r})")
                continue
            if key in out:
                errors.append(f"{source}:{kline}: duplicate key {key!r} (first on line {key_lines[key]})")
                continue
            out[key] = _convert(value_node, constructor, source, errors)
            key_lines[key] = kline
        return _Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_convert(item, constructor, source, errors) for item in node.value], line)
    return _Node(constructor.construct_object(node, deep=True), line)


def _plain(node: _Node) -> Any:
    if isinstance(node.value, dict):
        return {k: _plain(v) for k, v in node.value.items()}
    if isinstance(node.value, list):
        return [_plain(v) for v in node.value]
    return node.value


def _parse_yaml(text: str, source: str) -> _Node | None:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        errors: list[str] = []
        tree = _convert(node, loader, source, errors)
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
    if errors:
        raise ConfigError(errors)
    return tree


# --- validation --------------------------------------------------------------------------


def _build(tree: _Node | None, source: str) -> Pipeline:
    if tree is None or not isinstance(tree.value, dict):
        line = tree.line if tree else 1
        raise ConfigError([f"{source}:{line}: a pipeline file is a mapping with `version:` and `steps:`"])
    doc: dict[str, _Node] = tree.value
    errors: list[str] = []

    def err(node_or_line: _Node | int, where: str, message: str) -> None:
        line = node_or_line.line if isinstance(node_or_line, _Node) else node_or_line
        errors.append(f"{source}:{line}: {where}: {message}" if where else f"{source}:{line}: {message}")

    for key, node in doc.items():
        if key not in TOP_KEYS:
            err(node, key, f"unknown key{did_you_mean(key, TOP_KEYS)} (allowed: {', '.join(TOP_KEYS)})")

    version = doc.get("version")
    if version is None:
        err(tree, "version", f"is required; add `version: {SCHEMA_VERSION}` at the top")
    elif isinstance(version.value, bool) or version.value != SCHEMA_VERSION:
        err(
            version, "version", f"this imgenh reads pipeline version {SCHEMA_VERSION} (got {version.value!r})"
        )

    text_fields = {}
    for key in ("name", "description"):
        node = doc.get(key)
        if node is not None and node.value is not None and not isinstance(node.value, str):
            err(node, key, f"must be a string (got {_plain(node)!r})")
        text_fields[key] = node.value if node is not None and isinstance(node.value, str) else ""

    steps: list[Step] = []
    steps_node = doc.get("steps")
    if steps_node is None:
        err(tree, "steps", "is required: a list of `- op: NAME` entries (see `imgenh ops`)")
    elif not isinstance(steps_node.value, list):
        err(steps_node, "steps", "must be a list of `- op: NAME` entries")
    else:
        for index, step_node in enumerate(steps_node.value):
            step = _build_step(step_node, index, err)
            if step is not None:
                steps.append(step)

    output = OutputSettings()
    out_node = doc.get("output")
    if out_node is not None and out_node.value is not None:
        if not isinstance(out_node.value, dict):
            err(out_node, "output", "must be a mapping (format, quality, suffix, metadata)")
        else:
            values = {}
            for key, node in out_node.value.items():
                param = OUTPUT_PARAMS.get(key)
                if param is None:
                    hint = did_you_mean(key, OUTPUT_PARAMS)
                    err(node, f"output.{key}", f"unknown key{hint} (allowed: {', '.join(OUTPUT_PARAMS)})")
                    continue
                try:
                    values[key] = param.coerce(_output_value(key, node.value))
                except ValueError as exc:
                    err(node, f"output.{key}", str(exc))
                    continue
                if key == "suffix":
                    for msg in _suffix_problems(values[key]):
                        err(node, "output.suffix", msg)
            output = OutputSettings(**values)

    if errors:
        raise ConfigError(errors)
    return Pipeline(steps=steps, output=output, source=source, **text_fields)


def _build_step(node: _Node, index: int, err) -> Step | None:
    where = f"steps[{index}]"
    if not isinstance(node.value, dict):
        err(node, where, f"must be a mapping like `- op: gamma` (got {_plain(node)!r})")
        return None
    fields = dict(node.value)
    op_node = fields.pop("op", None)
    if op_node is None:
        err(node, where, "needs `op:` naming the operator (see `imgenh ops`)")
        return None
    if not isinstance(op_node.value, str):
        err(op_node, f"{where}.op", f"must be an operator name (got {op_node.value!r})")
        return None
    try:
        spec = get_op(op_node.value)
    except KeyError as exc:
        err(op_node, f"{where}.op", exc.args[0])
        return None
    given = {key: _plain(value) for key, value in fields.items()}
    params, problems = spec.resolve(given)
    for key, message in problems:
        line_of = fields.get(key, node)
        label = f"{where} {spec.name}.{key}" if key else f"{where} {spec.name}"
        if message.startswith(f"{spec.name}: "):  # an operator's own check may name itself
            message = message[len(spec.name) + 2 :]
        err(line_of, label, message)
    if problems:
        return None
    return Step(spec, params, index)


def parse_pipeline(text: str, source: str = "<string>") -> Pipeline:
    """Parse and validate pipeline YAML text.

    Parameters
    ----------
    text : str
        The YAML document.
    source : str
        Name used in error messages (usually the file path).

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
    return _build(_parse_yaml(text, source), source)


def load_pipeline(path: str | Path) -> Pipeline:
    """Read and validate a pipeline file.

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
    return parse_pipeline(text, str(path))


def pipeline_from_steps(steps: list[dict[str, Any]], **output: Any) -> Pipeline:
    """Build a pipeline from Python data, e.g. ``[{"op": "gamma", "value": 1.2}]``.

    Raises
    ------
    ConfigError
        When a step or output setting is invalid.
    """
    text = yaml.safe_dump({"version": SCHEMA_VERSION, "steps": steps, "output": output or None})
    return parse_pipeline(text, "<python>")


# --- JSON Schema -------------------------------------------------------------------------


def _param_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": param.help}
    if param.type is bool:
        schema["type"] = "boolean"
    elif param.type is int:
        schema["type"] = "integer"
    elif param.type is float:
        schema["type"] = "number"
    elif param.type is str:
        schema["type"] = "string"
        if param.choices:
            schema["enum"] = list(param.choices)
    elif param.type is list:
        schema["type"] = "array"
        if param.item is float:
            schema["items"] = {"type": "number"}
        elif param.item is list:
            schema["items"] = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}
        if param.length and len(param.length) == 1:
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
        schema = {"anyOf": [schema, {"type": "null"}], "description": param.help}
    return schema


def pipeline_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a pipeline file, generated from the operator registry."""
    step_schemas = []
    for name, spec in sorted(REGISTRY.items()):
        props = {"op": {"const": name}}
        props.update({p: _param_schema(param) for p, param in spec.params.items()})
        required = ["op"] + [p for p, param in spec.params.items() if param.required]
        step_schemas.append(
            {
                "title": name,
                "description": spec.summary,
                "type": "object",
                "properties": props,
                "required": required,
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "imgenh pipeline",
        "type": "object",
        "properties": {
            "version": {"const": SCHEMA_VERSION},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "steps": {"type": "array", "items": {"oneOf": step_schemas}},
            "output": {
                "type": "object",
                "properties": {k: _param_schema(p) for k, p in OUTPUT_PARAMS.items()},
                "additionalProperties": False,
            },
        },
        "required": ["version", "steps"],
        "additionalProperties": False,
    }
