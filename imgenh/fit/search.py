"""Search the ``{fit: ...}`` parameters of a user's pipeline: ``fit_search(space, pairs)``.

The objective is the mean CIEDE2000, over the training pairs, between the pipeline's output
and the after, on copies of the working copies shrunk to ``SEARCH_SIDE`` pixels (the real
pipeline runs on each, so operators that look at image statistics or neighbours are fitted
as they run). The search is gradient-free and needs no smoothness:

- numeric ranges are scaled to [0, 1] and searched by Nelder-Mead kept inside the box;
- choices, and integer ranges of at most ``DISCRETE_MAX`` values, are discrete: tried all
  together when their combinations are few (``EXHAUSTIVE_MAX``), else one parameter at a
  time, before each Nelder-Mead run and again after it until they stop changing;
- ``SCREENED`` seeded starting points are evaluated (the first is the middle of every range);
  local searches start from the best ``RESTARTS`` of them, the first with half of the budget
  (most edits have one basin), then the best point found is polished with a small simplex.

Every evaluation is counted against ``budget`` (points already seen are free), so the time is
about ``budget`` x one pipeline run over the shrunk training pairs. Same seed, same result.
Errors are then measured honestly as for the look model (:func:`imgenh.fit.select.pipeline_errors`):
per pair, through the real pipeline on the working copies, train and held-out, and doing nothing.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from imgenh.colour_difference import delta_e_2000, lab_from_bgr
from imgenh.errors import ConfigError
from imgenh.fit.pairs import PairImages, resize_to_side
from imgenh.fit.select import PairError, PairErrors, pipeline_errors, split_holdout
from imgenh.fit.space import FitParam, FitSpace

DEFAULT_BUDGET = 300  # evaluations of the objective
SEARCH_SIDE = 128  # long side of the copies the objective runs on
SCREENED = 8  # starting points tried (the middle of every range, then seeded random points)
RESTARTS = 3  # local searches, from the best of the screened points
POLISH_SHARE = 0.15  # of the budget, kept for polishing the best point
DISCRETE_MAX = 9  # integer ranges with at most this many values are searched like choices
EXHAUSTIVE_MAX = 12  # discrete combinations tried all together up to this many
INITIAL_STEP = 0.25  # Nelder-Mead's first simplex, in units of each range
POLISH_STEP = 0.05
TOLERANCE = 1e-3  # a simplex smaller than this (in range units) has converged,
F_TOLERANCE = 1e-3  # and so has one whose errors (CIEDE2000) are all within this of each other
SIGNIFICANT_DIGITS = 5  # fitted numbers are written, and evaluated, with this many digits
SETTLED = 0.01  # CIEDE2000: a search whose best improved by less in its last tenth had settled


@dataclass
class SearchResult(PairErrors):
    """What ``fit_search`` found.

    Attributes
    ----------
    steps : list of dict
        The pipeline's steps with the fitted values in place.
    values : list
        One fitted value per ``space.params``.
    space : FitSpace
    errors : list of PairError
        Per pair, train and held-out, through the real pipeline on the working copies.
    seed, budget, evaluations : int
        The seed, the evaluation budget and the evaluations spent.
    objective : float
        The best mean CIEDE2000 the search saw (training pairs, shrunk copies).
    notes : list of str
    """

    steps: list[dict]
    values: list
    space: FitSpace
    errors: list[PairError]
    seed: int
    budget: int
    evaluations: int
    objective: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain data for a JSON report."""
        return {
            "pipeline": self.space.source,
            "seed": self.seed,
            "budget": self.budget,
            "evaluations": self.evaluations,
            "fitted": [
                {"parameter": p.label, "marker": p.marker(), "value": v}
                for p, v in zip(self.space.params, self.values, strict=True)
            ],
            "mean_ciede2000": self.error_summary(),
            "pairs": [e.__dict__ for e in self.errors],
            "notes": list(self.notes),
            "steps": self.steps,
        }


