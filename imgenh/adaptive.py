"""Adaptive pipelines: step parameters predicted per image from image statistics.

A tuned pipeline file may carry an ``adaptive:`` block (written by ``imgenh fit --adaptive``):
which step parameters are predicted, the image features the prediction reads, and one
boosted-trees model per parameter (:class:`imgenh.boost.BoostedTrees` as plain data, no
pickles), with bounds the predictions are clamped to::

    adaptive:
      features: [luma_p01, luma_p50, ...]
      predicts:
        - {step: 0, param: gamma, bounds: [0.3, 3.5], model: {format: imgenh.boost.BoostedTrees, ...}}
        - {step: 1, param: gains, item: 0, bounds: [0.4, 2.5], scale: log,
           base: {intercept: 0.01, log_red_green_linear: -0.97}, model: {...}}

A target may predict on a ``log`` scale (the model gives the logarithm of the value) and
carry a linear ``base`` (an intercept and weights of named features) that its trees add to:
trees stop at the most extreme training image, the base carries a trend beyond it.

The step values written in ``steps:`` are the typical ones (used by anything that reads the
steps without the model). At run time :meth:`AdaptiveModel.steps_for` measures the
features of each image (:func:`image_features`, on a copy at most :data:`FEATURE_SIDE`
pixels on the long side), predicts, and returns concrete steps plus what it predicted, for
the report (``{"step": 0, "op": "levels", "predicted": {"gamma": 1.31}}``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from imgenh.boost import BoostedTrees
from imgenh.ops.color import srgb_to_linear
from imgenh.pixels import luma, to_float
from imgenh.quality import colourfulness

# Features are measured on a copy this many pixels on the long side (area averaging), so a
# 12 MP input and fit's 384-pixel working copy of it give the same numbers, cheaply.
FEATURE_SIDE = 128
_PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
_EPS = 1e-4

FEATURES: tuple[tuple[str, str], ...] = (
    *((f"luma_p{p:02d}", f"{p}th percentile of Rec. 709 luma (0..1)") for p in _PERCENTILES),
    ("luma_mean", "mean Rec. 709 luma (0..1)"),
    ("contrast", "standard deviation of luma (0..0.5)"),
    *((f"{c}_mean", f"mean {c} level (0..1)") for c in ("red", "green", "blue")),
    *((f"{c}_p02", f"2nd percentile of {c} (0..1)") for c in ("red", "green", "blue")),
    *((f"{c}_p98", f"98th percentile of {c} (0..1)") for c in ("red", "green", "blue")),
    ("log_red_green", "log of mean red / mean green (sRGB levels)"),
    ("log_blue_green", "log of mean blue / mean green (sRGB levels)"),
    ("log_red_green_linear", "log of mean red / mean green in linear light (gray-world cast)"),
    ("log_blue_green_linear", "log of mean blue / mean green in linear light (gray-world cast)"),
    ("colourfulness", "Hasler & Suesstrunk 2003 M (0..255 scale), imgenh.quality.colourfulness"),
    ("chroma_mean", "mean of max(R, G, B) - min(R, G, B) (0..1)"),
    ("clipped_shadows", "fraction of pixels with luma below 1/255"),
    ("clipped_highlights", "fraction of pixels with luma above 254/255"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(name for name, _ in FEATURES)


def feature_copy(pixels: np.ndarray) -> np.ndarray:
    """The image as float32 BGR in [0, 1], at most :data:`FEATURE_SIDE` pixels on the long side."""
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    h, w = pixels.shape[:2]
    scale = FEATURE_SIDE / max(h, w)
    if scale < 1:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
    img = to_float(np.ascontiguousarray(pixels))
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    elif img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return img


def image_features(pixels: np.ndarray) -> dict[str, float]:
    """The statistics adaptive models read, by name (:data:`FEATURES`), from any image.

    Parameters
    ----------
    pixels : ndarray
        (H, W) grey or (H, W, 3|4) BGR(A); uint8, uint16 or float32 in [0, 1].

    Returns
    -------
    dict
        ``{name: value}`` in :data:`FEATURES` order; plain floats.
    """
    img = feature_copy(pixels)
    y = luma(img).ravel().astype(np.float64)
    bgr = img.reshape(-1, 3).astype(np.float64)
    out = dict(zip(FEATURE_NAMES[: len(_PERCENTILES)], np.percentile(y, _PERCENTILES), strict=True))
    out["luma_mean"], out["contrast"] = y.mean(), y.std()
    means = bgr.mean(axis=0)
    low, high = np.percentile(bgr, 2, axis=0), np.percentile(bgr, 98, axis=0)
    for c, name in ((2, "red"), (1, "green"), (0, "blue")):
        out[f"{name}_mean"] = means[c]
    for c, name in ((2, "red"), (1, "green"), (0, "blue")):
        out[f"{name}_p02"] = low[c]
    for c, name in ((2, "red"), (1, "green"), (0, "blue")):
        out[f"{name}_p98"] = high[c]
    lin = srgb_to_linear(bgr).mean(axis=0)
    out["log_red_green"] = math.log((means[2] + _EPS) / (means[1] + _EPS))
    out["log_blue_green"] = math.log((means[0] + _EPS) / (means[1] + _EPS))
    out["log_red_green_linear"] = math.log((lin[2] + _EPS) / (lin[1] + _EPS))
    out["log_blue_green_linear"] = math.log((lin[0] + _EPS) / (lin[1] + _EPS))
    out["colourfulness"] = colourfulness(img)
    out["chroma_mean"] = float((bgr.max(axis=1) - bgr.min(axis=1)).mean())
    out["clipped_shadows"] = float(np.mean(y < 1 / 255))
    out["clipped_highlights"] = float(np.mean(y > 254 / 255))
    return {name: float(out[name]) for name in FEATURE_NAMES}


# --- the model ---------------------------------------------------------------------------------


class AdaptiveError(ValueError):
    """A bad ``adaptive:`` block; ``path`` locates the field from the block (for line numbers)."""

    def __init__(self, path: tuple[Any, ...], message: str):
        super().__init__(message)
        self.path = path
        self.message = message

    @property
    def field(self) -> str:
        """``adaptive.predicts[0].model.trees[3].left[2]``: the field, as the file spells it."""
        text = "adaptive"
        for part in self.path:
            text += f"[{part}]" if isinstance(part, int) else f".{part}"
        return text


SCALES = ("linear", "log")


@dataclass(frozen=True)
class Target:
    """One predicted parameter: ``steps[step].param`` (item ``item`` of a list), clamped to ``bounds``.

    The prediction is ``base(x) + model(x)`` on the parameter's ``scale`` (``log``: of its
    logarithm), where ``base`` is an optional linear function of named features
    (``{"intercept": c, "log_red_green_linear": w, ...}``) and ``model`` the boosted trees,
    fitted to what the base leaves. Trees cannot extrapolate beyond the training images; the
    base carries a trend (a gray-world gain is a linear function of the image's log chroma)
    to images outside them.
    """

    step: int
    param: str
    bounds: tuple[float, float]
    model: BoostedTrees
    item: int | None = None
    scale: str = "linear"
    base: tuple[tuple[str, float], ...] = ()  # ("intercept", c) first, then (feature, weight)

    @property
    def label(self) -> str:
        """``gamma`` or ``gains[0]``."""
        return self.param if self.item is None else f"{self.param}[{self.item}]"

    def value(self, measured: dict[str, float], x: np.ndarray) -> float:
        """The parameter for an image: ``measured`` features by name, ``x`` the model's feature row."""
        raw = float(self.model.predict(x)[0])
        raw += sum(w * (1.0 if name == "intercept" else measured[name]) for name, w in self.base)
        value = math.exp(min(raw, 700.0)) if self.scale == "log" else raw
        return float(f"{min(max(value, self.bounds[0]), self.bounds[1]):.6g}")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"step": self.step, "param": self.param}
        if self.item is not None:
            data["item"] = self.item
        data["bounds"] = [float(self.bounds[0]), float(self.bounds[1])]
        if self.scale != "linear":
            data["scale"] = self.scale
        if self.base:
            data["base"] = {name: float(w) for name, w in self.base}
        data["model"] = self.model.to_dict()
        return data


