"""YAML syntax errors read in plain words: line:column, a hint, the line and a caret (issue 9, point 14)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from imgenh.cli import main
from imgenh.pipeline_file import ConfigError, parse_pipeline


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_pipeline(text, "p.yaml")
    (err,) = info.value.errors
    return err


def test_a_tab_is_named_and_shown_with_a_caret():
    err = error_of("version: 1\nsteps:\n  - op: gamma\n  \tvalue: 1.2\n")
    assert err.splitlines() == [
        "p.yaml:4:3: YAML syntax error: a tab",
        "    4 |   \\tvalue: 1.2",
        "      |   ^",
        "  hint: YAML indents with spaces, not tabs: replace the tab with spaces",
    ]


def test_missing_colon_points_at_the_key_and_shows_the_fix():
    err = error_of("version: 1\nsteps:\n  - op: gamma\n    value 1.2\n")
    assert err.splitlines() == [
        "p.yaml:4:5: YAML syntax error: could not find expected ':'",
        "    4 |     value 1.2",
        "      |     ^",
        "  hint: a key needs a colon and a space after it: `value: 1.2`",
    ]


@pytest.mark.parametrize(
    ("text", "where", "hint"),
    [
        # a step's key under its `-` instead of under `op`
        ("version: 1\nsteps:\n  - op: gamma\n  value: 1\n", "p.yaml:4:3", "a step's keys line up under `op`"),
        # a key indented less than its mapping
        (
            "version: 1\nsteps:\n  - op: gamma\n value: 1.2\n",
            "p.yaml:4:2",
            "check the indentation of this line",
        ),
        # a key indented deeper than the one above
        (
            "version: 1\nsteps:\n  - op: gamma\n     value: 1.2\n",
            "p.yaml:4:11",
            "indented deeper than the key above",
        ),
        # no space after a colon: `op:gamma` is one word, so the next key does not fit
        (
            "version: 1\nsteps:\n  - op:gamma\n    value: 1\n",
            "p.yaml:4:10",
            "space after the colon on line 3",
        ),
        ("version: 1\nname low\nsteps: []\n", "p.yaml:2:1", "`name: low`"),
        ("version: 1\nsteps:\n  - op: white_balance\n    gains: [1.1, 1, 0.9\n", "p.yaml:4:12", "not closed"),
        ("version: 1\nname: 'low\nsteps: []\n", "p.yaml:2:7", "the quote that starts here is never closed"),
        (
            "version: 1\ndescription: fix: colour\nsteps: []\n",
            "p.yaml:2:17",
            'quoted, e.g. description: "fix: colour"',
        ),
    ],
    ids=["key-under-dash", "less", "deeper", "glued-colon", "no-colon", "bracket", "quote", "colon-in-value"],
)
def test_common_mistakes_get_a_plain_hint_and_the_line(text, where, hint):
    err = error_of(text)
    first, shown, caret, hint_line = err.splitlines()
    assert first.startswith(f"{where}: YAML syntax error: ")
    line, column = (int(n) for n in where.split(":")[1:])
    assert shown == f"    {line} | {text.splitlines()[line - 1]}"
    assert caret.index("^") - caret.index("|") - 2 == column - 1
    assert hint_line.startswith("  hint: ") and hint in hint_line


def test_unclosed_things_point_where_they_open_not_at_the_end_of_the_file():
    err = error_of('version: 1\nname: "low-light\nsteps:\n  - op: gamma\n')
    assert err.startswith("p.yaml:2:7: YAML syntax error: unclosed quote")


def test_duplicate_keys_are_still_reported_with_both_lines():
    assert (
        error_of("version: 1\nsteps: []\nsteps: []\n") == "p.yaml:3: duplicate key 'steps' (first on line 2)"
    )


def test_validate_prints_the_line_and_caret_under_the_error(tmp_path):
    (tmp_path / "bad.yaml").write_text("version: 1\nsteps:\n\t- op: gamma\n")
    res = CliRunner().invoke(main, ["validate", str(tmp_path / "bad.yaml")])
    assert res.exit_code == 2
    lines = res.stderr.splitlines()
    assert lines[0] == f"imgenh: error: {tmp_path / 'bad.yaml'}:3:1: YAML syntax error: a tab"
    assert lines[1:3] == ["    3 | \\t- op: gamma", "      | ^"]
