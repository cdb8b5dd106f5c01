"""How well `imgenh fit`'s look model learns edits, against the classic methods; and how fast it is.

Usage: python benchmarks/fit_looks.py [--timing-only | --accuracy-only | --adaptive-only]
                                      [--held-out-sets lomiri,mate,plasma]

Accuracy: looks are built two ways over real photos (scikit-image's), each photo cut in four
pairs at 384 px:
  hidden imgenh pipelines  three random pipelines of global imgenh steps (seeds 11-13)
  ImageMagick edits        -modulate, -sigmoidal-contrast + -level, -color-matrix + -gamma,
                           channel gains, a Hald CLUT made with -modulate and -sigmoidal-contrast
Pairs from five photos are fitted; two other photos (rocket, hubble_deep_field) are held out
and never used for fitting or for choosing anything. Each method is fitted on the training
pairs; the table is the mean CIEDE2000 over the held-out pairs (lower is better).

--held-out-sets adds larger held-out sets that nothing in imgenh fit was chosen on, judged with
the same fits (each also cut in four pairs at 384 px): ``lomiri`` (benchmarks/quality.py's
HELD_OUT_C, 14 Ubuntu Touch wallpaper photos), ``mate`` (its HELD_OUT_B, 12 mate-backgrounds
nature photos) and ``plasma`` (its HELD_OUT_D, 12 KDE Plasma wallpaper photos, first judged
2026-12-03); each gets its own table, and the Hald CLUT look a table per photo.

Per-image edits (--adaptive): each photo in 4 shots at a random exposure (gamma 0.5-2) and
colour cast (red and blue gains 0.78-1.28), then edited by an auto-correction followed by a fixed
look (auto exposure; gray world; gray world + auto levels + auto gamma), so the edit differs per
shot. Fitted on the 20 shots of the five training photos; held out: 8 shots of the two other
photos, and 10 new shots of the training photos (the same scenes at exposures and casts never
fitted on). Every method of the table above plus `imgenh fit --adaptive`.

Timing: 20 pairs of 12 MP JPEGs (q92) on disk, before and after; the time of
match_pairs + load_pairs + fit_look + render_pipeline, as `imgenh fit` would run them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from imgenh.colour_difference import mean_delta_e
from imgenh.fit import Pair, PairImages, fit_look, load_pairs, match_pairs, render_pipeline
from imgenh.fit.adaptive import fit_adaptive
from imgenh.fit.look import fit_curve, fit_matrix
from imgenh.fit.pairs import resize_to_side
from imgenh.ops.lut import interpolate_rgb
from imgenh.pipeline_file import pipeline_from_steps

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality  # noqa: E402  (benchmarks/quality.py: the held-out photo sets and their loader)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from skimage import color as skcolor
    from skimage import data

IMAGEMAGICK = "/usr/bin/convert"
TRAIN_PHOTOS = ("astronaut", "chelsea", "coffee", "immunohistochemistry", "retina")
HELD_OUT_PHOTOS = ("rocket", "hubble_deep_field")
SIDE = 384
# Larger held-out sets (--held-out-sets), never used to choose anything in imgenh fit.
MORE_HELD_OUT = {"lomiri": quality.HELD_OUT_C, "mate": quality.HELD_OUT_B, "plasma": quality.HELD_OUT_D}

IMAGEMAGICK_LOOKS = {
    "im-modulate": ["-modulate", "108,135,96"],
    "im-sigmoid-level": ["-sigmoidal-contrast", "6x45%", "-level", "4%,96%"],
    "im-colormatrix-gamma": [
        "-color-matrix",
        "1.15 -0.1 0.0  0.05 0.95 0.05  -0.05 0.1 1.0",
        "-gamma",
        "1.2",
    ],
    "im-channel-gains": [
        "-channel",
        "R",
        "-evaluate",
        "multiply",
        "1.12",
        "-channel",
        "B",
        "-evaluate",
        "multiply",
        "0.85",
        "+channel",
    ],
    "im-hald-clut": "hald",
}


def random_look(seed: int) -> list[dict]:
    """Three random global imgenh steps with random parameters."""
    rng = np.random.default_rng(seed)
    pool = [
        lambda: {"op": "gamma", "value": float(rng.uniform(0.7, 1.5))},
        lambda: {
            "op": "sigmoid",
            "contrast": float(rng.uniform(2, 7)),
            "midpoint": float(rng.uniform(0.35, 0.6)),
        },
        lambda: {"op": "levels", "black": float(rng.uniform(0, 0.08)), "white": float(rng.uniform(0.9, 1.0))},
        lambda: {
            "op": "white_balance",
            "method": "manual",
            "gains": rng.uniform(0.85, 1.15, 3).round(3).tolist(),
        },
        lambda: {"op": "saturation", "factor": float(rng.uniform(0.6, 1.5))},
        lambda: {
            "op": "curve",
            "channel": "blue",
            "points": [[0, 0.03], [0.5, float(rng.uniform(0.42, 0.58))], [1, 1]],
        },
    ]
    return [pool[i]() for i in sorted(rng.choice(len(pool), size=3, replace=False))]


def photos() -> dict[str, np.ndarray]:
    """The photos, BGR uint8, at most SIDE pixels on the long side."""
    return {
        n: resize_to_side(getattr(data, n)()[..., ::-1].copy(), SIDE) for n in TRAIN_PHOTOS + HELD_OUT_PHOTOS
    }


def more_photos(sets: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per set named in ``sets``: its photos, BGR uint8, at most SIDE pixels on the long side."""
    return {s: {n: resize_to_side(quality.load_photo(n), SIDE) for n in MORE_HELD_OUT[s]} for s in sets}


