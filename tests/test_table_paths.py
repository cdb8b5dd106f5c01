"""Per-channel tables on 8-bit images (the planar route of apply_table) equal a plain lookup."""

import numpy as np
import pytest

from imgenh.pixels import _LUT_STRIP_ROWS, apply_table


@pytest.mark.parametrize("dtype", [None, np.uint16, np.float32])
@pytest.mark.parametrize(
    "shape",
    [(1, 1, 3), (_LUT_STRIP_ROWS, 5, 3), (_LUT_STRIP_ROWS + 1, 7, 3), (2 * _LUT_STRIP_ROWS + 3, 33, 4)],
)
def test_per_channel_table_is_a_lookup_per_channel(shape, dtype):
    # Heights around the strip height: a short last strip, one row, exactly one strip.
    rng = np.random.default_rng(sum(shape))
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    table = rng.random((256, shape[2]))
    out = apply_table(img, table, dtype)
    kind = np.dtype(dtype or np.uint8)
    if kind == np.float32:
        lut = table.astype(np.float32)
    else:
        top = np.iinfo(kind).max
        lut = np.clip(np.rint(table * top), 0, top).astype(kind)
    expected = np.stack([lut[:, c][img[..., c]] for c in range(shape[2])], axis=-1)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)
