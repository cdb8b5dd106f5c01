"""Write what ``imgenh fit`` learned: a pipeline file with its measured errors, a ``.cube`` file.

The look model's steps, or a user's pipeline with its fitted values in place; both files start
with the same block of measured errors.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from imgenh.cube import CubeLut, identity_table
from imgenh.fit.search import SEARCH_SIDE, SearchResult
from imgenh.fit.select import FitResult

CUBE_SIZE = 33


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def comment_block(
    result: FitResult | SearchResult, unmatched: Sequence[str] = (), refused: Sequence[str] = ()
) -> str:
    """The ``#`` lines a tuned pipeline file starts with: pairs used, errors before and after fitting.

    Parameters
    ----------
    result : FitResult or SearchResult
        The look model's fit, or the search of a user's pipeline.
    unmatched : sequence of str
        Files without a partner, to list (one line each).
    refused : sequence of str
        ``"key: reason"`` for pairs that were refused.
    """
    train = [e for e in result.errors if e.role == "train"]
    held = [e for e in result.errors if e.role == "held-out"]
    pairs = f"Pairs: {len(train)} fitted, {len(held)} held out, {len(refused)} refused; seed {result.seed}."
    lines = _search_lines(result, pairs) if isinstance(result, SearchResult) else _look_lines(result, pairs)
    lines += [
        "Mean CIEDE2000 (sRGB, D65)   nothing done   fitted",
        f"  train ({len(train)} pairs)          {_fmt(result.mean_error('train', False)):>8}   "
        f"{_fmt(result.mean_error('train'))}",
    ]
    if held:
        lines.append(
            f"  held out ({len(held)} pairs)       {_fmt(result.mean_error('held-out', False)):>8}   "
            f"{_fmt(result.mean_error('held-out'))}"
        )
    lines.append("Per pair:")
    width = max(len(e.key) for e in result.errors)
    lines += [
        f"  {e.key:<{width}}  {e.role:<8}  {e.nothing_done:6.2f} -> {e.fitted:6.2f}" for e in result.errors
    ]
    lines += [f"Refused: {r}" for r in refused] + [f"Unmatched: {u}" for u in unmatched]
    lines += [f"Note: {n}" for n in result.notes]
    return "".join(f"# {line}\n".replace("# \n", "#\n") for line in lines)


def _look_lines(result: FitResult, pairs: str) -> list[str]:
    return [
        "Fitted by imgenh fit (look model): tone curves, colour matrix, colour table.",
        pairs,
        f"Complexity chosen by cross-validation over pairs: {result.complexity}",
        "  (" + ", ".join(f"{k} {v:.2f}" for k, v in result.cv_errors.items()) + ")",
    ]


def _search_lines(result: SearchResult, pairs: str) -> list[str]:
    source = result.space.source
    return [
        f"Fitted by imgenh fit from {source}: its {{fit: ...}} parameters searched, the rest as written.",
        f"(Comments of {source} are not kept.)",
        pairs,
        f"Search: {result.evaluations} evaluations (budget {result.budget}), mean CIEDE2000 on the "
        f"fitted pairs at {SEARCH_SIDE} px {result.objective:.2f}.",
        "Fitted values:",
        *(f"  {line}" for line in result.space.describe(result.values)),
    ]


def files_relative_to(steps: list[dict], folder: str | Path | None) -> list[dict]:
    """``steps`` with each file a step names (e.g. lut3d's ``.cube``) written relative to ``folder``.

    A pipeline file's paths are read relative to its own folder, so a tuned file written
    into ``folder`` keeps working when the folder moves with it. ``None`` leaves them as they are.
    """
    if folder is None:
        return steps
    from imgenh.ops import get_op

    out = []
    for step in steps:
        step = dict(step)
        for name, param in get_op(step["op"]).params.items():
            if param.path and isinstance(step.get(name), str) and os.path.isabs(step[name]):
                step[name] = Path(os.path.relpath(step[name], folder)).as_posix()
        out.append(step)
    return out


def render_pipeline(
    result: FitResult | SearchResult,
    unmatched: Sequence[str] = (),
    refused: Sequence[str] = (),
    folder: str | Path | None = None,
) -> str:
    """The text of the tuned pipeline file: the comment block, then ``version`` and ``steps``.

    For a :class:`SearchResult` the document is the user's pipeline (name, description,
    output kept) with the fitted values in place of the ``{fit: ...}`` markers. Numbers
    lists are written in flow style (``[0.1, 0.2]``), so a 9^3 table stays readable as a
    block of numbers; the file loads with ``imgenh.load_pipeline`` like any other. With
    ``folder`` (where the file will be written), files the steps name are written relative to it.
    """
    from imgenh.pipeline_file import SCHEMA_VERSION

    if isinstance(result, SearchResult):
        document = result.space.document(result.values)
    else:
        document = {"version": SCHEMA_VERSION, "steps": result.steps}
    document["steps"] = files_relative_to(document["steps"], folder)
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=100)
    return comment_block(result, unmatched, refused) + body


def look_to_cube(steps: list[dict], size: int = CUBE_SIZE, title: str = "imgenh look") -> CubeLut:
    """Bake pipeline steps that act on each colour alone into one ``size^3`` table.

    The steps are run through the real pipeline on an image whose pixels are the table's
    nodes, so the ``.cube`` file gives what ``imgenh run`` gives, up to interpolation between
    nodes. Steps that look at neighbours or image statistics would be baked for this
    synthetic image only: pass only per-colour steps (what ``fit_look`` writes).
    """
    from imgenh.pipeline_file import pipeline_from_steps

    nodes = identity_table(size)  # [r, g, b] -> (r, g, b)
    image = np.ascontiguousarray(nodes.reshape(size * size, size, 3)[..., ::-1])  # BGR float32
    out, _ = pipeline_from_steps(steps).apply(image)
    table = out[..., ::-1].reshape(size, size, size, 3).astype(np.float32)
    return CubeLut(table, title=title, comments=["Made by imgenh fit; red changes fastest."])
