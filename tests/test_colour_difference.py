"""CIEDE2000 in numpy against Sharma et al. 2005's published pairs and scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab

from imgenh.colour_difference import delta_e_2000, image_delta_e, lab_from_bgr, mean_delta_e

# Sharma, Wu, Dalal, Color Res. Appl. 30(1) 2005, Table 1: L1 a1 b1 L2 a2 b2 dE00 (4 decimals).
SHARMA = [
    (50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425),
    (50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615),
    (50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412),
    (50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000),
    (50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669),
    (50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195),
    (50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045),
    (50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461),
    (50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065),
    (50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492),
    (50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977),
    (50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030),
    (50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000),
    (50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000),
    (60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644),
    (63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630),
    (61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731),
    (35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645),
    (22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373),
    (36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146),
    (90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441),
    (90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381),
    (6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377),
    (2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082),
]


def test_ciede2000_matches_sharma_2005_table_1():
    data = np.array(SHARMA)
    for dtype, tol in ((np.float64, 5e-5), (np.float32, 2e-4)):
        got = delta_e_2000(data[:, 0:3].astype(dtype), data[:, 3:6].astype(dtype))
        assert got.dtype == dtype
        # The table is rounded to 4 decimals: 5e-5 in float64; float32 adds rounding.
        assert np.abs(got - data[:, 6]).max() <= tol
        swapped = delta_e_2000(data[:, 3:6].astype(dtype), data[:, 0:3].astype(dtype))
        assert np.abs(swapped - got).max() <= tol  # symmetric


def test_lab_matches_skimage(photo8, photo16):
    for img, top in ((photo8, 255), (photo16, 65535), (photo16.astype(np.float32) / 65535, 1)):
        lab = lab_from_bgr(img)
        ref = rgb2lab(img[..., ::-1].astype(np.float64) / top)
        # imgenh's white is the matrix's own (0.950456, 1, 1.088754), skimage's D65 (0.95047, 1,
        # 1.08883): a* b* differ by up to ~0.005 at full chroma.
        assert lab.dtype == np.float32 and np.abs(lab - ref).max() < 0.01


def test_image_delta_e_matches_skimage_deltaE_ciede2000(photo8):
    rng = np.random.default_rng(4)
    edited = np.clip(photo8 * np.array([0.9, 1.05, 1.1]) + rng.normal(0, 6, photo8.shape), 0, 255).astype(
        np.uint8
    )
    ours = image_delta_e(photo8, edited)
    ref = deltaE_ciede2000(rgb2lab(photo8[..., ::-1] / 255.0), rgb2lab(edited[..., ::-1] / 255.0))
    assert ours.shape == photo8.shape[:2]
    assert np.abs(ours - ref).max() < 0.01  # measured 0.004 (white point, float32)
    assert mean_delta_e(photo8, edited) == pytest.approx(float(ref.mean()), abs=1e-3)


def test_mean_delta_e_grey_and_identical(gray8, photo8):
    assert mean_delta_e(photo8, photo8) == 0.0
    as_colour = np.repeat(gray8[..., None], 3, axis=2)
    assert mean_delta_e(gray8, as_colour) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="differ in size"):
        mean_delta_e(photo8, photo8[:10])
