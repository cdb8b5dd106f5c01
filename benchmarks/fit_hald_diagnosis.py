"""Where the look model loses the Hald CLUT look on fit_looks.py's two held-out photos: a diagnosis.

Usage: python benchmarks/fit_hald_diagnosis.py

Nothing here chooses anything: it fits the Hald look exactly as fit_looks.py does (five
training photos, the look model's sampling with seed 0) and breaks the held-out error of
rocket and hubble_deep_field down by the before's luma (fixed bins and deciles) and by
stage of the model: the tone curves alone, curves + matrix (the model without its table),
the whole model, and the affine rung (curves2+matrix) and a plain 3x3 affine for reference.
It also says how much training weight the colour table's nodes had where each photo's
pixels land, i.e. whether the table is extrapolating there.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fit_looks as bench  # noqa: E402

from imgenh.fit import look as lm  # noqa: E402
from imgenh.fit import select  # noqa: E402

LUMA_BINS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 1.0001)


def hald_pairs() -> tuple[list, dict[str, list]]:
    """The Hald look's training pairs and, per held-out photo, its four pairs."""
    befores = bench.photos()
    with tempfile.TemporaryDirectory() as tmp:
        afters = {n: bench.imagemagick(img, "hald", Path(tmp)) for n, img in befores.items()}
    train = bench.make_pairs(befores, afters, bench.TRAIN_PHOTOS)
    held = {n: bench.make_pairs(befores, afters, (n,)) for n in bench.HELD_OUT_PHOTOS}
    return train, held


def stages(train) -> tuple[dict, np.ndarray, np.ndarray]:
    """Predictors by name (R, G, B rows -> R, G, B rows) and the stacked training samples."""
    rng = np.random.default_rng(0)  # as fit_look(holdout=0, seed=0) samples
    samples = [select.sample_pair(p, select.SAMPLES_PER_PAIR, rng) for p in train]
    groups = [p.pair.key.split("/")[0] for p in train]
    cv = select.cross_validate(samples, lm.LADDER, 0, groups)
    level = select.choose_complexity(cv, lm.LADDER)
    x, y = select.stack_samples(samples)
    bases: dict = {}
    model = lm.fit_model(x, y, level, bases)
    base = lm.LookModel(model.curves, model.matrix, model.offset)
    affine_rung = lm.fit_model(x, y, lm.LADDER[0], bases)
    m, o = lm.fit_matrix(x, y)
    print(f"chosen rung {level.name}; cv " + ", ".join(f"{k} {v:.3f}" for k, v in cv.items()))
    predictors = {
        "curves only": lambda rgb: np.clip(model.after_curves(rgb), 0, 1),
        "curves+matrix": base.apply_rgb,
        f"{level.name} (chosen)": model.apply_rgb,
        "curves2+matrix (affine rung)": affine_rung.apply_rgb,
        "3x3 affine (benchmark)": lambda rgb: np.clip(rgb @ m.T + o, 0, 1),
    }
    return predictors, model, x


def node_support(model: lm.LookModel, x_train: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Training weight (summed trilinear weights) of the table node nearest each pixel's table input."""
    size = model.table.shape[0]
    idx, wts = lm._trilinear_weights(model.before_table(x_train), size)
    weight = np.bincount(idx.ravel(), wts.ravel(), size**3)
    q = np.rint(np.clip(model.before_table(rgb), 0, 1) * (size - 1)).astype(np.int64)
    return weight[(q[:, 0] * size + q[:, 1]) * size + q[:, 2]]


def breakdown(name: str, pairs, predictors: dict, model, x_train) -> None:
    before = np.concatenate([p.before.reshape(-1, 3)[:, ::-1] for p in pairs])
    after = np.concatenate([p.after.reshape(-1, 3)[:, ::-1] for p in pairs])
    luma = before @ lm.LUMA_RGB
    errors = {k: lm.rgb_delta_e(f(before).astype(np.float32), after) for k, f in predictors.items()}
    support = node_support(model, x_train, before)
    deciles = np.quantile(luma, np.linspace(0, 1, 11))
    deciles[-1] += 1e-6
    for title, edges in (("fixed luma bins", LUMA_BINS), ("luma deciles", deciles)):
        print(f"\n{name}, {title}: share of pixels, mean CIEDE2000 per stage, table node support\n")
        print("| luma | pixels | " + " | ".join(errors) + " | node weight (median) |")
        print("|---" * (len(errors) + 3) + "|")
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            inside = (luma >= lo) & (luma < hi)
            if not inside.any():
                continue
            cells = " | ".join(f"{e[inside].mean():.2f}" for e in errors.values())
            print(
                f"| {lo:.3f}-{min(hi, 1):.3f} | {inside.mean():.1%} | {cells} | {np.median(support[inside]):.0f} |"
            )
        print("| all | 100% | " + " | ".join(f"{e.mean():.2f}" for e in errors.values()) + " | |")


def main() -> None:
    train, held = hald_pairs()
    predictors, model, x_train = stages(train)
    size = model.table.shape[0]
    idx, wts = lm._trilinear_weights(model.before_table(x_train), size)
    weight = np.bincount(idx.ravel(), wts.ravel(), size**3)
    print(
        f"table {size}^3: training weight per node: median {np.median(weight):.1f}, zero on {np.mean(weight == 0):.0%}"
    )
    for name, pairs in held.items():
        breakdown(name, pairs, predictors, model, x_train)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
