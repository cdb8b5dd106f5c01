"""The look model's hue-equivariant colour stage: its colour space, its fit, its baked table and its rung."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from imgenh.colour_difference import mean_delta_e
from imgenh.fit import Pair, PairImages, fit_look, render_pipeline
from imgenh.fit.hue import HUE_TABLE_SIZE, HueStage, bake, fit_hue_stage, from_hsl, hsl
from imgenh.fit.look import LADDER, LookModel
from imgenh.fit.pairs import resize_to_side
from imgenh.ops.lut import interpolate_rgb
from imgenh.pipeline_file import parse_pipeline, pipeline_from_steps

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from skimage import data

# An HSL modulate as ImageMagick's -modulate 100,70,93 does (saturation x0.7, hue -12.6 degrees
# = -0.21 sextant), with a lift of the lightness: hue-equivariant by construction.
TURN, SCALE, LIFT = -0.21, 0.7, 0.85


def hidden_look(rgb: np.ndarray) -> np.ndarray:
    lightness, chroma, hue = hsl(rgb)
    return np.clip(from_hsl(lightness**LIFT, SCALE * chroma, hue + TURN), 0.0, 1.0)


def test_hsl_coordinates_round_trip_and_the_hue_wraps():
    rgb = np.random.default_rng(0).random((2000, 3))
    lightness, chroma, hue = hsl(rgb)
    assert np.abs(from_hsl(lightness, chroma, hue) - rgb).max() < 1e-12
    assert np.abs(from_hsl(lightness, chroma, hue + 6.0) - rgb).max() < 1e-12
    assert np.abs(from_hsl(lightness, chroma, hue - 6.0) - rgb).max() < 1e-12
    grey = np.full((1, 3), 0.4)
    assert hsl(grey)[1][0] == 0.0 and np.allclose(from_hsl(*hsl(grey)), grey)


def test_the_stage_recovers_an_hsl_modulate():
    x = np.random.default_rng(1).random((20000, 3))
    stage = fit_hue_stage(x, hidden_look(x))
    # Mid lightness, where colours of every chroma exist (the grid's corners have few pixels).
    middle = stage.turn.shape[0] // 2
    assert np.abs(stage.turn[middle, 1:] - TURN).max() < 0.005  # under 0.3 degree
    assert np.abs(stage.scale[middle, 1:] - SCALE).max() < 0.005
    # Measured: max 0.009, mean 0.00024 (in [0, 1] levels).
    assert np.abs(np.clip(stage.apply_rgb(x), 0, 1) - hidden_look(x)).mean() < 0.001


def test_the_baked_table_gives_what_the_stage_gives():
    x = np.random.default_rng(2).random((20000, 3))
    stage = fit_hue_stage(x, hidden_look(x))
    table = bake(stage.apply_rgb)
    assert table.shape == (HUE_TABLE_SIZE,) * 3 + (3,)
    points = np.random.default_rng(3).random((50000, 3)).astype(np.float32)
    gap = np.abs(interpolate_rgb(points, table, method="trilinear") - np.clip(stage.apply_rgb(points), 0, 1))
    # Trilinear between 17^3 nodes of a smooth map, measured max 0.013, mean 0.0010.
    assert gap.max() < 0.02 and gap.mean() < 0.002


def test_an_identity_stage_bakes_the_identity_table_and_greys_fit_without_chroma():
    flat = np.zeros((9, 7))
    table = bake(HueStage(flat, flat + 1.0, flat).apply_rgb)
    nodes = np.linspace(0, 1, HUE_TABLE_SIZE)
    assert np.abs(table - np.stack(np.meshgrid(nodes, nodes, nodes, indexing="ij"), axis=-1)).max() < 1e-6
    greys = np.repeat(np.linspace(0, 1, 50)[:, None], 3, axis=1)
    stage = fit_hue_stage(greys, greys**0.8)
    assert np.allclose(stage.scale, 1.0) and np.allclose(stage.turn, 0.0)
    # Piecewise linear on 9 smoothed lightness nodes: x^0.8's steep foot is 0.012 off (measured).
    assert np.abs(stage.apply_rgb(greys) - greys**0.8).max() < 0.02


# Warm photos to fit on (skin, fur, coffee, retina) and others to check on, with red and blue
# swapped: blues and cyans that no fitted photo shows.
WARM = ("astronaut", "chelsea", "coffee", "retina")
OTHERS = ("rocket", "hubble_deep_field", "immunohistochemistry")


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {
        n: resize_to_side(getattr(data, n)()[..., ::-1].astype(np.float32) / 255, 120) for n in WARM + OTHERS
    }


def _pair(name: str, bgr: np.ndarray) -> PairImages:
    after = hidden_look(bgr.reshape(-1, 3)[:, ::-1])[:, ::-1].reshape(bgr.shape).astype(np.float32)
    return PairImages(Pair(name, Path(name), Path(name)), np.ascontiguousarray(bgr), after)


def test_a_hue_equivariant_look_fitted_on_warm_photos_carries_to_blue_ones(photos):
    train = [_pair(n, photos[n]) for n in WARM]
    blue = [_pair(n, photos[n][..., ::-1]) for n in OTHERS]

    def blue_error(ladder) -> tuple[str, float]:
        result = fit_look(train, holdout=0, seed=0, samples_per_pair=3000, ladder=ladder)
        fitted = pipeline_from_steps(result.steps)
        return result.complexity, float(
            np.mean([mean_delta_e(fitted.apply(p.before)[0], p.after) for p in blue])
        )

    without_hue = tuple(level for level in LADDER if not level.hue)
    old_rung, old_error = blue_error(without_hue)
    rung, error = blue_error(LADDER)
    # Measured: without the hue rung curves2+matrix+lut5 is chosen, 0.93 on the blue photos; 0.40 with it.
    assert rung == "tone17+hue", rung
    assert error < 0.6 and error < old_error - 0.3, (old_rung, old_error, error)


def test_a_hue_rung_is_written_as_one_lut3d_step(photos):
    train = [_pair(n, photos[n]) for n in WARM]
    result = fit_look(train, holdout=0, seed=0, samples_per_pair=2000, ladder=[lv for lv in LADDER if lv.hue])
    ops = [step["op"] for step in result.steps]
    assert ops.count("lut3d") == 1 and "color_matrix" not in ops
    table = next(step for step in result.steps if step["op"] == "lut3d")
    assert table["size"] == HUE_TABLE_SIZE
    assert isinstance(result.model, LookModel) and result.model.table.shape[0] == HUE_TABLE_SIZE
    # The tuned file's text runs as the model does, up to its 5 decimals (measured 8e-6).
    loaded = parse_pipeline(render_pipeline(result), "tuned.yaml")
    before = photos["rocket"]
    out = loaded.apply(before)[0].reshape(-1, 3)[:, ::-1]
    expected = result.model.apply_rgb(before.reshape(-1, 3)[:, ::-1])
    assert np.abs(out - expected).max() < 1e-4
