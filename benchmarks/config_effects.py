"""Before/after numbers for every pipeline in configs/ on one sample image.

Usage: python benchmarks/config_effects.py [IMAGE [TRUTH]]
(default: sample_images/rocket_dim_warm.jpg, whose truth is sample_images/rocket.jpg)

For each config: mean brightness (Rec.709 luma, 0-1), RMS contrast (std of luma), the
cast (angle in degrees between the mean linear-light colour and neutral grey), the mean
chroma (CIE Lab a*b* length) and, when TRUTH is known (the same photo without the cast),
the colour error: the angle between the mean linear colours of the image and of TRUTH.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from imgenh import load_pipeline
from imgenh.io import read_image

ROOT = Path(__file__).resolve().parent.parent


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle in degrees between two colour vectors."""
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def linear_mean(x: np.ndarray) -> np.ndarray:
    lin = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    return lin.reshape(-1, 3).mean(axis=0)


def measures(img: np.ndarray, truth: np.ndarray | None) -> dict[str, float]:
    top = 65535.0 if img.dtype == np.uint16 else 255.0
    x = img.astype(np.float32) / top
    if x.ndim == 2:
        return {"brightness": float(x.mean()), "contrast": float(x.std()), "cast": 0.0, "chroma": 0.0}
    y = x @ np.array([0.072186, 0.715158, 0.212656], np.float32)
    lab = cv2.cvtColor(x, cv2.COLOR_BGR2Lab)
    out = {
        "brightness": float(y.mean()),
        "contrast": float(y.std()),
        "cast": angle(linear_mean(x), np.ones(3)),
        "chroma": float(np.hypot(lab[..., 1], lab[..., 2]).mean()),
    }
    if truth is not None:
        out["error"] = angle(linear_mean(x), linear_mean(truth.astype(np.float32) / top))
    return out


def main() -> None:
    samples = ROOT / "sample_images"
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else samples / "rocket_dim_warm.jpg"
    truth_path = Path(sys.argv[2]) if len(sys.argv) > 2 else None
    if truth_path is None and path.name == "rocket_dim_warm.jpg":
        truth_path = samples / "rocket.jpg"
    image = read_image(path)
    truth = read_image(truth_path).pixels if truth_path else None
    before = measures(image.pixels, truth)
    print(f"{path.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in before.items()))
    print(f"{'config':<20} " + " ".join(f"{k:>17}" for k in before))
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        out, _ = load_pipeline(config).apply(image.pixels)
        after = measures(out, truth)
        cells = [f"{before[k]:7.3f} -> {after[k]:6.3f}" for k in before]
        print(f"{config.stem:<20} " + " ".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()
