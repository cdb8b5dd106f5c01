"""How well, and how fast, `imgenh fit PIPELINE` recovers the `{fit: ...}` parameters of hidden pipelines.

Usage: python benchmarks/fit_search.py [--timing-only | --accuracy-only] [--budget N] [--pipelines K]

Accuracy: K random pipelines of 3-4 real imgenh operators with random values (seeds 21...)
edit real photos (sample_images and scikit-image's) at the working size (384 px). The same
pipeline, with `{fit: [lo, hi]}` / `{fit: [a, b]}` markers in place of its values, is fitted
on 8 photos; 3 other photos are never used for fitting and give the held-out error. Per
pipeline: mean CIEDE2000 of doing nothing / fitted (train) / fitted (held-out), the
evaluations spent and the seconds.

Timing: 20 pairs of 12 MP JPEGs (q92) on disk edited by a hidden 3-step pipeline, fitted with
a 3-parameter pipeline as `imgenh fit my.yaml` does (match, read + working copies, search,
honest errors, render), with the default budget.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import yaml

from imgenh.fit import load_pairs, match_pairs
from imgenh.fit.pairs import Pair, PairImages, resize_to_side
from imgenh.fit.render import render_pipeline
from imgenh.fit.search import DEFAULT_BUDGET, fit_search
from imgenh.fit.select import pipeline_errors
from imgenh.fit.space import load_space, parse_space
from imgenh.pipeline_file import pipeline_from_steps
from imgenh.pixels import to_float

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ("astronaut", "chelsea", "coffee", "immunohistochemistry", "retina", "sample_rocket_dim_warm",
         "sample_camera", "motorcycle")  # fmt: skip
HELD_OUT = ("rocket", "hubble_deep_field", "sample_chelsea_rgba")
SIDE = 384


def photos() -> dict[str, np.ndarray]:
    """BGR uint8 photos: scikit-image's colour photos and the repository's sample_images."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from skimage import data

        out = {}
        for name in ("astronaut", "chelsea", "coffee", "immunohistochemistry", "retina", "rocket",
                     "hubble_deep_field"):  # fmt: skip
            out[name] = np.ascontiguousarray(getattr(data, name)()[..., :3][..., ::-1])
        out["motorcycle"] = np.ascontiguousarray(data.stereo_motorcycle()[0][..., ::-1])
    for path in sorted((ROOT / "sample_images").glob("*.*g")):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)  # rgba and 16-bit read as 8-bit BGR
        if img is not None:
            out[f"sample_{path.stem}"] = img
    return out


def _u(rng, lo, hi, digits=3):
    return round(float(rng.uniform(lo, hi)), digits)


# Each maker draws a step's true values and gives the step with markers (ranges wider than the draws).
MAKERS = {
    "gamma": lambda r: ({"value": _u(r, 0.6, 1.7)}, {"value": {"fit": [0.4, 2.5]}}),
    "levels": lambda r: (
        {"black": _u(r, 0, 0.08), "white": _u(r, 0.85, 1)},
        {"black": {"fit": [0, 0.2]}, "white": {"fit": [0.7, 1]}},
    ),
    "saturation": lambda r: ({"factor": _u(r, 0.6, 1.6)}, {"factor": {"fit": [0.3, 2]}}),
    "white_balance": lambda r: (
        {"method": "manual", "gains": [_u(r, 0.8, 1.2), 1, _u(r, 0.8, 1.2)]},
        {"method": "manual", "gains": [{"fit": [0.6, 1.5]}, 1, {"fit": [0.6, 1.5]}]},
    ),
    "stretch": lambda r: (
        {"low": _u(r, 0, 2, 2), "high": _u(r, 98, 100, 2)},
        {"low": {"fit": [0, 5]}, "high": {"fit": [95, 100]}},
    ),
    "sigmoid": lambda r: (
        {"contrast": _u(r, 2, 7), "midpoint": _u(r, 0.35, 0.6)},
        {"contrast": {"fit": [0.5, 10]}, "midpoint": {"fit": [0.2, 0.8]}},
    ),
    "shadows_highlights": lambda r: ({"shadows": _u(r, 0.2, 0.9)}, {"shadows": {"fit": [0, 1]}}),
    "auto_white": lambda r: (
        {"method": ["gray_world", "white_patch", "shades_of_gray"][int(r.integers(3))]},
        {"method": {"fit": ["gray_world", "white_patch", "shades_of_gray"]}},
    ),
}


def hidden_pipeline(seed: int) -> tuple[list[dict], list[dict]]:
    """3-4 different operators in random order with random values, and the same with markers."""
    rng = np.random.default_rng(seed)
    names = list(MAKERS)
    picked = [names[i] for i in rng.permutation(len(names))[: int(rng.integers(3, 5))]]
    if "auto_white" in picked and "white_balance" in picked:
        picked.remove("white_balance")
    truth, markers = [], []
    for name in picked:
        true, marked = MAKERS[name](rng)
        op = "white_balance" if name == "auto_white" else name
        truth.append({"op": op, **true})
        markers.append({"op": op, **marked})
    return truth, markers