def imagemagick(img: np.ndarray, args, workdir: Path) -> np.ndarray:
    """Run ImageMagick on a BGR uint8 image (PNG in, PNG out)."""
    src, dst = workdir / "in.png", workdir / "out.png"
    cv2.imwrite(str(src), img)
    if args == "hald":
        hald = workdir / "hald.png"
        if not hald.exists():  # a look made on the identity Hald image, as an editor would
            subprocess.run(
                [IMAGEMAGICK, "hald:8", "-modulate", "100,70,93", "-sigmoidal-contrast", "3x40%", str(hald)],
                check=True,
            )
        cmd = [IMAGEMAGICK, str(src), str(hald), "-hald-clut", str(dst)]
    else:
        cmd = [IMAGEMAGICK, str(src), *args, str(dst)]
    subprocess.run(cmd, check=True)
    return cv2.imread(str(dst), cv2.IMREAD_COLOR)


def quarters(img: np.ndarray) -> list[np.ndarray]:
    h, w = img.shape[0] // 2, img.shape[1] // 2
    return [np.ascontiguousarray(img[y : y + h, x : x + w]) for y in (0, h) for x in (0, w)]


def make_pairs(befores: dict, afters: dict, names) -> list[PairImages]:
    out = []
    for name in names:
        for k, (b, a) in enumerate(zip(quarters(befores[name]), quarters(afters[name]), strict=True)):
            out.append(
                PairImages(
                    Pair(f"{name}/{k}", Path(name), Path(name)),
                    b.astype(np.float32) / 255,
                    a.astype(np.float32) / 255,
                )
            )
    return out


# --- classic baselines: each returns predict(bgr float32 image) -> bgr float32 image --------------


def _rows(pairs):
    x = np.concatenate([p.before.reshape(-1, 3)[:, ::-1] for p in pairs])
    y = np.concatenate([p.after.reshape(-1, 3)[:, ::-1] for p in pairs])
    return x, y


def _per_pixel(fn):
    def predict(img):
        rgb = img.reshape(-1, 3)[:, ::-1]
        return np.clip(fn(rgb), 0, 1)[:, ::-1].reshape(img.shape).astype(np.float32)

    return predict


def fit_curves_ls(pairs, with_matrix=False):
    """Per-channel least-squares curves (17 knots, no weighting), optionally then an affine matrix."""
    x, y = _rows(pairs)
    knots = np.linspace(0, 1, 17)
    curves = [fit_curve(x[:, c], y[:, c], 17) for c in range(3)]

    def curve(rgb):
        return np.stack([np.interp(rgb[:, c], knots, curves[c]) for c in range(3)], axis=1)

    if not with_matrix:
        return _per_pixel(curve)
    m, o = fit_matrix(curve(x), y)
    return _per_pixel(lambda rgb: curve(rgb) @ m.T + o)


def fit_affine(pairs):
    x, y = _rows(pairs)
    m, o = fit_matrix(x, y)
    return _per_pixel(lambda rgb: rgb @ m.T + o)


