"""Rebuild sample_images/ from scikit-image's bundled photos (needs the `test` extra).

Run from the repository root: ``python sample_images/make_samples.py``.
"""

from pathlib import Path

import cv2
import numpy as np
from skimage import data

HERE = Path(__file__).resolve().parent


def bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def main() -> None:
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 92]
    cv2.imwrite(str(HERE / "astronaut.jpg"), bgr(data.astronaut()), jpeg)
    cv2.imwrite(str(HERE / "coffee.jpg"), bgr(data.coffee()), jpeg)
    cv2.imwrite(str(HERE / "chelsea.jpg"), bgr(data.chelsea()), jpeg)
    cv2.imwrite(str(HERE / "rocket.jpg"), bgr(data.rocket()), jpeg)
    cv2.imwrite(str(HERE / "camera.png"), data.camera())

    # 16-bit: smooth the 8-bit photo in float so the low bits carry real gradations.
    coffee = bgr(data.coffee()).astype(np.float32) / 255.0
    coffee16 = cv2.GaussianBlur(coffee, (0, 0), 0.7)
    cv2.imwrite(str(HERE / "coffee_16bit.png"), np.rint(coffee16 * 65535).astype(np.uint16))

    # RGBA: the cat with an elliptical vignette as alpha.
    cat = bgr(data.chelsea())
    h, w = cat.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    r = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    alpha = np.clip((1.2 - r) * 255 / 0.4, 0, 255).astype(np.uint8)
    cv2.imwrite(str(HERE / "chelsea_rgba.png"), np.dstack([cat, alpha]))

    # A dim, warm-cast version of the rocket launch, the kind of shot low_light and
    # color_cast are for.
    rocket = bgr(data.rocket()).astype(np.float32) / 255.0
    dim = np.power(rocket, 1.8) * np.array([0.55, 0.8, 1.0], np.float32) * 0.8
    cv2.imwrite(str(HERE / "rocket_dim_warm.jpg"), np.rint(dim * 255).astype(np.uint8), jpeg)


if __name__ == "__main__":
    main()
