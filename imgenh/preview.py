"""A contact sheet of what a pipeline does to one image: input, each step, output.

Each panel carries a label (step, key parameters, values the step reported at full
resolution, such as the white-balance illuminant) and a luma/RGB histogram. Intermediate
panels come from applying the first k steps to a downscaled copy, so a 12 MP preview is
quick; the last panel is the real pipeline output, computed at full resolution. Text is
drawn with OpenCV; the sheet is 8-bit BGR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from imgenh.io import CameraExposure, Image, atomic_write, camera_exposure
from imgenh.pipeline import Step, apply_steps
from imgenh.pixels import from_float, to_float
from imgenh.quality import colour_planes, histogram256, luma_levels

WORK_PIXELS = 1_000_000  # intermediates are computed on a copy of at most this many pixels
MIN_PANEL_WIDTH = 380  # a column narrower than this makes labels unreadable
MARGIN = 10
BACKGROUND = (32, 32, 32)
TEXT = (235, 235, 235)
DIM_TEXT = (170, 170, 170)
FONT = cv2.FONT_HERSHEY_SIMPLEX
CHECKER = 8  # side of a checkerboard square behind transparent pixels
SHEET_FORMATS = (".png", ".jpg", ".jpeg", ".webp")
HIDDEN_VALUES = {"method", "linear", "estimator", "step", "op"}  # shown elsewhere or not informative


@dataclass(frozen=True)
class Panel:
    """One picture on the sheet: its label lines and where things are (x, y, width, height)."""

    lines: tuple[str, ...]
    picture: tuple[int, int, int, int]
    histogram: tuple[int, int, int, int]


@dataclass
class Sheet:
    """The rendered sheet (uint8 BGR) and its panels, in order (input first, output last)."""

    pixels: np.ndarray
    panels: list[Panel] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)


# --- pixels for viewing --------------------------------------------------------------------


def display_bgr(pixels: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """8-bit BGR for viewing: grey expanded to three channels, alpha over a checkerboard.

    Parameters
    ----------
    pixels : ndarray
        (H, W), (H, W, 3) or (H, W, 4) (the fourth channel is used as alpha when ``alpha`` is
        None); uint8, uint16 or float32 in [0, 1].
    alpha : ndarray, optional
        (H', W') alpha plane at any depth; resized to the pixels when its size differs.
    """
    if pixels.ndim == 3 and pixels.shape[2] == 4 and alpha is None:
        alpha = pixels[..., 3]
    img = colour_planes(pixels)
    img8 = img if img.dtype == np.uint8 else cv2.convertScaleAbs(img, alpha=255.0 / 65535.0)
    bgr = cv2.cvtColor(img8, cv2.COLOR_GRAY2BGR) if img8.ndim == 2 else img8.copy()
    if alpha is None:
        return bgr
    h, w = bgr.shape[:2]
    weight = to_float(alpha if alpha.dtype != np.float32 else np.clip(alpha, 0, 1))
    if weight.shape != (h, w):
        weight = cv2.resize(weight, (w, h), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:h, 0:w]
    board = np.where(((yy // CHECKER + xx // CHECKER) % 2)[..., None] == 0, 204, 153).astype(np.float32)
    mixed = bgr.astype(np.float32) * weight[..., None] + board * (1 - weight[..., None])
    return from_float(mixed, np.uint8, full_scale=255.0)


def fit(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to fit in ``width`` x ``height`` keeping the aspect (area averaging to shrink)."""
    h, w = img.shape[:2]
    scale = min(width / w, height / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def histograms(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """256-bin counts of luma and (for colour) each of R, G, B (of every k-th row and column past 1 MP)."""
    step = math.ceil(math.sqrt(pixels.shape[0] * pixels.shape[1] / WORK_PIXELS))
    img = colour_planes(pixels[::step, ::step] if step > 1 else pixels)
    counts = {"luma": histogram256(luma_levels(img))}
    if img.ndim == 3:
        for name, channel in (("b", 0), ("g", 1), ("r", 2)):
            counts[name] = histogram256(np.ascontiguousarray(img[..., channel]))
    return counts


def draw_histogram(canvas: np.ndarray, box: tuple[int, int, int, int], counts: dict[str, np.ndarray]) -> None:
    """Luma as a filled grey area, R, G, B as lines, scaled to the tallest inner bin."""
    x, y, w, h = box
    cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), (52, 52, 52), -1)
    # End bins hold the clipped pixels and would flatten everything else: scale to bins 1..254.
    top = max(1, max(int(c[1:255].max()) for c in counts.values()))
    xs = x + np.linspace(0, w - 1, 256)

    def points(c: np.ndarray) -> np.ndarray:
        ys = y + h - 1 - np.minimum(c / top, 1.0) * (h - 2)
        return np.stack([xs, ys], axis=1).round().astype(np.int32)

    luma = points(counts["luma"])
    area = np.vstack([[[x, y + h - 1]], luma, [[x + w - 1, y + h - 1]]])
    cv2.fillPoly(canvas, [area], (120, 120, 120), lineType=cv2.LINE_AA)
    for name, colour in (("b", (255, 120, 40)), ("g", (60, 210, 60)), ("r", (60, 60, 255))):
        if name in counts:
            cv2.polylines(canvas, [points(counts[name])], False, colour, 1, lineType=cv2.LINE_AA)


