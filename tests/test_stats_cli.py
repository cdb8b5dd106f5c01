"""``imgenh stats``: formats, unreadable files, and --compare against an earlier run's outputs."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

import cv2
import numpy as np
import pytest

from imgenh.quality import FIGURE_NAMES, figures
from imgenh.stats import OutputFinder, figure_table


def _stats(*args, cwd=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "imgenh", "stats", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.fixture
def folder(tmp_path, photo8, gray8):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    cv2.imwrite(str(src / "a.jpg"), photo8)
    cv2.imwrite(str(src / "b.png"), gray8)
    cv2.imwrite(str(src / "sub" / "c.png"), photo8[::2, ::2])
    return src


def test_json_lists_every_image_with_every_figure(folder):
    result = _stats(folder, "-r", "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["path"] for r in rows] == [str(folder / n) for n in ("a.jpg", "b.png", "sub/c.png")]
    expected = figures(cv2.imread(str(folder / "b.png"), cv2.IMREAD_UNCHANGED))
    assert rows[1] == {"path": str(folder / "b.png"), **expected}


def test_table_and_csv(folder):
    table = _stats(folder)  # not recursive: a, b only, and a warning about the subfolder
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["path", *FIGURE_NAMES]
    assert len(lines) == 3 and "subfolder" in table.stderr
    rows = list(csv.DictReader(io.StringIO(_stats(folder, "-r", "--format", "csv").stdout)))
    assert len(rows) == 3 and list(rows[0]) == ["path", *FIGURE_NAMES]
    assert float(rows[0]["brightness"]) == pytest.approx(
        json.loads(_stats(folder / "a.jpg", "--format", "json").stdout)[0]["brightness"]
    )


def test_unreadable_file_is_named_and_the_rest_listed(folder):
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    result = _stats(folder, "--format", "json")
    assert result.returncode == 1
    assert f"imgenh: error: {folder / 'broken.jpg'}: corrupt JPEG header" in result.stderr
    assert len(json.loads(result.stdout)) == 2
    missing = _stats(folder / "nope.png")
    assert missing.returncode == 1 and "nope.png" in missing.stderr


def test_no_images_is_a_usage_error(tmp_path):
    result = _stats(tmp_path)
    assert result.returncode == 2 and "no images" in result.stderr


def test_compare_matches_outputs_of_a_run(folder, tmp_path):
    out = tmp_path / "out"
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(
        "version: 1\nsteps:\n  - op: gamma\n    value: 1.5\noutput:\n  format: png\n  suffix: _x\n"
    )
    run = [sys.executable, "-m", "imgenh", "run", str(pipeline), str(folder), "-r", "-o", str(out), "-q"]
    subprocess.run(run, check=True, capture_output=True, timeout=120)
    result = _stats(folder, "-r", "--compare", out, "--format", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["output"] for r in rows] == [str(out / n) for n in ("a_x.png", "b_x.png", "sub/c_x.png")]
    for row in rows:
        assert row["delta"]["brightness"] == pytest.approx(
            row["after"]["brightness"] - row["brightness"], abs=1e-5
        )
        assert row["delta"]["brightness"] > 0.03  # gamma 1.5 brightens
    # without the manifest, outputs are found by relative path and stem (+ suffix)
    (out / ".imgenh" / "manifest.jsonl").unlink()
    again = json.loads(_stats(folder, "-r", "--compare", out, "--format", "json").stdout)
    assert [r["output"] for r in again] == [r["output"] for r in rows]
    table = _stats(folder, "-r", "--compare", out).stdout.splitlines()
    assert len(table) == 1 + 3 * 3 and table[3].split()[0] == "change"
    (out / "b_x.png").unlink()
    partial = _stats(folder, "-r", "--compare", out, "--format", "csv")
    assert partial.returncode == 1 and "b.png: no output" in partial.stderr
    assert len(partial.stdout.splitlines()) == 3 and "brightness_delta" in partial.stdout


def test_help_defines_every_figure():
    text = subprocess.run(
        [sys.executable, "-m", "imgenh", "stats", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    for name in FIGURE_NAMES:
        assert f"  {name} " in text


def test_manifest_record_wins_over_the_name(tmp_path, photo8):
    """An output renamed in the manifest's record is found through it, not by stem."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (out / ".imgenh").mkdir(parents=True)
    cv2.imwrite(str(src / "x.png"), photo8)
    cv2.imwrite(str(out / "x.png"), np.zeros_like(photo8))
    cv2.imwrite(str(out / "renamed.png"), photo8)
    record = {
        "output": "renamed.png",
        "source": str(src / "x.png"),
        "size": 1,
        "mtime_ns": 1,
        "sha256": "",
        "pipeline": "",
        "version": "",
        "status": "ok",
    }
    (out / ".imgenh" / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    assert OutputFinder(out).find(src / "x.png", PurePosixPath("x.png")) == out / "renamed.png"


def test_readme_figures_table_is_current():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("<!-- figures:start -->") + len("<!-- figures:start -->")
    end = readme.index("<!-- figures:end -->")
    assert readme[start:end].strip() == figure_table(), (
        "README figures table is stale: run `python benchmarks/make_readme_preview.py`"
    )
