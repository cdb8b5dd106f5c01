"""How long a no-op re-run takes over a large tree of already-processed images.

Generates N tiny PNGs (16x16) in a temp folder, runs ``imgenh run`` once to process them,
then times the re-run (every image up to date: skipped without decoding) as a subprocess,
wall time, and prints both. Not a test: run it by hand.

Usage::

    python benchmarks/bench_rerun.py [N] [--jobs J]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

PIPELINE = "version: 1\nsteps:\n  - op: gamma\n    value: 1.3\n"


def run(cwd: Path, *args: str) -> tuple[float, dict]:
    """Run the CLI; return (wall seconds, report totals)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "imgenh",
            "run",
            "p.yaml",
            "in",
            "-o",
            "out",
            "-r",
            "-q",
            "--report",
            "r.json",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"imgenh failed ({proc.returncode}): {proc.stderr}")
    return seconds, json.loads((cwd / "r.json").read_text())["totals"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=10_000, help="number of images [10000]")
    parser.add_argument("--jobs", default=None, help="-j for the first run [imgenh's default]")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="imgenh-bench-"))
    try:
        (root / "p.yaml").write_text(PIPELINE)
        rng = np.random.default_rng(0)
        t0 = time.perf_counter()
        for i in range(args.n):
            folder = root / "in" / f"d{i // 1000:02d}"  # 1000 per folder, like a photo archive
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"img{i:05d}.png"), rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        print(f"generated {args.n} images in {time.perf_counter() - t0:.1f} s")

        first, totals = run(root, *(["-j", args.jobs] if args.jobs else []))
        print(f"first run:  {first:7.2f} s  (ok {totals['ok']}, failed {totals['failed']})")
        rerun, totals = run(root)
        assert totals["skipped"] == args.n, totals
        print(
            f"no-op rerun: {rerun:6.2f} s  (skipped {totals['skipped']}; {rerun / args.n * 1e6:.0f} us/image)"
        )
        # same content, new mtimes: the content hash decides (one read per file, no decode)
        for p in (root / "in").rglob("*.png"):
            p.touch()
        touched, totals = run(root)
        assert totals["skipped"] == args.n, totals
        print(f"rerun after touching every input: {touched:.2f} s (hashes checked, nothing decoded)")
        print(f"ratio first/no-op: {first / rerun:.1f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