@dataclass(frozen=True)
class AdaptiveModel:
    """Which step parameters are predicted per image, from which features, by which trees.

    Attributes
    ----------
    features : tuple of str
        Feature names (from :data:`FEATURE_NAMES`), in the order the models read them.
    targets : tuple of Target
    """

    features: tuple[str, ...]
    targets: tuple[Target, ...]

    def predict(self, pixels: np.ndarray) -> list[float]:
        """Each target's value for one image, clamped to its bounds."""
        measured = image_features(pixels)
        x = np.array([[measured[name] for name in self.features]])
        return [t.value(measured, x) for t in self.targets]

    def steps_for(self, steps: list, pixels: np.ndarray) -> tuple[list, list[dict[str, Any]]]:
        """The steps with this image's predicted values, and a report entry per predicted step.

        Each parameter is predicted on its own, so together they can break a rule across
        parameters (stretch low >= high, levels black >= white) or a hand-edited step may no
        longer use one: that step then keeps its written (typical) values for this image, and
        its report entry says so under ``kept``, instead of the image failing.
        """
        # By the step's index in the file: augmentation may have left a step out of ``steps``.
        position = {step.index: i for i, step in enumerate(steps)}
        values = self.predict(pixels)
        by_step: dict[int, dict[str, Any]] = {}
        for target, value in zip(self.targets, values, strict=True):
            if target.step not in position:
                continue
            params = by_step.setdefault(position[target.step], {})
            if target.item is None:
                params[target.param] = value
            else:
                start = list(steps[position[target.step]].params[target.param])
                params.setdefault(target.param, start)[target.item] = value
        out, reports = list(steps), []
        for index, params in sorted(by_step.items()):
            step = steps[index]
            # Only values that differ from the defaults: resolve refuses a default given where it has no effect.
            given = {k: v for k, v in step.params.items() if v != step.op.params[k].default}
            resolved, errors = step.op.resolve({**given, **params})
            entry = {"step": step.index, "op": step.op.name, "predicted": params}
            if errors:
                key, message = errors[0]
                entry["kept"] = f"{key + ': ' if key else ''}{message}; the step's written values used"
            else:
                out[index] = replace(step, params=resolved)
            reports.append(entry)
        return out, reports

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the ``adaptive:`` block (what :func:`parse_adaptive` reads back)."""
        return {"features": list(self.features), "predicts": [t.to_dict() for t in self.targets]}


# --- reading and checking the block ----------------------------------------------------------

_FIELD_PART = re.compile(r"([A-Za-z_]+)|\[(\d+)\]")


def _model_path(message: str) -> tuple[tuple[Any, ...], str]:
    """``trees[3].left[2]: must be ...`` -> (("trees", 3, "left", 2), "must be ...")."""
    field, sep, rest = message.partition(": ")
    if not sep or " " in field:
        return (), message
    parts = tuple(int(i) if i else name for name, i in _FIELD_PART.findall(field))
    return parts, rest


def _bounds_of(param, value: Any, where: tuple) -> tuple[float, float]:
    """``[lo, hi]`` checked against the parameter's declared bounds."""
    ok = isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value)
    if not ok or not value[0] < value[1]:
        raise AdaptiveError(where, "must be [lo, hi], two numbers with lo < hi")
    lo, hi = float(value[0]), float(value[1])
    outside = (
        (param.ge is not None and lo < param.ge)
        or (param.gt is not None and lo <= param.gt)
        or (param.le is not None and hi > param.le)
        or (param.lt is not None and hi >= param.lt)
    )
    if outside:
        pairs = ((">=", param.ge), (">", param.gt), ("<=", param.le), ("<", param.lt))
        limits = ", ".join(f"{op} {bound:g}" for op, bound in pairs if bound is not None)
        raise AdaptiveError(where, f"[{lo:g}, {hi:g}] is outside the parameter's bounds ({limits})")
    return lo, hi


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _target(data: Any, i: int, steps: list, n_features: int) -> Target:
    where = ("predicts", i)
    if not isinstance(data, dict):
        raise AdaptiveError(where, "must be a mapping with step, param, bounds and model")
    unknown = sorted(set(data) - {"step", "param", "item", "bounds", "scale", "base", "model"})
    if unknown:
        raise AdaptiveError(
            (*where, unknown[0]), "unknown key (allowed: step, param, item, bounds, scale, base, model)"
        )
    index = data.get("step")
    if not (isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(steps)):
        raise AdaptiveError((*where, "step"), f"must be a step index, 0 to {len(steps) - 1} (got {index!r})")
    step = steps[index]
    name = data.get("param")
    param = step.op.params.get(name) if isinstance(name, str) else None
    if param is None or not (param.type is float or (param.type is list and param.item is float)):
        raise AdaptiveError((*where, "param"), f"must name a number parameter of {step.label} (got {name!r})")
    if step.random is not None:
        raise AdaptiveError(
            (*where, "step"), f"{step.label} has random parameters; it cannot also be predicted"
        )
    item = data.get("item")
    if param.type is list:
        length = len(step.params[name] or [])
        if not (isinstance(item, int) and not isinstance(item, bool) and 0 <= item < length):
            raise AdaptiveError((*where, "item"), f"must be an index into {name} (0 to {length - 1})")
    elif item is not None:
        raise AdaptiveError((*where, "item"), f"only for list parameters; {name} is a number")
    bounds = _bounds_of(param, data.get("bounds"), (*where, "bounds"))
    scale = data.get("scale", "linear")
    if scale not in SCALES:
        raise AdaptiveError((*where, "scale"), f"must be one of {', '.join(SCALES)} (got {scale!r})")
    if scale == "log" and bounds[0] <= 0:
        raise AdaptiveError((*where, "bounds"), "must be above 0 with scale log")
    base = _base_of(data.get("base", {}), (*where, "base"))
    try:
        model = BoostedTrees.from_dict(data.get("model"))
    except ValueError as exc:
        path, message = _model_path(str(exc))
        raise AdaptiveError((*where, "model", *path), message) from None
    if model.n_features != n_features or model.n_outputs != 1:
        raise AdaptiveError(
            (*where, "model", "n_features"), f"must be {n_features} (one per feature), one output"
        )
    return Target(index, name, bounds, model, item, scale, base)


