"""A pipeline and how it runs: steps compiled into stages and applied to one image.

Pixels are numpy arrays in OpenCV channel order (BGR), shape ``(H, W)`` or ``(H, W, C)``,
dtype uint8, uint16 or float32 in [0, 1]. Consecutive pointwise steps are fused into one
lookup table per channel; the image turns into float32 once, at the first float step,
and back to its own depth once, at the end. :class:`Pipeline` holds validated steps and
output settings; :mod:`imgenh.pipeline_file` builds one from YAML or Python data.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from imgenh.errors import ConfigError
from imgenh.io import DEFAULT_QUALITY, CameraExposure, Image, camera_exposure
from imgenh.ops.contract import OpContext, ParamError, Stats
from imgenh.ops.registry import Param, did_you_mean
from imgenh.ops.scene import SceneLight
from imgenh.pixels import apply_table, from_float, is_identity_table, max_value, table_changes, to_float

if TYPE_CHECKING:
    from imgenh.ops.registry import OpSpec

SCHEMA_VERSION = 1  # version of the pipeline data (files and canonical form)


class StepError(Exception):
    """An operator failed on an image; the message names the step (``steps[i] name: why``)."""


@dataclass(frozen=True)
class Step:
    """One validated step of a pipeline: the operator and all its parameter values."""

    op: OpSpec
    params: dict[str, Any]
    index: int
    where: str = ""  # how messages name it when not ``steps[index]``, e.g. ``--step 1``
    # Augmentation: the step's random parameters and probability (imgenh.augment.StepRandom);
    # ``params`` then hold placeholders until :func:`imgenh.augment.draw` makes them concrete.
    random: Any = None

    @property
    def label(self) -> str:
        """``steps[i] name`` (or ``--step n name``), the way error messages name a step."""
        return f"{self.where or f'steps[{self.index}]'} {self.op.name}"

    def __call__(self, x: np.ndarray, ctx: OpContext) -> np.ndarray:
        """Run the operator, turning any failure into a :class:`StepError` that names this step.

        MemoryError passes through as it is, so callers can still tell it apart.
        """
        try:
            return self.op.func(x, ctx, **self.params)
        except MemoryError:
            raise
        except ParamError as exc:
            raise StepError(f"{self.label}.{exc.param}: {exc.message}") from exc
        except Exception as exc:
            raise StepError(f"{self.label}: {exc}") from exc


def _stages(steps: list[Step]) -> list[list[Step]]:
    """Group consecutive pointwise steps; every other step stands alone."""
    stages: list[list[Step]] = []
    for step in steps:
        if step.op.kind == "pointwise" and stages and stages[-1][0].op.kind == "pointwise":
            stages[-1].append(step)
        else:
            stages.append([step])
    return stages


def apply_steps(
    pixels: np.ndarray, steps: list[Step], camera: CameraExposure | None = None
) -> tuple[np.ndarray, list[dict]]:
    """Apply ``steps`` to one image.

    Parameters
    ----------
    pixels : ndarray
        uint8, uint16 or float32 image without alpha, not modified.
    steps : list of Step
    camera : CameraExposure or None
        The exposure the photo was taken with (EXIF), for operators that ask how bright the
        scene was (``ctx.scene``).

    Returns
    -------
    image : ndarray
        The result, in the input's dtype; ``pixels`` itself (not a copy) when the steps leave
        every level as it was (no steps, or pointwise steps that cancel out).
    reports : list of dict
        ``{"step": i, "op": name, ...values}`` for each step that reported values.

    Raises
    ------
    StepError
        An operator failed; the message starts with the step's label, e.g.
        ``steps[0] white_balance.white_at: [5000, 10] is outside the 600x400 image``.
    """
    img, _, reports = _apply(pixels, steps, None, camera)
    return img, reports


def _apply(
    pixels: np.ndarray,
    steps: list[Step],
    alpha: np.ndarray | None,
    camera: CameraExposure | None = None,
    reuse_input: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, list[dict]]:
    """:func:`apply_steps`, carrying an alpha plane through the steps that move or resize pixels
    (``reuse_input``: see :meth:`Pipeline.apply_image`)."""
    if pixels.dtype not in (np.uint8, np.uint16, np.float32):
        raise TypeError(f"unsupported pixel type {pixels.dtype}; expected uint8, uint16 or float32")
    unresolved = [s.label for s in steps if s.random is not None]
    if unresolved:  # placeholders must never be applied as if they were the user's values
        raise StepError(f"{unresolved[0]}: has random parameters; draw a variant first (imgenh.augment.draw)")
    dtype = pixels.dtype
    depth_max = max_value(dtype)
    img = pixels
    reports: list[dict] = []
    scene = SceneLight(camera, pixels) if camera is not None else None  # measured from the input, once

    measured: tuple[np.ndarray, dict] = (img, {})  # OpContext.measure's figures, for this array only

    def context(image: np.ndarray, stats: Stats | None = None) -> OpContext:
        nonlocal measured
        if measured[0] is not image:
            measured = (image, {})
        channels = 1 if image.ndim == 2 else image.shape[2]
        return OpContext(
            channels=channels, depth_max=depth_max, stats=stats, scene=scene, measures=measured[1]
        )

    for stage in _stages(steps):
        contexts = []
        if stage[0].op.kind == "pointwise":
            if img.dtype == np.float32:
                for step in stage:
                    ctx = context(img, Stats(img))
                    img = np.asarray(step(img, ctx), dtype=np.float32)
                    contexts.append((step, ctx))
            else:
                bins = int(max_value(img.dtype)) + 1
                table = np.linspace(0.0, 1.0, bins)
                raw_counts: dict = {}  # the image's level counts, counted once for the whole group
                for i, step in enumerate(stage):
                    ctx = context(img, Stats(img, table if i else None, raw_counts))
                    table = np.asarray(step(table, ctx), dtype=np.float64)
                    contexts.append((step, ctx))
                if reuse_input and scene is not None and np.may_share_memory(img, pixels):
                    _ = scene.mean  # measured lazily from the input: before the pass may write over it
                img = _table_pass(img, table, pixels, reuse_input)
        else:
            step = stage[0]
            if step.op.kind == "float":
                img = to_float(img)
            ctx = context(img)
            img = step(img, ctx)
            contexts.append((step, ctx))
            if alpha is not None:
                alpha = _alpha_after(step, alpha, img.shape[:2])
        for step, ctx in contexts:
            if ctx.values:
                reports.append({"step": step.index, "op": step.op.name, **ctx.values})
    if img.dtype != dtype or dtype == np.float32:  # float steps may overshoot [0, 1]
        img = from_float(to_float(img), dtype)
    return img, alpha, reports


def _table_pass(img: np.ndarray, table: np.ndarray, pixels: np.ndarray, reuse_input: bool) -> np.ndarray:
    """``img`` through a fused group's ``table``: no pass when it changes nothing, else a new array,
    or ``img``'s own memory when that is this run's to overwrite.

    An 8-bit colour image under one table per channel is written in place when the pipeline
    made it (memory not shared with the input ``pixels``), or when it is ``pixels`` and
    ``reuse_input``: 12 MP, ~19.5 against ~22 ms, and no second frame for the result. (One
    table for all channels stays a new array: OpenCV's LUT is slower in place, ~19 against
    ~16 ms.) Written over ``pixels``, the result is a new view of them, so the result is
    ``pixels`` itself only when every value stayed as it was (see :meth:`Pipeline.apply_image`).
    """
    if is_identity_table(table, img.dtype):  # a group that changes nothing: no pass
        return img
    own = reuse_input or not np.may_share_memory(img, pixels)
    planar = img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] > 1 and table.ndim == 2
    if not (own and planar and img.flags.c_contiguous and img.flags.writeable):
        return apply_table(img, table)
    if img is pixels and not table_changes(img, table):
        return img  # the table moves no level this image holds: its pixels stay as decoded
    return apply_table(img, table, out=img).view()


def _alpha_after(step: Step, alpha: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Alpha after ``step``: moved by the operator itself when it moves pixels, else resized to ``shape``.

    An operator declared with ``alpha=...`` (flip, rotate, crop, affine) runs on the alpha
    plane as a grey image with the same parameters (the declared ones replaced), so the mask
    moves exactly as the pixels did. Any other change of size resizes alpha: area averaging
    when it shrinks, bilinear when it grows (Lanczos would ring on hard mask edges).
    """
    if step.op.alpha is not None:
        moved = replace(step, params={**step.params, **step.op.alpha})
        alpha = moved(alpha, OpContext(channels=1, depth_max=max_value(alpha.dtype)))
    if alpha.shape[:2] != tuple(shape):
        h, w = shape
        interp = cv2.INTER_AREA if h * w < alpha.shape[0] * alpha.shape[1] else cv2.INTER_LINEAR
        alpha = cv2.resize(alpha, (w, h), interpolation=interp)
    return alpha


