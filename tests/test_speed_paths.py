"""Fast paths agree with the plain computation they replace (issue 11).

Each fast route (strips instead of whole-image float copies, fused tables) is checked here
against the straightforward whole-image version on images large enough to take it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from helpers import assert_images_close, fused_and_sequential

from imgenh.ops import local
from imgenh.pixels import from_float, to_float


def _denoise_chroma_whole(img: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """denoise_chroma as one float YCrCb image through guided_filter (the route before strips)."""
    ycc = cv2.cvtColor(to_float(img), cv2.COLOR_BGR2YCrCb)
    y = np.ascontiguousarray(ycc[..., 0])
    for c in (1, 2):
        ycc[..., c] = local.guided_filter(y, np.ascontiguousarray(ycc[..., c]), radius, eps)
    return from_float(cv2.cvtColor(ycc, cv2.COLOR_YCrCb2BGR), img.dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_denoise_chroma_strips_match_the_whole_image_route(photo8, dtype):
    # Taller and wider than WORK_SIDE, with an odd height (a short last strip).
    big = cv2.resize(
        photo8, (local.WORK_SIDE + 91, 2 * local.WORK_SIDE // 3 + 7), interpolation=cv2.INTER_CUBIC
    )
    noisy = np.clip(big + np.random.default_rng(1).normal(0, 12, big.shape), 0, 255).astype(np.uint8)
    img = {np.uint8: noisy, np.uint16: noisy.astype(np.uint16) * 257, np.float32: to_float(noisy)}[dtype]
    out = local.denoise_chroma(img, None, radius=3, eps=0.002, strength=1.0, block_radius=None)
    expected = _denoise_chroma_whole(img, 3, 0.002)
    diff = np.abs(out.astype(np.float64) - expected)
    assert out.dtype == img.dtype
    if dtype == np.float32:
        assert diff.max() < 1e-5
    else:  # float rounding may move a value across a rounding boundary: one level, rarely
        assert diff.max() <= 1
        assert np.mean(diff > 0) < 0.01


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize(
    ("shape", "size"),
    [
        ((300, 410), (53, 39)),
        ((64, 64), (64, 64)),
        ((129, 97), (97, 1)),
        ((7, 1000), (512, 4)),
        ((250, 200), (25, 20)),
    ],
)
def test_area_means_equal_opencv_area_resize(dtype, shape, size):
    # denoise_chroma's shrunk copy from running sums: OpenCV's INTER_AREA means (computed here
    # in float64) for any ratio, strips of the integral included (shapes taller than a strip,
    # shorter than one, integer and non-integer ratios, a copy of the same size).
    top = {np.uint8: 255, np.uint16: 65535, np.float32: 1.0}[dtype]
    values = np.random.default_rng(2).random((*shape, 3)) * top
    img = values.astype(np.float32) if dtype == np.float32 else np.rint(values).astype(dtype)
    expected = cv2.resize(img.astype(np.float64), size, interpolation=cv2.INTER_AREA)
    out = local._area_means(img, size)
    assert out.dtype == np.float32 and out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=top * 1e-6)


@pytest.mark.parametrize(
    "steps",
    [
        [("white_balance", {"method": "auto", "strength": 0.5}), ("stretch", {"low": 1.0, "high": 99.0})],
        [("gamma", {"value": 1.3}), ("white_balance", {"method": "gray_world"})],
        [("white_balance", {"method": "manual", "gains": [1.2, 1.0, 0.8]}), ("gamma", {"auto": True})],
    ],
    ids=["learned+stretch", "gamma+gray_world", "gains+auto_gamma"],
)
def test_white_balance_fuses_with_its_neighbours(photo8, photo16, steps):
    # white_balance is a pointwise step: one table with the steps around it, estimated from
    # the pixels as they stand. Within 1 LSB of the steps one after the other on 8 bit (the
    # fused table is rounded once, the sequence twice), 4 LSB of 16 bits (see test_ops_tone).
    for img, atol in ((photo8, 1), (photo16, 4)):
        fused, seq, reports = fused_and_sequential(img, steps)
        assert_images_close(fused, seq, atol, f"fused-wb-{steps[0][0]}")
        wb = next(r for r in reports if r["op"] == "white_balance")
        assert len(wb["gains"]) == 3


def test_denoise_chroma_returns_an_image_it_leaves_alone_without_copying_it(photo8, gray8):
    """Grey, strength 0 and a clean photo under auto: the input array itself (no 12 MP copy),
    and a pipeline that goes on after it still leaves the caller's array as it was."""
    from imgenh.pipeline import apply_steps
    from imgenh.pipeline_file import pipeline_from_steps

    assert local.denoise_chroma(gray8, None, radius=2, eps=0.002, strength=1.0, block_radius=None) is gray8
    assert local.denoise_chroma(photo8, None, radius=2, eps=0.002, strength=0.0, block_radius=None) is photo8
    clean = cv2.resize(photo8, (384, 256), interpolation=cv2.INTER_CUBIC)
    before = clean.copy()
    steps = pipeline_from_steps(
        [
            {"op": "denoise_chroma", "radius": 2, "strength": "auto"},
            {"op": "gamma", "value": 1.3},
            {"op": "median", "size": 3},
        ]
    ).steps
    alone, reports = apply_steps(clean, steps[:1])
    assert reports[0]["strength"] == 0.0 and alone is clean
    out, _ = apply_steps(clean, steps)
    assert np.array_equal(clean, before) and not np.shares_memory(out, clean)
    assert np.array_equal(out, apply_steps(before, steps[1:])[0])  # as if denoise_chroma were not there
