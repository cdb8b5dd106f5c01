"""Held-out angular error of every white-balance estimator, per scene type and domain.

Usage (from the repository root):

    python benchmarks/white_balance_eval.py [--scenes 720]

Renders held-out scenes (benchmarks/wb_scenes.py: cameras HELD_OUT_CAMERAS, none seen in
training, Nikon 5100 held out whole; lights HELD_OUT_LIGHTS, none used in training; seeds
HELD_OUT_SEED + i; daylight and black-body temperatures drawn from those seeds) and prints
the mean, median and worst-25% (mean of the largest quarter) angular error in degrees
between each estimate and the true light, in the working space the operator estimates in
(linear camera RGB for ``linear`` scenes, linear sRGB for ``jpeg`` ones), overall, per scene
type, per domain, per camera and per camera balance (on the daylight / black-body locus, or a
green or magenta tint off it: wb_scenes.draw_tint), then the learned estimator's ratios to
shades of gray p 6 and how its confidence tracks its error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wb_scenes  # noqa: E402

from imgenh.ops.color import estimate_illuminant, estimate_learned, load_white_balance_model  # noqa: E402
from imgenh.pipeline import run_op  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

ESTIMATORS = {
    "gray_world": ("gray_world", {}),
    "white_patch 99": ("white_patch", {"percentile": 99}),
    "shades_of_gray p6": ("shades_of_gray", {"p": 6}),
    "shades_of_gray p12": ("shades_of_gray", {"p": 12}),
    "gray_edge o1 s1 p6": ("gray_edge", {"order": 1, "sigma": 1, "p": 6}),
    "gray_edge o1 s2 p6": ("gray_edge", {"order": 1, "sigma": 2, "p": 6}),
    "gray_edge o2 s2 p6": ("gray_edge", {"order": 2, "sigma": 2, "p": 6}),
}
BASELINE = "shades_of_gray p6"


def evaluate(
    count: int, over_stops: float = 0.0, model=None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Errors per estimator and labels per scene for ``count`` held-out scenes, each ``over_stops``
    over-exposed (0: as rendered), the learned estimate by ``model`` (None: the shipped one)."""
    errors: dict[str, list[float]] = {name: [] for name in [*ESTIMATORS, "learned"]}
    labels: dict[str, list] = {
        "type": [],
        "domain": [],
        "camera": [],
        "balance": [],
        "confidence": [],
        "expected_error": [],
    }
    for i in range(count):
        scene = wb_scenes.render(wb_scenes.HELD_OUT_SEED + i, held_out=True, over_stops=over_stops)
        for name, (method, params) in ESTIMATORS.items():
            estimate = estimate_illuminant(scene.image, method, linear=scene.linear, **params)
            errors[name].append(wb_scenes.angular_error(estimate, scene.illuminant))
        estimate, info = estimate_learned(scene.image, linear=scene.linear, model=model)
        errors["learned"].append(wb_scenes.angular_error(estimate, scene.illuminant))
        labels["type"].append(scene.scene_type)
        labels["domain"].append(scene.domain)
        labels["camera"].append(scene.camera)
        labels["balance"].append(scene.balance)
        labels["confidence"].append(info["confidence"])
        labels["expected_error"].append(info["expected_error"])
    return {k: np.array(v) for k, v in errors.items()}, {k: np.array(v) for k, v in labels.items()}