def _base_of(data: Any, where: tuple) -> tuple[tuple[str, float], ...]:
    """``{intercept: c, feature: weight, ...}`` checked: known feature names, finite numbers."""
    if not isinstance(data, dict):
        raise AdaptiveError(where, "must be a mapping of intercept and feature names to numbers")
    for name, weight in data.items():
        if name != "intercept" and name not in FEATURE_NAMES:
            raise AdaptiveError(
                (*where, name), f"unknown feature {name!r} (known: intercept, {', '.join(FEATURE_NAMES)})"
            )
        if not _is_number(weight):
            raise AdaptiveError((*where, name), f"must be a finite number (got {weight!r})")
    return tuple((name, float(weight)) for name, weight in data.items())


def parse_adaptive(data: Any, steps: list) -> AdaptiveModel:
    """Check an ``adaptive:`` block against the pipeline's steps and build the model.

    Raises
    ------
    AdaptiveError
        The first problem, with its path inside the block (``predicts[0].model.trees[2]``).
    """
    if not isinstance(data, dict):
        raise AdaptiveError((), "must be a mapping with features and predicts")
    unknown = sorted(set(data) - {"features", "predicts"})
    if unknown:
        raise AdaptiveError((unknown[0],), "unknown key (allowed: features, predicts)")
    features = data.get("features")
    if not (isinstance(features, list) and features):
        raise AdaptiveError(("features",), "must be a non-empty list of feature names")
    for i, name in enumerate(features):
        if name not in FEATURE_NAMES:
            raise AdaptiveError(
                ("features", i), f"unknown feature {name!r} (known: {', '.join(FEATURE_NAMES)})"
            )
    if len(set(features)) != len(features):
        raise AdaptiveError(("features",), "lists a feature twice")
    predicts = data.get("predicts")
    if not (isinstance(predicts, list) and predicts):
        raise AdaptiveError(("predicts",), "must be a non-empty list of {step, param, bounds, model}")
    targets = [_target(item, i, steps, len(features)) for i, item in enumerate(predicts)]
    seen: set[tuple] = set()
    for i, t in enumerate(targets):
        if (t.step, t.param, t.item) in seen:
            raise AdaptiveError(("predicts", i), f"steps[{t.step}] {t.label} is predicted twice")
        seen.add((t.step, t.param, t.item))
    return AdaptiveModel(tuple(features), tuple(targets))


def adaptive_schema() -> dict[str, Any]:
    """JSON Schema of the ``adaptive:`` block (the trees themselves are checked on load)."""
    return {
        "description": "per-image parameters predicted from image features (written by imgenh fit --adaptive)",
        "type": "object",
        "properties": {
            "features": {"type": "array", "items": {"enum": list(FEATURE_NAMES)}, "minItems": 1},
            "predicts": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "step": {"type": "integer", "minimum": 0},
                        "param": {"type": "string"},
                        "item": {"type": "integer", "minimum": 0},
                        "bounds": {
                            "type": "array",
                            "items": {"type": "number"},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                        "scale": {"enum": list(SCALES)},
                        "base": {"type": "object", "additionalProperties": {"type": "number"}},
                        "model": {"type": "object"},
                    },
                    "required": ["step", "param", "bounds", "model"],
                    "additionalProperties": False,
                },
            },
        },
        "required": ["features", "predicts"],
        "additionalProperties": False,
    }
