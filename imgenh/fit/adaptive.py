"""``imgenh fit --adaptive``: per-image parameters, and a boosted regression that predicts them.

When an edit differs per image (the editor brightened dark shots more, warmed cold ones), one
global look cannot follow it. The adaptive fit puts a per-image step in front of the look, one of
three candidates chosen by cross-validation over the pairs (:func:`adaptive_candidates`,
:func:`choose_candidate`: the simplest within the look's margin of the lowest error):

- none: the global look alone (the edit is the same for every image);
- auto: auto-correction steps that measure each image themselves (gray world, stretch, auto
  gamma...: :mod:`imgenh.fit.auto_prefix` searches which), then the look: an editor's edit very
  often starts from such a correction;
- predicted: after those auto steps (if any), :data:`LOOK_PREFIX` (white-balance gains, black and
  white points with gamma, saturation) with values predicted per image:

1. each training image's own values of those parameters are found by a small gradient-free
   search (Nelder-Mead on the bounded, normalised parameters) on a downscaled copy,
   minimising mean CIEDE2000 to its after image;
2. the global look (curves, matrix, colour table: :func:`imgenh.fit.select.fit_look`) is
   fitted on the images after their own per-image step; steps 1-2 alternate :data:`ROUNDS` times
   (the per-image search then runs through the look);
3. per parameter, a linear base on a few features (:data:`BASE_FEATURES`) plus one AdaBoost.R2
   model over shallow trees (:class:`imgenh.boost.BoostedTrees`) on what the base leaves learns
   the parameter (its logarithm for gains, gamma and factors) from the image's statistics
   (:func:`imgenh.adaptive.image_features`).

With a user's pipeline (``imgenh fit my.yaml --adaptive``) the pipeline is searched once for all
images (:func:`imgenh.fit.search.fit_search`, the "global fit"); its ``{fit: [lo, hi]}`` number
ranges then get per-image values (step 1, pulled toward the global values) and step 3; choices
and whole numbers keep their global values.

Held-out pairs take part in none of it; their errors come from running the written pipeline,
adaptive model included, through :class:`imgenh.pipeline.Pipeline`, as ``imgenh run`` would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import yaml

from imgenh.adaptive import FEATURE_NAMES, AdaptiveModel, Target, image_features
from imgenh.boost import BoostedTrees
from imgenh.colour_difference import delta_e_2000, lab_from_bgr, mean_delta_e
from imgenh.fit.auto_prefix import apply_prefix, prefix_label, search_auto_prefix
from imgenh.fit.look import LADDER, fit_model, rgb_delta_e
from imgenh.fit.pairs import PairImages, resize_to_side
from imgenh.fit.search import DEFAULT_BUDGET, fit_search, nelder_mead
from imgenh.fit.select import (
    SAMPLES_PER_PAIR,
    fit_look,
    pair_folds,
    sample_pair,
    simplest_within_margin,
    split_holdout,
    stack_samples,
)
from imgenh.fit.space import FitSpace

# The per-image search runs on copies this many pixels on the long side.
SEARCH_SIDE = 64
# Evaluations per image and search, the first simplex's size and when it has converged.
EVALUATIONS = 240
FIRST_STEP = 0.12
F_TOLERANCE = 1e-4
# Alternations of per-image search and global look fit.
ROUNDS = 2
# Pull of each normalised parameter toward its neutral value (CIEDE2000 units per unit^2):
# where two parameters trade off (white point and gamma), the search stays near neutral.
NEUTRAL_PULL = 0.05
# The regression: AdaBoost.R2 over depth-3 trees, shrunk. Chosen on tests/test_adaptive_fit.py's
# exposures of the sample photos (held-out CIEDE2000: depth 2, 60 trees 4.82; depth 3, 100 trees
# 3.70, with learning rate 0.5 3.55; depth 4 3.83), never on benchmarks/fit_looks.py's photos.
BOOST = {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.5, "loss": "linear", "digits": 6}
# Each prediction is a linear base on these features plus the trees on what it leaves, on a log
# scale for gains, gamma and factors. Trees stop at the most extreme training image; a gray-world
# gain is near-linear in the log chroma of the image's mean (and exposure in its luma), so the
# base carries such edits to photos and casts outside the training ones. Chosen on
# benchmarks/fit_dev_splits.py --adaptive (training photos only; fit 3 photos, check 2, 10 splits):
# mean CIEDE2000 over the three per-image edits 13.46 (trees alone) -> 8.42 on the other photos,
# 5.09 -> 3.61 on new shots of the fitted ones; neutral features alone 11.22, ridge 1 10.13, all
# 26 features 9.92, the base without trees 8.20 (but 3.93 on new shots).
BASE_FEATURES = ("log_red_green_linear", "log_blue_green_linear", "luma_mean", "luma_p50")
BASE_RIDGE = 0.01


@dataclass(frozen=True)
class Free:
    """One per-image parameter: ``steps[step].param`` (item ``item``) searched in ``[lo, hi]``.

    ``log`` searches the parameter on a log scale (gains, gamma, factors).
    """

    step: int
    param: str
    lo: float
    hi: float
    neutral: float
    item: int | None = None
    log: bool = False

    @property
    def label(self) -> str:
        return self.param if self.item is None else f"{self.param}[{self.item}]"

    def value(self, u: float) -> float:
        """The parameter at normalised position ``u`` in [0, 1]."""
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            return float(np.exp(np.log(self.lo) + u * (np.log(self.hi) - np.log(self.lo))))
        return self.lo + u * (self.hi - self.lo)

    def position(self, value: float) -> float:
        """Inverse of :meth:`value`."""
        if self.log:
            return float((np.log(value) - np.log(self.lo)) / (np.log(self.hi) - np.log(self.lo)))
        return (value - self.lo) / (self.hi - self.lo)


# The per-image step in front of the look model: existing operators, neutral as written.
LOOK_PREFIX: tuple[dict, ...] = (
    {"op": "white_balance", "method": "manual", "gains": [1.0, 1.0, 1.0]},
    {"op": "levels", "black": 0.0, "white": 1.0, "gamma": 1.0},
    {"op": "saturation", "factor": 1.0},
)
LOOK_FREE: tuple[Free, ...] = (
    Free(0, "gains", 0.25, 4.0, 1.0, item=0, log=True),
    Free(0, "gains", 0.25, 4.0, 1.0, item=2, log=True),
    Free(1, "black", 0.0, 0.4, 0.0),
    Free(1, "white", 0.6, 1.0, 1.0),
    Free(1, "gamma", 0.25, 4.0, 1.0, log=True),
    Free(2, "factor", 0.3, 2.5, 1.0, log=True),
)


def with_values(template: Sequence[dict], free: Sequence[Free], values: Sequence[float]) -> list[dict]:
    """The template steps (plain data) with the free parameters set to ``values``."""
    steps = [dict(step) for step in template]
    for f, v in zip(free, values, strict=True):
        if f.item is None:
            steps[f.step][f.param] = float(v)
        else:
            items = list(steps[f.step][f.param])
            items[f.item] = float(v)
            steps[f.step][f.param] = items
    return steps


def _build(steps: list[dict]):
    from imgenh.pipeline_file import pipeline_from_steps  # the pipeline file module imports the registry

    return pipeline_from_steps(steps)


def search_image(
    template: Sequence[dict],
    free: Sequence[Free],
    before: np.ndarray,
    after: np.ndarray,
    look: list[dict] | None = None,
    start: Sequence[float] | None = None,
) -> list[float]:
    """One image's own values of the free parameters: template (+ look) closest to ``after``.

    ``before`` and ``after`` are float32 BGR working copies; the search runs on copies at most
    :data:`SEARCH_SIDE` pixels on the long side, minimising mean CIEDE2000 plus a small pull
    toward neutral values.
    """
    small_before = resize_to_side(before, SEARCH_SIDE)
    target = lab_from_bgr(resize_to_side(after, SEARCH_SIDE))  # converted once, not per evaluation
    if look:
        look_pipeline = _build(look)
    neutral = np.array([f.position(f.neutral) for f in free])

    evaluations = 0

    def objective(u: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        values = [f.value(x) for f, x in zip(free, u, strict=True)]
        try:
            out, _ = _build(with_values(template, free, values)).apply(small_before)
        except Exception:  # a combination the operator refuses (e.g. black >= white)
            return 1e6
        if look:
            out, _ = look_pipeline.apply(out)
        error = float(np.mean(delta_e_2000(lab_from_bgr(out), target), dtype=np.float64))
        return error + NEUTRAL_PULL * float(np.sum((u - neutral) ** 2))

    first = neutral if start is None else np.array([f.position(v) for f, v in zip(free, start, strict=True)])
    best, _ = nelder_mead(objective, first, FIRST_STEP, lambda: evaluations >= EVALUATIONS, F_TOLERANCE)
    return [float(f"{f.value(x):.6g}") for f, x in zip(free, best, strict=True)]


def _linear_base(features: np.ndarray, target: np.ndarray, names: Sequence[str], ridge: float):
    """Ridge regression of ``target`` on the named feature columns (standardised, intercept free).

    Returns ``(("intercept", c), (name, w), ...)`` in the raw feature units.
    """
    columns = [FEATURE_NAMES.index(n) for n in names]
    x = features[:, columns]
    mean, std = x.mean(axis=0), x.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    z = (x - mean) / std
    n = max(len(target), 1)
    w = np.linalg.solve(z.T @ z / n + ridge * np.eye(len(columns)), z.T @ (target - target.mean()) / n)
    weights = w / std
    intercept = float(target.mean() - weights @ mean)
    return (("intercept", float(f"{intercept:.6g}")),) + tuple(
        (name, float(f"{v:.6g}")) for name, v in zip(names, weights, strict=True)
    )


def fit_regression(
    features: np.ndarray,
    values: np.ndarray,
    free: Sequence[Free],
    seed: int,
    *,
    log_scale: bool = True,
    base_features: Sequence[str] = BASE_FEATURES,
    base_ridge: float = BASE_RIDGE,
    base_params: Sequence[str] | None = None,
) -> list[Target]:
    """One AdaBoost.R2 model per free parameter, from image features (rows) to its values.

    ``log_scale`` fits log-searched parameters (gains, gamma, factors) on their logarithm;
    ``base_features`` gives each parameter (or those of ``base_params``, by label) a linear
    base on those features (ridge ``base_ridge`` on standardised features), the trees then
    fit what the base leaves.
    """
    targets = []
    for k, f in enumerate(free):
        scale = "log" if log_scale and f.log else "linear"
        target = np.log(values[:, k]) if scale == "log" else values[:, k].astype(np.float64)
        base: tuple = ()
        if base_features and (base_params is None or f.label in base_params):
            base = _linear_base(features, target, base_features, base_ridge)
            residual = target - sum(
                w * (1.0 if n == "intercept" else features[:, FEATURE_NAMES.index(n)]) for n, w in base
            )
        else:
            residual = target
        model = BoostedTrees(seed=seed + k, **BOOST).fit(features, residual)
        targets.append(Target(f.step, f.param, (f.lo, f.hi), model, f.item, scale, base))
    return targets


def predict_values(targets: Sequence[Target], features: np.ndarray) -> np.ndarray:
    """Each target's value for each feature row (``FEATURE_NAMES`` order), shape (rows, targets)."""
    rows = []
    for x in features:
        measured = dict(zip(FEATURE_NAMES, x, strict=True))
        rows.append([t.value(measured, x[None, :]) for t in targets])
    return np.array(rows)


