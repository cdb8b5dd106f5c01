"""benchmarks/quality.py's per-photo view: the share of photos a method makes visibly worse than doing nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "quality.py"


@pytest.fixture(scope="module")
def quality():
    spec = importlib.util.spec_from_file_location("quality_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(table: dict) -> list[dict]:
    """{(photo, case): {method: dE}} -> score_case-like rows (plus an `original` row without a score)."""
    rows = []
    for (photo, case), scores in table.items():
        rows += [{"photo": photo, "case": case, "method": m, "ciede2000": v} for m, v in scores.items()]
        rows.append({"photo": photo, "case": case, "method": "original", "figures": {}})
    return rows


def test_worse_shares_count_photos_beyond_the_margin_per_case_and_method(quality):
    rows = _rows(
        {
            ("a", "clean"): {"nothing": 1.0, "default": 1.5, "magick": 9.0},
            ("b", "clean"): {"nothing": 1.0, "default": 3.5, "magick": 8.0},  # 2.5 worse: counts
            ("c", "clean"): {"nothing": 1.0, "default": 3.0, "magick": 2.9},  # exactly 2 worse: does not
            ("d", "clean"): {"nothing": 1.0, "default": 0.5, "magick": 7.0},
            ("a", "noisy"): {"nothing": 3.0, "default": 2.0, "magick": 3.0},
            ("b", "noisy"): {"nothing": 3.0, "default": 9.0, "magick": 3.0},
            ("c", "noisy"): {"nothing": 3.0, "default": 2.0, "magick": 3.0},
            ("d", "noisy"): {"nothing": 3.0, "default": 2.0, "magick": 3.0},
        }
    )
    shares = quality.worse_shares(rows, ("a", "b", "c", "d"))
    assert shares == {
        "clean": {"default": 0.25, "magick": 0.75},
        "noisy": {"default": 0.25, "magick": 0.0},
    }
    # Only the photos asked for are counted, and the margin is a parameter.
    assert quality.worse_shares(rows, ("a", "b"))["clean"] == {"default": 0.5, "magick": 1.0}
    assert quality.worse_shares(rows, ("a", "b", "c", "d"), margin=0.4)["clean"]["default"] == 0.75


def test_worse_shares_table_is_in_per_cent(quality):
    text = quality.shares_markdown("Title:", {"clean": {"default": 0.0556}, "noisy": {"default": 0.0}})
    assert text.splitlines() == [
        "Title:",
        "",
        "| case | default |",
        "|---|---:|",
        "| clean | 5.6% |",
        "| noisy | 0.0% |",
    ]


def test_set_markdown_writes_means_to_two_decimals_and_counts_whole(quality):
    table = {
        "clean": {"nothing": 1.234, "default": 2.0},
        "cases worse than nothing": {"nothing": 0.0, "default": 3.0},
    }
    figs = {"default": {f: 1.0 for f in quality.FIGURES_SHOWN}}
    lines = quality.markdown("held_out_x", ("a", "b"), table, figs).splitlines()
    assert lines[0] == "### held_out_x set: a, b"
    assert "| clean | 1.23 | 2.00 |" in lines
    assert "| cases worse than nothing | 0 | 3 |" in lines
    assert "| default | " + " | ".join(["1.00"] * len(quality.FIGURES_SHOWN)) + " |" in lines
