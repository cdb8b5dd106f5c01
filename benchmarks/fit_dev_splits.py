"""Development splits of fit_looks.py's TRAINING photos: where the fit's rules were chosen.

Usage: python benchmarks/fit_dev_splits.py [--looks] [--adaptive] [--splits N] [--cache DIR]

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
--adaptive   the per-image edits: per-image values and look are searched once per split (cached
             in --cache), then each regression variant predicts the check shots' values; mean
             check CIEDE2000 per variant.
"""

from __future__ import annotations

import argparse
import itertools
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import fit_looks as bench  # noqa: E402

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


def adaptive_variants() -> dict:
    out = {"trees (main)": variant_current}
    out["neutral+luma base only, ridge .01, log"] = _base_only(0.01)
    for name, kwargs in REGRESSION_VARIANTS.items():
        out[name] = lambda x_fit, values, x_check, kwargs=kwargs: _clamped(
            fa.LOOK_FREE,
            fa.predict_values(fa.fit_regression(x_fit, values, fa.LOOK_FREE, 0, **kwargs), x_check),
        )
    return out


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
    for fold in select._folds(groups, 0):
        inside = [s for i, s in enumerate(samples) if i not in set(fold.tolist())]
        x, y = select._stack(inside)
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
            x, y = select._stack(samples)
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

    path = cache / f"looks-{tag}.pkl"
    if path.exists():
        scores = pickle.loads(path.read_bytes())
    else:
        scores = look_scores(count)
        cache.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps(scores))
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
    parser.add_argument("--splits", type=int, default=None)
    parser.add_argument(
        "--new-shots", action="store_true", help="adaptive: check new shots of the fitted photos"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/imgenh-fit-dev"))
    parser.add_argument(
        "--tag", default="current", help="names the cached look scores (one per model variant)"
    )
    parser.add_argument(
        "--set", action="append", default=[], help="NAME=VALUE: a constant of imgenh.fit.look"
    )
    args = parser.parse_args()
    from imgenh.fit import look as lm

    for item in args.set:
        name, value = item.split("=")
        setattr(lm, name, float(value))
    if args.adaptive:
        adaptive_report(
            args.cache, args.splits, adaptive_variants(), "new_shots" if args.new_shots else "check"
        )
    if args.looks:
        looks_report(args.splits, look_rules(), args.cache, args.tag)


if __name__ == "__main__":
    main()