def in_memory_pairs(images: dict, steps: list[dict], names) -> list[PairImages]:
    """Working copies (SIDE px) of the photos and of what ``steps`` make of the full-size 8-bit photos."""
    pipeline = pipeline_from_steps(steps)
    pairs = []
    for name in names:
        before = images[name]
        after, _ = pipeline.apply(before)
        pairs.append(
            PairImages(
                Pair(name, Path(name), Path(name)),
                to_float(resize_to_side(before, SIDE)),
                to_float(resize_to_side(after, SIDE)),
            )
        )
    return pairs


def accuracy(count: int, budget: int) -> None:
    images = photos()
    print(f"Hidden pipelines: fitted on {len(TRAIN)} photos, {len(HELD_OUT)} held out; budget {budget}")
    print("mean CIEDE2000           nothing  train  held-out   evals  seconds  pipeline (true values)")
    rows = []
    for seed in range(21, 21 + count):
        truth, markers = hidden_pipeline(seed)
        pairs = in_memory_pairs(images, truth, TRAIN + HELD_OUT)
        space = parse_space(yaml.safe_dump({"version": 1, "steps": markers}, sort_keys=False))
        train = [p for p in pairs if p.pair.key in TRAIN]
        start = time.perf_counter()
        # holdout=0: the held-out photos are a fixed set, measured below and never fitted on.
        fitted = fit_search(space, train, holdout=0, seed=0, budget=budget)
        seconds = time.perf_counter() - start
        held = pipeline_errors(fitted.steps, [p for p in pairs if p.pair.key in HELD_OUT], ["held-out"] * 3)
        nothing = np.mean([e.nothing_done for e in held])
        row = (nothing, fitted.mean_error("train"), np.mean([e.fitted for e in held]))
        rows.append(row)
        desc = "; ".join(
            f"{s['op']} " + " ".join(f"{k}={v}" for k, v in s.items() if k != "op") for s in truth
        )
        print(f"  seed {seed}            {row[0]:7.2f} {row[1]:6.2f} {row[2]:9.2f}  {fitted.evaluations:6d}"
              f"  {seconds:7.1f}  {desc}")  # fmt: skip
        print("      fitted: " + "; ".join(v.split(": ", 1)[0].split(" ", 1)[1] + "=" + v.rsplit("-> ", 1)[1]
                                  for v in space.describe(fitted.values)))  # fmt: skip
    means = np.mean(rows, axis=0)
    print(f"  mean               {means[0]:7.2f} {means[1]:6.2f} {means[2]:9.2f}")


def write_12mp_pairs(root: Path, hidden: list[dict], count: int = 20) -> None:
    """``count`` 12 MP (4000x3000) before/after JPEG pairs, q92, edited by ``hidden``."""
    pipeline = pipeline_from_steps(hidden)
    images = list(photos().values())
    for side in ("before", "after"):
        (root / side).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        src = images[i % len(images)]
        src = src if i < len(images) else np.ascontiguousarray(src[:, ::-1])
        big = cv2.resize(src, (4000, 3000), interpolation=cv2.INTER_CUBIC)
        after, _ = pipeline.apply(big)
        cv2.imwrite(str(root / "before" / f"IMG_{i:04d}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(root / "after" / f"IMG_{i:04d}.jpg"), after, [cv2.IMWRITE_JPEG_QUALITY, 92])


TIMING_PIPELINE = """\
version: 1
steps:
  - op: levels
    black: {fit: [0, 0.2]}
  - op: gamma
    value: {fit: [0.4, 2.5]}
  - op: saturation
    factor: {fit: [0.3, 2]}
"""


def timing(budget: int) -> None:
    hidden = [
        {"op": "levels", "black": 0.04},
        {"op": "gamma", "value": 1.3},
        {"op": "saturation", "factor": 1.25},
    ]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        print("writing 20 pairs of 12 MP JPEGs ...", flush=True)
        write_12mp_pairs(root, hidden)
        (root / "my.yaml").write_text(TIMING_PIPELINE)
        t0 = time.perf_counter()
        space = load_space(root / "my.yaml")
        match = match_pairs(root / "before", root / "after")
        pairs, refused = load_pairs(match.pairs)
        t1 = time.perf_counter()
        result = fit_search(space, pairs, seed=0, budget=budget)
        t2 = time.perf_counter()
        render_pipeline(result)
        t3 = time.perf_counter()
    print(
        f"20 pairs of 12 MP JPEGs, 3 parameters: {t3 - t0:.1f} s in all (read + check + working copies "
        f"{t1 - t0:.1f} s, search + honest errors {t2 - t1:.1f} s for {result.evaluations} evaluations, "
        f"render {t3 - t2:.2f} s); {len(refused)} refused"
    )
    print("  fitted: " + "; ".join(space.describe(result.values)))
    print(
        f"  mean CIEDE2000 train {result.mean_error('train'):.2f} (nothing {result.mean_error('train', False):.2f}), "
        f"held-out {result.mean_error('held-out'):.2f} (nothing {result.mean_error('held-out', False):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--accuracy-only", action="store_true")
    parser.add_argument("--budget", type=int, default=DEFAULT_BUDGET)
    parser.add_argument("--pipelines", type=int, default=6)
    args = parser.parse_args()
    print(f"imgenh fit PIPELINE benchmark; python {sys.version.split()[0]}, OpenCV {cv2.__version__}")
    if not args.timing_only:
        accuracy(args.pipelines, args.budget)
    if not args.accuracy_only:
        timing(args.budget)


if __name__ == "__main__":
    main()