def summary(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, median, worst-25%) of angular errors."""
    worst = np.sort(values)[-max(len(values) // 4, 1) :]
    return float(values.mean()), float(np.median(values)), float(worst.mean())


def print_table(errors: dict[str, np.ndarray], rows: np.ndarray, title: str) -> None:
    print(f"\n{title} ({int(rows.sum())} scenes)")
    print(f"| {'estimator':<20} | {'mean':>5} | {'median':>6} | {'worst 25%':>9} |")
    print(f"|{'-' * 22}|{'-' * 7}|{'-' * 8}|{'-' * 11}|")
    for name, values in errors.items():
        mean, median, worst = summary(values[rows])
        print(f"| {name:<20} | {mean:5.2f} | {median:6.2f} | {worst:9.2f} |")


def print_groups(errors: dict[str, np.ndarray], labels: np.ndarray, heading: str) -> None:
    """Learned vs shades of gray p 6 per group: mean / median / worst-25% and the ratios."""
    print(f"\nper {heading}: learned vs {BASELINE} (mean / median / worst-25%)")
    for group in sorted(set(labels)):
        rows = labels == group
        ours, base = summary(errors["learned"][rows]), summary(errors[BASELINE][rows])
        ratio = f"{ours[0] / base[0]:.2f} / {ours[2] / base[2]:.2f}"
        print(
            f"  {group:<22} n={int(rows.sum()):4d}  learned {ours[0]:5.2f} / {ours[1]:5.2f} / {ours[2]:5.2f}"
            f"   sog6 {base[0]:5.2f} / {base[1]:5.2f} / {base[2]:5.2f}   ratio mean / worst {ratio}"
        )


def timing(rounds: int = 7) -> None:
    """Per-12-MP time of white_balance by method, in-process on one thread (median of rounds)."""
    cv2.setNumThreads(1)
    photo = cv2.imread(str(ROOT / "sample_images" / "astronaut.jpg"))
    img = cv2.resize(photo, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    for method in ("shades_of_gray", "learned", "gray_edge"):
        run_op(img, "white_balance", method=method)  # warm up (the model loads once)
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            run_op(img, "white_balance", method=method)
            times.append(time.perf_counter() - start)
        print(
            f"white_balance method {method:<15} {1000 * np.median(times):6.0f} ms per 12 MP (uint8, 1 thread)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=720, help="held-out scenes to render")
    parser.add_argument("--timing", action="store_true", help="only time the operator on a 12 MP image")
    parser.add_argument(
        "--over-stops",
        type=float,
        default=0.0,
        help="render every held-out scene this many stops over-exposed",
    )
    parser.add_argument("--model", type=Path, help="judge this model file instead of the shipped one")
    args = parser.parse_args()
    if args.timing:
        timing()
        return
    model = load_white_balance_model(args.model) if args.model else None
    errors, labels = evaluate(args.scenes, args.over_stops, model)
    everything = np.ones(args.scenes, bool)
    print(f"held-out cameras: {', '.join(wb_scenes.HELD_OUT_CAMERAS)}; seeds {wb_scenes.HELD_OUT_SEED}..")
    print_table(errors, everything, "all held-out scenes, angular error in degrees")
    for domain in wb_scenes.DOMAINS:
        print_table(errors, labels["domain"] == domain, f"domain {domain}")
    print_groups(errors, labels["type"], "scene type")
    print_groups(errors, labels["domain"], "domain")
    print_groups(errors, labels["camera"], "camera")
    print_groups(errors, labels["balance"], "camera balance (jpeg tints off the locus)")
    for balance in sorted(set(labels["balance"])):
        if balance != "on locus":
            print_table(errors, labels["balance"] == balance, f"{balance} (jpeg scenes, off the locus)")
    ours, base = summary(errors["learned"]), summary(errors[BASELINE])
    print(
        f"\nlearned / {BASELINE}: mean {ours[0] / base[0]:.2f}, worst-25% {ours[2] / base[2]:.2f} (target <= 0.75)"
    )
    expected = labels["expected_error"]
    edges = np.quantile(expected, [0.0, 0.25, 0.5, 0.75, 1.0])
    print("\nthe model's expected error (what confidence is made of) against the actual error, by quartile:")
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        rows = (expected >= lo) & (expected <= hi)
        mean, median, _ = summary(errors["learned"][rows])
        share = float(np.mean(labels["confidence"][rows]))
        print(
            f"  expected {lo:5.2f}-{hi:5.2f} deg: n={int(rows.sum()):4d}  actual mean {mean:5.2f}"
            f"  median {median:5.2f}  mean confidence {share:.2f}"
        )


if __name__ == "__main__":
    main()
