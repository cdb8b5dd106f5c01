"""Stats.mean on float images (the look fit's working copies) computes the histogram's mean directly."""

import numpy as np
import pytest

from imgenh.ops.contract import Stats
from imgenh.pixels import quantised_counts


def _counted_mean(values: np.ndarray) -> float:
    counts = quantised_counts(values)
    return float(np.dot(np.linspace(0.0, 1.0, counts.size), counts) / max(counts.sum(), 1))


@pytest.mark.parametrize("channel", [None, 0, 1, 2, "luma"])
def test_float_mean_equals_the_histogram_mean(channel):
    rng = np.random.default_rng(3)
    img = rng.random((37, 53, 3), dtype=np.float32)
    img[0, :5] = [[0, 0, 0], [1, 1, 1], [-0.2, 1.3, 0.5], [0.5 / 65535, 1.5 / 65535, 2.5 / 65535], [2, -1, 0]]
    stats = Stats(img)
    expected = Stats(img).histogram(channel)
    expected = float(np.dot(*expected) / max(expected[1].sum(), 1))
    assert stats.mean(channel) == pytest.approx(expected, abs=1e-12)
    # ... and not the plain mean of the values, which the levels' rounding and clipping move
    assert stats.mean(channel) != pytest.approx(float(np.mean(stats._float_values(channel))), abs=1e-9)


def test_grey_and_nan_images_keep_the_counted_mean():
    rng = np.random.default_rng(4)
    grey = rng.random((20, 30), dtype=np.float32)
    assert Stats(grey).mean(None) == pytest.approx(_counted_mean(grey), abs=1e-12)
    assert Stats(grey).mean("luma") == pytest.approx(_counted_mean(grey), abs=1e-12)
    grey[3, 4] = np.nan  # counting skips it; so does the mean
    assert Stats(grey).mean(None) == pytest.approx(_counted_mean(grey), abs=1e-12)