def fit_binned_table(pairs, size=17):
    """Mean after colour per nearest node of a size^3 grid; empty nodes keep the identity."""
    x, y = _rows(pairs)
    q = np.rint(np.clip(x, 0, 1) * (size - 1)).astype(np.int64)
    k = (q[:, 0] * size + q[:, 1]) * size + q[:, 2]
    counts = np.bincount(k, minlength=size**3)
    ramp = np.linspace(0, 1, size)
    table = np.stack(np.meshgrid(ramp, ramp, ramp, indexing="ij"), axis=-1).reshape(-1, 3)
    for c in range(3):
        sums = np.bincount(k, y[:, c], minlength=size**3)
        table[counts > 0, c] = sums[counts > 0] / counts[counts > 0]
    table = table.reshape(size, size, size, 3).astype(np.float32)
    return _per_pixel(lambda rgb: interpolate_rgb(rgb.astype(np.float32), table, method="trilinear"))


def fit_histogram_matching(pairs):
    """Match each channel's histogram of an image to the pooled training afters' (per-channel CDF)."""
    _, y = _rows(pairs)
    targets = [np.sort(y[:, c]) for c in range(3)]

    def predict(img):
        out = np.empty_like(img)
        for c in range(3):
            plane = img[..., c].ravel()
            ranks = np.argsort(np.argsort(plane, kind="stable"), kind="stable") / max(plane.size - 1, 1)
            target = targets[2 - c]
            out[..., c] = np.interp(ranks, np.linspace(0, 1, target.size), target).reshape(img.shape[:2])
        return out

    return predict


def fit_reinhard(pairs):
    """Reinhard et al. 2001 colour transfer in CIE Lab: each image's mean and std to the training afters'."""
    labs = [skcolor.rgb2lab(p.after[..., ::-1].astype(np.float64)).reshape(-1, 3) for p in pairs]
    pooled = np.concatenate(labs)
    mean_t, std_t = pooled.mean(0), pooled.std(0)

    def predict(img):
        lab = skcolor.rgb2lab(img[..., ::-1].astype(np.float64))
        mean_s, std_s = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
        out = (lab - mean_s) / np.maximum(std_s, 1e-6) * std_t + mean_t
        return np.clip(skcolor.lab2rgb(out), 0, 1)[..., ::-1].astype(np.float32)

    return predict


def fit_imgenh(pairs):
    # The four quarters of a photo are one group: cross-validation leaves whole photos out.
    result = fit_look(pairs, holdout=0, seed=0, groups=[p.pair.key.split("/")[0] for p in pairs])
    pipeline = pipeline_from_steps(result.steps)
    fit_imgenh.last = result.complexity
    return lambda img: pipeline.apply(img)[0]


def fit_imgenh_adaptive(pairs):
    result = fit_adaptive(pairs, holdout=0, seed=0, groups=[p.pair.key.split("/")[0] for p in pairs])
    print(f"  --adaptive chose: {result.chosen}", file=sys.stderr)
    pipeline = result.pipeline()
    return lambda img: pipeline.apply(img)[0]


METHODS = {
    "nothing done": lambda pairs: lambda img: img,
    "curves (LS)": fit_curves_ls,
    "3x3 affine": fit_affine,
    "curves + matrix": lambda pairs: fit_curves_ls(pairs, with_matrix=True),
    "binned 3D table 17^3": fit_binned_table,
    "histogram matching": fit_histogram_matching,
    "Reinhard transfer": fit_reinhard,
    "imgenh look model": fit_imgenh,
}


def photo_errors(predict, pairs: list[PairImages]) -> dict[str, float]:
    """Mean CIEDE2000 of ``predict`` per photo (over its four quarters)."""
    errors: dict[str, list[float]] = {}
    for p in pairs:
        errors.setdefault(p.pair.key.split("/")[0], []).append(mean_delta_e(predict(p.before), p.after))
    return {photo: float(np.mean(e)) for photo, e in errors.items()}


