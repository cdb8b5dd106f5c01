"""A fused group with one table per channel is written over an 8-bit image the run owns (issue 11).

The worker's decoded pixels (``apply_image(reuse_input=True)``) and images the pipeline made
itself take the group's result in their own memory; a caller's array (``apply_steps``) never
does. The results are those of the out-of-place pass, and an image the group leaves as it was
is still written as its input's bytes (``unchanged: copy``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import invoke_in

from imgenh import pipeline_from_steps
from imgenh.io import Image
from imgenh.pixels import apply_table, table_changes
from imgenh.worker import UNCHANGED_NOTE

PER_CHANNEL = [
    {"op": "white_balance", "method": "manual", "gains": [1.1, 1.0, 1.2]},
    {"op": "gamma", "value": 1.1},
]


def _black_and_white(shape=(40, 60, 3)) -> np.ndarray:
    """Levels 0 and 255 only: gains above 1 and a gamma move every level but these two."""
    rng = np.random.default_rng(5)
    return np.where(rng.random(shape) < 0.5, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 3])
def test_table_changes_tells_whether_a_held_level_moves(dtype, channels):
    top = int(np.iinfo(dtype).max)
    levels = np.arange(top + 1) / top
    shape = (30, 50) if channels == 1 else (30, 50, channels)
    img = np.full(shape, top // 2, dtype)
    moves_middle = levels.copy()
    moves_middle[top // 2] += 1.0 / top
    moves_others = levels.copy()
    moves_others[top // 2 + 1 :] = 1.0
    assert not table_changes(img, levels)
    assert table_changes(img, moves_middle)
    assert not table_changes(img, moves_others)  # only levels the image does not hold
    img.reshape(-1)[-1] = top - 1  # one value, in the last strip, that the table moves
    assert table_changes(img, moves_others)
    if channels == 3:  # one table per channel: only the last channel's moves the middle level
        per_channel = np.stack([levels, levels, moves_middle], axis=1)
        img = np.full(shape, top // 2, dtype)
        img[..., 2] = top // 2 - 1  # the middle level in the first two channels only
        assert not table_changes(img, per_channel)
        img[-1, -1, 2] = top // 2
        assert table_changes(img, per_channel)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shared", [True, False])
def test_apply_table_into_the_image_itself_is_apply_table(photo8, photo16, dtype, shared):
    img = photo8 if dtype == np.uint8 else photo16
    levels = np.linspace(0.0, 1.0, int(np.iinfo(dtype).max) + 1)
    table = levels**0.8 if shared else np.stack([levels**0.8, levels, levels**1.3], axis=1)
    expected = apply_table(img, table)
    own = img.copy()
    assert apply_table(own, table, out=own) is own
    np.testing.assert_array_equal(own, expected)
    with pytest.raises(ValueError, match="C-contiguous"):
        apply_table(img, table, out=np.empty(img.shape[::-1], img.dtype))


def test_reuse_input_writes_the_result_over_the_decoded_pixels(photo8):
    pipeline = pipeline_from_steps(PER_CHANNEL)
    expected, _ = pipeline.apply(photo8)
    decoded = Image(photo8.copy())
    out, _ = pipeline.apply_image(decoded, reuse_input=True)
    np.testing.assert_array_equal(out.pixels, expected)
    # Written over: the same memory, but never the input's own array object (that means "unchanged").
    assert out.pixels is not decoded.pixels and np.shares_memory(out.pixels, decoded.pixels)
    kept = Image(photo8.copy())
    out, _ = pipeline.apply_image(kept)  # without reuse_input the input is left alone
    np.testing.assert_array_equal(kept.pixels, photo8)
    assert not np.shares_memory(out.pixels, kept.pixels)


def test_a_group_that_moves_no_held_level_returns_the_input_itself():
    img = _black_and_white()
    decoded = Image(img.copy())
    out, _ = pipeline_from_steps(PER_CHANNEL).apply_image(decoded, reuse_input=True)
    assert out.pixels is decoded.pixels
    np.testing.assert_array_equal(out.pixels, img)


def test_apply_steps_never_writes_the_callers_array(photo8):
    # The median's result is the pipeline's own: the group after it is written over that, not the input.
    steps = [{"op": "median", "size": 3}, *PER_CHANNEL]
    caller = photo8.copy()
    out, _ = pipeline_from_steps(steps).apply(caller)
    np.testing.assert_array_equal(caller, photo8)
    reference = apply_table(cv2.medianBlur(photo8, 3), _fused_table(photo8))
    np.testing.assert_array_equal(out, reference)
    out, _ = pipeline_from_steps(PER_CHANNEL).apply(caller)
    np.testing.assert_array_equal(caller, photo8)
    assert not np.shares_memory(out, caller)


def _fused_table(img: np.ndarray) -> np.ndarray:
    """The per-channel table PER_CHANNEL fuses to (the pipeline's, read back from a ramp of every level)."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
    out, _ = pipeline_from_steps(PER_CHANNEL).apply(ramp)
    return out.reshape(256, 3) / 255.0


def _run(cwd: Path) -> dict:
    step = "white_balance method=manual gains=[1.1,1,1.2]"
    res = invoke_in(cwd, ["run", "-s", step, "shots", "-o", "out", "-j", "1", "--report", "r.json"])
    assert res.exit_code == 0, res.output
    return {Path(i["source"]).name: i for i in json.loads((cwd / "r.json").read_text())["images"]}


def test_the_worker_still_tells_unchanged_images_from_changed_ones(tmp_path, photo8):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "flat.png"), _black_and_white())
    cv2.imwrite(str(shots / "photo.png"), photo8)
    images = _run(tmp_path)
    assert (tmp_path / "out" / "flat.png").read_bytes() == (shots / "flat.png").read_bytes()
    assert UNCHANGED_NOTE in images["flat.png"]["notes"]
    assert UNCHANGED_NOTE not in images["photo.png"]["notes"]
    expected, _ = pipeline_from_steps([PER_CHANNEL[0]]).apply(photo8)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "out" / "photo.png")), expected)
