"""Shared test helpers: image comparison with a stated tolerance, and ImageMagick as a reference."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

FAILED_DIR = Path(os.environ.get("IMGENH_TEST_FAILURES", tempfile.gettempdir())) / "imgenh-test-failures"


def _magick_binary() -> str | None:
    exe = shutil.which("convert")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if "ImageMagick" in out else None


MAGICK = _magick_binary()
requires_magick = pytest.mark.skipif(MAGICK is None, reason="ImageMagick `convert` not installed")


def magick(img: np.ndarray, *args: str) -> np.ndarray:
    """Run ImageMagick's ``convert`` on ``img`` (BGR or grey, uint8/uint16) and read the result back.

    The image goes through lossless PNG both ways; ``-depth`` keeps the input depth.
    """
    depth = "16" if img.dtype == np.uint16 else "8"
    if img.ndim == 2:
        out_spec = ["-colorspace", "Gray", "-depth", depth, "PNG:{dst}"]
    else:
        out_spec = ["-depth", depth, ("PNG48:{dst}" if depth == "16" else "PNG24:{dst}")]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.png", Path(tmp) / "out.png"
        cv2.imwrite(str(src), img)
        cmd = [MAGICK, str(src), *args, *(part.format(dst=dst) for part in out_spec)]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    if img.ndim == 2 and out.ndim == 3:
        out = out[..., 0]
    return out


def assert_images_close(
    actual: np.ndarray, expected: np.ndarray, atol: float, name: str = "image", max_fraction: float = 0.0
) -> None:
    """Assert ``|actual - expected| <= atol`` everywhere (or on all but ``max_fraction`` of pixels).

    On failure both images are saved under ``FAILED_DIR`` so they can be looked at.
    """
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    diff = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
    over = float(np.mean(diff > atol))
    if over > max_fraction:
        FAILED_DIR.mkdir(parents=True, exist_ok=True)
        for label, arr in (("actual", actual), ("expected", expected)):
            if arr.dtype in (np.uint8, np.uint16):
                cv2.imwrite(str(FAILED_DIR / f"{name}-{label}.png"), arr)
        raise AssertionError(
            f"{name}: max diff {diff.max():g} > {atol:g} on {over:.4%} of values "
            f"(allowed {max_fraction:.4%}); images saved in {FAILED_DIR}"
        )


def invoke_in(cwd: Path | None, args: list[str], runner=None, **kwargs):
    """Run ``imgenh ARGS`` through Click's test runner from folder ``cwd`` (the current one when None)."""
    from click.testing import CliRunner

    from imgenh.cli import main

    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        return (runner or CliRunner()).invoke(main, args, catch_exceptions=False, **kwargs)
    finally:
        os.chdir(old)


def make_step(name: str, index: int = 0, **params):
    """A validated :class:`imgenh.pipeline.Step` of operator ``name`` (the test fails on bad parameters)."""
    from imgenh.ops import get_op
    from imgenh.pipeline import Step

    spec = get_op(name)
    values, errors = spec.resolve(params)
    assert not errors, errors
    return Step(spec, values, index)


def run_with_report(img: np.ndarray, name: str, **params) -> tuple[np.ndarray, dict]:
    """Apply one operator as a one-step pipeline; the image and the values it reported."""
    from imgenh.pipeline import apply_steps

    out, reports = apply_steps(img, [make_step(name, **params)])
    return out, (reports[0] if reports else {})


def fused_and_sequential(
    img: np.ndarray, steps: list[tuple[str, dict]]
) -> tuple[np.ndarray, np.ndarray, list]:
    """``steps`` run as one pipeline (pointwise steps fused), and one operator after another; and the reports."""
    from imgenh.pipeline import apply_steps, run_op

    fused, reports = apply_steps(img, [make_step(name, i, **p) for i, (name, p) in enumerate(steps)])
    seq = img
    for name, p in steps:
        seq = run_op(seq, name, **p)
    return fused, seq, reports


def angle(a, b) -> float:
    """Angle in degrees between two colour vectors."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