def global_looks(befores: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """The eight looks applied to every photo of ``befores``: look -> photo -> after (BGR uint8)."""
    looks: dict[str, dict] = {}
    for seed in (11, 12, 13):
        hidden = pipeline_from_steps(random_look(seed))
        looks[f"imgenh-random-{seed}"] = {n: hidden.apply(img)[0] for n, img in befores.items()}
    with tempfile.TemporaryDirectory() as tmp:
        for name, args in IMAGEMAGICK_LOOKS.items():
            looks[name] = {n: imagemagick(img, args, Path(tmp)) for n, img in befores.items()}
    return looks


def accuracy(extra_sets: list[str]) -> None:
    extra = more_photos(extra_sets)
    befores = {**photos(), **{n: img for photos_ in extra.values() for n, img in photos_.items()}}
    looks = global_looks(befores)
    held_sets = {"skimage": HELD_OUT_PHOTOS, **{s: tuple(extra[s]) for s in extra_sets}}
    tables = {s: {m: {} for m in METHODS} for s in held_sets}
    hald = {s: {m: {} for m in METHODS} for s in held_sets}  # per photo, the Hald CLUT look
    chosen = {}
    for look, afters in looks.items():
        train = make_pairs(befores, afters, TRAIN_PHOTOS)
        held = {s: make_pairs(befores, afters, names) for s, names in held_sets.items()}
        for method, fit in METHODS.items():
            predict = fit(train)
            for s, pairs in held.items():
                per_photo = photo_errors(predict, pairs)
                tables[s][method][look] = float(np.mean(list(per_photo.values())))
                if look == "im-hald-clut":
                    hald[s][method] = per_photo
        chosen[look] = fit_imgenh.last
        print(f"  {look}: done ({chosen[look]})", file=sys.stderr)
    print(
        "\nHeld-out mean CIEDE2000 (photos rocket, hubble_deep_field; 8 pairs), fitted on 20 pairs of 5 other photos\n"
    )
    print_table(tables["skimage"], list(looks))
    print("\nComplexity chosen by imgenh: " + ", ".join(f"{k}: {v}" for k, v in chosen.items()))
    for s in extra_sets:
        print(
            f"\nHeld-out set {s} ({len(held_sets[s])} photos, {4 * len(held_sets[s])} pairs): mean CIEDE2000\n"
        )
        print_table(tables[s], list(looks))
    if extra_sets:
        for s, names in held_sets.items():
            print(f"\nim-hald-clut per photo, held-out set {s}: mean CIEDE2000\n")
            print_table(hald[s], list(names))


def print_table(table: dict[str, dict[str, float]], columns: list[str]) -> None:
    """A Markdown table of methods (rows) by columns, each column's best method (not "nothing done") in bold."""
    print("| method | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    best = {c: min(row[c] for m, row in table.items() if m != "nothing done") for c in columns}
    for method, row in table.items():
        cells = [f"**{row[c]:.2f}**" if row[c] == best[c] else f"{row[c]:.2f}" for c in columns]
        print(f"| {method} | " + " | ".join(cells) + " |")


PER_IMAGE_EDITS = {
    "auto exposure + look": [
        {"op": "gamma", "auto": True},
        {"op": "sigmoid", "contrast": 5.0, "midpoint": 0.5},
        {"op": "white_balance", "method": "manual", "gains": [1.1, 1.0, 0.88]},
    ],
    "gray world + look": [
        {"op": "white_balance", "method": "gray_world"},
        {"op": "sigmoid", "contrast": 4.0, "midpoint": 0.45},
        {"op": "saturation", "factor": 1.25},
    ],
    "gray world + auto levels + auto gamma + look": [
        {"op": "white_balance", "method": "gray_world"},
        {"op": "stretch", "low": 1.0, "high": 99.0},
        {"op": "gamma", "auto": True},
        {"op": "curve", "channel": "blue", "points": [[0, 0.04], [0.5, 0.47], [1, 1]]},
    ],
}


def shots(befores: dict, names, count: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` shots of each photo at a random exposure and colour cast, BGR uint8."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        for k in range(count):
            gains = np.exp(rng.uniform(-0.25, 0.25, 3))
            gains[1] = 1.0
            steps = [
                {"op": "white_balance", "method": "manual", "gains": gains.round(3).tolist()},
                {"op": "gamma", "value": float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))},
            ]
            out[f"{name}/{k}"] = pipeline_from_steps(steps).apply(befores[name])[0]
    return out


def shot_pairs(befores: dict, edit: list[dict]) -> list[PairImages]:
    pipeline = pipeline_from_steps(edit)
    return [
        PairImages(
            Pair(key, Path(key), Path(key)),
            b.astype(np.float32) / 255,
            pipeline.apply(b)[0].astype(np.float32) / 255,
        )
        for key, b in befores.items()
    ]


def adaptive_accuracy(extra_sets: list[str]) -> None:
    photos_ = photos()
    train_shots = shots(photos_, TRAIN_PHOTOS, 4, seed=1)
    held_sets = {
        "new photos": shots(photos_, HELD_OUT_PHOTOS, 4, seed=2),
        "new shots": shots(photos_, TRAIN_PHOTOS, 2, seed=3),
    }
    for s, set_photos in more_photos(extra_sets).items():
        held_sets[f"{s} photos"] = shots(
            set_photos, list(set_photos), 4, seed=4 + list(MORE_HELD_OUT).index(s)
        )
    methods = {**METHODS, "imgenh --adaptive": fit_imgenh_adaptive}
    table: dict[str, dict[str, float]] = {m: {} for m in methods}
    for look, edit in PER_IMAGE_EDITS.items():
        train = shot_pairs(train_shots, edit)
        held = {name: shot_pairs(s, edit) for name, s in held_sets.items()}
        for method, fit in methods.items():
            start = time.perf_counter()
            predict = fit(train)
            seconds = time.perf_counter() - start
            for name, pairs in held.items():
                table[method][f"{look} ({name})"] = float(
                    np.mean([mean_delta_e(predict(p.before), p.after) for p in pairs])
                )
            print(f"  {look}: {method} {seconds:.1f} s", file=sys.stderr)
    print(
        "\nPer-image edits: held-out mean CIEDE2000; fitted on 20 shots of 5 photos; new photos: 8 shots of rocket and "
        "hubble_deep_field; new shots: 10 more shots of the 5 training photos\n"
    )
    print_table(
        table, [f"{look} ({name})" for look in PER_IMAGE_EDITS for name in ("new photos", "new shots")]
    )
    for s in extra_sets:
        print(
            f"\nPer-image edits on held-out set {s}: 4 shots of each of its {len(MORE_HELD_OUT[s])} photos\n"
        )
        print_table(table, [f"{look} ({s} photos)" for look in PER_IMAGE_EDITS])


def write_12mp_pairs(root: Path, count: int = 20) -> None:
    """``count`` 12 MP (4000x3000) before/after JPEG pairs, q92, edited by a hidden pipeline."""
    hidden = pipeline_from_steps(random_look(12))
    sources = [getattr(data, n)()[..., ::-1] for n in TRAIN_PHOTOS + HELD_OUT_PHOTOS]
    rng = np.random.default_rng(0)
    (root / "before").mkdir()
    (root / "after").mkdir()
    for i in range(count):
        src = sources[i % len(sources)]
        big = cv2.resize(src, (4000, 3000), interpolation=cv2.INTER_CUBIC)
        big = cv2.add(big, rng.integers(0, 6, big.shape, dtype=np.uint8))  # grain, so JPEGs are photo-sized
        after, _ = hidden.apply(big)
        cv2.imwrite(str(root / "before" / f"IMG_{i:04d}.jpg"), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
        cv2.imwrite(str(root / "after" / f"IMG_{i:04d}.jpg"), after, [cv2.IMWRITE_JPEG_QUALITY, 92])


def timing() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_12mp_pairs(root)
        start = time.perf_counter()
        found = match_pairs(root / "before", root / "after")
        loaded, refused = load_pairs(found.pairs)
        t_load = time.perf_counter() - start
        result = fit_look(loaded, seed=0)
        text = render_pipeline(result)
        total = time.perf_counter() - start
        start = time.perf_counter()
        adaptive = fit_adaptive(loaded, seed=0)
        adaptive_text = adaptive.render()
        t_adaptive = time.perf_counter() - start
    print(
        f"\n20 pairs of 12 MP JPEGs: {total:.1f} s in all (read + check + working copies {t_load:.1f} s, "
        f"fit {total - t_load:.1f} s); {len(loaded)} pairs used, {len(refused)} refused; "
        f"chosen {result.complexity}; held-out CIEDE2000 {result.mean_error('held-out'):.2f} "
        f"(nothing done {result.mean_error('held-out', False):.2f}); YAML {len(text)} bytes"
    )
    print(
        f"--adaptive on the same working copies: {t_adaptive:.1f} s more (+ the same {t_load:.1f} s of reading); "
        f"held-out CIEDE2000 {adaptive.mean_error('held-out'):.2f} (global "
        f"{adaptive.mean_error('held-out', which='global_fit'):.2f}); YAML {len(adaptive_text)} bytes"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--accuracy-only", action="store_true")
    parser.add_argument("--adaptive-only", action="store_true", help="only the per-image edits table")
    parser.add_argument(
        "--held-out-sets",
        default="",
        help=f"comma-separated larger held-out sets to judge on as well: {', '.join(MORE_HELD_OUT)}",
    )
    args = parser.parse_args()
    extra_sets = [s for s in args.held_out_sets.split(",") if s]
    unknown = sorted(set(extra_sets) - set(MORE_HELD_OUT))
    if unknown:
        parser.error(f"--held-out-sets: unknown {', '.join(unknown)}; known: {', '.join(MORE_HELD_OUT)}")
    if args.adaptive_only:
        adaptive_accuracy(extra_sets)
        return
    if not args.timing_only:
        accuracy(extra_sets)
        adaptive_accuracy(extra_sets)
    if not args.accuracy_only:
        timing()


if __name__ == "__main__":
    main()
