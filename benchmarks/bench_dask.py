"""The cost of the cluster path: the same images through loky and through a Dask LocalCluster.

Generates N JPEGs (from sample_images/astronaut.jpg, resized), then runs ``imgenh run
configs/default.yaml`` over them with ``--backend loky`` and ``--backend dask`` (a
LocalCluster of the same number of single-threaded processes), interleaved, ``--overwrite``
so every round does the work. Prints the median wall time of each (whole command: Python
start, pool or cluster start, work, shutdown) and the run's own seconds, and the ratios.
Not a test: run it by hand (needs the dask extra).

Usage::

    python benchmarks/bench_dask.py [--images N] [--size PIXELS] [--jobs J] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def make_images(folder: Path, count: int, size: int) -> None:
    """``count`` different ``size`` x ``size`` JPEGs made from a sample photo."""
    folder.mkdir(parents=True)
    photo = cv2.resize(cv2.imread(str(ROOT / "sample_images" / "astronaut.jpg")), (size, size))
    for i in range(count):
        cv2.imwrite(
            str(folder / f"img{i:04d}.jpg"), np.roll(photo, i * 3, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 92]
        )


def run(tmp: Path, backend: str, jobs: int) -> tuple[float, float]:
    """One run; (wall seconds of the command, the run's own seconds from its report)."""
    report = tmp / f"{backend}.json"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "imgenh", "run", str(ROOT / "configs" / "default.yaml"), str(tmp / "in")]
        + ["-o", str(tmp / backend), "--overwrite", "-j", str(jobs), "--backend", backend]
        + ["--report", str(report), "-q"],
        check=True,
    )
    wall = time.perf_counter() - start
    return wall, json.loads(report.read_text())["totals"]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        make_images(tmp / "in", args.images, args.size)
        times: dict[str, list[tuple[float, float]]] = {"loky": [], "dask": []}
        for _ in range(args.rounds):
            for backend in times:
                times[backend].append(run(tmp, backend, args.jobs))
    print(f"{args.images} images x {args.size}x{args.size}, {args.jobs} workers, median of {args.rounds}")
    median = {
        b: (statistics.median(w for w, _ in t), statistics.median(s for _, s in t)) for b, t in times.items()
    }
    for backend, (wall, seconds) in median.items():
        rate = args.images / wall
        print(f"  {backend:5s} command {wall:6.2f} s ({rate:5.1f} img/s)   run {seconds:6.2f} s")
    (lw, ls), (dw, ds) = median["loky"], median["dask"]
    print(f"  dask / loky: command {dw / lw:.2f}x, run {ds / ls:.2f}x")


if __name__ == "__main__":
    main()
