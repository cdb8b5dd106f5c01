"""Augmentation throughput: variants per second against the same pipeline with fixed values.

Generates N JPEGs of M megapixels (smooth gradients plus noise) in a temp folder, then times,
as subprocesses of ``imgenh run`` in interleaved rounds:

- ``floor``: a pipeline without steps (decode + encode only), one output per input;
- ``plain``: the augmentation steps with fixed values (flip, rotate 5, crop 0.85, gamma 1.1,
  gains), one output per input;
- ``augment``: the same steps with random values, ``--variants V`` outputs per input.

Each line gives the run's own seconds (the report's ``totals.seconds``: no Python start-up,
no planning) and outputs per second. Not a test: run it by hand.

Usage::

    python benchmarks/bench_augment.py [--images 8] [--megapixels 3] [--variants 4] [--jobs 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

STEPS = {
    "flip": ("    p: 0.5\n", "    direction: horizontal\n"),
    "rotate": ("    angle: {random: [-10, 10]}\n", "    angle: 5\n"),
    "crop": (
        "    scale: {random: [0.7, 1.0]}\n    x: {random: [0, 1]}\n    y: {random: [0, 1]}\n",
        "    scale: 0.85\n",
    ),
    "gamma": ("    value: {random: [0.7, 1.4], log: true}\n", "    value: 1.1\n"),
    "white_balance": (
        "    method: manual\n    gains: [{random: [0.9, 1.1]}, 1, {random: [0.9, 1.1]}]\n",
        "    method: manual\n    gains: [1.05, 1, 0.95]\n",
    ),
}


def pipeline_text(random: bool) -> str:
    """The benchmark pipeline, with random or fixed values."""
    body = "".join(f"  - op: {op}\n{params[0 if random else 1]}" for op, params in STEPS.items())
    return f"version: 1\nsteps:\n{body}"


def make_images(folder: Path, count: int, megapixels: float) -> None:
    """``count`` JPEGs (q92) of about ``megapixels``, 3:2."""
    height = int((megapixels * 1e6 / 1.5) ** 0.5)
    width = int(height * 1.5)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    for i in range(count):
        base = np.stack(
            [xx / width * 200, yy / height * 180, (xx + yy) / (width + height) * 220 + i], axis=-1
        )
        img = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"img{i:03d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 92])


def run(cwd: Path, pipeline: str, out: str, jobs: int, *extra: str) -> tuple[float, int]:
    """One run from scratch; returns (run seconds, outputs written)."""
    shutil.rmtree(cwd / out, ignore_errors=True)
    args = [sys.executable, "-m", "imgenh", "run", pipeline, "in", "-o", out, "-q", "-j", str(jobs)]
    proc = subprocess.run([*args, "--report", "r.json", *extra], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"imgenh failed ({proc.returncode}): {proc.stderr}")
    totals = json.loads((cwd / "r.json").read_text())["totals"]
    return totals["seconds"], totals["ok"]


def draw_cost(count: int = 2000) -> float:
    """Microseconds to draw one variant's pipeline (the only work augmentation adds per output)."""
    import time

    from imgenh import augment
    from imgenh.pipeline_file import parse_pipeline

    pipeline, _ = augment.for_run(parse_pipeline(pipeline_text(random=True)), variants=count, seed=7)
    start = time.perf_counter()
    for i in range(count):
        augment.draw(pipeline, "img000.jpg", i)
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--megapixels", type=float, default=3.0)
    parser.add_argument("--variants", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        (cwd / "in").mkdir()
        make_images(cwd / "in", args.images, args.megapixels)
        (cwd / "floor.yaml").write_text("version: 1\nsteps: []\n")
        (cwd / "plain.yaml").write_text(pipeline_text(random=False))
        (cwd / "aug.yaml").write_text(pipeline_text(random=True))
        cases = {
            "floor (decode + encode)": ("floor.yaml", ()),
            "plain pipeline, fixed values": ("plain.yaml", ()),
            f"augment, --variants {args.variants}": (
                "aug.yaml",
                ("--variants", str(args.variants), "--seed", "7"),
            ),
        }
        best: dict[str, tuple[float, int]] = {}
        for _ in range(args.rounds):  # interleaved, best of the rounds
            for label, (pipeline, extra) in cases.items():
                seconds, done = run(cwd, pipeline, "out", args.jobs, *extra)
                if label not in best or seconds < best[label][0]:
                    best[label] = (seconds, done)
        print(
            f"{args.images} images x {args.megapixels:g} MP JPEG, -j {args.jobs}, best of {args.rounds} rounds"
        )
        plain_rate = best["plain pipeline, fixed values"][1] / best["plain pipeline, fixed values"][0]
        for label, (seconds, done) in best.items():
            rate = done / seconds
            print(
                f"  {label:<32} {done:4d} outputs {seconds:7.2f} s {rate:7.2f} outputs/s  {rate / plain_rate:5.2f}x plain"
            )
        print(f"  drawing one variant's parameters: {draw_cost():.0f} us")


if __name__ == "__main__":
    main()
