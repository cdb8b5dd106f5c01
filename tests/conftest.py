"""Fixtures shared by the test suite: small deterministic images built from real photos."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import settings

# In CI the property tests use fixed seeds, so a run is reproducible; locally they keep
# exploring new examples.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
CONFIGS = ROOT / "configs"


def _photo() -> np.ndarray:
    """A real photo (BGR uint8), or a smooth synthetic scene if the samples are missing."""
    for name in sorted(SAMPLES.glob("*.jpg")) if SAMPLES.is_dir() else []:
        img = cv2.imdecode(np.fromfile(name, np.uint8), cv2.IMREAD_COLOR)
        if img is not None:
            return cv2.resize(img, (96, 64), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:64, 0:96]
    rng = np.random.default_rng(0)
    base = np.stack([xx * 2.5, yy * 3.5, (xx + yy) * 1.5], axis=-1) + rng.normal(0, 8, (64, 96, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def photo8() -> np.ndarray:
    """64x96 BGR uint8 crop of a real photo."""
    return _photo()


@pytest.fixture(scope="session")
def photo16(photo8) -> np.ndarray:
    """The same photo as 16-bit, with low bits filled in so it is not just 8-bit scaled."""
    rng = np.random.default_rng(1)
    return (
        (photo8.astype(np.uint32) * 257 + rng.integers(0, 200, photo8.shape)).clip(0, 65535).astype(np.uint16)
    )


@pytest.fixture(scope="session")
def gray8(photo8) -> np.ndarray:
    """Grey version of the photo, uint8."""
    return cv2.cvtColor(photo8, cv2.COLOR_BGR2GRAY)


@pytest.fixture(scope="session")
def gray16(photo16) -> np.ndarray:
    """Grey version of the 16-bit photo."""
    return cv2.cvtColor(photo16, cv2.COLOR_BGR2GRAY)
