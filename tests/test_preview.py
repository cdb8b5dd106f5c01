"""Preview sheets: every kind of input decodes, with one panel per step plus the input."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import CONFIGS

from imgenh import load_pipeline, pipeline_from_steps, preview
from imgenh.io import Image, read_image
from imgenh.preview import display_bgr, encode_sheet, render_sheet

STEPS = [
    {"op": "white_balance", "method": "gray_world"},
    {"op": "gamma", "value": 1.3},
    {"op": "resize", "long_side": 48},
    {"op": "sharpen", "amount": 0.5},
]


def _decode(sheet) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(encode_sheet(sheet), np.uint8), cv2.IMREAD_UNCHANGED)
    assert img is not None
    return img


@pytest.mark.parametrize("kind", ["8-bit", "16-bit", "grey", "rgba"])
def test_sheet_has_a_panel_per_step_for_every_kind_of_input(kind, photo8, photo16, gray8):
    alpha = None
    pixels = {"8-bit": photo8, "16-bit": photo16, "grey": gray8, "rgba": photo8}[kind]
    if kind == "rgba":
        alpha = np.zeros(photo8.shape[:2], np.uint8)
        alpha[:, photo8.shape[1] // 2 :] = 255  # left half transparent
    sheet = render_sheet(pipeline_from_steps(STEPS), Image(pixels, alpha), width=900)
    img = _decode(sheet)
    assert img.shape[1] == 900 and img.dtype == np.uint8 and img.shape[2] == 3
    assert len(sheet.panels) == len(STEPS) + 1
    assert sheet.panels[0].lines[0].startswith("input")
    assert sheet.panels[-1].lines[-1] == "= output 48x32"  # the real output's size (resize step)
    for panel in sheet.panels:
        x, y, w, h = panel.picture
        assert x >= 0 and x + w <= img.shape[1] and y + h <= img.shape[0]
        # the picture is not the background: something was drawn there
        assert img[y : y + h, x : x + w].std() > 3
    if kind == "rgba":
        x, y, w, h = sheet.panels[0].picture
        left = img[y : y + h, x : x + w // 3]
        assert set(np.unique(left)) <= {153, 204}  # fully transparent: only the checkerboard


def test_last_panel_is_the_full_resolution_output(photo8, monkeypatch):
    monkeypatch.setattr(preview, "WORK_PIXELS", 600)  # intermediates from a 30x20 copy
    pipeline = pipeline_from_steps(
        [{"op": "clahe", "clip_limit": 3.0, "tiles": 8}, {"op": "gamma", "value": 1.2}]
    )
    sheet = render_sheet(pipeline, Image(photo8), width=1200)
    full, _ = pipeline.apply(photo8)

    def shown(i):
        x, y, w, h = sheet.panels[i].picture
        return sheet.pixels[y : y + h, x : x + w].astype(int), (w, h)

    last, size = shown(-1)
    assert np.array_equal(last, preview.fit(full, *size))
    middle, size = shown(1)  # clahe alone, on the small copy: coarser than at full size
    first_step = pipeline_from_steps([{"op": "clahe", "clip_limit": 3.0, "tiles": 8}]).apply(photo8)[0]
    assert np.abs(middle - preview.fit(first_step, *size)).mean() > 2


def test_white_balance_label_shows_the_estimated_illuminant(photo8):
    cast = np.clip(photo8 * np.array([0.6, 0.9, 1.2]), 0, 255).astype(np.uint8)  # BGR: warm
    sheet = render_sheet(pipeline_from_steps([{"op": "white_balance", "method": "gray_world"}]), Image(cast))
    text = " ".join(sheet.panels[1].lines)
    assert "white_balance" in text and "method=gray_world" in text
    illuminant = sheet.reports[0]["illuminant"]
    assert f"illuminant R{illuminant[0]:.3g} G{illuminant[1]:.3g} B{illuminant[2]:.3g}" in text
    assert illuminant[0] > illuminant[2]  # a warm light was estimated


def test_split_is_one_wipe_with_two_halves(photo8):
    sheet = render_sheet(
        pipeline_from_steps([{"op": "gamma", "value": 2.5}]), Image(photo8), width=600, split=True
    )
    before, after = sheet.panels
    assert before.picture[0] + before.picture[2] == after.picture[0]  # side by side, one picture
    img = _decode(sheet)
    x, y, w, h = before.picture
    ax, ay, aw, ah = after.picture
    assert img[y : y + h, x : x + w - 2].mean() + 20 < img[ay : ay + ah, ax + 2 : ax + aw].mean()


def test_display_handles_depths_and_alpha():
    grey16 = np.full((4, 4), 65535, np.uint16)
    assert (display_bgr(grey16) == 255).all()
    bgra = np.zeros((4, 4, 4), np.float32)
    bgra[..., 3] = 1.0
    assert (display_bgr(bgra) == 0).all()  # opaque black


def test_preview_cli_writes_beside_the_current_folder(tmp_path):
    sample = CONFIGS.parent / "sample_images" / "chelsea_rgba.png"
    cmd = [
        sys.executable,
        "-m",
        "imgenh",
        "preview",
        str(CONFIGS / "default.yaml"),
        str(sample),
        "--width",
        "640",
    ]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    target = tmp_path / "chelsea_rgba.preview.png"
    assert str(target) in result.stderr
    sheet = cv2.imread(str(target))
    assert sheet.shape[1] == 640
    assert not [p for p in tmp_path.iterdir() if p.name != target.name]  # no temp file left


def test_preview_cli_errors(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    base = [sys.executable, "-m", "imgenh", "preview", str(CONFIGS / "default.yaml")]
    result = subprocess.run([*base, str(bad), "-o", str(tmp_path / "s.png")], capture_output=True, text=True)
    assert result.returncode == 1 and "bad.jpg" in result.stderr
    result = subprocess.run([*base, str(bad), "-o", str(tmp_path / "s.gif")], capture_output=True, text=True)
    assert result.returncode == 2 and "s.gif" in result.stderr


def test_sample_preview_runs_the_real_pipeline_on_a_16bit_sample():
    sample = CONFIGS.parent / "sample_images" / "coffee_16bit.png"
    image = read_image(sample)
    small = Image(cv2.resize(image.pixels, (120, 80), interpolation=cv2.INTER_AREA))
    pipeline = load_pipeline(CONFIGS / "low_light.yaml")
    sheet = render_sheet(pipeline, small, width=800)
    assert len(sheet.panels) == len(pipeline.steps) + 1  # the input, then one panel per step
    assert "16-bit" in sheet.panels[0].lines[0]


def test_preview_cli_png_on_stdout(tmp_path, photo8):
    cv2.imwrite(str(tmp_path / "p.png"), photo8)
    cmd = [sys.executable, "-m", "imgenh", "preview", str(CONFIGS / "default.yaml"), str(tmp_path / "p.png")]
    result = subprocess.run([*cmd, "-o", "-", "--width", "500", "--split"], capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    sheet = cv2.imdecode(np.frombuffer(result.stdout, np.uint8), cv2.IMREAD_COLOR)
    assert sheet.shape[1] == 500
    assert list(tmp_path.iterdir()) == [tmp_path / "p.png"]  # nothing written beside it


def test_labels_of_parameters_and_values():
    from imgenh.preview import format_value

    assert format_value("illuminant", [0.5, 0.3, 0.2]) == "illuminant R0.5 G0.3 B0.2"
    assert format_value("points", [[0, 0], [1, 1]]) == "points=[0, 0]/[1, 1]"
    assert format_value("skipped", "grey image: no colour") == "skipped: grey image: no colour"
    assert format_value("linked", True) == "linked=yes" and format_value("gains", None) is None


def test_a_row_of_short_labels_is_not_padded_to_another_rows_long_ones():
    # Each row's label band is as tall as its own labels need: a long white-balance label in
    # the second row does not leave an empty band above the first row's pictures.
    from imgenh.preview import _compose

    frames = [np.full((30, 40, 3), 128, np.uint8)] * 4
    short, long = [["input"]], [["step", "a b c d e f g h i j k l m n o p q r s t u v w x y z " * 6]]
    mixed, panels = _compose(frames, [short[0], short[0], long[0], long[0]], None, 400)
    tall, tall_panels = _compose(frames, [long[0]] * 4, None, 400)
    assert panels[2].picture[1] > panels[0].picture[1]  # two rows (2 columns at this width)
    assert mixed.shape[0] < tall.shape[0]
    assert panels[0].picture[1] < tall_panels[0].picture[1]  # the first row's pictures sit higher
