"""What the quality figures, thumbnails and preview cost per image, against decoding it.

Usage: python benchmarks/bench_figures.py [--megapixels 12] [--rounds 5]

Makes one JPEG (q92) of the given size from a sample photo, then times in this process
(best of N rounds, one thread):
  decode     cv2.imdecode of the file (the floor a run pays anyway)
  figures    imgenh.quality.figures on the decoded pixels, and each figure alone
  thumbnail  imgenh.html_report.thumbnail_data_uri (160 px JPEG)
  extras     imgenh.html_report.image_extras(before, after): what a run adds per image for
             --report figures and the HTML report
  preview    imgenh.preview.render_sheet with configs/default.yaml, and the pipeline alone
and prints seconds and the ratio to decode. Ratios are what to compare across machines.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from imgenh import load_pipeline
from imgenh import quality as q
from imgenh.html_report import image_extras, thumbnail_data_uri
from imgenh.io import Image
from imgenh.preview import render_sheet

ROOT = Path(__file__).resolve().parent.parent


def best(func, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    photo = cv2.imread(str(ROOT / "sample_images" / "astronaut.jpg"))
    width = round((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    big = cv2.resize(photo, (width, width * 3 // 4), interpolation=cv2.INTER_CUBIC)
    data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 92])[1]
    pixels = cv2.imdecode(data, cv2.IMREAD_COLOR)
    img = q.colour_planes(pixels)
    luma = q.luma_levels(img)
    pipeline = load_pipeline(ROOT / "configs" / "default.yaml")
    rows = [("decode", best(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR), args.rounds))]
    rows += [
        ("figures", best(lambda: q.figures(pixels), args.rounds)),
        ("  luma + histogram", best(lambda: q.histogram256(q.luma_levels(img)), args.rounds)),
        ("  cast_degrees", best(lambda: q.cast_degrees(img), args.rounds)),
        ("  colourfulness", best(lambda: q.colourfulness(img), args.rounds)),
        ("  sharpness", best(lambda: q.sharpness(luma), args.rounds)),
        ("  noise_sigma", best(lambda: q.noise_sigma(luma), args.rounds)),
        ("thumbnail", best(lambda: thumbnail_data_uri(pixels), args.rounds)),
        ("extras (before + after)", best(lambda: image_extras(pixels, pixels), args.rounds)),
        ("pipeline default.yaml", best(lambda: pipeline.apply(pixels), max(1, args.rounds // 2))),
        (
            "preview default.yaml",
            best(lambda: render_sheet(pipeline, Image(pixels)), max(1, args.rounds // 2)),
        ),
    ]
    floor = rows[0][1]
    print(f"{pixels.shape[1]}x{pixels.shape[0]} ({pixels.shape[0] * pixels.shape[1] / 1e6:.1f} MP), 1 thread")
    for name, seconds in rows:
        print(f"{name:<26} {seconds * 1000:8.1f} ms  {seconds / floor:6.2f}x decode")


if __name__ == "__main__":
    np.seterr(all="raise")
    main()
