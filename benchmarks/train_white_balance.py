"""Train the learned white-balance estimator and write the model file shipped in the package.

Usage (from the repository root; deterministic: same command, same file):

    python benchmarks/train_white_balance.py

Renders ``--scenes`` training scenes (benchmarks/wb_scenes.py: training cameras, training
lights, seeds TRAIN_SEED + i; the held-out cameras, lights and seeds are never rendered here),
computes the features imgenh computes at run time (imgenh.ops.color.illuminant_features), and
fits two models with imgenh.boost.BoostedTrees:

1. illuminant: features -> (du, dv), the correction to the shades-of-gray p 6 estimate's log
   chromaticity (u, v) = (log G/R, log G/B). A correction transfers across cameras better than
   an absolute chromaticity does, since the classic estimate already follows the camera. The
   trees read the estimate's position along the black-body locus but not its (u, v)
   (ILLUMINANT_FEATURES): with them they learned how far across the locus lights usually lie
   and read only ~60% of a green or magenta cast on photos (``--validate`` shows the trade).
2. error: features (which include how much the classic estimates disagree) -> log10 of the angular error, fitted
   on out-of-fold errors (each fold's error measured by a model that never saw it), so it
   predicts how wrong the estimate is likely to be; that becomes the confidence.

``--validate`` prints the leave-one-camera-out error of a few settings on the training set
(the settings below were chosen that way; the held-out set played no part).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wb_scenes  # noqa: E402

from imgenh.boost import BoostedTrees  # noqa: E402
from imgenh.ops.color import (  # noqa: E402
    FEATURE_NAMES,
    MODEL_PATH,
    WhiteBalanceModel,
    estimate_illuminant,
    from_log_chroma,
    illuminant_features,
    log_chroma,
)

ILLUMINANT_SETTINGS = {
    "algorithm": "gradient",
    "n_estimators": 250,
    "max_depth": 4,
    "learning_rate": 0.1,
    "subsample": 0.7,
    "min_samples_leaf": 10,
    "max_bins": 64,
    "digits": 5,
    "seed": 0,
}
ERROR_SETTINGS = {
    "algorithm": "adaboost_r2",
    "n_estimators": 60,
    "max_depth": 3,
    "learning_rate": 0.5,
    "loss": "linear",
    "min_samples_leaf": 20,
    "max_bins": 64,
    "digits": 4,
    "seed": 1,
}
FOLDS = 4
SOG = FEATURE_NAMES.index("base_u")
# Withheld from the illuminant trees: where the base estimate lies across the locus (see above).
LOCUS_PRIOR = ("base_u", "base_v")
ILLUMINANT_FEATURES = tuple(name for name in FEATURE_NAMES if name not in LOCUS_PRIOR)


def scene_table(seeds, held_out: bool) -> dict[str, np.ndarray]:
    """Features, true (u, v) and labels of the scenes of ``seeds``."""
    feats, truth, cams, types, domains, balances = [], [], [], [], [], []
    for seed in seeds:
        scene = wb_scenes.render(int(seed), held_out)
        feats.append(illuminant_features(scene.image, scene.linear)[0])
        truth.append(log_chroma(scene.illuminant))
        cams.append(scene.camera)
        types.append(scene.scene_type)
        domains.append(scene.domain)
        balances.append(scene.balance)
    labels = {
        "camera": np.array(cams),
        "type": np.array(types),
        "domain": np.array(domains),
        "balance": np.array(balances),
    }
    return {"X": np.array(feats), "uv": np.array(truth), **labels}


def angular_errors(uv_a: np.ndarray, uv_b: np.ndarray) -> np.ndarray:
    """Angles (degrees) between the illuminants of two arrays of log chromaticities."""
    a, b = from_log_chroma(uv_a), from_log_chroma(uv_b)
    cos = np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _columns(names: tuple[str, ...]) -> list[int]:
    return [FEATURE_NAMES.index(name) for name in names]


def fit_illuminant(
    X: np.ndarray, uv: np.ndarray, settings: dict, names: tuple[str, ...] = ILLUMINANT_FEATURES
) -> BoostedTrees:
    return BoostedTrees(**settings).fit(X[:, _columns(names)], uv - X[:, SOG : SOG + 2])


def predict_uv(
    model: BoostedTrees, X: np.ndarray, names: tuple[str, ...] = ILLUMINANT_FEATURES
) -> np.ndarray:
    return X[:, SOG : SOG + 2] + model.predict(X[:, _columns(names)])


def out_of_fold(data: dict, settings: dict) -> np.ndarray:
    """Angular error of every training scene, each from a model not fitted on it."""
    n = len(data["X"])
    fold = np.arange(n) % FOLDS
    errors = np.zeros(n)
    for k in range(FOLDS):
        test = fold == k
        model = fit_illuminant(data["X"][~test], data["uv"][~test], settings)
        errors[test] = angular_errors(predict_uv(model, data["X"][test]), data["uv"][test])
    return errors


def _summary(errors: np.ndarray) -> str:
    worst = np.sort(errors)[-max(len(errors) // 4, 1) :].mean()
    return f"mean {errors.mean():.2f}  median {np.median(errors):.2f}  worst-25% {worst:.2f}"


def validate(data: dict) -> None:
    """Leave-one-camera-out error of candidate settings (training scenes only), overall and per balance."""
    candidates = [
        (ILLUMINANT_SETTINGS, ILLUMINANT_FEATURES),
        (ILLUMINANT_SETTINGS, FEATURE_NAMES),  # with the locus prior: a green or magenta cast read in part
        ({**ILLUMINANT_SETTINGS, "max_depth": 5}, ILLUMINANT_FEATURES),
    ]
    sog = angular_errors(data["X"][:, SOG : SOG + 2], data["uv"])
    groups = {name: data["balance"] == name for name in np.unique(data["balance"])}
    print(f"shades of gray p6: {_summary(sog)}")
    for settings, names in candidates:
        errors = np.zeros(len(sog))
        for cam in np.unique(data["camera"]):
            test = data["camera"] == cam
            model = fit_illuminant(data["X"][~test], data["uv"][~test], settings, names)
            errors[test] = angular_errors(predict_uv(model, data["X"][test], names), data["uv"][test])
        withheld = sorted(set(FEATURE_NAMES) - set(names)) or "none"
        print(f"{settings}, features withheld {withheld}: {_summary(errors)}")
        for domain in wb_scenes.DOMAINS:
            print(f"    {domain:<13} {_summary(errors[data['domain'] == domain])}")
        for name, rows in groups.items():
            print(
                f"    {name:<13} n={int(rows.sum()):5d}  {_summary(errors[rows])}   sog6 {_summary(sog[rows])}"
            )


def gray_edge_defaults(count: int = 400) -> None:
    """Median angular error of gray edge per order and sigma on training scenes, per domain.

    How gray_edge's default sigma was chosen (issue 9.7); training seeds only.
    """
    scenes = [wb_scenes.render(wb_scenes.TRAIN_SEED + i, held_out=False) for i in range(count)]
    print(f"gray edge (p 6), median / mean angular error on {count} training scenes")
    for order in (1, 2):
        for sigma in (1.0, 2.0, 3.0):
            cells = []
            for domain in wb_scenes.DOMAINS:
                errors = [
                    wb_scenes.angular_error(
                        estimate_illuminant(s.image, "gray_edge", linear=s.linear, order=order, sigma=sigma),
                        s.illuminant,
                    )
                    for s in scenes
                    if s.domain == domain
                ]
                cells.append(f"{domain} {np.median(errors):5.2f} / {np.mean(errors):5.2f}")
            print(f"  order {order} sigma {sigma:g}: " + "   ".join(cells))


def train(data: dict) -> WhiteBalanceModel:
    """Fit the illuminant and error models and the confidence scale."""
    errors = out_of_fold(data, ILLUMINANT_SETTINGS)
    error_model = BoostedTrees(**ERROR_SETTINGS).fit(data["X"], np.log10(np.maximum(errors, 0.1)))
    confidence = {
        # Expected errors at or below the training median mean full confidence; the worst 5% none.
        "good_deg": round(float(np.median(errors)), 3),
        "bad_deg": round(float(np.percentile(errors, 95)), 3),
        "min_pixels": 64.0,
        "min_pixel_spread": 0.1,
    }
    illuminant = fit_illuminant(data["X"], data["uv"], ILLUMINANT_SETTINGS)
    return WhiteBalanceModel(illuminant, error_model, confidence, ILLUMINANT_FEATURES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=9600, help="training scenes to render")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="model file to write")
    parser.add_argument("--validate", action="store_true", help="compare settings by leave-one-camera-out")
    parser.add_argument("--gray-edge", action="store_true", help="measure gray_edge per order and sigma")
    parser.add_argument(
        "--cache", type=Path, help="keep the rendered scenes' features in this .npz (re-used if present)"
    )
    args = parser.parse_args()
    start = time.perf_counter()
    if args.gray_edge:
        gray_edge_defaults()
        return
    seeds = wb_scenes.TRAIN_SEED + np.arange(args.scenes)
    if args.cache and args.cache.exists():
        data = dict(np.load(args.cache))
    else:
        data = scene_table(seeds, held_out=False)
        if args.cache:
            np.savez(args.cache, **data)
    print(f"rendered {args.scenes} training scenes in {time.perf_counter() - start:.0f} s")
    if args.validate:
        validate(data)
        return
    model = train(data)
    training = {
        "command": "python benchmarks/train_white_balance.py"
        + (f" --scenes {args.scenes}" if args.scenes != 9600 else ""),
        "scenes": args.scenes,
        "seeds": f"{int(seeds[0])}..{int(seeds[-1])}",
        "cameras": list(wb_scenes.TRAIN_CAMERAS),
        "tints": {"share": wb_scenes.TINT_SHARE, "size": list(wb_scenes.TINT_SIZE)},
        "illuminant_settings": ILLUMINANT_SETTINGS,
        "error_settings": ERROR_SETTINGS,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(model.to_dict(training), separators=(",", ":"))
    args.out.write_text(text + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(text) / 1024:.0f} kB) in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