def run_op(pixels: np.ndarray, name: str, **params: Any) -> np.ndarray:
    """Apply one operator to an array, the way a one-step pipeline would.

    Parameters
    ----------
    pixels : ndarray
        BGR or grey image, uint8, uint16 or float32 in [0, 1].
    name : str
        Operator name (see ``imgenh ops``).
    **params
        The operator's parameters; omitted ones take their defaults.

    Returns
    -------
    ndarray
        The result, same dtype as ``pixels``.

    Raises
    ------
    ValueError
        A parameter is invalid (the message names it).
    StepError
        The operator failed on these pixels.

    Examples
    --------
    >>> import numpy as np
    >>> run_op(np.full((2, 2), 64, np.uint8), "gamma", value=2.0)[0, 0]
    np.uint8(128)
    """
    from imgenh.ops import get_op

    spec = get_op(name)
    values, errors = spec.resolve(params)
    if errors:
        raise ValueError(
            "; ".join(f"{name}.{key}: {msg}" if key else f"{name}: {msg}" for key, msg in errors)
        )
    out, _ = apply_steps(pixels, [Step(spec, values, 0)])
    return out


FORMATS = ("keep", "jpg", "png", "tiff", "webp")
METADATA = ("keep", "strip")
UNCHANGED = ("copy", "encode")
OUTPUT_PARAMS: dict[str, Param] = {
    "format": Param(str, "keep", "output format; keep = same as the input", choices=FORMATS),
    "quality": Param(int, DEFAULT_QUALITY, "JPEG/WebP quality", ge=1, le=100),
    "suffix": Param(str, "", "inserted before the extension, e.g. _enh"),
    "metadata": Param(
        str, "keep", "keep EXIF/XMP/ICC where the format can hold them, or strip", choices=METADATA
    ),
    "unchanged": Param(
        str,
        "copy",
        "an image the steps leave exactly as decoded, written in its own format with metadata kept: "
        "copy = the input file's bytes as they are (no second JPEG generation), encode = like any other",
        choices=UNCHANGED,
    ),
}
FORMAT_ALIASES = {"jpeg": "jpg", "tif": "tiff"}


