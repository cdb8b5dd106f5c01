"""A dim photo of a dim scene keeps its key: the camera's exposure (EXIF) and `stretch lit_scene_ev`."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import TiffImagePlugin

from imgenh import pipeline_from_steps
from imgenh.io import CameraExposure, camera_exposure, read_image
from imgenh.ops.color import srgb_to_linear
from imgenh.ops.scene import MID_GREY, SceneLight, mean_linear_luma

DUSK = CameraExposure(exposure_time=1 / 4, f_number=2.8, iso=200)  # EV100 ~4: a dusk, a lit street
DAY = CameraExposure(exposure_time=1 / 500, f_number=8.0, iso=100)  # EV100 ~15: sunlight


def pillow_exif(time: tuple[int, int], f_number: tuple[int, int], iso: int | None) -> bytes:
    """A raw EXIF (TIFF) block as Pillow writes it: the settings in the Exif sub-IFD."""
    exif = PILImage.Exif()
    exif[0x010F] = "TestMake"
    sub = exif.get_ifd(0x8769)
    sub[0x829A] = TiffImagePlugin.IFDRational(*time)
    sub[0x829D] = TiffImagePlugin.IFDRational(*f_number)
    if iso is not None:
        sub[0x8827] = iso
    return exif.tobytes().removeprefix(b"Exif\x00\x00")


def big_endian_exif(time: tuple[int, int], f_number: tuple[int, int], iso: int) -> bytes:
    """A Motorola-order block built by hand: IFD0 with one pointer, the Exif IFD with three tags."""
    ifd0 = 8
    exif_ifd = ifd0 + 2 + 12 + 4
    values = exif_ifd + 2 + 3 * 12 + 4  # the two rationals follow the Exif IFD
    out = b"MM\x00*" + struct.pack(">I", ifd0)
    out += struct.pack(">H", 1) + struct.pack(">HHII", 0x8769, 4, 1, exif_ifd) + struct.pack(">I", 0)
    out += struct.pack(">H", 3)
    out += struct.pack(">HHII", 0x829A, 5, 1, values)
    out += struct.pack(">HHII", 0x829D, 5, 1, values + 8)
    out += struct.pack(">HHIHH", 0x8827, 3, 1, iso, 0)
    out += struct.pack(">I", 0)
    return out + struct.pack(">II", *time) + struct.pack(">II", *f_number)


# --- reading the exposure ------------------------------------------------------------------------


def test_reads_what_pillow_writes():
    camera = camera_exposure(pillow_exif((1, 125), (8, 1), 400))
    assert camera == CameraExposure(1 / 125, 8.0, 400.0)
    # EV100 = log2(N^2 / t) - log2(ISO / 100): f/8 at 1/125 s is EV 12.97 at ISO 100, 10.97 at 400.
    assert camera.ev100 == pytest.approx(math.log2(64 * 125) - 2, abs=1e-9)


def test_reads_motorola_byte_order():
    assert camera_exposure(big_endian_exif((10, 13), (28, 10), 200)) == CameraExposure(10 / 13, 2.8, 200.0)


def test_without_iso_assumes_100():
    camera = camera_exposure(pillow_exif((1, 60), (4, 1), None))
    assert camera.iso is None
    assert camera.ev100 == pytest.approx(math.log2(16 * 60))


@pytest.mark.parametrize(
    "block",
    [
        None,
        b"",
        b"II*\x00",
        b"not a tiff block at all",
        pillow_exif((1, 0), (8, 1), 100),  # a zero denominator
        pillow_exif((1, 125), (0, 1), 100),  # f/0: no camera wrote that
        pillow_exif((1, 125), (8, 1), 100)[:40],  # cut short
    ],
)
def test_missing_or_broken_exposure_is_none(block):
    assert camera_exposure(block) is None


def test_random_blocks_never_raise():
    rng = np.random.default_rng(7)
    good = pillow_exif((1, 125), (8, 1), 100)
    for _ in range(300):
        block = bytearray(good)
        for i in rng.integers(0, len(block), 4):
            block[i] = int(rng.integers(0, 256))
        result = camera_exposure(bytes(block))
        assert result is None or isinstance(result, CameraExposure)


def test_read_image_keeps_the_block(tmp_path):
    path = tmp_path / "shot.jpg"
    PILImage.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(
        path, exif=b"Exif\x00\x00" + pillow_exif((1, 250), (56, 10), 200)
    )
    assert camera_exposure(read_image(path).exif) == CameraExposure(1 / 250, 5.6, 200.0)


# --- the scene's light ---------------------------------------------------------------------------


def test_scene_ev_adds_the_image_mean_to_the_settings():
    # A uniform image at mid-grey: the scene is exactly the settings' EV; two stops darker, 2 EV less.
    grey = np.full((40, 60, 3), 118, np.uint8)  # sRGB 118 ~ linear 0.181
    mean = float(srgb_to_linear(np.array(118 / 255)))
    scene = SceneLight(DAY, grey)
    assert scene.mean == pytest.approx(mean, rel=1e-4)
    assert scene.ev == pytest.approx(DAY.ev100 + math.log2(mean / MID_GREY), abs=1e-6)
    assert scene.key(scene.ev) == pytest.approx(MID_GREY)
    assert scene.key(scene.ev + 2) == pytest.approx(MID_GREY / 2)  # half a stop per EV


def test_mean_linear_luma_of_every_depth_matches_the_formula():
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (50, 70, 3))
    for img, top in ((np.rint(x * 255).astype(np.uint8), 255), (np.rint(x * 65535).astype(np.uint16), 65535)):
        expected = float(np.mean(srgb_to_linear(img / top) @ [0.072186, 0.715158, 0.212656]))
        assert mean_linear_luma(img) == pytest.approx(expected, rel=1e-9)
        grey = np.ascontiguousarray(img[..., 1])
        assert mean_linear_luma(grey) == pytest.approx(float(np.mean(srgb_to_linear(grey / top))), rel=1e-9)
    expected = float(np.mean(srgb_to_linear(x) @ [0.072186, 0.715158, 0.212656]))
    assert mean_linear_luma(x.astype(np.float32)) == pytest.approx(expected, rel=1e-5)


# --- stretch lit_scene_ev ------------------------------------------------------------------------


def dim_photo(seed: int = 0) -> np.ndarray:
    """A photo whose brightest level is mid-grey: dusk, or a day shot two stops under."""
    rng = np.random.default_rng(seed)
    lin = rng.uniform(0.0, 1.0, (240, 360, 1)) ** 2 * np.array([0.9, 1.0, 1.1]) * 0.2
    return np.clip(np.rint(255 * (1.055 * np.clip(lin, 0, 1) ** (1 / 2.4) - 0.055)), 0, 255).astype(np.uint8)


STRETCH = {"op": "stretch", "low": 0, "high": 100, "strength": "auto", "linear": "auto"}


def mean_linear(img: np.ndarray) -> float:
    return float(np.mean(srgb_to_linear(img.astype(np.float64) / 255.0) @ [0.0722, 0.7152, 0.2126]))


def test_a_dark_scene_keeps_its_key_and_a_day_scene_is_brightened():
    img = dim_photo()
    plain, _ = pipeline_from_steps([STRETCH]).apply(img)
    limited = pipeline_from_steps([{**STRETCH, "lit_scene_ev": 5}])
    dusk, dusk_report = limited.apply(img, DUSK)
    day, day_report = limited.apply(img, DAY)
    unknown, unknown_report = limited.apply(img)
    assert mean_linear(plain) > 2.5 * mean_linear(img)  # the stretch alone brightens it
    np.testing.assert_array_equal(day, plain)  # daylight: the limit lies far above
    np.testing.assert_array_equal(unknown, plain)  # no exposure recorded: stretched as before
    assert unknown_report[0]["scene_ev"] is None
    # At dusk the limit binds: brightened no further than the scene's key (within rounding).
    report = dusk_report[0]
    assert report["scene_ev"] < 3 and report["white_strength"] < 0.3
    assert mean_linear(dusk) <= max(report["scene_key"], mean_linear(img)) * 1.03
    assert day_report[0]["scene_ev"] > 13 and day_report[0]["white_strength"] == 1.0


def test_a_very_dark_shot_of_a_dark_scene_is_brightened_to_its_key():
    # The same dusk two stops further under: brought up to the key, not to mid-grey.
    img = dim_photo()
    under = np.clip(
        np.rint(255 * (1.055 * (srgb_to_linear(img / 255.0) * 0.25) ** (1 / 2.4) - 0.055)), 0, 255
    )
    under = under.astype(np.uint8)
    camera = CameraExposure(DUSK.exposure_time / 4, DUSK.f_number, DUSK.iso)
    out, report = pipeline_from_steps([{**STRETCH, "lit_scene_ev": 5}]).apply(under, camera)
    key = report[0]["scene_key"]
    assert mean_linear(under) < 0.5 * key
    assert mean_linear(out) == pytest.approx(key, rel=0.12)


def test_lit_scene_ev_is_validated():
    with pytest.raises(Exception, match="lit_scene_ev"):
        pipeline_from_steps([{**STRETCH, "lit_scene_ev": "dusk"}])


def test_cli_reads_the_exposure_from_each_file(tmp_path):
    img = dim_photo(1)
    for name, camera in (("dusk.jpg", ((1, 4), (28, 10), 200)), ("noon.jpg", ((1, 500), (8, 1), 100))):
        exif = b"Exif\x00\x00" + pillow_exif(*camera)
        PILImage.fromarray(img[..., ::-1]).save(tmp_path / name, quality=95, exif=exif)
    (tmp_path / "p.yaml").write_text(
        "version: 1\nsteps:\n  - {op: stretch, low: 0, high: 100, strength: auto, linear: auto, lit_scene_ev: 5}\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "imgenh",
            "run",
            "p.yaml",
            "dusk.jpg",
            "noon.jpg",
            "-o",
            "out",
            "--report",
            "r.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    means = {n: mean_linear(cv2.imread(str(tmp_path / "out" / n))) for n in ("dusk.jpg", "noon.jpg")}
    source = mean_linear(cv2.imread(str(tmp_path / "dusk.jpg")))
    assert means["dusk.jpg"] < 1.3 * source < means["noon.jpg"] / 2
    report = json.loads(Path(tmp_path / "r.json").read_text())
    text = json.dumps(report)
    assert '"scene_ev"' in text and '"scene_key"' in text


def test_preview_applies_the_steps_as_run_does(tmp_path):
    # imgenh preview reads the same exposure, so a dusk photo's sheet shows it as `run` writes it.
    from imgenh.preview import render_sheet

    path = tmp_path / "dusk.jpg"
    exif = b"Exif\x00\x00" + pillow_exif((1, 4), (28, 10), 200)
    PILImage.fromarray(dim_photo(2)[..., ::-1]).save(path, quality=95, exif=exif)
    image = read_image(path)
    pipeline = pipeline_from_steps([{**STRETCH, "lit_scene_ev": 5}])
    sheet = render_sheet(pipeline, image, width=800)
    run_output, run_reports = pipeline.apply_image(image)
    assert sheet.reports == run_reports
    assert sheet.reports[0]["scene_ev"] is not None and sheet.reports[0]["white_strength"] < 0.3