@dataclass
class AdaptivePairError:
    """Mean CIEDE2000 of one pair: doing nothing, the global look, the adaptive pipeline."""

    key: str
    role: str  # "train" or "held-out"
    nothing_done: float
    global_fit: float
    adaptive: float
    predicted: dict[str, float] = field(default_factory=dict)

    @property
    def fitted(self) -> float:
        """The error of what the file does (the adaptive pipeline)."""
        return self.adaptive


@dataclass
class AdaptiveFit:
    """What :func:`fit_adaptive` found.

    Attributes
    ----------
    steps : list of dict
        The per-image steps (auto-correction steps, predicted steps at typical values) followed by the
        global look's steps.
    model : AdaptiveModel or None
        Predicts the per-image values (step indices into ``steps``); None when the chosen candidate
        predicts nothing (auto-correction steps, or the global look alone).
    errors : list of AdaptivePairError
    complexity : str
        The global look's rung, chosen by cross-validation.
    global_complexity : str
        The rung of the plain global look fitted for comparison.
    seed : int
    notes : list of str
    pipeline_source : str
        The user's pipeline file ("" for the look model).
    candidates : list of Candidate
        Look model: every per-image step tried, with its cross-validated error; the chosen one is
        :attr:`chosen`.
    """

    steps: list[dict]
    model: AdaptiveModel | None
    errors: list[AdaptivePairError]
    complexity: str
    global_complexity: str
    seed: int
    notes: list[str] = field(default_factory=list)
    pipeline_source: str = ""  # the user's pipeline file, when its parameters were fitted
    candidates: list[Candidate] = field(default_factory=list)
    chosen: str = ""  # the label of the chosen candidate

    def mean_error(self, role: str, fitted: bool = True, which: str | None = None) -> float | None:
        """Mean over pairs of ``role``: the adaptive pipeline's error (or ``which``: nothing_done,
        global_fit, adaptive); ``fitted=False`` is doing nothing. None when there are none."""
        which = which or ("adaptive" if fitted else "nothing_done")
        values = [getattr(e, which) for e in self.errors if e.role == role]
        return float(np.mean(values)) if values else None

    def predicted_names(self) -> list[str]:
        """``steps[1] levels.gamma`` for each predicted parameter."""
        targets = self.model.targets if self.model else ()
        return [f"steps[{t.step}] {self.steps[t.step]['op']}.{t.label}" for t in targets]

    def pipeline(self):
        """The fitted pipeline, adaptive model included (what ``imgenh run`` would load)."""
        return replace(_build(self.steps), adaptive=self.model)

    def to_dict(self) -> dict:
        """Plain data for a JSON report."""
        return {
            "adaptive": True,
            "pipeline": self.pipeline_source or None,
            "complexity": self.complexity,
            "global_complexity": self.global_complexity,
            "seed": self.seed,
            "mean_ciede2000": {
                role: {k: self.mean_error(role, which=k) for k in ("nothing_done", "global_fit", "adaptive")}
                for role in ("train", "held-out")
            },
            "pairs": [e.__dict__ for e in self.errors],
            "notes": list(self.notes),
            "steps": self.steps,
            "predicts": self.predicted_names(),
            "per_image_step": self.chosen or None,
            "cross_validation": {c.label: round(c.cv_error, 4) for c in self.candidates},
        }

    def render(self, unmatched: Sequence[str] = (), refused: Sequence[str] = (), folder=None) -> str:
        """The tuned pipeline file: comment block, ``version``, ``steps`` and the ``adaptive`` block.

        With ``folder`` (where the file will be written), files the steps name are written relative to it.
        """
        from imgenh.fit.render import files_relative_to
        from imgenh.pipeline_file import SCHEMA_VERSION

        data = {"version": SCHEMA_VERSION, "steps": files_relative_to(self.steps, folder)}
        if self.model is not None:
            data["adaptive"] = self.model.to_dict()
        body = yaml.safe_dump(
            data,
            sort_keys=False,
            default_flow_style=None,
            width=100,
        )
        return self.comment_block(unmatched, refused) + body

    def comment_block(self, unmatched: Sequence[str] = (), refused: Sequence[str] = ()) -> str:
        """``#`` lines: pairs used, what is predicted, errors of nothing / global / adaptive per pair."""
        train = [e for e in self.errors if e.role == "train"]
        held = [e for e in self.errors if e.role == "held-out"]
        predicted = ", ".join(self.predicted_names()) or "nothing"

        def row(label: str, role: str) -> str:
            cells = [self.mean_error(role, which=k) for k in ("nothing_done", "global_fit", "adaptive")]
            return f"  {label:<24}" + "".join(f"{c:>11.2f}" for c in cells)

        if self.pipeline_source:
            what = [
                f"Fitted by imgenh fit {self.pipeline_source} --adaptive: its {{fit: [lo, hi]}} ranges predicted per",
                "image by boosted trees (AdaBoost.R2) from image statistics; global fit: the same pipeline",
                f"searched once for all images ({self.global_complexity}).",
            ]
        else:
            what = self._look_lines()
        lines = [
            *what,
            f"Pairs: {len(train)} fitted, {len(held)} held out, {len(refused)} refused; seed {self.seed}.",
            f"Predicted per image: {predicted}.",
            "Mean CIEDE2000 (sRGB, D65)   nothing done   global fit   adaptive",
            row(f"train ({len(train)} pairs)", "train"),
        ]
        if held:
            lines.append(row(f"held out ({len(held)} pairs)", "held-out"))
        lines.append("Per pair (nothing -> global / adaptive):")
        width = max(len(e.key) for e in self.errors)
        lines += [
            f"  {e.key:<{width}}  {e.role:<8}  {e.nothing_done:6.2f} -> {e.global_fit:6.2f} / {e.adaptive:6.2f}"
            for e in self.errors
        ]
        lines += [f"Refused: {r}" for r in refused] + [f"Unmatched: {u}" for u in unmatched]
        lines += [f"Note: {n}" for n in [*self.notes, *self.verdict()]]
        return "".join(f"# {line}\n".replace("# \n", "#\n") for line in lines)

    def _look_lines(self) -> list[str]:
        """What the look model's file does: the per-image step chosen, and every candidate's cross-validation."""
        tried = "; ".join(f"{c.label} {c.cv_error:.2f}" for c in self.candidates)
        return [
            "Fitted by imgenh fit --adaptive: a per-image step in front of a global look (curves, matrix,",
            "table), chosen by cross-validation over the pairs (mean CIEDE2000 of pairs left out):",
            f"  {tried}.",
            f"Per-image step: {self.chosen}. Auto-correction steps measure each image themselves;",
            "predicted values come from boosted trees (AdaBoost.R2) on image statistics.",
            f"Global look after the per-image steps: {self.complexity}; global fit without them:",
            f"{self.global_complexity}.",
        ]

    def verdict(self) -> list[str]:
        """A note when the global fit does as well as the adaptive one (held-out pairs, else fitted ones)."""
        if self.chosen == "none":
            return [
                "cross-validation found no per-image step that beats the global look: the steps are the global "
                "look, as `imgenh fit` without --adaptive writes it"
            ]
        role = "held-out" if any(e.role == "held-out" for e in self.errors) else "train"
        adaptive, plain = self.mean_error(role), self.mean_error(role, which="global_fit")
        if adaptive < plain:
            return []
        return [
            f"on {role} pairs the global fit does as well ({plain:.2f} vs {adaptive:.2f}): the edit looks the same "
            "for every image; `imgenh fit` without --adaptive gives a simpler file"
        ]


