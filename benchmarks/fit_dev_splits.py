"""Development splits of fit_looks.py's TRAINING photos: where the fit's rules were chosen.

Usage: python benchmarks/fit_dev_splits.py [--looks [--shifted]] [--other-photos] [--adaptive] [--splits N]
       [--cache DIR] [--tag NAME] [--set NAME=VALUE] [--add-rung NAME] [--rung-scores|--hue-cv [--look L] [--added-only]]

Only the five training photos of benchmarks/fit_looks.py are used (never rocket or
hubble_deep_field). Each split fits on three of them and checks on the other two (all 10
splits by default), so a rule is judged on photos it was not fitted on, as the benchmark's
held-out photos judge it once at the end.

--looks      the global look model: for every look and split, the cross-validation errors of
             each rung (as select.py computes them) and the check error of each rung fitted on
             the split's three photos; then the mean check error of each selection rule.
             The gamut-weighted rules need --tag runs made by this version (cross-validation
             split into pixels inside and outside each fold's training gamut). The fallback
             model (commit 28b5fba, reverted) was measured with --tag fallback at that commit.
             --tag tablefb01: that commit with the curve pull off and the table's at 0.1.
--shifted    with --looks: each rung is also checked on photos the fit must extrapolate to: the 2
             check photos shot twice at a random exposure and cast (seed 5), and made darker and
             more colourful (gamma 0.4, saturation 2.5), each then given the look; and each rung's
             colour-region cross-validation is kept (fit without the darkest / brightest / most
             colourful 20% of the pooled pixels, check on them) for rules that weigh extrapolation;
             and (since 2026-12-03, session fitclut) the 2 check photos with red and blue swapped,
             hues the warm fitted photos hardly show.
--other-photos  each look fitted on all five training photos, as fit_looks.py fits, and checked on
             ten OpenCV sample photos (benchmarks/quality.py's tuning ones; opencv-doc).
--rule-only  the current selection rule (and the affine rung) on all the checks above, without the
             other rungs and rules: for a model variant set with --set NAME=VALUE and/or
             --add-rung NAME (a rung added to the ladder, e.g. curves17 or tone17+hue; repeatable).
--rung-scores  every rung's cross-validated error and its error on --rule-only's checks, pickled as
             rungs-TAG.pkl (no report): cross-validation scores each rung on its own, so any ladder and
             rule drawn from the rungs scored can be judged from the pickles without refitting.
--hue-cv     every rung's hue-sector cross-validation (fit without one CIE hue sector of the pooled
             chromatic pixels, check on it), pickled as hue-TAG.pkl, to merge with --rung-scores pickles.
--adaptive   the per-image edits: per-image values and look are searched once per split (cached
             in --cache), then each regression variant predicts the check shots' values; mean
             check CIEDE2000 per variant.
"""

from __future__ import annotations

import argparse
import itertools
import os
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import fit_looks as bench  # noqa: E402
import quality  # noqa: E402

from imgenh.adaptive import FEATURE_NAMES, image_features  # noqa: E402
from imgenh.colour_difference import mean_delta_e  # noqa: E402
from imgenh.fit import adaptive as fa  # noqa: E402
from imgenh.pipeline_file import pipeline_from_steps  # noqa: E402


def splits(count: int | None):
    out = [
        (list(fit), [n for n in bench.TRAIN_PHOTOS if n not in fit])
        for fit in itertools.combinations(bench.TRAIN_PHOTOS, 3)
    ]
    return out[:count] if count else out


def _photo(key: str) -> str:
    return key.split("/")[0]


