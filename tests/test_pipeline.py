"""Pipeline behaviour shared by all operators: errors name the step that failed; alpha follows resizes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from imgenh import pipeline_from_steps
from imgenh.io import Image, read_image, write_image
from imgenh.ops import get_op
from imgenh.pipeline import Step, StepError, apply_steps


def _step(name: str, index: int, **params) -> Step:
    spec = get_op(name)
    values, errors = spec.resolve(params)
    assert not errors, errors
    return Step(spec, values, index)


def test_operator_error_names_the_step():
    img = np.full((400, 600, 3), 128, np.uint8)
    steps = [_step("white_balance", 0, method="manual", white_at=[5000, 10])]
    with pytest.raises(StepError) as info:
        apply_steps(img, steps)
    assert str(info.value) == "steps[0] white_balance.white_at: [5000, 10] is outside the 600x400 image"
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_error_in_a_fused_pointwise_group_names_its_step(monkeypatch, dtype):
    # The second of two fused pointwise steps fails: the label is that step's, index included.
    spec = get_op("gamma")
    real = spec.func

    def failing(x, ctx, **params):
        if params["value"] == 3.0:
            raise RuntimeError("boom")
        return real(x, ctx, **params)

    monkeypatch.setattr(spec, "func", failing)
    steps = [_step("gamma", 0, value=1.5), _step("gamma", 1, value=3.0)]
    with pytest.raises(StepError, match=r"^steps\[1\] gamma: boom$"):
        apply_steps(np.zeros((4, 4), dtype), steps)


def test_memory_error_is_not_wrapped(monkeypatch):
    spec = get_op("gamma")

    def exhausted(x, ctx, **params):
        raise MemoryError("no room")

    monkeypatch.setattr(spec, "func", exhausted)
    with pytest.raises(MemoryError):
        apply_steps(np.zeros((4, 4), np.uint8), [_step("gamma", 0, value=2.0)])


def _rgba(h: int, w: int) -> Image:
    """A colour gradient with an alpha plane that is opaque on the left half, clear on the right."""
    yy, xx = np.mgrid[0:h, 0:w]
    pixels = np.dstack([xx * 255 // (w - 1), yy * 255 // (h - 1), np.full((h, w), 90)]).astype(np.uint8)
    alpha = np.where(xx < w // 2, 255, 0).astype(np.uint8)
    return Image(pixels, alpha=alpha, exif=b"MM\0*\0\0\0\x08\0\0", format="png", notes=["a note"])


@pytest.mark.parametrize(("params", "size"), [({"width": 30}, (20, 30)), ({"width": 90}, (60, 90))])
def test_apply_image_resizes_alpha_and_writes_rgba(tmp_path, params, size):
    """RGBA through a pipeline with resize from the Python API: alpha follows, PNG keeps 4 channels."""
    image = _rgba(40, 60)
    before = image.alpha.copy()
    pipeline = pipeline_from_steps(
        [{"op": "gamma", "value": 1.5}, {"op": "resize", "upscale": True, **params}]
    )
    out, reports = pipeline.apply_image(image)
    h, w = size
    assert out.pixels.shape == (h, w, 3) and out.alpha.shape == (h, w) and out.alpha.dtype == np.uint8
    # Alpha is resized as cv2 does (area when shrinking, bilinear when growing), not recomputed.
    interp = cv2.INTER_AREA if h < 40 else cv2.INTER_LINEAR
    assert np.array_equal(out.alpha, cv2.resize(before, (w, h), interpolation=interp))
    assert out.exif == image.exif and out.format == "png" and out.notes == ["a note"]
    assert np.array_equal(image.alpha, before) and image.pixels.shape == (40, 60, 3)  # input untouched
    assert isinstance(reports, list)

    write_image(tmp_path / "out.png", out)
    back = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (h, w, 4)
    assert np.array_equal(back[..., 3], out.alpha) and np.array_equal(back[..., :3], out.pixels)
    assert read_image(tmp_path / "out.png").alpha.shape == (h, w)


def test_apply_image_without_alpha_or_size_change_keeps_alpha_as_is():
    image = _rgba(8, 10)
    out, _ = pipeline_from_steps([{"op": "gamma", "value": 2.0}]).apply_image(image)
    assert out.alpha is image.alpha or np.array_equal(out.alpha, image.alpha)
    grey = Image(np.full((8, 10), 64, np.uint8))
    out, _ = pipeline_from_steps([{"op": "resize", "width": 5}]).apply_image(grey)
    assert out.alpha is None and out.pixels.shape == (4, 5)


def test_steps_that_see_the_same_image_measure_its_noise_once(monkeypatch, photo8):
    # denoise_chroma (strength auto) and denoise (noise_range) both hold back by the luma noise
    # sigma: while the first leaves the image as it is, the second reads the same figure
    # (OpContext.measure), and on a changed image it measures again.
    from imgenh.ops import noise

    calls = []
    real = noise.noise_sigma
    monkeypatch.setattr(noise, "noise_sigma", lambda *a, **k: calls.append(1) or real(*a, **k))
    steps = [
        Step(get_op("denoise_chroma"), get_op("denoise_chroma").resolve({"strength": "auto"})[0], 0),
        Step(get_op("denoise"), get_op("denoise").resolve({"noise_range": [3.0, 5.0]})[0], 1),
    ]
    _, reports = apply_steps(photo8, steps)
    assert len(calls) == 1 and reports[0]["noise_sigma"] == reports[1]["noise_sigma"]
    rng = np.random.default_rng(2)
    noisy = np.clip(photo8 + rng.normal(0, 12, photo8.shape), 0, 255).astype(np.uint8)
    calls.clear()
    _, reports = apply_steps(noisy, steps)
    assert reports[0]["strength"] > 0 and len(calls) == 2  # the chroma step changed the image
