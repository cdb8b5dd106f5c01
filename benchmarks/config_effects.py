"""Before/after numbers for every pipeline in configs/ on one sample image.

Usage: python benchmarks/config_effects.py [IMAGE]   (default: sample_images/rocket_dim_warm.jpg)

For each config: mean brightness (Rec.709 luma, 0-1), RMS contrast (std of luma), the
colour cast (spread of the R, G, B means over their average; 0 = neutral on average) and
the mean chroma (CIE Lab a*b* length), before and after.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from imgenh import load_pipeline
from imgenh.io import read_image

ROOT = Path(__file__).resolve().parent.parent


def measures(img: np.ndarray) -> dict[str, float]:
    top = 65535.0 if img.dtype == np.uint16 else 255.0
    x = img.astype(np.float32) / top
    if x.ndim == 2:
        return {"brightness": float(x.mean()), "contrast": float(x.std()), "cast": 0.0, "chroma": 0.0}
    y = x @ np.array([0.072186, 0.715158, 0.212656], np.float32)
    means = x.reshape(-1, 3).mean(axis=0)
    lab = cv2.cvtColor(x, cv2.COLOR_BGR2Lab)
    return {
        "brightness": float(y.mean()),
        "contrast": float(y.std()),
        "cast": float((means.max() - means.min()) / means.mean()),
        "chroma": float(np.hypot(lab[..., 1], lab[..., 2]).mean()),
    }


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "sample_images" / "rocket_dim_warm.jpg"
    image = read_image(path)
    before = measures(image.pixels)
    print(f"{path.name}: " + ", ".join(f"{k} {v:.3f}" for k, v in before.items()))
    print(f"{'config':<20} {'brightness':>17} {'contrast':>17} {'cast':>17} {'chroma':>17}")
    for config in sorted((ROOT / "configs").glob("*.yaml")):
        out, _ = load_pipeline(config).apply(image.pixels)
        after = measures(out)
        cells = [f"{before[k]:7.3f} -> {after[k]:6.3f}" for k in before]
        print(f"{config.stem:<20} " + " ".join(f"{c:>17}" for c in cells))


if __name__ == "__main__":
    main()