# --- output settings: declared once, checked for files, Python data and CLI overrides ------


def _output_value(key: str, value: Any) -> Any:
    """Formats and metadata modes in any case, with the usual aliases (JPEG -> jpg, tif -> tiff)."""
    if key in ("format", "metadata", "unchanged") and isinstance(value, str):
        value = value.strip().lower()
        return FORMAT_ALIASES.get(value, value) if key == "format" else value
    return value


def _suffix_problems(suffix: str) -> list[str]:
    bad = [c for c in suffix if c in '/\\:*?"<>|\0' or ord(c) < 32]
    if bad:
        shown = " ".join(sorted(set(bad)))
        return [f"may not contain path separators or special characters ({shown}) (got {suffix!r})"]
    return []


def check_output(given: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate output settings (``format``, ``quality``, ``suffix``, ``metadata``).

    Returns
    -------
    values : dict
        The valid settings in canonical form (``JPEG`` -> ``jpg``).
    problems : list of (key, message)
        One entry per problem, in the order of ``given``.
    """
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for key, value in given.items():
        param = OUTPUT_PARAMS.get(key)
        if param is None:
            hint = did_you_mean(key, OUTPUT_PARAMS)
            problems.append((key, f"unknown key{hint} (allowed: {', '.join(OUTPUT_PARAMS)})"))
            continue
        try:
            values[key] = param.coerce(_output_value(key, value))
        except ValueError as exc:
            problems.append((key, str(exc)))
            continue
        if key == "suffix":
            problems += [(key, message) for message in _suffix_problems(values[key])]
    return values, problems


@dataclass(frozen=True)
class OutputSettings:
    """How results are written: format, quality, file-name suffix, metadata and unchanged-image policy."""

    format: str = "keep"
    quality: int = DEFAULT_QUALITY
    suffix: str = ""
    metadata: str = "keep"
    unchanged: str = "copy"


@dataclass
class Pipeline:
    """A validated pipeline: named steps plus output settings.

    Build one with :func:`imgenh.load_pipeline`, :func:`imgenh.parse_pipeline` or
    :func:`imgenh.pipeline_from_steps`; :meth:`apply` runs it on an array,
    :meth:`apply_image` on an :class:`imgenh.io.Image` (alpha and metadata carried along).
    """

    steps: list[Step]
    output: OutputSettings = field(default_factory=OutputSettings)
    name: str = ""
    description: str = ""
    source: str = "<dict>"
    seed: int | None = None  # augmentation: the run's seed (--seed), part of the hash
    # Per-image parameters (imgenh.adaptive.AdaptiveModel), predicted from each image's statistics.
    adaptive: Any = None

    @property
    def is_random(self) -> bool:
        """True when a step has random parameters or a probability (see :mod:`imgenh.augment`)."""
        return any(step.random is not None for step in self.steps)

    def apply(
        self, pixels: np.ndarray, camera: CameraExposure | None = None
    ) -> tuple[np.ndarray, list[dict]]:
        """Apply the steps to one image (BGR or grey; uint8, uint16 or float32 in [0, 1]).

        With an adaptive model (``adaptive:`` in the file) the predicted parameters are this
        image's own (:meth:`steps_for`), and the reports start with what was predicted.
        ``camera`` is the exposure the photo was taken with (:func:`imgenh.io.camera_exposure`
        reads it from EXIF; :meth:`apply_image` does so itself).

        Returns
        -------
        image : ndarray
            Same dtype as ``pixels``.
        reports : list of dict
            Values the operators reported (e.g. white-balance illuminant), one dict per step.
        """
        steps, predicted = self.steps_for(pixels)
        out, reports = apply_steps(pixels, steps, camera)
        return out, predicted + reports

    def steps_for(self, pixels: np.ndarray) -> tuple[list[Step], list[dict]]:
        """The steps as they run on ``pixels``: with an adaptive model, its per-image predictions.

        Returns
        -------
        steps : list of Step
        predicted : list of dict
            ``{"step": i, "op": name, "predicted": {param: value}}`` per predicted step (empty
            without a model), for the report.
        """
        if self.adaptive is None:
            return self.steps, []
        return self.adaptive.steps_for(self.steps, pixels)

    def apply_image(self, image: Image, reuse_input: bool = False) -> tuple[Image, list[dict]]:
        """Apply the steps to a decoded image; alpha moves with the pixels through geometry steps.

        Operators that move pixels (flip, rotate, crop, affine: declared with ``alpha=``) move
        alpha the same way; other changes of size (resize) resize it; no operator sees it.

        Parameters
        ----------
        image : imgenh.io.Image
            Not modified, unless ``reuse_input``.
        reuse_input : bool
            Let ``image.pixels``' memory hold the result of a pointwise group (8-bit: no second
            full-size frame). Their values are then the result's, never read again by the
            caller; the result's pixels are ``image.pixels`` itself only when no value changed
            (written over, they are a new view of that memory).

        Returns
        -------
        image : imgenh.io.Image
            A new image with the result's pixels, alpha moved and sized to match them, and
            the input's metadata, format and notes.
        reports : list of dict
            As for :meth:`apply`.

        Examples
        --------
        >>> import numpy as np
        >>> from imgenh import pipeline_from_steps
        >>> from imgenh.io import Image
        >>> rgba = Image(np.zeros((40, 60, 3), np.uint8), alpha=np.full((40, 60), 255, np.uint8))
        >>> out, _ = pipeline_from_steps([{"op": "resize", "width": 30}]).apply_image(rgba)
        >>> out.alpha.shape
        (20, 30)
        """
        steps, predicted = self.steps_for(image.pixels)
        pixels, alpha, reports = _apply(
            image.pixels, steps, image.alpha, camera_exposure(image.exif), reuse_input
        )
        return replace(image, pixels=pixels, alpha=alpha, notes=list(image.notes)), predicted + reports

    def canonical(self) -> dict[str, Any]:
        """The pipeline as plain data with every default filled in (what the hash covers)."""
        data = {
            "version": SCHEMA_VERSION,
            "steps": [
                {"op": s.op.name, **s.params, **(s.random.plain(s.params) if s.random else {})}
                for s in self.steps
            ],
            "output": {
                "format": self.output.format,
                "quality": self.output.quality,
                "suffix": self.output.suffix,
                "metadata": self.output.metadata,
            },
        }
        if self.output.unchanged != "copy":  # added later: pipelines that keep the default keep their hash
            data["output"]["unchanged"] = self.output.unchanged
        if self.is_random:  # the draws depend on the seed; plain pipelines keep their old hash
            data["seed"] = self.seed
        if self.adaptive is not None:
            data["adaptive"] = self.adaptive.to_dict()
        return data

    def hash(self) -> str:
        """SHA-256 (hex, 16 chars) of :meth:`canonical`: changes when any step or output setting does."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def with_output(self, **overrides: Any) -> Pipeline:
        """A copy with some output settings replaced (CLI flags win over the file); None keeps one.

        Raises
        ------
        imgenh.ConfigError
            When an override is invalid (``--quality: must be <= 100 (got 101)``).
        """
        given = {key: value for key, value in overrides.items() if value is not None}
        values, problems = check_output(given)
        if problems:
            raise ConfigError([f"--{key}: {message}" for key, message in problems])
        return replace(self, output=replace(self.output, **values))
