"""Angular error of each white-balance estimator on known casts: how `method: auto` was chosen.

Usage: python benchmarks/white_balance_methods.py

Two test sets, each image taken as neutral and multiplied in linear light by the colour of a
light (black bodies 2500-10000 K, and green, magenta, cyan, yellow tints), exposed 1.3x so
highlights clip, and quantised to 8 bits:
  photos     the sample photos, downscaled (they are only roughly neutral themselves)
  synthetic  scenes of random flat patches, neutral by construction
Prints the mean angular error (degrees) between each estimate and the true light, per set and
averaged. This chose shades of gray p 12 as `auto` before the learned estimator; `auto` is now
`learned`, chosen on spectrally rendered held-out scenes (benchmarks/white_balance_eval.py).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from imgenh.ops.color import estimate_illuminant, kelvin_to_rgb, linear_to_srgb, srgb_to_linear

ROOT = Path(__file__).resolve().parent.parent
ESTIMATORS = {
    "gray_world": ("gray_world", {}),
    "white_patch 99": ("white_patch", {"percentile": 99}),
    "white_patch 99.5": ("white_patch", {"percentile": 99.5}),
    "shades_of_gray p6": ("shades_of_gray", {"p": 6}),
    "shades_of_gray p12": ("shades_of_gray", {"p": 12}),
    "gray_edge o1 s1 p6": ("gray_edge", {"order": 1, "sigma": 1, "p": 6}),
    "gray_edge o2 s3 p6": ("gray_edge", {"order": 2, "sigma": 3, "p": 6}),
}


def lights() -> list[np.ndarray]:
    """Light colours in BGR, brightest channel 1."""
    rgb = [kelvin_to_rgb(k) for k in (2500, 3000, 4000, 5000, 7500, 10000)]
    rgb += [np.array(t) for t in ([0.8, 1, 0.8], [1, 0.75, 1], [0.7, 1, 1], [1, 1, 0.6])]
    return [c[::-1] / c.max() for c in rgb]


def photos() -> list[np.ndarray]:
    out = []
    for name in ("astronaut.jpg", "coffee.jpg", "chelsea.jpg", "rocket.jpg"):
        img = cv2.imread(str(ROOT / "sample_images" / name))
        scale = 256 / max(img.shape[:2])
        small = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        out.append(srgb_to_linear(small.astype(np.float64) / 255))
    return out


def synthetic(count: int = 6) -> list[np.ndarray]:
    scenes = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        tiles = rng.uniform(0.03, 0.75, (16, 20, 3))
        tiles[8, 10] = 0.8  # one white-ish tile, as real scenes often have
        scene = np.repeat(np.repeat(tiles, 8, axis=0), 8, axis=1)
        scenes.append(scene * np.linspace(0.8, 1.0, scene.shape[1])[None, :, None])
    return scenes


def angle(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def mean_error(scenes: list[np.ndarray], method: str, params: dict) -> float:
    errors = []
    for scene in scenes:
        for light in lights():
            cast = np.rint(linear_to_srgb(np.clip(scene * light * 1.3, 0, 1)) * 255).astype(np.uint8)
            estimate = estimate_illuminant(cast, method, linear=True, **params)
            errors.append(angle(np.asarray(estimate, np.float64), light))
    return float(np.mean(errors))


def main() -> None:
    sets = {"photos": photos(), "synthetic": synthetic()}
    print(f"{'estimator (linear light)':<24} {'photos':>8} {'synthetic':>10} {'average':>8}")
    rows = []
    for label, (method, params) in ESTIMATORS.items():
        errs = [mean_error(scenes, method, params) for scenes in sets.values()]
        rows.append((np.mean(errs), label, errs))
    for avg, label, errs in sorted(rows):
        print(f"{label:<24} {errs[0]:8.1f} {errs[1]:10.1f} {avg:8.1f}")


if __name__ == "__main__":
    main()
