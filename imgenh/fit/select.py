"""Fit the look model to pairs: hold-out split, cross-validated complexity, honest errors.

``fit_look(pairs)`` is the Python API behind ``imgenh fit`` without a pipeline. Errors are
mean CIEDE2000 per pair, measured by running the fitted steps through the real pipeline on
the working copies: on the pairs used for fitting (train), on pairs kept out of it
(held-out), and for doing nothing (the before itself) as the baseline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from imgenh.colour_difference import mean_delta_e
from imgenh.fit.look import LADDER, Complexity, LookModel, fit_model, rgb_delta_e
from imgenh.fit.pairs import PairImages

# Pixels sampled from each pair's working copy for fitting and for cross-validation.
SAMPLES_PER_PAIR = 6000
# Up to this many training pairs, cross-validation leaves one pair out; above, K-fold.
LEAVE_ONE_OUT_MAX = 5
K_FOLDS = 5
# A simpler rung is taken when its cross-validated error is within this of the best one's
# (absolute CIEDE2000 units, or relative, whichever is larger): the one-standard-error idea.
# On benchmarks/fit_dev_splits.py --looks (training photos only: fit 3, check 2, 10 splits,
# 8 looks; mean check CIEDE2000) this rule gives 0.396; the lowest rung 0.372, margins of
# 0.002-0.02 0.376-0.381, the textbook one-standard-error rule 0.418, cross-validation weighing
# pixels outside each fold's training gamut 3/10/30 times 0.380-0.387 (lowest) or 0.398-0.402
# (this rule), curves and table pulled to the simpler model outside the pairs' colours 0.538
# (the table alone, a tenth as strongly: 0.441).
# Kept: the lowest rung's 0.02 gain is far below a visible difference, and it gives a plain
# tone-curve edit on 3 pairs a 1331-node colour table (cross-validated 0.039 vs 0.060).
SIMPLER_WITHIN_ABS = 0.05
SIMPLER_WITHIN_REL = 0.03

T = TypeVar("T")


@dataclass
class PairError:
    """Mean CIEDE2000 of one pair: doing nothing, and the fitted look."""

    key: str
    role: str  # "train" or "held-out"
    nothing_done: float
    fitted: float


def mean_pair_error(errors: Sequence[PairError], role: str, fitted: bool = True) -> float | None:
    """Mean over the pairs of ``role`` ("train" or "held-out"), fitted or doing nothing; None when there are none."""
    values = [e.fitted if fitted else e.nothing_done for e in errors if e.role == role]
    return float(np.mean(values)) if values else None


class PairErrors:
    """Mean errors by role for a fit result whose ``errors`` lists a :class:`PairError` per pair."""

    errors: list[PairError]

    def mean_error(self, role: str, fitted: bool = True) -> float | None:
        """Mean over pairs of ``role`` ("train" or "held-out"); None when there are none."""
        return mean_pair_error(self.errors, role, fitted)

    def error_summary(self) -> dict:
        """``{role: {"nothing_done": mean, "fitted": mean}}`` for a JSON report."""
        return {
            role: {"nothing_done": self.mean_error(role, False), "fitted": self.mean_error(role)}
            for role in ("train", "held-out")
        }


@dataclass
class FitResult(PairErrors):
    """What ``fit_look`` found.

    Attributes
    ----------
    steps : list of dict
        Pipeline steps (``pipeline_from_steps(steps)`` runs them).
    model : LookModel
    complexity : str
        The rung chosen by cross-validation (e.g. ``curves17+matrix+lut11``).
    cv_errors : dict
        Cross-validated mean CIEDE2000 of every rung tried, by name.
    errors : list of PairError
        Per pair, train and held-out.
    seed : int
    notes : list of str
    """

    steps: list[dict]
    model: LookModel
    complexity: str
    cv_errors: dict[str, float]
    errors: list[PairError]
    seed: int
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain data for a JSON report."""
        return {
            "complexity": self.complexity,
            "seed": self.seed,
            "cross_validation": {k: round(v, 4) for k, v in self.cv_errors.items()},
            "mean_ciede2000": self.error_summary(),
            "pairs": [e.__dict__ for e in self.errors],
            "notes": list(self.notes),
            "steps": self.steps,
        }


@dataclass
class _Samples:
    """Pixels of one pair as R, G, B rows."""

    key: str
    before: np.ndarray
    after: np.ndarray


def sample_pair(pair: PairImages, count: int, rng: np.random.Generator) -> _Samples:
    """``count`` random pixels (without replacement) of a pair's working copies, as R, G, B rows."""
    before = pair.before.reshape(-1, 3)[:, ::-1]
    after = pair.after.reshape(-1, 3)[:, ::-1]
    if before.shape[0] > count:
        pick = np.sort(rng.choice(before.shape[0], count, replace=False))
        before, after = before[pick], after[pick]
    return _Samples(pair.pair.key, np.ascontiguousarray(before), np.ascontiguousarray(after))


def split_holdout(count: int, holdout: int | None, seed: int) -> np.ndarray:
    """Indices of the pairs kept out of fitting: ``holdout`` of them, or about 20% from 5 pairs on."""
    if holdout is None:
        holdout = int(round(0.2 * count)) if count >= 5 else 0
    if not 0 <= holdout <= count - 2:
        raise ValueError(f"holdout {holdout} leaves fewer than 2 of the {count} pairs for fitting")
    return np.sort(np.random.default_rng(seed).permutation(count)[:holdout])