def cached(path: Path, compute):
    """``compute()``, kept in the pickle ``path`` and read from it when it exists."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


# --- adaptive ------------------------------------------------------------------------------------


def adaptive_cache(cache: Path, count: int | None) -> dict:
    """Per edit and split: training values, look steps, features of fit and check shots, check pairs."""
    path = cache / "adaptive.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    photos = bench.photos()
    shots = bench.shots(photos, bench.TRAIN_PHOTOS, 4, seed=1)  # the benchmark's training shots only
    out = {}
    for look, edit in bench.PER_IMAGE_EDITS.items():
        pairs = bench.shot_pairs(shots, edit)
        for k, (fit, check) in enumerate(splits(count)):
            train = [p for p in pairs if _photo(p.pair.key) in fit]
            held = [p for p in pairs if _photo(p.pair.key) in check]
            values, result = fa.per_image_and_look(train, [_photo(p.pair.key) for p in train], seed=0)
            out[(look, k)] = {
                "values": np.array(values),
                "look": result.steps,
                "x_fit": np.array([[image_features(p.before)[n] for n in FEATURE_NAMES] for p in train]),
                "x_check": np.array([[image_features(p.before)[n] for n in FEATURE_NAMES] for p in held]),
                "check": [(p.before, p.after) for p in held],
            }
            print(f"  {look} split {k}: searched", file=sys.stderr)
    cache.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(out))
    return out


def new_shots(data: dict, count: int | None) -> None:
    """Adds to each split 8 more shots (seed 3) of its three fitted photos: the 'rest of the shoot' check."""
    photos = bench.photos()
    shots = bench.shots(photos, bench.TRAIN_PHOTOS, 2, seed=3)
    for look, edit in bench.PER_IMAGE_EDITS.items():
        pairs = bench.shot_pairs(shots, edit)
        for k, (fit, _check) in enumerate(splits(count)):
            held = [p for p in pairs if _photo(p.pair.key) in fit]
            d = data[(look, k)]
            d["x_new_shots"] = np.array([[image_features(p.before)[n] for n in FEATURE_NAMES] for p in held])
            d["new_shots"] = [(p.before, p.after) for p in held]


def adaptive_report(cache: Path, count: int | None, variants: dict, which: str = "check") -> None:
    data = adaptive_cache(cache, count)
    if which == "new_shots":
        new_shots(data, count)
    looks = list(bench.PER_IMAGE_EDITS)
    table = {name: {look: [] for look in looks} for name in variants}
    x_key = "x_check" if which == "check" else "x_new_shots"
    for (look, _k), d in data.items():
        for name, predict in variants.items():
            values = predict(d["x_fit"], d["values"], d[x_key])
            errors = []
            for (before, after), v in zip(d[which], values, strict=True):
                steps = fa.with_values(fa.LOOK_PREFIX, fa.LOOK_FREE, [float(x) for x in v])
                out = pipeline_from_steps(steps + d["look"]).apply(before)[0]
                errors.append(mean_delta_e(out, after))
            table[name][look].append(float(np.mean(errors)))
    what = "check the other 2" if which == "check" else "check new shots of the same 3"
    print(f"\nAdaptive, dev splits of the training photos (fit 3 photos' shots, {what}): mean CIEDE2000\n")
    print("| regression | " + " | ".join(looks) + " | mean |")
    print("|---" * (len(looks) + 2) + "|")
    for name, row in table.items():
        means = [np.mean(row[look]) for look in looks]
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")


def _clamped(free, values: np.ndarray) -> np.ndarray:
    return np.array([[min(max(v, f.lo), f.hi) for f, v in zip(free, row, strict=True)] for row in values])


def variant_current(x_fit, values, x_check):
    targets = fa.fit_regression(x_fit, values, fa.LOOK_FREE, 0, log_scale=False, base_features=())
    return _clamped(fa.LOOK_FREE, np.stack([t.model.predict(x_check) for t in targets], axis=1))


NEUTRAL = ("log_red_green_linear", "log_blue_green_linear")
LUMA = ("luma_mean", "luma_p50")
# Regression variants: keyword arguments of imgenh.fit.adaptive.fit_regression.
REGRESSION_VARIANTS = {
    "trees, log scale": {"log_scale": True},
    "neutral base + trees, log": {"log_scale": True, "base_features": NEUTRAL},
    "neutral base on gains + trees, log": {
        "log_scale": True,
        "base_features": NEUTRAL,
        "base_params": ("gains[0]", "gains[2]"),
    },
    "neutral base ridge 1 + trees, log": {"log_scale": True, "base_features": NEUTRAL, "base_ridge": 1.0},
    "neutral base ridge .01 + trees, log": {"log_scale": True, "base_features": NEUTRAL, "base_ridge": 0.01},
    "neutral+luma base + trees, log": {"log_scale": True, "base_features": NEUTRAL + LUMA},
    "neutral+luma base ridge 1 + trees, log": {
        "log_scale": True,
        "base_features": NEUTRAL + LUMA,
        "base_ridge": 1.0,
    },
    "neutral+luma base ridge .01 + trees, log": {
        "log_scale": True,
        "base_features": NEUTRAL + LUMA,
        "base_ridge": 0.01,
    },
    "neutral+luma base ridge .001 + trees, log": {
        "log_scale": True,
        "base_features": NEUTRAL + LUMA,
        "base_ridge": 0.001,
    },
    "neutral+luma base ridge 1e-6 + trees, log": {
        "log_scale": True,
        "base_features": NEUTRAL + LUMA,
        "base_ridge": 1e-6,
    },
    "neutral+luma base + trees, linear scale": {"base_features": NEUTRAL + LUMA},
    "neutral+luma+percentiles base + trees, log": {
        "log_scale": True,
        "base_features": NEUTRAL + LUMA + ("luma_p05", "luma_p95", "contrast"),
    },
    "all-feature base ridge 1 + trees, log": {
        "log_scale": True,
        "base_features": FEATURE_NAMES,
        "base_ridge": 1.0,
    },
    "all-feature base ridge 10 + trees, log": {
        "log_scale": True,
        "base_features": FEATURE_NAMES,
        "base_ridge": 10.0,
    },
}


def _base_only(ridge: float):
    def predict(x_fit, values, x_check):
        targets = fa.fit_regression(
            x_fit, values, fa.LOOK_FREE, 0, log_scale=True, base_features=NEUTRAL + LUMA, base_ridge=ridge
        )
        out = []
        for t in targets:
            raw = sum(
                w * (1.0 if n == "intercept" else x_check[:, FEATURE_NAMES.index(n)]) for n, w in t.base
            )
            out.append(np.exp(raw) if t.scale == "log" else raw)
        return _clamped(fa.LOOK_FREE, np.stack(out, axis=1))

    return predict


# Per-parameter base features tried for the levels in front of the look (2026-12-03, rejected).
PERCENTILE_BASES = {
    "black": NEUTRAL + LUMA + ("luma_p01",),
    "white": NEUTRAL + LUMA + ("luma_p99",),
    "gamma": NEUTRAL + LUMA + ("luma_p01", "luma_p99"),
}


def _per_parameter_base(features_of: dict, choose_by_cv: bool = False):
    """Each parameter's base on ``features_of[label]`` (else NEUTRAL + LUMA); with ``choose_by_cv`` only
    when leave-one-photo-out cross-validation of the predicted value (on the fitted scale) says it is better."""

    def fit_one(x_fit, values, k, names):
        return fa.fit_regression(x_fit, values[:, [k]], [fa.LOOK_FREE[k]], k, base_features=names)

    def predict(x_fit, values, x_check):
        groups = np.arange(len(x_fit)) // 4  # the cache holds 4 shots per photo, photo by photo
        targets = []
        for k, f in enumerate(fa.LOOK_FREE):
            names = features_of.get(f.label, NEUTRAL + LUMA)
            if choose_by_cv and names != NEUTRAL + LUMA:
                errors = [_value_cv(x_fit, values, k, groups, fit_one, n) for n in (NEUTRAL + LUMA, names)]
                names = names if errors[1] < errors[0] else NEUTRAL + LUMA
            targets += fit_one(x_fit, values, k, names)
        return _clamped(fa.LOOK_FREE, fa.predict_values(targets, x_check))

    return predict


def _value_cv(x_fit, values, k, groups, fit_one, names) -> float:
    f = fa.LOOK_FREE[k]
    scale = np.log if f.log else (lambda v: v)
    errors = []
    for g in np.unique(groups):
        out = groups == g
        targets = fit_one(x_fit[~out], values[~out], k, names)
        predicted = np.clip(fa.predict_values(targets, x_fit[out])[:, 0], f.lo, f.hi)
        errors.append(np.mean((scale(predicted) - scale(values[out, k])) ** 2))
    return float(np.mean(errors))


def adaptive_variants() -> dict:
    out = {"trees (main)": variant_current}
    out["levels base + luma_p01 / luma_p99"] = _per_parameter_base(
        {k: v for k, v in PERCENTILE_BASES.items() if k != "gamma"}
    )
    out["levels and gamma base + luma_p01 / luma_p99"] = _per_parameter_base(PERCENTILE_BASES)
    out["levels and gamma base + percentiles where value cv says so"] = _per_parameter_base(
        PERCENTILE_BASES, choose_by_cv=True
    )
    out["neutral+luma base only, ridge .01, log"] = _base_only(0.01)
    for name, kwargs in REGRESSION_VARIANTS.items():
        out[name] = lambda x_fit, values, x_check, kwargs=kwargs: _clamped(
            fa.LOOK_FREE,
            fa.predict_values(fa.fit_regression(x_fit, values, fa.LOOK_FREE, 0, **kwargs), x_check),
        )
    return out


# --- adaptive with auto-correction prefixes ------------------------------------------------------


def auto_scores(cache: Path, count: int | None, edits: dict) -> dict:
    """Per edit and split: each candidate of fit_adaptive (none / auto prefix / predicted values) fitted on
    the split's three photos' shots, with its cross-validated error and its mean CIEDE2000 on the other
    two photos' shots (check) and on new shots of the three (seed 3). Kept per split in ``cache``.
    ``edits`` maps a name to a function from shots (key -> BGR uint8) to pairs."""
    from imgenh.fit import fit_look

    photos = bench.photos()
    shots = bench.shots(photos, bench.TRAIN_PHOTOS, 4, seed=1)
    more = bench.shots(photos, bench.TRAIN_PHOTOS, 2, seed=3)
    out = {}
    for look, make_pairs in edits.items():
        pairs, new_pairs = make_pairs(shots), make_pairs(more)
        for k, (fit, check) in enumerate(splits(count)):

            def compute(fit=fit, check=check, pairs=pairs, new_pairs=new_pairs):
                train = [p for p in pairs if _photo(p.pair.key) in fit]
                groups = [_photo(p.pair.key) for p in train]
                plain = fit_look(train, holdout=0, seed=0, groups=groups)
                checks = {
                    "check": [p for p in pairs if _photo(p.pair.key) in check],
                    "new_shots": [p for p in new_pairs if _photo(p.pair.key) in fit],
                }
                rows = {}
                for c in fa.adaptive_candidates(train, groups, 0, plain):
                    pipeline = c.pipeline()
                    rows[c.kind] = {"label": c.label, "cv": c.cv_error}
                    for name, held in checks.items():
                        rows[c.kind][name] = float(
                            np.mean([mean_delta_e(pipeline.apply(p.before)[0], p.after) for p in held])
                        )
                return rows

            out[(look, k)] = cached(cache / "auto" / f"{bench_key(look)}-{k}.pkl", compute)
            print(
                f"  {look} split {k}: " + ", ".join(r["label"] for r in out[(look, k)].values()),
                file=sys.stderr,
            )
    return out


def benchmark_edits() -> dict:
    """fit_looks.py's three per-image edits (imgenh's own auto-corrections, then a look)."""
    return {
        look: (lambda s, edit=edit: bench.shot_pairs(s, edit)) for look, edit in bench.PER_IMAGE_EDITS.items()
    }


# Per-image edits by another tool, which imgenh's auto steps only approximate (--other-tools).
OTHER_TOOL_EDITS = {
    "im normalize per channel + sigmoid": [
        "-channel",
        "RGB",
        "-normalize",
        "+channel",
        "-sigmoidal-contrast",
        "4x50%",
    ],
    "im auto-level + auto-gamma + modulate": ["-auto-level", "-auto-gamma", "-modulate", "100,120,100"],
}


def other_tool_edits() -> dict:
    """ImageMagick auto-corrections followed by a look, as functions from shots to pairs."""
    import tempfile

    from imgenh.fit import Pair, PairImages

    tmp = Path(tempfile.mkdtemp(prefix="imgenh-dev-auto-"))

    def make(shots, args):
        return [
            PairImages(
                Pair(key, Path(key), Path(key)),
                b.astype(np.float32) / 255,
                bench.imagemagick(b, args, tmp).astype(np.float32) / 255,
            )
            for key, b in shots.items()
        ]

    return {name: (lambda s, args=args: make(s, args)) for name, args in OTHER_TOOL_EDITS.items()}


def bench_key(look: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in look)


def auto_rules() -> dict:
    """Ways to pick a candidate from a split's rows (``kind -> {cv, check, new_shots}``)."""

    def simplest_within(rows, abs_margin, rel_margin):
        best = min(r["cv"] for r in rows.values())
        margin = max(abs_margin, rel_margin * best)
        return next(kind for kind, r in rows.items() if r["cv"] <= best + margin)

    rules = {
        f"always {kind}": (lambda rows, kind=kind: kind if kind in rows else "none")
        for kind in ("none", "auto", "predicted")
    }
    rules["always auto, else predicted"] = lambda rows: "auto" if "auto" in rows else "predicted"
    rules["lowest cv"] = lambda rows: min(rows, key=lambda kind: rows[kind]["cv"])
    rules["simplest within max(0.05, 3%) (fit_adaptive)"] = lambda rows: simplest_within(rows, 0.05, 0.03)
    rules["simplest within max(0.1, 10%)"] = lambda rows: simplest_within(rows, 0.1, 0.1)
    return rules