class _BudgetSpent(Exception):
    pass


class _Objective:
    """Mean CIEDE2000 of the pipeline for given values over the shrunk training pairs, cached and counted."""

    def __init__(self, space: FitSpace, pairs: Sequence[PairImages], budget: int, on_eval: Callable | None):
        self.space, self.budget, self.on_eval = space, budget, on_eval
        self.pairs = pairs
        self.befores = [resize_to_side(p.before, SEARCH_SIDE) for p in pairs]
        self.afters = [lab_from_bgr(resize_to_side(p.after, SEARCH_SIDE)) for p in pairs]
        self.cache: dict[tuple, float] = {}
        self.count = 0
        self.best: tuple[float, list] = (math.inf, [])
        self.failure = ""  # why the first refused point was refused
        self.improved_at = 0  # the evaluation that last lowered the best error by at least SETTLED

    def __call__(self, values: list) -> float:
        key = tuple(repr(v) for v in values)
        if key in self.cache:
            return self.cache[key]
        if self.count >= self.budget:
            raise _BudgetSpent
        self.count += 1
        error = self._error(values)
        self.cache[key] = error
        if error < self.best[0]:
            if error < self.best[0] - SETTLED:
                self.improved_at = self.count
            self.best = (error, list(values))
        if self.on_eval:
            self.on_eval(self.count, self.budget)
        return error

    def _error(self, values: list) -> float:
        from imgenh.pipeline import StepError
        from imgenh.pipeline_file import pipeline_from_steps

        try:
            pipeline = pipeline_from_steps(self.space.steps_for(values))
            total = 0.0
            for pair, before, after_lab in zip(self.pairs, self.befores, self.afters, strict=True):
                out, _ = pair.run(pipeline, before)
                total += float(delta_e_2000(lab_from_bgr(out), after_lab).mean())
        except (ConfigError, StepError) as exc:
            self.failure = self.failure or str(exc)
            return math.inf  # a combination the operators refuse is simply a bad point
        return total / len(self.befores)


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


class _Coordinates:
    """The search's view of a FitSpace: continuous dimensions in [0, 1], discrete ones as option lists."""

    def __init__(self, params: Sequence[FitParam]):
        self.params = list(params)
        self.continuous = [i for i, p in enumerate(params) if not _is_discrete(p)]
        self.discrete = [i for i, p in enumerate(params) if _is_discrete(p)]
        self.options = [_options(params[i]) for i in self.discrete]

    def values(self, u: np.ndarray, picks: Sequence[int]) -> list:
        """Parameter values from unit coordinates ``u`` and option indexes ``picks``."""
        values: list = [None] * len(self.params)
        for i, x in zip(self.continuous, u, strict=True):
            value = self.params[i].from_unit(x)
            values[i] = value if isinstance(value, int) else _rounded(value)
        for i, options, k in zip(self.discrete, self.options, picks, strict=True):
            values[i] = options[k]
        return values


def _is_discrete(param: FitParam) -> bool:
    return not param.is_range or (param.integer and param.high - param.low + 1 <= DISCRETE_MAX)


def _options(param: FitParam) -> tuple:
    return param.choices if not param.is_range else tuple(range(int(param.low), int(param.high) + 1))


