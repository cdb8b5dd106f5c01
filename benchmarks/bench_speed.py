"""Throughput of `imgenh run` against the decode+encode floor and ImageMagick's mogrify.

Usage: python benchmarks/bench_speed.py [--images 8] [--megapixels 12] [--jobs 2]

Makes N JPEGs (q92) of the given size from the sample photos, then times, in one run on
this machine:
  floor     decode + encode of every image with OpenCV, in the same number of processes
  imgenh    `imgenh run` of the same pipeline (gamma, 1%/99% stretch, 3x3 median, unsharp)
  default   `imgenh run configs/default.yaml`
  mogrify   ImageMagick `mogrify` with the equivalent options (if installed)
and prints each as seconds and as a ratio to the floor. Ratios are what to compare across
machines; seconds depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = """version: 1
name: bench
steps:
  - {op: gamma, value: 1.2}
  - {op: stretch, low: 1, high: 99, linked: false}
  - {op: median, size: 3}
  - {op: sharpen, sigma: 1.0, amount: 0.8, threshold: 0.0}
output: {quality: 92}
"""
MOGRIFY = [
    "-gamma",
    "1.2",
    "-channel",
    "RGB",
    "-contrast-stretch",
    "1%x1%",
    "+channel",
    "-median",
    "3",
    "-unsharp",
    "0x1+0.8+0",
    "-quality",
    "92",
]


def make_inputs(folder: Path, count: int, megapixels: float) -> None:
    photos = sorted((ROOT / "sample_images").glob("*.jpg"))
    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = int(h * 4 / 3)
    rng = np.random.default_rng(0)
    for i in range(count):
        img = cv2.imread(str(photos[i % len(photos)]))
        big = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
        noisy = np.clip(big + rng.normal(0, 4, big.shape), 0, 255).astype(np.uint8)  # camera-like texture
        cv2.imwrite(str(folder / f"img{i:03d}.jpg"), noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])


def _floor_one(args):
    src, dst = args
    cv2.setNumThreads(1)
    img = cv2.imdecode(np.fromfile(src, np.uint8), cv2.IMREAD_UNCHANGED)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    Path(dst).write_bytes(buf.tobytes())


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--megapixels", type=float, default=12)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    imgenh = str(Path(sys.executable).parent / "imgenh")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "in"
        src.mkdir()
        make_inputs(src, args.images, args.megapixels)
        (tmp / "bench.yaml").write_text(PIPELINE)
        files = sorted(src.iterdir())
        results = {}

        def floor():
            out = tmp / "floor"
            out.mkdir()
            # spawn, not fork: a child forked after OpenCV started its thread pool can hang.
            with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                list(pool.map(_floor_one, [(f, out / f.name) for f in files]))

        results["floor (decode+encode)"] = timed(floor)
        for label, pipeline in (
            ("imgenh bench pipeline", tmp / "bench.yaml"),
            ("imgenh configs/default.yaml", ROOT / "configs" / "default.yaml"),
        ):
            out = tmp / label.split()[1].replace("/", "_")
            cmd = [imgenh, "run", str(pipeline), str(src), "-o", str(out), "-j", str(args.jobs), "-q"]
            results[label] = timed(lambda cmd=cmd: subprocess.run(cmd, check=True))
        if (
            shutil.which("mogrify")
            and b"ImageMagick" in subprocess.run(["mogrify", "-version"], capture_output=True).stdout
        ):
            out = tmp / "magick"
            out.mkdir()
            # One mogrify per core over a share of the files, as a shell user would parallelise it.
            shares = [files[i :: args.jobs] for i in range(args.jobs)]

            def mogrify():
                procs = [
                    subprocess.Popen(["mogrify", "-path", str(out), *MOGRIFY, *map(str, share)])
                    for share in shares
                    if share
                ]
                for p in procs:
                    p.wait()

            results["ImageMagick mogrify (same pipeline)"] = timed(mogrify)
    base = results["floor (decode+encode)"]
    mp = args.images * args.megapixels
    print(f"{args.images} images x {args.megapixels:g} MP, {args.jobs} processes")
    for label, seconds in results.items():
        print(f"  {label:<38} {seconds:7.2f} s  {mp / seconds:6.1f} MP/s  {seconds / base:5.2f}x floor")


if __name__ == "__main__":
    main()