def auto_report(cache: Path, count: int | None, edits: dict) -> None:
    scores = auto_scores(cache, count, edits)
    looks = list(edits)
    for which in ("check", "new_shots"):
        print(f"\nAdaptive candidates, dev splits (fit 3 photos' shots, {which}): mean CIEDE2000\n")
        print("| rule | " + " | ".join(looks) + " | mean |")
        print("|---" * (len(looks) + 2) + "|")
        for name, rule in auto_rules().items():
            means = [
                np.mean([rows[rule(rows)][which] for (lk, _), rows in scores.items() if lk == look])
                for look in looks
            ]
            print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")
    print("\nChosen by fit_adaptive's rule, per split:")
    rule = auto_rules()["simplest within max(0.05, 3%) (fit_adaptive)"]
    for (look, k), rows in scores.items():
        cvs = ", ".join(f"{r['label']} {r['cv']:.2f}" for r in rows.values())
        print(f"  {look} {k}: {rows[rule(rows)]['label']}  (cv: {cvs})")


# --- global looks -----------------------------------------------------------------------------


def look_afters() -> tuple[dict, dict]:
    """The benchmark's eight looks on the training photos only."""
    import tempfile

    befores = {n: img for n, img in bench.photos().items() if n in bench.TRAIN_PHOTOS}
    looks = {}
    for seed in (11, 12, 13):
        hidden = pipeline_from_steps(bench.random_look(seed))
        looks[f"imgenh-random-{seed}"] = {n: hidden.apply(img)[0] for n, img in befores.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in bench.IMAGEMAGICK_LOOKS.items():
            looks[name] = {n: bench.imagemagick(img, args, Path(tmp)) for n, img in befores.items()}
    return befores, looks


GAMUT_BINS = 8


def _occupied(rgb: np.ndarray) -> np.ndarray:
    """Which cells of a GAMUT_BINS^3 grid over R, G, B hold any of the colours."""
    q = np.minimum((np.clip(rgb, 0, 1) * GAMUT_BINS).astype(np.int64), GAMUT_BINS - 1)
    cells = (q[:, 0] * GAMUT_BINS + q[:, 1]) * GAMUT_BINS + q[:, 2]
    return np.bincount(cells, minlength=GAMUT_BINS**3) > 0, cells


def gamut_cv(samples, groups) -> dict:
    """Cross-validation as select.cross_validate, but per held pair: error sums inside and outside the
    fold's training gamut (cells of an 8^3 grid its colours occupy), so weighted rules can be scored offline."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    out = {level.name: [] for level in lm.LADDER}
    for fold in select.pair_folds(groups, 0):
        inside = [s for i, s in enumerate(samples) if i not in set(fold.tolist())]
        x, y = select.stack_samples(inside)
        occupied, _ = _occupied(x)
        bases: dict = {}
        for level in lm.LADDER:
            model = lm.fit_model(x, y, level, bases)
            for i in fold:
                err = lm.rgb_delta_e(model.apply_rgb(samples[i].before), samples[i].after)
                outside = ~occupied[_occupied(samples[i].before)[1]]
                out[level.name].append(
                    (err[~outside].sum(), (~outside).sum(), err[outside].sum(), outside.sum())
                )
    return out


# Colour-region cross-validation: the share of the pooled pixels each region holds out.
REGION_SHARE = 0.2


def colour_regions(rgb: np.ndarray) -> list[np.ndarray]:
    """Masks of the darkest, the brightest and the most colourful REGION_SHARE of ``(P, 3)`` colours."""
    from imgenh.fit.look import LUMA_RGB

    luma = rgb @ LUMA_RGB
    chroma = rgb.max(axis=1) - rgb.min(axis=1)
    low, high = np.quantile(luma, [REGION_SHARE, 1 - REGION_SHARE])
    return [luma <= low, luma >= high, chroma >= np.quantile(chroma, 1 - REGION_SHARE)]


def region_cross_validate(samples, ladder) -> dict[str, float]:
    """Mean CIEDE2000 of each rung on colours it did not see: fitted on the pooled pixels without a
    region (``colour_regions``), checked on that region; the mean over the three regions. Photos
    darker, brighter or more colourful than the pairs need the model to extrapolate; folds of
    whole photos rarely show it, colour regions of the pooled pixels do."""
    scores = _left_out_scores(samples, ladder, colour_regions)
    return {name: float(np.mean(v)) for name, v in scores.items()}


def _left_out_scores(samples, ladder, masks_of) -> dict[str, list[float]]:
    """Each rung's mean CIEDE2000 on each mask ``masks_of(pooled colours)`` gives, fitted without it."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    x, y = select.stack_samples(samples)
    scores: dict[str, list[float]] = {level.name: [] for level in ladder}
    for left_out in masks_of(x):
        bases: dict = {}
        for level in ladder:
            model = lm.fit_model(x[~left_out], y[~left_out], level, bases)
            scores[level.name].append(float(lm.rgb_delta_e(model.apply_rgb(x[left_out]), y[left_out]).mean()))
    return scores


# Hue-sector cross-validation: chromatic pixels (CIE C* at least this) split by CIE hue angle.
HUE_MIN_CHROMA = 10.0
HUE_SECTORS = 6
HUE_MIN_PIXELS = 300  # a sector with fewer pooled pixels is not checked (too few to judge)


def hue_sectors(rgb: np.ndarray) -> list[np.ndarray]:
    """Masks of the chromatic ``(P, 3)`` colours in each of HUE_SECTORS CIE hue sectors (60 degrees each by
    default), those with at least HUE_MIN_PIXELS colours; the fitted photos' rare hues are sectors too."""
    from imgenh.colour_difference import lab_from_bgr

    lab = lab_from_bgr(rgb[:, None, ::-1].astype(np.float32))[:, 0]
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    sector = (np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360 // (360 / HUE_SECTORS)).astype(np.int64)
    masks = [(chroma >= HUE_MIN_CHROMA) & (sector == s) for s in range(HUE_SECTORS)]
    return [m for m in masks if m.sum() >= HUE_MIN_PIXELS]


def hue_cross_validate(samples, ladder) -> dict[str, list[float]]:
    """Each rung's mean CIEDE2000 on each hue sector (``hue_sectors``) when fitted on the pooled pixels
    without it: can the model carry the edit to hues the pairs lack (rocket's blue after warm photos)?"""
    return _left_out_scores(samples, ladder, hue_sectors)


def hue_scores(count: int | None, looks: list[str]) -> dict:
    """Per look and split (and "all": the five photos), each rung's hue-sector cross-validation, to be
    merged with --rung-scores pickles (same samples: seed 0, SAMPLES_PER_PAIR)."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    befores = {n: img for n, img in bench.photos().items() if n in bench.TRAIN_PHOTOS}
    out = {}
    for look, fn in look_functions().items():
        if looks and look not in looks:
            continue
        afters = {n: fn(img) for n, img in befores.items()}
        fits = [(k, fit) for k, (fit, _check) in enumerate(splits(count))] + [("all", bench.TRAIN_PHOTOS)]
        for k, fit in fits:
            rng = np.random.default_rng(0)
            train = bench.make_pairs(befores, afters, fit)
            samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
            out[(look, k)] = {"hue_cv": hue_cross_validate(samples, lm.LADDER)}
        print(f"  {look}: done", file=sys.stderr)
    return out


def look_functions() -> dict:
    """The benchmark's eight looks as functions of a BGR uint8 image (ImageMagick ones run in a temp dir)."""
    import tempfile

    tmp = Path(tempfile.mkdtemp(prefix="imgenh-dev-looks-"))
    out = {}
    for seed in (11, 12, 13):
        hidden = pipeline_from_steps(bench.random_look(seed))
        out[f"imgenh-random-{seed}"] = lambda img, hidden=hidden: hidden.apply(img)[0]
    for name, args in bench.IMAGEMAGICK_LOOKS.items():
        out[name] = lambda img, args=args: bench.imagemagick(img, args, tmp)
    return out


SHIFTED_SHOTS = 2  # shots per check photo
# Darker and more colourful than any fitted photo: the look model must extrapolate.
DARK_COLOURFUL = ({"op": "gamma", "value": 0.4}, {"op": "saturation", "factor": 2.5})


def _pair(key: str, before: np.ndarray, look):
    from imgenh.fit import Pair, PairImages

    after = look(before)
    return PairImages(
        Pair(key, Path(key), Path(key)), before.astype(np.float32) / 255, after.astype(np.float32) / 255
    )


def shifted_pairs(befores: dict, look, names) -> list:
    """Check pairs outside the fitted photos' colours: each check photo shot SHIFTED_SHOTS times at a random
    exposure and colour cast (benchmarks/fit_looks.py's ``shots``, seed 5), then given the look; whole images."""
    return [_pair(key, img, look) for key, img in bench.shots(befores, names, SHIFTED_SHOTS, seed=5).items()]


def dark_colourful_pairs(befores: dict, look, names) -> list:
    """Each check photo made darker and more colourful (:data:`DARK_COLOURFUL`), then given the look."""
    shift = pipeline_from_steps(list(DARK_COLOURFUL))
    return [_pair(name, shift.apply(befores[name])[0], look) for name in names]


def swapped_pairs(befores: dict, look, names) -> list:
    """Each check photo with red and blue swapped, then given the look: the fitted photos are warm
    (skin, fur, coffee, retina), so this asks for hues (blues, cyans) they hardly show."""
    return [_pair(name, np.ascontiguousarray(befores[name][..., ::-1]), look) for name in names]


def shifted_scores(count: int | None) -> dict:
    """Per look and split: each rung's cross-validated error, its check error on the 2 other photos (as
    look_scores) and on shifted shots of them (``shifted_pairs``): is the model safe outside the pairs' colours?"""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    befores = {n: img for n, img in bench.photos().items() if n in bench.TRAIN_PHOTOS}
    out = {}
    for look, fn in look_functions().items():
        afters = {n: fn(img) for n, img in befores.items()}
        for k, (fit, check) in enumerate(splits(count)):
            train = bench.make_pairs(befores, afters, fit)
            checks = _split_checks(befores, afters, fn, check)
            rng = np.random.default_rng(0)
            samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
            cv = select.cross_validate(samples, lm.LADDER, 0, [_photo(p.pair.key) for p in train])
            region_cv = region_cross_validate(samples, lm.LADDER)
            x, y = select.stack_samples(samples)
            bases: dict = {}
            errors = {name: {} for name in checks}
            for level in lm.LADDER:
                model = lm.fit_model(x, y, level, bases)
                for name, pairs in checks.items():
                    errors[name][level.name] = float(
                        np.mean([_rgb_error(model, p.before, p.after) for p in pairs])
                    )
            out[(look, k)] = {"cv": cv, "region_cv": region_cv, **errors}
        print(f"  {look}: done", file=sys.stderr)
    return out


def _other_photos() -> list:
    import cv2

    from imgenh.fit.pairs import resize_to_side

    root = Path(os.environ.get("OPENCV_SAMPLES", "/usr/share/doc/opencv-doc/examples/data"))
    return [
        resize_to_side(cv2.imread(str(sorted(root.glob(n + ".*"))[0]), cv2.IMREAD_COLOR), bench.SIDE)
        for n in OTHER_PHOTOS
    ]


def _split_checks(befores: dict, afters: dict, fn, check) -> dict:
    """The pairs each development check judges a split's fit on (check photos, shifted, dark, swapped)."""
    return {
        "check": bench.make_pairs(befores, afters, check),
        "shifted": shifted_pairs(befores, fn, check),
        "dark_colourful": dark_colourful_pairs(befores, fn, check),
        "swapped": swapped_pairs(befores, fn, check),
    }


def _rule_errors(train, checks: dict) -> dict:
    """The current rule's rung and the affine rung fitted on ``train``: mean error on each check set."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    rng = np.random.default_rng(0)
    samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
    cv = select.cross_validate(samples, lm.LADDER, 0, [_photo(p.pair.key) for p in train])
    chosen = select.choose_complexity(cv, lm.LADDER)
    x, y = select.stack_samples(samples)
    out = {"chosen": chosen.name}
    for row, level in (("rule", chosen), ("affine", lm.LADDER[0])):
        model = lm.fit_model(x, y, level)
        for name, pairs in checks.items():
            out[(row, name)] = float(np.mean([_rgb_error(model, p.before, p.after) for p in pairs]))
    return out


def ladder_with(ladder: tuple, name: str) -> tuple:
    """``ladder`` with the rung ``name`` (``(curves|tone)K[+matrix][+hue][+lutN][@ROUGHNESS]``, or ``hue[+lutN]`` without curves) added before
    the first rung with more parameters (3K for the curves, K for ``toneK``: one curve for all channels, 12
    for the matrix, 3 per node of the hue stage's grid, 3N^3 for the table); ``@1e-6`` sets that rung's curve
    roughness (default: CURVE_ROUGHNESS), so it follows its stiffer twin."""
    from imgenh.fit import hue
    from imgenh.fit import look as lm

    rung_name, _, roughness = name.partition("@")
    parts = rung_name.split("+")
    if parts[0] == "hue":  # the hue stage on the before colours, no curves
        parts = ["curves0", *parts]
    kind = parts[0].rstrip("0123456789")
    if kind not in ("curves", "tone") or any(
        p not in ("matrix", "hue") and not p.startswith("lut") for p in parts[1:]
    ):
        raise SystemExit(f"--add-rung {name}: expected (curves|tone)K[+matrix][+hue][+lutN][@ROUGHNESS]")
    table = next((int(p[3:]) for p in parts[1:] if p.startswith("lut")), 0)
    knots = int(parts[0][len(kind) :])
    rung = lm.Complexity(
        name,
        knots,
        "matrix" in parts,
        table,
        float(roughness) if roughness else None,
        kind == "tone",
        "hue" in parts,
    )
    hue_size = 3 * hue.GRID_LIGHTNESS * hue.GRID_CHROMA

    def size(level) -> int:
        curves = (1 if level.tied else 3) * level.knots
        return curves + 12 * level.matrix + hue_size * level.hue + 3 * level.table**3

    at = next((i for i, level in enumerate(ladder) if size(level) > size(rung)), len(ladder))
    return ladder[:at] + (rung,) + ladder[at:]


def rule_scores(count: int | None) -> dict:
    """All four checks of the 2026-12-03 table (and the swapped one) for the current selection rule
    only (no region cross-validation, no other rungs): a model variant (--set) in a fraction of the time."""
    befores = {n: img for n, img in bench.photos().items() if n in bench.TRAIN_PHOTOS}
    others = _other_photos()
    out = {}
    for look, fn in look_functions().items():
        afters = {n: fn(img) for n, img in befores.items()}
        for k, (fit, check) in enumerate(splits(count)):
            checks = _split_checks(befores, afters, fn, check)
            out[(look, k)] = _rule_errors(bench.make_pairs(befores, afters, fit), checks)
        train = bench.make_pairs(befores, afters, bench.TRAIN_PHOTOS)
        out[(look, "all")] = _rule_errors(
            train, {"other_photos": [_pair(str(i), o, fn) for i, o in enumerate(others)]}
        )
        print(f"  {look}: done", file=sys.stderr)
    return out


def _rung_errors(train, checks: dict, ladder) -> dict:
    """Every rung of ``ladder`` fitted on ``train``: its cross-validated error and mean error on each check set."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    rng = np.random.default_rng(0)
    samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
    out = {"cv": select.cross_validate(samples, ladder, 0, [_photo(p.pair.key) for p in train])}
    x, y = select.stack_samples(samples)
    bases: dict = {}
    for level in ladder:
        model = lm.fit_model(x, y, level, bases)
        for name, pairs in checks.items():
            out[(level.name, name)] = float(np.mean([_rgb_error(model, p.before, p.after) for p in pairs]))
    return out


def rung_scores(count: int | None, looks: list[str]) -> dict:
    """As :func:`rule_scores`, but every rung's cross-validated and check errors, so that any ladder drawn
    from it (cross-validation scores each rung on its own) and any rule can be judged without refitting."""
    from imgenh.fit import look as lm

    befores = {n: img for n, img in bench.photos().items() if n in bench.TRAIN_PHOTOS}
    others = _other_photos()
    out = {}
    for look, fn in look_functions().items():
        if looks and look not in looks:
            continue
        afters = {n: fn(img) for n, img in befores.items()}
        for k, (fit, check) in enumerate(splits(count)):
            checks = _split_checks(befores, afters, fn, check)
            out[(look, k)] = _rung_errors(bench.make_pairs(befores, afters, fit), checks, lm.LADDER)
        train = bench.make_pairs(befores, afters, bench.TRAIN_PHOTOS)
        others_pairs = [_pair(str(i), o, fn) for i, o in enumerate(others)]
        out[(look, "all")] = _rung_errors(train, {"other_photos": others_pairs}, lm.LADDER)
        print(f"  {look}: done", file=sys.stderr)
    return out


def rule_report(count: int | None, cache: Path, tag: str) -> None:
    scores = cached(cache / f"rule-{tag}.pkl", lambda: rule_scores(count))
    looks = list(dict.fromkeys(look for look, _ in scores))
    checks = ("check", "shifted", "dark_colourful", "swapped", "other_photos")
    print(f"\nGlobal looks ({tag}): the current rule (and the affine rung), mean CIEDE2000 per check\n")
    print("| check | row | " + " | ".join(looks) + " | mean | Hald |")
    print("|---" * (len(looks) + 4) + "|")
    for which in checks:
        for row in ("rule", "affine"):
            means = [
                np.mean(
                    [d[(row, which)] for (lk, _), d in scores.items() if lk == look and (row, which) in d]
                )
                for look in looks
            ]
            cells = " | ".join(f"{m:.3f}" for m in means)
            print(
                f"| {which} | {row} | {cells} | {np.mean(means):.3f} | {means[looks.index('im-hald-clut')]:.3f} |"
            )
    chosen = {look: sorted({d["chosen"] for (lk, _), d in scores.items() if lk == look}) for look in looks}
    print("\nRungs chosen: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in chosen.items()))


def _rgb_error(model, before: np.ndarray, after: np.ndarray) -> float:
    from imgenh.fit import look as lm

    rgb_before, rgb_after = before.reshape(-1, 3)[:, ::-1], after.reshape(-1, 3)[:, ::-1]
    return float(lm.rgb_delta_e(model.apply_rgb(rgb_before), rgb_after).mean())


def shifted_report(count: int | None, rules: dict, cache: Path, tag: str) -> dict:
    """Mean check and shifted-check CIEDE2000 per look for every fixed rung and selection rule."""
    from imgenh.fit import look as lm

    scores = cached(cache / f"shifted-{tag}.pkl", lambda: shifted_scores(count))
    looks = list(dict.fromkeys(look for look, _ in scores))
    rows = {f"always {level.name}": (lambda d, name=level.name: name) for level in lm.LADDER}
    rows.update({k: v for k, v in rules.items() if not k.startswith("gamut")})
    rows.update(region_rules())
    for which in [
        k for k in ("check", "shifted", "dark_colourful", "swapped") if k in next(iter(scores.values()))
    ]:
        print(f"\nGlobal looks ({tag}), dev splits (fit 3, {which} 2 others): mean CIEDE2000\n")
        print("| rule | " + " | ".join(looks) + " | mean |")
        print("|---" * (len(looks) + 2) + "|")
        for name, rule in rows.items():
            means = [
                np.mean([d[which][rule(d)] for (lk, _), d in scores.items() if lk == look]) for look in looks
            ]
            print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")
    return scores


def region_rules() -> dict:
    """Selection rules that also weigh each rung's colour-region cross-validation (extrapolation)."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    names = [level.name for level in lm.LADDER]

    def summed(d, weight):
        return {k: d["cv"][k] + weight * d["region_cv"][k] for k in names}

    return {
        "lowest region cv": lambda d: min(d["region_cv"], key=d["region_cv"].get),
        "lowest cv + region cv": lambda d: min(names, key=summed(d, 1.0).get),
        "choose_complexity on cv + region cv": lambda d: (
            select.choose_complexity(summed(d, 1.0), lm.LADDER).name
        ),
        "choose_complexity on cv + region cv / 2": lambda d: (
            select.choose_complexity(summed(d, 0.5), lm.LADDER).name
        ),
    }


# New photos for --other-photos: OpenCV's sample photos of benchmarks/quality.py's tuning set.
OTHER_PHOTOS = quality.OPENCV_TUNING


def other_photo_scores() -> dict:
    """Per look: each rung fitted on all five training photos (as fit_looks.py fits), checked on
    OTHER_PHOTOS; with the cross-validation and region cross-validation the rules read."""
    import cv2

    from imgenh.fit import look as lm
    from imgenh.fit import select
    from imgenh.fit.pairs import resize_to_side

    root = Path(os.environ.get("OPENCV_SAMPLES", "/usr/share/doc/opencv-doc/examples/data"))
    others = [
        resize_to_side(cv2.imread(str(sorted(root.glob(n + ".*"))[0]), cv2.IMREAD_COLOR), bench.SIDE)
        for n in OTHER_PHOTOS
    ]
    befores = {n: img for n, img in bench.photos().items() if n in bench.TRAIN_PHOTOS}
    out = {}
    for look, fn in look_functions().items():
        train = bench.make_pairs(befores, {n: fn(img) for n, img in befores.items()}, bench.TRAIN_PHOTOS)
        rng = np.random.default_rng(0)
        samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
        groups = [_photo(p.pair.key) for p in train]
        x, y = select.stack_samples(samples)
        bases: dict = {}
        checks = [_pair(str(k), img, fn) for k, img in enumerate(others)]
        errors = {}
        for level in lm.LADDER:
            model = lm.fit_model(x, y, level, bases)
            errors[level.name] = float(np.mean([_rgb_error(model, p.before, p.after) for p in checks]))
        out[(look, 0)] = {
            "cv": select.cross_validate(samples, lm.LADDER, 0, groups),
            "region_cv": region_cross_validate(samples, lm.LADDER),
            "other_photos": errors,
        }
        print(f"  {look}: done", file=sys.stderr)
    return out


def other_photos_report(rules: dict, cache: Path, tag: str) -> None:
    scores = cached(cache / f"other-{tag}.pkl", other_photo_scores)
    from imgenh.fit import look as lm

    looks = [look for look, _ in scores]
    rows = {f"always {level.name}": (lambda d, name=level.name: name) for level in lm.LADDER}
    rows.update({k: v for k, v in rules.items() if not k.startswith("gamut")})
    rows.update(region_rules())
    print(
        f"\nGlobal looks ({tag}), fitted on the 5 training photos, checked on {len(OTHER_PHOTOS)} OpenCV photos\n"
    )
    print("| rule | " + " | ".join(looks) + " | mean |")
    print("|---" * (len(looks) + 2) + "|")
    for name, rule in rows.items():
        errors = [scores[(look, 0)]["other_photos"][rule(scores[(look, 0)])] for look in looks]
        print(f"| {name} | " + " | ".join(f"{e:.3f}" for e in errors) + f" | {np.mean(errors):.3f} |")


def look_scores(count: int | None) -> dict:
    """Per look and split: each rung's cross-validated error and its check error (fitted on the 3 photos)."""
    from imgenh.fit import look as lm
    from imgenh.fit import select

    befores, looks = look_afters()
    out = {}
    for look, afters in looks.items():
        for k, (fit, check) in enumerate(splits(count)):
            train = bench.make_pairs(befores, afters, fit)
            held = bench.make_pairs(befores, afters, check)
            rng = np.random.default_rng(0)
            samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
            cv = select.cross_validate(samples, lm.LADDER, 0, [_photo(p.pair.key) for p in train])
            gamut = gamut_cv(samples, [_photo(p.pair.key) for p in train])
            x, y = select.stack_samples(samples)
            bases: dict = {}
            check_errors = {}
            for level in lm.LADDER:
                model = lm.fit_model(x, y, level, bases)
                errs = []
                for p in held:
                    before = p.before.reshape(-1, 3)[:, ::-1]
                    after = p.after.reshape(-1, 3)[:, ::-1]
                    errs.append(float(lm.rgb_delta_e(model.apply_rgb(before), after).mean()))
                check_errors[level.name] = float(np.mean(errs))
            out[(look, k)] = {"cv": cv, "check": check_errors, "gamut": gamut}
        print(f"  {look}: done", file=sys.stderr)
    return out


def looks_report(count: int | None, rules: dict, cache: Path, tag: str) -> dict:
    from imgenh.fit import look as lm

    scores = cached(cache / f"looks-{tag}.pkl", lambda: look_scores(count))
    looks = sorted({look for look, _ in scores}, key=list(dict.fromkeys(look for look, _ in scores)).index)
    print("\nGlobal looks, dev splits of the training photos (fit 3, check 2): mean check CIEDE2000\n")
    print("| rule | " + " | ".join(looks) + " | mean |")
    print("|---" * (len(looks) + 2) + "|")
    rows = {f"always {level.name}": (lambda d, name=level.name: name) for level in lm.LADDER}
    rows.update(rules)
    for name, rule in rows.items():
        if "gamut" not in next(iter(scores.values())) and name.startswith("gamut"):
            continue
        means = [
            np.mean([d["check"][rule(d)] for (lk, _), d in scores.items() if lk == look]) for look in looks
        ]
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + f" | {np.mean(means):.3f} |")
    return scores


def weighted_cv(gamut: dict, weight: float) -> dict:
    """Cross-validated error per rung with pixels outside the fold's training gamut counted ``weight`` times."""
    return {
        name: float(np.mean([(si + weight * so) / max(ni + weight * no, 1) for si, ni, so, no in rows]))
        for name, rows in gamut.items()
    }


def look_rules() -> dict:
    from imgenh.fit import look as lm
    from imgenh.fit import select

    rules = {
        "select.choose_complexity": lambda d: select.choose_complexity(d["cv"], lm.LADDER).name,
        "lowest cv": lambda d: min(d["cv"], key=d["cv"].get),
    }
    for margin in (0.002, 0.005, 0.01, 0.02):
        rules[f"simplest within {margin} of the lowest cv"] = lambda d, m=margin: next(
            level.name for level in lm.LADDER if d["cv"][level.name] <= min(d["cv"].values()) + m
        )
    for w in (1, 3, 10, 30):
        rules[f"gamut-weighted cv x{w}, lowest"] = lambda d, w=w: min(
            cv := weighted_cv(d["gamut"], w), key=cv.get
        )
        rules[f"gamut-weighted cv x{w}, choose_complexity"] = lambda d, w=w: (
            select.choose_complexity(weighted_cv(d["gamut"], w), lm.LADDER).name
        )
    return rules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--looks", action="store_true")
    parser.add_argument("--adaptive", action="store_true")
    parser.add_argument(
        "--other-tools", action="store_true", help="with --auto: ImageMagick's auto-corrections + a look"
    )
    parser.add_argument(
        "--auto",
        action="store_true",
        help="adaptive candidates: none / auto-correction prefix / predicted values",
    )
    parser.add_argument(
        "--other-photos", action="store_true", help="looks: fit on all 5 training photos, check OpenCV photos"
    )
    parser.add_argument(
        "--shifted",
        action="store_true",
        help="looks: also check shots of the 2 photos at new exposures and casts",
    )
    parser.add_argument(
        "--rule-only",
        action="store_true",
        help="looks: the current rule only, on every check incl. --shifted's and --other-photos' (fast)",
    )
    parser.add_argument("--splits", type=int, default=None)
    parser.add_argument(
        "--rung-scores",
        action="store_true",
        help="looks: every rung's cv and check errors on --rule-only's checks, pickled in --cache as rungs-TAG.pkl",
    )
    parser.add_argument(
        "--hue-cv",
        action="store_true",
        help="looks: every rung's hue-sector cross-validation per split, pickled in --cache as hue-TAG.pkl",
    )
    parser.add_argument("--look", action="append", default=[], help="with --rung-scores: only these looks")
    parser.add_argument(
        "--added-only",
        action="store_true",
        help="the ladder is only the --add-rung rungs (--rung-scores: merge with another run's pickle)",
    )
    parser.add_argument(
        "--new-shots", action="store_true", help="adaptive: check new shots of the fitted photos"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imgenh-fit-dev"))
    parser.add_argument(
        "--variant", action="append", default=[], help="adaptive: only these variants (by name)"
    )
    parser.add_argument(
        "--tag", default="current", help="names the cached look scores (one per model variant)"
    )
    parser.add_argument(
        "--set", action="append", default=[], help="NAME=VALUE: a constant of imgenh.fit.look"
    )
    parser.add_argument(
        "--add-rung",
        action="append",
        default=[],
        help="a rung added to the ladder, e.g. curves9, curves5+matrix+lut9 or hue+lut5 (by parameter count)",
    )
    args = parser.parse_args()
    from imgenh.fit import look as lm

    for item in args.set:
        name, value = item.split("=")
        if not hasattr(lm, name):  # setattr would add it silently: a typo or a knob since removed
            raise SystemExit(f"--set {name}: imgenh.fit.look has no such constant")
        setattr(lm, name, float(value))
    if args.added_only:
        lm.LADDER = ()
    for name in args.add_rung:
        lm.LADDER = ladder_with(lm.LADDER, name)
    if args.adaptive:
        variants = {k: v for k, v in adaptive_variants().items() if not args.variant or k in args.variant}
        adaptive_report(args.cache, args.splits, variants, "new_shots" if args.new_shots else "check")
    if args.auto:
        auto_report(args.cache, args.splits, other_tool_edits() if args.other_tools else benchmark_edits())
    if args.other_photos:
        other_photos_report(look_rules(), args.cache, args.tag)
    if args.rule_only:
        rule_report(args.splits, args.cache, args.tag)
    if args.rung_scores:
        cached(args.cache / f"rungs-{args.tag}.pkl", lambda: rung_scores(args.splits, args.look))
    if args.hue_cv:
        cached(args.cache / f"hue-{args.tag}.pkl", lambda: hue_scores(args.splits, args.look))
    if args.looks and args.shifted:
        shifted_report(args.splits, look_rules(), args.cache, args.tag)
    elif args.looks:
        looks_report(args.splits, look_rules(), args.cache, args.tag)


if __name__ == "__main__":
    main()