def nelder_mead(
    f: Callable[[np.ndarray], float],
    x0: np.ndarray,
    step: float,
    stop: Callable[[], bool],
    f_tolerance: float = F_TOLERANCE,
) -> tuple[np.ndarray, float]:
    """Minimise ``f`` over the box [0, 1]^d from ``x0`` (Nelder-Mead; points outside are clipped).

    Parameters
    ----------
    f : callable
        The function of a point in [0, 1]^d.
    x0 : ndarray
        The starting point.
    step : float
        Size of the first simplex along each axis (pointing inward at a face of the box).
    stop : callable
        Returns True when the evaluations allowed are spent.
    f_tolerance : float
        Converged when the simplex's values are all within this of each other (or its points
        within ``TOLERANCE`` of the best one).

    Returns
    -------
    x, fx : the best point found and its value.
    """
    d = len(x0)
    points = [np.clip(x0, 0.0, 1.0)]
    for i in range(d):
        x = points[0].copy()
        x[i] += step if x[i] + step <= 1.0 else -step
        points.append(x)
    values = [f(x) for x in points]
    while not stop():
        order = np.argsort(values, kind="stable")
        points, values = [points[k] for k in order], [values[k] for k in order]
        if (
            values[-1] - values[0] < f_tolerance
            or max(np.abs(p - points[0]).max() for p in points[1:]) < TOLERANCE
        ):
            break
        centroid = np.mean(points[:-1], axis=0)
        reflected = np.clip(2 * centroid - points[-1], 0.0, 1.0)
        fr = f(reflected)
        if fr < values[0]:
            expanded = np.clip(3 * centroid - 2 * points[-1], 0.0, 1.0)
            fe = f(expanded)
            points[-1], values[-1] = (expanded, fe) if fe < fr else (reflected, fr)
        elif fr < values[-2]:
            points[-1], values[-1] = reflected, fr
        else:
            outside = fr < values[-1]
            contracted = centroid + 0.5 * ((reflected if outside else points[-1]) - centroid)
            fc = f(contracted)
            if fc < min(fr, values[-1]):
                points[-1], values[-1] = contracted, fc
            else:  # shrink toward the best point
                points = [points[0]] + [points[0] + 0.5 * (p - points[0]) for p in points[1:]]
                values = [values[0]] + [f(p) for p in points[1:]]
    best = int(np.argmin(values))
    return points[best], values[best]


class _Search:
    """Restarts of (discrete choice, Nelder-Mead) rounds over one objective."""

    def __init__(self, objective: _Objective, coords: _Coordinates, rng: np.random.Generator):
        self.objective, self.coords, self.rng = objective, coords, rng

    def error(self, u: np.ndarray, picks: Sequence[int]) -> float:
        return self.objective(self.coords.values(u, picks))

    def pick_all(self, u: np.ndarray, picks: list[int]) -> list[int]:
        """The best discrete options: every combination when they are few, else one parameter at a time."""
        sizes = [len(o) for o in self.coords.options]
        if math.prod(sizes) > EXHAUSTIVE_MAX:
            return self.sweep(u, picks)
        combos = list(itertools.product(*(range(n) for n in sizes)))
        errors = [self.error(u, combo) for combo in combos]
        return list(combos[int(np.argmin(errors))])

    def sweep(self, u: np.ndarray, picks: list[int]) -> list[int]:
        """Each discrete parameter in turn set to its best option, the others held."""
        picks = list(picks)
        for j, options in enumerate(self.coords.options):
            errors = [self.error(u, [*picks[:j], k, *picks[j + 1 :]]) for k in range(len(options))]
            picks[j] = int(np.argmin(errors))
        return picks

    def run(self, u: np.ndarray, picks: list[int], allowance: int, step: float, first_pick: bool) -> None:
        """One restart: choose the options, then alternate Nelder-Mead and sweeps until the options settle."""
        stop_at = self.objective.count + allowance

        def spent() -> bool:
            return self.objective.count >= stop_at

        if first_pick and self.coords.discrete:
            picks = self.pick_all(u, picks)
        for _ in range(3):
            if self.coords.continuous and not spent():
                u, _ = nelder_mead(lambda x, held=picks: self.error(x, held), u, step, spent)
            if not self.coords.discrete or spent():
                return
            settled = self.sweep(u, picks)
            if settled == picks:
                return
            picks = settled

    def start(self, restart: int) -> tuple[np.ndarray, list[int]]:
        """The first restart starts from the middle of every range and the first options; others at random."""
        if restart == 0:
            return np.full(len(self.coords.continuous), 0.5), [0] * len(self.coords.discrete)
        u = self.rng.uniform(0.0, 1.0, len(self.coords.continuous))
        return u, [int(self.rng.integers(len(o))) for o in self.coords.options]

    def best_point(self) -> tuple[np.ndarray, list[int]]:
        """The best values seen, as coordinates."""
        values = self.objective.best[1]
        u = np.array([self.coords.params[i].to_unit(values[i]) for i in self.coords.continuous])
        picks = [o.index(values[i]) for i, o in zip(self.coords.discrete, self.coords.options, strict=True)]
        return u, picks


