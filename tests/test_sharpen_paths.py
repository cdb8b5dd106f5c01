"""Sharpen with amount 1 and no threshold rounds its blur to 8 bits: the same result as a float blur."""

import cv2
import numpy as np
import pytest

from imgenh.ops.filters import im_blur_kernel, unsharp_mask


@pytest.mark.parametrize("amount", [1.0, 2.0, 0.5])
def test_8bit_sharpen_is_the_formula_rounded_once(amount):
    # Amount 1 takes the 8-bit blur: 2 in - round(blur) is round(2 in - blur). Any other amount
    # must not (3 in - 2 round(blur) misses round(3 in - 2 blur) on about half the pixels).
    rng = np.random.default_rng(7)
    img = cv2.GaussianBlur(rng.integers(0, 256, (203, 157, 3), dtype=np.uint8), (0, 0), 1.5)
    img[40:90, 30:80] = 255  # saturated and dark blocks: the sum clips at both ends
    img[100:140, 90:150] = 0
    kernel = im_blur_kernel(0, 1.0)
    blur = cv2.sepFilter2D(
        img.astype(np.float64), cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REPLICATE
    )
    exact = (1.0 + amount) * img - amount * blur
    expected = np.clip(np.floor(exact + 0.5), 0, 255)
    out = unsharp_mask(img, 0, 1.0, amount, 0.0)
    differs = out != expected
    # Only where the exact value sits on a half level can the roundings part, and then by 1.
    assert np.all(np.abs(exact[differs] % 1.0 - 0.5) < 1e-3)
    assert np.abs(out.astype(int) - expected).max() <= 1