# --- labels --------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.3g}"


def format_value(key: str, value: Any) -> str | None:
    """One reported value or parameter as short text (``None`` for what is not worth a label)."""
    if isinstance(value, dict):  # e.g. an augmentation step's drawn values: each one
        return ", ".join(filter(None, (format_value(k, v) for k, v in value.items()))) or None
    if value is None:
        return None
    if isinstance(value, bool):
        return f"{key}={'yes' if value else 'no'}"
    if isinstance(value, (int, float)):
        return f"{key}={_number(value)}"
    if isinstance(value, (list, tuple)):
        flat = [v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if len(flat) == 3 == len(value) and key in ("illuminant", "gains", "white"):
            return f"{key} R{_number(flat[0])} G{_number(flat[1])} B{_number(flat[2])}"
        if len(flat) == len(value):
            return f"{key}={'/'.join(_number(v) for v in flat)}"
        return f"{key}={'/'.join(map(str, value))}"  # e.g. curve points: [[0, 0], [1, 1]]
    return f"{key}: {value}" if " " in str(value) else f"{key}={value}"


def step_words(step: Step, report: dict | None) -> tuple[list[str], list[str]]:
    """Words for a step's label: ``(title and key parameters, reported values)``.

    Key parameters are the operator's first one and every one not at its default.
    """
    words = [f"{step.index + 1}. {step.op.name}"]
    for i, (name, param) in enumerate(step.op.params.items()):
        value = step.params.get(name)
        if i == 0 or value != param.default:
            text = format_value(name, value)
            if text:
                words.append(text)
    values = []
    for key, value in (report or {}).items():
        if key not in HIDDEN_VALUES:
            text = format_value(key, value)
            if text:
                values.append(text)
    return words, values


def describe_input(image: Image) -> list[str]:
    """``input`` with size, depth and channels, e.g. ``input 640x427 16-bit RGBA``."""
    pixels = image.pixels
    h, w = pixels.shape[:2]
    depth = {np.dtype(np.uint8): "8-bit", np.dtype(np.uint16): "16-bit"}.get(pixels.dtype, "float")
    kind = "grey" if pixels.ndim == 2 else "RGB"
    if image.alpha is not None:
        kind = "grey+alpha" if pixels.ndim == 2 else "RGBA"
    return ["input", f"{w}x{h}", depth, kind]


def wrap(words: list[str], width: int, scale: float) -> list[str]:
    """Pack words into lines no wider than ``width`` pixels at font ``scale`` (long words are cut)."""
    lines: list[str] = []
    for word in words:
        candidate = f"{lines[-1]}  {word}" if lines else word
        if lines and cv2.getTextSize(candidate, FONT, scale, 1)[0][0] <= width:
            lines[-1] = candidate
            continue
        while cv2.getTextSize(word, FONT, scale, 1)[0][0] > width and len(word) > 4:
            word = word[:-4] + "..."
        lines.append(word)
    return lines


# --- the sheet -------------------------------------------------------------------------------


def _frames(
    pixels: np.ndarray, steps: list[Step], output: np.ndarray, camera: CameraExposure | None = None
) -> list[np.ndarray]:
    """The input, the image after each of the first k steps (on a downscaled copy), the output."""
    h, w = pixels.shape[:2]
    scale = min(1.0, math.sqrt(WORK_PIXELS / (h * w)))
    work = pixels
    if scale < 1:
        work = cv2.resize(
            pixels, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    middle = [apply_steps(work, steps[:k], camera)[0] for k in range(1, len(steps))]
    return [pixels, *middle, output] if steps else [pixels]


def _labels(
    image: Image, steps: list[Step], reports: list[dict], output: np.ndarray
) -> list[list[list[str]]]:
    """Per panel, groups of words (each group starts a new line): title and parameters, values."""
    by_step = {r["step"]: r for r in reports}
    labels = [[describe_input(image)]]
    for step in steps:
        words, values = step_words(step, by_step.get(step.index))
        labels.append([words, values] if values else [words])
    h, w = output.shape[:2]
    labels[-1] = [*labels[-1], [f"= output {w}x{h}"] if steps else ["(no steps: output = input)"]]
    return labels


@dataclass(frozen=True)
class _Grid:
    cols: int
    cell_w: int
    pic_h: int
    hist_h: int
    scale: float
    line_h: int

    def text_lines(self, labels: list[list[list[str]]]) -> list[list[str]]:
        """Each label's groups of words wrapped to the cell width, each group on new lines."""
        return [
            [line for group in groups for line in wrap(group, self.cell_w, self.scale)] for groups in labels
        ]


def _grid(n: int, width: int, aspect: float) -> _Grid:
    """Columns and cell sizes for ``n`` panels on a sheet ``width`` wide (aspect = height / width)."""
    most = max(1, min(n, (width - MARGIN) // (MIN_PANEL_WIDTH + MARGIN)))
    cols = math.ceil(n / math.ceil(n / most))  # as few empty cells in the last row as the rows allow
    cell_w = max(16, (width - MARGIN * (cols + 1)) // cols)
    pic_h = max(8, round(cell_w * min(aspect, 1.5)))  # very tall images get a shorter box
    scale = float(np.clip(cell_w / 900, 0.42, 0.6))
    (_, text_h), baseline = cv2.getTextSize("Ag", FONT, scale, 1)
    return _Grid(cols, cell_w, pic_h, max(40, cell_w // 6), scale, text_h + baseline + 6)


def _put_lines(canvas: np.ndarray, lines: list[str], x: int, y: int, grid: _Grid) -> None:
    for i, line in enumerate(lines):
        baseline_y = y + (i + 1) * grid.line_h - grid.line_h // 3
        colour = TEXT if i == 0 else DIM_TEXT
        cv2.putText(canvas, line, (x, baseline_y), FONT, grid.scale, colour, 1, cv2.LINE_AA)


def _compose(
    frames: list[np.ndarray], labels: list[list[str]], alpha, width: int
) -> tuple[np.ndarray, list[Panel]]:
    """Lay the frames out in a grid: label above, picture, histogram below each."""
    h0, w0 = frames[0].shape[:2]
    grid = _grid(len(frames), width, h0 / w0)
    lines = grid.text_lines(labels)
    rows = math.ceil(len(frames) / grid.cols)
    # Each row's labels as tall as its own longest (a long white-balance label does not pad every row).
    label_hs = [
        grid.line_h * max(len(block) for block in lines[r * grid.cols : (r + 1) * grid.cols]) + 4
        for r in range(rows)
    ]
    tops = np.cumsum([MARGIN] + [h + grid.pic_h + 4 + grid.hist_h + MARGIN for h in label_hs]).tolist()
    canvas = np.empty((tops[-1], width, 3), np.uint8)
    canvas[:] = BACKGROUND
    panels = []
    for i, (frame, block) in enumerate(zip(frames, lines, strict=True)):
        x = MARGIN + (i % grid.cols) * (grid.cell_w + MARGIN)
        y, label_h = tops[i // grid.cols], label_hs[i // grid.cols]
        _put_lines(canvas, block, x, y, grid)
        shown = display_bgr(fit(frame, grid.cell_w, grid.pic_h), alpha)
        ph, pw = shown.shape[:2]
        px, py = x + (grid.cell_w - pw) // 2, y + label_h + (grid.pic_h - ph) // 2
        canvas[py : py + ph, px : px + pw] = shown
        hist_box = (x, y + label_h + grid.pic_h + 4, grid.cell_w, grid.hist_h)
        draw_histogram(canvas, hist_box, histograms(frame))
        panels.append(Panel(tuple(block), (px, py, pw, ph), hist_box))
    return canvas, panels


def _compose_split(
    before: np.ndarray, after: np.ndarray, labels: list[list[str]], alpha, width: int
) -> tuple[np.ndarray, list[Panel]]:
    """One picture: the input's left half beside the output's right half, histograms below."""
    inner = width - 2 * MARGIN
    grid = _grid(2, width, before.shape[0] / before.shape[1])
    grid = _Grid(
        1,
        inner // 2,
        round(inner * min(before.shape[0] / before.shape[1], 1.5)),
        grid.hist_h,
        grid.scale,
        grid.line_h,
    )
    shown_before = display_bgr(fit(before, inner, grid.pic_h), alpha)
    ph, pw = shown_before.shape[:2]
    shown_after = display_bgr(cv2.resize(after, (pw, ph), interpolation=cv2.INTER_AREA), alpha)
    lines = grid.text_lines(labels)
    label_h = grid.line_h * max(len(block) for block in lines) + 4
    height = MARGIN + label_h + ph + 4 + grid.hist_h + MARGIN
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = BACKGROUND
    px, py, half = MARGIN + (inner - pw) // 2, MARGIN + label_h, pw // 2
    canvas[py : py + ph, px : px + half] = shown_before[:, :half]
    canvas[py : py + ph, px + half : px + pw] = shown_after[:, half:]
    cv2.line(canvas, (px + half, py), (px + half, py + ph - 1), (255, 255, 255), 2)
    panels = []
    for side, (frame, block) in enumerate(zip((before, after), lines, strict=True)):
        x = MARGIN + side * (grid.cell_w + (inner - 2 * grid.cell_w))
        _put_lines(canvas, block, x, MARGIN, grid)
        hist_box = (x + side * MARGIN // 2, py + ph + 4, grid.cell_w - MARGIN // 2, grid.hist_h)
        draw_histogram(canvas, hist_box, histograms(frame))
        box = (px, py, half, ph) if side == 0 else (px + half, py, pw - half, ph)
        panels.append(Panel(tuple(block), box, hist_box))
    return canvas, panels


def render_sheet(pipeline, image: Image, width: int = 1600, split: bool = False) -> Sheet:
    """Render the preview sheet of ``pipeline`` on ``image``.

    Parameters
    ----------
    pipeline : Pipeline
        From :func:`imgenh.load_pipeline`.
    image : Image
        From :func:`imgenh.read_image` (16-bit, grey and alpha are fine).
    width : int
        Sheet width in pixels (the height follows from the layout).
    split : bool
        One half-and-half wipe (input left, output right) instead of a panel per step.

    Returns
    -------
    Sheet
        ``pixels`` (uint8 BGR), ``panels`` (input first, output last; with ``split`` two:
        before and after) and the full-resolution ``reports`` of the steps.

    Raises
    ------
    StepError
        A step failed on this image.
    """
    if width < 2 * MARGIN + 32:
        raise ValueError(f"width must be at least {2 * MARGIN + 32} pixels (got {width})")
    steps, predicted = pipeline.steps_for(image.pixels)  # an adaptive pipeline's values for this image
    camera = camera_exposure(image.exif)  # as `imgenh run` applies the steps (stretch lit_scene_ev)
    output, reports = apply_steps(image.pixels, steps, camera)
    reports = predicted + reports
    labels = _labels(image, steps, reports, output)
    if split:
        h, w = output.shape[:2]
        after = (
            ["output", f"{w}x{h}", *(f"{s.index + 1}. {s.op.name}" for s in steps)]
            if steps
            else ["output = input"]
        )
        canvas, panels = _compose_split(image.pixels, output, [labels[0], [after]], image.alpha, width)
    else:
        canvas, panels = _compose(_frames(image.pixels, steps, output, camera), labels, image.alpha, width)
    return Sheet(canvas, panels, reports)


def encode_sheet(sheet: Sheet, ext: str = ".png") -> bytes:
    """The sheet encoded as PNG, JPEG (quality 90) or WebP (one of :data:`SHEET_FORMATS`)."""
    ext = ext.lower()
    if ext not in SHEET_FORMATS:
        raise ValueError(f"a sheet is written as {', '.join(SHEET_FORMATS)}, not {ext!r}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(ext, sheet.pixels, params)
    if not ok:  # pragma: no cover - encoding a uint8 BGR array in these formats does not fail
        raise ValueError(f"cannot encode the sheet as {ext}")
    return data.tobytes()


def write_sheet(sheet: Sheet, path: str | Path) -> Path:
    """Write the sheet atomically, in the format its extension names; returns the path."""
    path = Path(path)
    atomic_write(path, encode_sheet(sheet, path.suffix or ".png"))
    return path


def default_sheet_path(image_path: str | Path) -> Path:
    """``<stem>.preview.png`` in the current folder."""
    return Path.cwd() / f"{Path(image_path).stem}.preview.png"