def pair_folds(groups: Sequence[str], seed: int) -> list[np.ndarray]:
    """Folds of pair indices; pairs of one group (e.g. one scene) always fall in the same fold."""
    names = sorted(set(groups))
    if len(names) > LEAVE_ONE_OUT_MAX:
        order = np.random.default_rng(seed + 1).permutation(len(names))
        names = [[names[i] for i in order[k::K_FOLDS]] for k in range(K_FOLDS)]
    else:
        names = [[n] for n in names]
    return [np.array([i for i, g in enumerate(groups) if g in fold]) for fold in names]


def stack_samples(samples: Sequence[_Samples]) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([s.before for s in samples]), np.concatenate([s.after for s in samples])


def cross_validate(
    samples: Sequence[_Samples],
    ladder: Sequence[Complexity],
    seed: int,
    groups: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Mean held-out CIEDE2000 of each rung, over folds of pairs (each pair's mean weighs the same).

    ``groups`` names each pair's group (default: every pair its own); a group is never split
    between fitting and checking, so pictures of one scene do not flatter a complex model.
    ``on_progress(done, total)`` is called after each rung of each fold (progress bars).
    """
    scores: dict[str, list[float]] = {level.name: [] for level in ladder}
    groups = [s.key for s in samples] if groups is None else list(groups)
    if len(set(groups)) < 2:
        raise ValueError("cross-validation needs pairs from at least 2 groups")
    folds = pair_folds(groups, seed)
    for k, fold in enumerate(folds):
        inside = [s for i, s in enumerate(samples) if i not in set(fold.tolist())]
        x, y = stack_samples(inside)
        bases: dict = {}
        for r, level in enumerate(ladder):
            model = fit_model(x, y, level, bases)
            for i in fold:
                out = model.apply_rgb(samples[i].before)
                scores[level.name].append(float(rgb_delta_e(out, samples[i].after).mean()))
            if on_progress:
                on_progress(k * len(ladder) + r + 1, len(folds) * len(ladder))
    return {name: float(np.mean(v)) for name, v in scores.items()}


def simplest_within_margin(simplest_first: Sequence[T], errors: Sequence[float]) -> T:
    """The first (simplest) item whose error is within the simpler-model margin of the lowest.

    The margin is ``max(SIMPLER_WITHIN_ABS, SIMPLER_WITHIN_REL * lowest)``: a simpler model that
    does about as well is preferred, since it extrapolates more gently to new photos.
    """
    best = min(errors)
    margin = max(SIMPLER_WITHIN_ABS, SIMPLER_WITHIN_REL * best)
    return next(item for item, error in zip(simplest_first, errors, strict=True) if error <= best + margin)


def choose_complexity(cv_errors: dict[str, float], ladder: Sequence[Complexity]) -> Complexity:
    """The simplest rung whose cross-validated error is close to the best one's."""
    return simplest_within_margin(list(ladder), [cv_errors[level.name] for level in ladder])


def pipeline_errors(steps: list[dict], pairs: Sequence[PairImages], roles: Sequence[str]) -> list[PairError]:
    """Mean CIEDE2000 per pair of doing nothing and of running ``steps`` through the pipeline."""
    from imgenh.pipeline_file import pipeline_from_steps  # the pipeline file module imports the registry

    pipeline = pipeline_from_steps(steps)
    errors = []
    for pair, role in zip(pairs, roles, strict=True):
        out, _ = pair.run(pipeline)
        errors.append(
            PairError(
                pair.pair.key,
                role,
                round(mean_delta_e(pair.before, pair.after), 4),
                round(mean_delta_e(out, pair.after), 4),
            )
        )
    return errors


def fit_look(
    pairs: Sequence[PairImages],
    *,
    holdout: int | None = None,
    seed: int = 0,
    ladder: Sequence[Complexity] = LADDER,
    samples_per_pair: int = SAMPLES_PER_PAIR,
    groups: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> FitResult:
    """Learn the look of before/after pairs as pipeline steps.

    Parameters
    ----------
    pairs : sequence of PairImages
        Loaded, checked pairs (:func:`imgenh.fit.pairs.load_pairs`).
    holdout : int, optional
        Pairs kept out of fitting and reported as held-out; default about 20% from 5 pairs on.
    seed : int
        Seeds the hold-out choice, pixel sampling and folds: same seed, same result.
    ladder : sequence of Complexity
        Rungs cross-validation chooses from, simplest first.
    samples_per_pair : int
        Pixels sampled from each pair for fitting.
    groups : sequence of str, optional
        A group name per pair (same scene, same burst): cross-validation keeps a group
        together. Default: each pair is its own group.
    on_progress : callable, optional
        ``on_progress(done, total)`` as cross-validation goes (progress bars).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        Fewer than 2 pairs left for fitting.
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 usable pairs to fit a look (got {len(pairs)})")
    held = set(split_holdout(len(pairs), holdout, seed).tolist())
    rng = np.random.default_rng(seed)
    train = [sample_pair(p, samples_per_pair, rng) for i, p in enumerate(pairs) if i not in held]
    train_groups = None if groups is None else [g for i, g in enumerate(groups) if i not in held]
    cv_errors = cross_validate(train, ladder, seed, train_groups, on_progress)
    level = choose_complexity(cv_errors, ladder)
    model = fit_model(*stack_samples(train), level)
    steps = model.steps()
    roles = ["held-out" if i in held else "train" for i in range(len(pairs))]
    return FitResult(steps, model, level.name, cv_errors, pipeline_errors(steps, pairs, roles), seed)
