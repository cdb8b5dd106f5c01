"""YAML syntax errors in plain words: where, what PyYAML found, a hint, and the line with a caret.

PyYAML says ``while parsing a block collection expected <block end>, but found '?'``; a
person needs to hear "check the indentation of this line". :func:`syntax_error_text` keeps
PyYAML's line:column and its short description of the problem, adds a hint for the common
mistakes (a tab, an indentation slip, a missing colon, an unclosed quote or bracket, a value
holding ``: ``), and shows the offending line with a caret under the column::

    low.yaml:4:5: YAML syntax error: could not find expected ':'
        4 |     value 1.2
          |     ^
      hint: a key needs a colon and a space after it: `value: 1.2`
"""

from __future__ import annotations

import re

import yaml

TAB_SHOWN = "\\t"  # a tab in the shown line, visible and without breaking the caret's column

_INDENT = (
    "check the indentation of this line: the keys of one mapping start in the same column, "
    "and a step's keys line up under `op`, not under its `-`"
)


def _line(text: str, index: int) -> str | None:
    lines = text.splitlines()
    return lines[index] if 0 <= index < len(lines) else None


def _key_colon_fix(line: str) -> str:
    """``value 1.2`` -> ``value: 1.2``; ``steps`` -> ``steps:``."""
    key, _, rest = line.strip().partition(" ")
    return f"{key}: {rest.strip()}" if rest.strip() else f"{key}:"


def _mapping_value_hint(text: str, mark: yaml.Mark) -> str:
    """Why ``mapping values are not allowed here``: an unquoted ': ', a colon without a space, or indentation."""
    line = _line(text, mark.line) or ""
    if ": " in line[: mark.column] or line[: mark.column].rstrip().endswith(":"):
        key = line.split(":", 1)[0].strip()
        return f"a value that contains ': ' must be quoted, e.g. {key}: \"{line.split(':', 1)[1].strip()}\""
    for index in range(mark.line - 1, -1, -1):
        above = _line(text, index) or ""
        if above.strip():
            glued = re.search(r"(\w[\w-]*):(\S.*)$", above)
            if glued and not above.strip().startswith("#"):
                fixed = f"{glued.group(1)}: {glued.group(2)}"
                return f"put a space after the colon on line {index + 1}: `{fixed.strip()}`"
            break
    return "this line is indented deeper than the key above it, which already has a value; " + _INDENT


def _hint(exc: yaml.MarkedYAMLError, text: str) -> tuple[yaml.Mark | None, str | None, str]:
    """The mark to show, the problem in other words when the mark moved (else None), and a hint."""
    context, problem = exc.context or "", exc.problem or ""
    mark = exc.problem_mark or exc.context_mark
    shown = _line(text, mark.line) if mark else None
    if "'\\t'" in problem or (shown is not None and "\t" in shown[: mark.column + 1]):
        return mark, "a tab", "YAML indents with spaces, not tabs: replace the tab with spaces"
    if "simple key" in context and "expected ':'" in problem and exc.context_mark:
        line = _line(text, exc.context_mark.line) or ""
        return exc.context_mark, None, f"a key needs a colon and a space after it: `{_key_colon_fix(line)}`"
    if "quoted scalar" in context and exc.context_mark:
        hint = "the quote that starts here is never closed: end the value with the same quote"
        return exc.context_mark, "unclosed quote", hint
    if "flow sequence" in context or "flow mapping" in context:
        opened, close = ("[", "]") if "sequence" in context else ("{", "}")
        hint = f"the '{opened}' that starts here is not closed: end it with '{close}' on this line"
        return exc.context_mark or mark, f"unclosed '{opened}'", hint
    if "flow node" in context and "'-'" in problem:
        return mark, None, "a `- ` list item inside [ ]: is a '[' above left open?"
    if "mapping values are not allowed" in problem and mark:
        return mark, None, _mapping_value_hint(text, mark)
    if "block collection" in context and "expected <block end>" in problem:
        hint = "this line starts in the column of the `-` above but is not a new `- ` item: a step's keys line up under `op`"
        return mark, "unexpected indentation", hint
    if any(k in problem for k in ("expected <block end>", "did not find expected key", "expected '-'")):
        return mark, "unexpected indentation", _INDENT
    if "cannot start any token" in problem:
        return mark, None, "a value that starts with this character must be quoted"
    return mark, None, ""


def syntax_error_text(exc: yaml.MarkedYAMLError, text: str, source: str) -> str:
    """One error, several lines: ``source:line:col: YAML syntax error: ...``, the line and caret, a hint.

    Parameters
    ----------
    exc : yaml.MarkedYAMLError
        What PyYAML raised while reading ``text``.
    text : str
        The YAML document.
    source : str
        The file name shown.

    Examples
    --------
    >>> try:
    ...     yaml.safe_load("steps:\\n\\t- op: gamma\\n")
    ... except yaml.MarkedYAMLError as exc:
    ...     print(syntax_error_text(exc, "steps:\\n\\t- op: gamma\\n", "p.yaml"))
    p.yaml:2:1: YAML syntax error: a tab
        2 | \\t- op: gamma
          | ^
      hint: YAML indents with spaces, not tabs: replace the tab with spaces
    """
    mark, problem, hint = _hint(exc, text)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
    problem = problem or exc.problem or exc.context or "cannot be read"
    lines = [f"{where}: YAML syntax error: {problem}"]
    shown = _line(text, mark.line) if mark else None
    if shown is not None:
        number = str(mark.line + 1)
        before = shown[: mark.column].replace("\t", TAB_SHOWN)
        lines.append(f"    {number} | {shown.replace(chr(9), TAB_SHOWN)}")
        lines.append(f"    {' ' * len(number)} | {' ' * len(before)}^")
    if hint:
        lines.append(f"  hint: {hint}")
    return "\n".join(lines)