def _per_image(
    pairs: Sequence[PairImages],
    template: Sequence[dict],
    free: Sequence[Free],
    look: list[dict] | None,
    start: list[list[float]] | None,
    progress: Callable[[], None] | None = None,
) -> list[list[float]]:
    values = []
    for pair, first in zip(pairs, start or [None] * len(pairs), strict=True):
        values.append(search_image(template, free, pair.before, pair.after, look, first))
        if progress:
            progress()
    return values


def _stepped(pairs: Sequence[PairImages], template, free, values) -> list[PairImages]:
    """Pairs whose befores went through their own per-image step."""
    return [
        replace(p, before=_build(with_values(template, free, v)).apply(p.before)[0])
        for p, v in zip(pairs, values, strict=True)
    ]


def fit_adaptive(
    pairs: Sequence[PairImages],
    *,
    holdout: int | None = None,
    seed: int = 0,
    groups: Sequence[str] | None = None,
    space: FitSpace | None = None,
    budget: int = DEFAULT_BUDGET,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> AdaptiveFit:
    """Learn an edit whose parameters are predicted per image from each image's statistics.

    Parameters
    ----------
    pairs : sequence of PairImages
        Loaded, checked pairs (:func:`imgenh.fit.pairs.load_pairs`).
    holdout : int, optional
        Pairs kept out of everything and reported as held-out (default ~20% from 5 pairs on).
    seed : int
        Same seed, same hold-out split, same model.
    groups : sequence of str, optional
        Look model: a group name per pair; cross-validation of the look keeps a group together.
    space : FitSpace, optional
        A user's pipeline (:func:`imgenh.fit.space.load_space`): its ``{fit: [lo, hi]}`` ranges
        of number parameters become per-image, choices and whole numbers are fitted once for
        all images (:func:`imgenh.fit.search.fit_search`). Without it, the look model gains
        the per-image step :data:`LOOK_PREFIX`.
    budget : int
        With ``space``: the global search's evaluation budget.
    on_progress : callable, optional
        ``on_progress("per-image search", done, total)`` after each image's search (progress bars).

    Raises
    ------
    ValueError
        Fewer than 2 pairs left for fitting; a pipeline without a range of a number parameter.
    """
    if len(pairs) < 2:
        raise ValueError(f"need at least 2 usable pairs to fit (got {len(pairs)})")
    held = set(split_holdout(len(pairs), holdout, seed).tolist())
    train = [p for i, p in enumerate(pairs) if i not in held]
    rounds = 1 if space is not None else ROUNDS
    done = 0

    def progress() -> None:
        nonlocal done
        done += 1
        if on_progress:
            on_progress("per-image search", done, rounds * len(train))

    if space is not None:
        searching = None if on_progress is None else lambda d, t: on_progress("searching", d, t)
        return _fit_pipeline(pairs, held, space, seed, budget, progress, searching)
    train_groups = None if groups is None else [g for i, g in enumerate(groups) if i not in held]
    plain = fit_look(pairs, holdout=holdout, seed=seed, groups=groups)
    candidates = adaptive_candidates(train, train_groups, seed, plain, progress)
    chosen = choose_candidate(candidates)
    errors = _errors(pairs, held, chosen.pipeline(), plain)
    return AdaptiveFit(
        chosen.steps,
        chosen.model,
        errors,
        chosen.complexity,
        plain.complexity,
        seed,
        candidates=candidates,
        chosen=chosen.label,
    )


@dataclass
class Candidate:
    """One way to put a per-image step in front of the global look, with its cross-validated error.

    ``kind`` is ``none`` (the global look alone), ``auto`` (auto-correction steps that measure each
    image themselves: :mod:`imgenh.fit.auto_prefix`) or ``predicted`` (:data:`LOOK_PREFIX` with values
    predicted per image, after the auto steps if any). ``model`` is None unless values are predicted.
    """

    kind: str
    prefix: list[dict]
    steps: list[dict]
    model: AdaptiveModel | None
    cv_error: float
    complexity: str

    @property
    def label(self) -> str:
        """``none``, ``auto: white_balance gray_world + gamma auto`` or ``predicted`` (+ the auto steps)."""
        auto = prefix_label(self.prefix)
        if self.kind == "none":
            return "none"
        if self.kind == "auto":
            return f"auto: {auto}"
        return "predicted" if not self.prefix else f"auto: {auto} + predicted"

    def pipeline(self):
        """The candidate's pipeline (adaptive model included), as ``imgenh run`` would load it."""
        return replace(_build(self.steps), adaptive=self.model)


def adaptive_candidates(
    train: Sequence[PairImages],
    groups: Sequence[str] | None,
    seed: int,
    plain,
    progress: Callable[[], None] | None = None,
) -> list[Candidate]:
    """The global look alone (``plain``, a fit on these pairs), the best auto prefix + look, and predicted
    per-image values (after that prefix) + look, each with its cross-validated error, simplest first."""
    out = [Candidate("none", [], plain.steps, None, plain.cv_errors[plain.complexity], plain.complexity)]
    auto = search_auto_prefix(train, groups, seed).steps
    prefixed = apply_prefix(train, auto)
    if auto:
        look = fit_look(prefixed, holdout=0, seed=seed, groups=groups)
        error = look.cv_errors[look.complexity]
        out.append(Candidate("auto", auto, auto + look.steps, None, error, look.complexity))
    values, look = per_image_and_look(prefixed, groups, seed, progress)
    free = [replace(f, step=f.step + len(auto)) for f in LOOK_FREE]
    features = _features(train)  # of the images as they come in: the model predicts before any step runs
    model = AdaptiveModel(FEATURE_NAMES, tuple(fit_regression(features, np.array(values), free, seed)))
    error = cross_validate_predicted(prefixed, features, np.array(values), look.complexity, groups, seed)
    steps = auto + _typical(LOOK_PREFIX, LOOK_FREE, values) + look.steps
    out.append(Candidate("predicted", auto, steps, model, error, look.complexity))
    return out


def choose_candidate(candidates: Sequence[Candidate]) -> Candidate:
    """The simplest candidate whose cross-validated error is close to the lowest (the look's margin rule)."""
    return simplest_within_margin(candidates, [c.cv_error for c in candidates])


def cross_validate_predicted(
    prefixed: Sequence[PairImages],
    features: np.ndarray,
    values: np.ndarray,
    complexity: str,
    groups: Sequence[str] | None,
    seed: int,
) -> float:
    """Mean CIEDE2000 of predicted per-image values + look on pairs left out, over the look's folds.

    Per fold the regression and the look (rung ``complexity``) are fitted on the other pairs'
    searched values; the left-out pairs get predicted values. (Their own searched values, found
    with the look fitted on all pairs, take no part.)
    """
    level = next(level for level in LADDER if level.name == complexity)
    rng = np.random.default_rng(seed)
    scores = []
    for fold in pair_folds([p.pair.key for p in prefixed] if groups is None else list(groups), seed):
        left_out = set(fold.tolist())
        inside = np.array([i for i in range(len(prefixed)) if i not in left_out])
        targets = fit_regression(features[inside], values[inside], LOOK_FREE, seed)
        stepped = _stepped([prefixed[i] for i in inside], LOOK_PREFIX, LOOK_FREE, values[inside])
        look = fit_model(*stack_samples([sample_pair(p, SAMPLES_PER_PAIR, rng) for p in stepped]), level)
        predicted = predict_values(targets, features[fold])
        for i, v in zip(fold, predicted, strict=True):
            [check] = _stepped([prefixed[i]], LOOK_PREFIX, LOOK_FREE, [v])
            sample = sample_pair(check, SAMPLES_PER_PAIR, rng)
            scores.append(float(rgb_delta_e(look.apply_rgb(sample.before), sample.after).mean()))
    return float(np.mean(scores))


def per_image_and_look(
    train: Sequence[PairImages],
    groups: Sequence[str] | None,
    seed: int,
    progress: Callable[[], None] | None = None,
):
    """Each training image's own :data:`LOOK_FREE` values and the global look fitted after them.

    Per-image search and look fit alternate :data:`ROUNDS` times. Returns ``(values, look)``:
    a list of value lists (one per pair) and the :class:`imgenh.fit.select.FitResult` of the look.
    """
    values, look = None, None
    for rounds_left in range(ROUNDS - 1, -1, -1):
        values = _per_image(
            train, LOOK_PREFIX, LOOK_FREE, None if look is None else look.steps, values, progress
        )
        # Before the last round, a stepping stone: the affine rung alone, no cross-validation cost.
        ladder = LADDER if rounds_left == 0 else LADDER[:1]
        stepped = _stepped(train, LOOK_PREFIX, LOOK_FREE, values)
        look = fit_look(stepped, holdout=0, seed=seed, groups=groups, ladder=ladder)
    return values, look


def _fit_pipeline(
    pairs: Sequence[PairImages], held: set[int], space: FitSpace, seed: int, budget: int, progress, on_eval
) -> AdaptiveFit:
    """A user's pipeline: global search first, then its number ranges per image, pulled toward the global values."""
    if not any(p.is_range and not p.integer for p in space.params):  # said before the search, not after
        raise ValueError(
            "--adaptive predicts ranges of decimal numbers per image ({fit: [lo, hi]} on a float parameter); "
            "whole-number ranges and choices are fitted once for all images: fit without --adaptive"
        )
    plain = fit_search(space, pairs, holdout=len(held), seed=seed, budget=budget, on_eval=on_eval)
    free = [
        Free(p.step, p.name, float(p.low), float(p.high), float(v), item=p.item)
        for p, v in zip(space.params, plain.values, strict=True)
        if p.is_range and not p.integer
    ]
    template = plain.steps
    train = [p for i, p in enumerate(pairs) if i not in held]
    values = _per_image(train, template, free, None, [[f.neutral for f in free]] * len(train), progress)
    model = _model(train, free, values, seed)
    steps = _typical(template, free, values)
    errors = _errors(pairs, held, replace(_build(steps), adaptive=model), plain)
    kept = len(space.params) - len(free)
    how = f"{len(free)} pipeline parameters per image" + (f", {kept} fitted once" if kept else "")
    notes = [f"{line} (global search)" for line in space.describe(plain.values)]
    searched = f"{plain.evaluations} evaluations"
    return AdaptiveFit(steps, model, errors, how, searched, seed, notes, pipeline_source=space.source)


def _features(pairs: Sequence[PairImages]) -> np.ndarray:
    return np.array([[image_features(p.before)[n] for n in FEATURE_NAMES] for p in pairs])


def _model(train: Sequence[PairImages], free: Sequence[Free], values, seed: int) -> AdaptiveModel:
    return AdaptiveModel(FEATURE_NAMES, tuple(fit_regression(_features(train), np.array(values), free, seed)))


def _typical(template: Sequence[dict], free: Sequence[Free], values) -> list[dict]:
    """The template with each free parameter at its median over the training images (what the steps show)."""
    typical = np.median(np.array(values), axis=0)
    return with_values(template, free, [float(f"{v:.6g}") for v in typical])


def _errors(pairs: Sequence[PairImages], held: set[int], pipeline, plain) -> list[AdaptivePairError]:
    """Per pair: nothing done, the plain global look, and the adaptive pipeline run as ``imgenh run`` runs it."""
    out = []
    for i, (pair, plain_error) in enumerate(zip(pairs, plain.errors, strict=True)):
        result, reports = pair.run(pipeline)  # a grey before runs as grey, as imgenh run runs it
        predicted = {}
        for r in reports:
            for name, value in r.get("predicted", {}).items():
                predicted[f"steps[{r['step']}] {name}"] = value
        out.append(
            AdaptivePairError(
                pair.pair.key,
                "held-out" if i in held else "train",
                plain_error.nothing_done,
                plain_error.fitted,
                round(mean_delta_e(result, pair.after), 4),
                predicted,
            )
        )
    return out
