"""End to end: the installed `imgenh` console script over a copy of sample_images, with a worker pool."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def console_script() -> str:
    """The `imgenh` installed beside this Python (the venv's), else the one on PATH."""
    here = Path(sys.executable).parent / "imgenh"
    found = str(here) if here.exists() else shutil.which("imgenh")
    if not found:
        pytest.fail("the imgenh console script is not installed (pip install '.[test]')")
    return found


def test_installed_script_runs_default_config_with_two_workers(tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(ROOT / "sample_images", photos, ignore=shutil.ignore_patterns("*.py", "*.md"))
    out = tmp_path / "out"
    cmd = [
        console_script(),
        "run",
        str(ROOT / "configs" / "default.yaml"),
        str(photos),
        "-o",
        str(out),
        "-j",
        "2",
        "--report",
        str(tmp_path / "report.json"),
        "-v",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "with 2 workers" in proc.stderr  # the pool really ran
    assert proc.stdout == ""  # nothing but requested output on stdout
    inputs = sorted(p.name for p in photos.iterdir())
    written = sorted(p.name for p in out.iterdir() if p.is_file())
    assert written == inputs
    for name in written:
        src = cv2.imread(str(photos / name), cv2.IMREAD_UNCHANGED)
        img = cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)
        assert img is not None, f"{name} does not decode"
        assert img.shape == src.shape and img.dtype == src.dtype, name
    rgba = cv2.imread(str(out / "chelsea_rgba.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(
        rgba[..., 3], cv2.imread(str(photos / "chelsea_rgba.png"), cv2.IMREAD_UNCHANGED)[..., 3]
    )
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["totals"]["ok"] == len(inputs)

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0
    assert f"0 processed, {len(inputs)} skipped, 0 failed" in again.stderr