def _search(objective: _Objective, coords: _Coordinates, seed: int) -> None:
    """Screen starting points, search from the best ones, polish the best point found.

    The most promising start gets half of the budget left for restarts (most edits have one
    basin: converging there matters most), the next ones share the rest.
    """
    search = _Search(objective, coords, np.random.default_rng(seed))
    polish = int(POLISH_SHARE * objective.budget)
    try:
        starts = [search.start(k) for k in range(SCREENED)]
        errors = [search.error(u, picks) for u, picks in starts]
        for rank, k in enumerate(np.argsort(errors, kind="stable")[:RESTARTS]):
            left = objective.budget - polish - objective.count
            share = left // 2 if rank == 0 and RESTARTS > 1 else left // (RESTARTS - rank)
            search.run(*starts[k], share, INITIAL_STEP, first_pick=True)
        if math.isfinite(objective.best[0]):
            u, picks = search.best_point()
            search.run(u, picks, objective.budget - objective.count, POLISH_STEP, first_pick=False)
    except _BudgetSpent:
        pass


def fit_search(
    space: FitSpace,
    pairs: Sequence[PairImages],
    *,
    holdout: int | None = None,
    seed: int = 0,
    budget: int = DEFAULT_BUDGET,
    on_eval: Callable[[int, int], None] | None = None,
) -> SearchResult:
    """Fit the ``{fit: ...}`` parameters of ``space`` to before/after pairs.

    Parameters
    ----------
    space : FitSpace
        The user's pipeline and its parameters to fit (:func:`imgenh.fit.space.load_space`).
    pairs : sequence of PairImages
        Loaded, checked pairs (:func:`imgenh.fit.pairs.load_pairs`).
    holdout : int, optional
        Pairs kept out of fitting and reported as held-out; default about 20% from 5 pairs on.
    seed : int
        Seeds the hold-out choice and the restarts' starting points: same seed, same result.
    budget : int
        Evaluations of the pipeline over the training pairs (the time is about proportional).
    on_eval : callable, optional
        ``on_eval(done, budget)`` after each evaluation (progress bars).

    Returns
    -------
    SearchResult

    Raises
    ------
    ValueError
        Fewer than 2 pairs left for fitting, a budget below 1, or a pipeline that fails for
        every value tried.
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 usable pairs to fit a pipeline (got {len(pairs)})")
    if budget < 1:
        raise ValueError(f"the evaluation budget must be at least 1 (got {budget})")
    held = set(split_holdout(len(pairs), holdout, seed).tolist())
    objective = _Objective(space, [p for i, p in enumerate(pairs) if i not in held], budget, on_eval)
    _search(objective, _Coordinates(space.params), seed)
    best, values = objective.best
    if not math.isfinite(best):
        raise ValueError(f"the pipeline failed for every value tried: {objective.failure}")
    steps = space.steps_for(values)
    roles = ["held-out" if i in held else "train" for i in range(len(pairs))]
    notes = []
    if objective.count >= budget and objective.improved_at > 0.9 * budget:
        notes.append(
            f"the search was still improving when its budget of {budget} evaluations ran out; --budget raises it"
        )
    values = [space.params[i].value(v) for i, v in enumerate(values)]
    return SearchResult(
        steps, values, space, pipeline_errors(steps, pairs, roles), seed, budget, objective.count, best, notes
    )
