"""Auto-correction prefixes for ``imgenh fit --adaptive``: the editor's "auto" buttons, searched.

An editor's per-image edit very often starts from an auto-correction (auto white balance, auto
levels, auto exposure) and then applies the same look to every photo. imgenh has those
corrections as operators that measure their parameters on each image itself, so instead of
predicting per-image numbers, the adaptive fit can try a short prefix of them in front of the
global look. Each slot of :data:`AUTO_SLOTS` is a choice (like ``method: {fit: [...]}`` in a
user's pipeline), nothing included; :func:`search_auto_prefix` scores every combination (24) by
the cross-validated error of a quick look (:data:`PROXY_RUNG`) fitted after it, on the same
folds of pairs as the look's own cross-validation, and takes the one with the fewest steps
within the look's simpler-rung margin of the lowest (:func:`imgenh.fit.select.choose_complexity`'s
rule), so a global edit keeps an empty prefix. (A coordinate search over the slots, tried first,
stopped at a worse prefix on one of 30 development splits.)
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from imgenh.fit.look import LADDER
from imgenh.fit.pairs import PairImages
from imgenh.fit.select import (
    SAMPLES_PER_PAIR,
    cross_validate,
    sample_pair,
    simplest_within_margin,
)

# The slots, in the order an editor applies them; each option is one step (None: leave the slot out).
AUTO_SLOTS: tuple[tuple[str, tuple[dict | None, ...]], ...] = (
    (
        "white balance",
        (None, {"op": "white_balance", "method": "gray_world"}, {"op": "white_balance", "method": "auto"}),
    ),
    (
        "levels",
        (None, {"op": "stretch"}, {"op": "stretch", "linked": False}, {"op": "auto_level"}),
    ),
    ("exposure", (None, {"op": "gamma", "auto": True})),
)
# The look each prefix is scored with: curves and matrix, cheap to cross-validate (no table).
PROXY_RUNG = next(level for level in LADDER if level.name == "curves17+matrix")
# Pixels sampled per pair for that score (a third of the look's: 24 prefixes are scored).
PROXY_SAMPLES = SAMPLES_PER_PAIR // 3


@dataclass
class AutoPrefix:
    """What :func:`search_auto_prefix` found.

    Attributes
    ----------
    steps : list of dict
        The chosen prefix as pipeline steps (empty: none).
    proxy_cv : dict
        Cross-validated mean CIEDE2000 of the quick look after each prefix tried, by label.
    """

    steps: list[dict]
    proxy_cv: dict[str, float]

    @property
    def label(self) -> str:
        return prefix_label(self.steps)


def prefix_label(steps: Sequence[dict]) -> str:
    """``white_balance gray_world + stretch + gamma auto``; ``none`` for no steps."""
    names = []
    for step in steps:
        extra = [
            str(v) if k == "method" else (k if v is True else f"{k} {v}")
            for k, v in step.items()
            if k != "op"
        ]
        names.append(" ".join([step["op"], *extra]))
    return " + ".join(names) or "none"


def _steps(choice: Sequence[int]) -> list[dict]:
    return [dict(options[k]) for (_, options), k in zip(AUTO_SLOTS, choice, strict=True) if options[k]]


def apply_prefix(pairs: Sequence[PairImages], steps: Sequence[dict]) -> list[PairImages]:
    """The pairs with their befores run through ``steps`` (as ``imgenh run`` would run them)."""
    if not steps:
        return list(pairs)
    from imgenh.pipeline_file import pipeline_from_steps  # the pipeline file module imports the registry

    pipeline = pipeline_from_steps(list(steps))
    return [replace(p, before=p.run(pipeline)[0]) for p in pairs]


def search_auto_prefix(pairs: Sequence[PairImages], groups: Sequence[str] | None, seed: int) -> AutoPrefix:
    """The auto-correction prefix (one option per slot of :data:`AUTO_SLOTS`) that best explains the pairs.

    Every combination is scored (the befores run through it stage by stage, each stage once);
    the one with the fewest steps within the look's simpler-rung margin of the lowest error wins.

    Parameters
    ----------
    pairs : sequence of PairImages
        The training pairs.
    groups : sequence of str, optional
        A group name per pair; cross-validation keeps a group together (as in ``fit_look``).
    seed : int
        Seeds the pixel samples and folds.

    Returns
    -------
    AutoPrefix
    """
    stages: dict[tuple[int, ...], list[PairImages]] = {(): list(pairs)}

    def prefixed(choice: tuple[int, ...]) -> list[PairImages]:
        if choice not in stages:
            option = AUTO_SLOTS[len(choice) - 1][1][choice[-1]]
            stages[choice] = apply_prefix(prefixed(choice[:-1]), [option] if option else [])
        return stages[choice]

    scores = {}
    for choice in itertools.product(*(range(len(options)) for _, options in AUTO_SLOTS)):
        rng = np.random.default_rng(seed)
        samples = [sample_pair(p, PROXY_SAMPLES, rng) for p in prefixed(choice)]
        scores[choice] = cross_validate(samples, [PROXY_RUNG], seed, groups)[PROXY_RUNG.name]
    simplest_first = sorted(scores, key=lambda c: (len(_steps(c)), c))
    chosen = simplest_within_margin(simplest_first, [scores[c] for c in simplest_first])
    return AutoPrefix(_steps(chosen), {prefix_label(_steps(c)): round(v, 4) for c, v in scores.items()})
