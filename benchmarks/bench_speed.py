"""Throughput and memory of `imgenh run` against the decode+encode floor (issue 11's table).

Usage (from the repository root):

    python benchmarks/bench_speed.py                       # 24 x 12 MP, 3 interleaved rounds
    python benchmarks/bench_speed.py --images 16 --rounds 1 --only 4-step,opencv --no-tools   # quick
    python benchmarks/bench_speed.py --steps               # per-step time of every pipeline, in-process

Every run is a whole process (Python start-up, pool start, decode, pipeline, encode), timed from
outside, with the same number of worker processes for all of them:

  floor      OpenCV decode + encode of every image (a small script in this file)
  opencv     the same script with a hand-written OpenCV version of the 4-step pipeline
  imgenh *   `python -m imgenh run PIPELINE ...` for each pipeline of the issue
  mogrify    ImageMagick 6.9 `mogrify`, one per core over a share of the files (4-step equivalent)
  vips       libvips CLI, one `vips` call per step (4-step equivalent), one shell per core

Rounds are interleaved (A B C, then B C A, ...) so drift of a shared machine hits every run alike;
each run's time is divided by the floor's time *in the same round* and the table shows the median
of those ratios (and their spread). Peak RSS is the largest resident set of any single process of
the run (sampled from /proc every 50 ms, and `wait4`'s ru_maxrss of each command). (A child
subreaper, reaping pool workers here, changed how much memory they held: not used.) The corpus is generated once from sample_images (upscaled, with noise)
and cached in the temp folder. Results go to stdout and, as JSON, to --json.
imgenh is byte-compiled once beforehand (into a cache in the temp folder), as an installed
package is: a shell with PYTHONDONTWRITEBYTECODE would otherwise make every process compile
it again (~0.3 s). Never part of the test suite: machines differ and are shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUALITY = 92

# The pipelines of issue 11, as imgenh YAML steps.
PIPELINES = {
    "4-step": """
  - {op: gamma, value: 1.2}
  - {op: stretch, low: 1, high: 99, linked: true}
  - {op: median, size: 3}
  - {op: sharpen, sigma: 1.0, amount: 1.0, threshold: 0.0}""",
    "pointwise": """
  - {op: white_balance, method: manual, gains: [1.1, 1.0, 0.9]}
  - {op: gamma, value: 1.1}
  - {op: levels, black: 0.02, white: 0.98}
  - {op: curve, points: [[0, 0], [0.25, 0.22], [0.75, 0.8], [1, 1]]}""",
    "statistics": """
  - {op: white_balance, method: auto}
  - {op: stretch, low: 0.5, high: 99.5, linked: true}
  - {op: gamma, auto: true}""",
    "default.yaml": None,  # the steps of configs/default.yaml
    "gradient_normalize": """
  - {op: gradient_normalize}""",
    "clahe": """
  - {op: clahe, clip_limit: 2.0, tiles: 8}""",
    "saturation": """
  - {op: saturation, factor: 1.3}""",
}
TARGETS = {  # issue 11's targets, as ratios to the floor ("opencv" means: <= the opencv run's ratio)
    "4-step": "opencv",
    "pointwise": 1.05,
    "statistics": 1.25,
    "default.yaml": 1.5,
    "gradient_normalize": 3.0,
    "clahe": 1.6,
    "saturation": 1.6,
}
MOGRIFY = ["-gamma", "1.2", "-contrast-stretch", "1%x1%", "-median", "3", "-unsharp", "0x1+1+0"]
VIPS_SCRIPT = """
set -e
t=$(mktemp -d)
for f in "$@"; do
  b=$(basename "$f" .jpg)
  vips gamma "$f" "$t/g.v" --exponent 1.2
  lo=$(vips percent "$t/g.v" 1); hi=$(vips percent "$t/g.v" 99)
  a=$(awk -v l="$lo" -v h="$hi" 'BEGIN{d=h-l; if (d<1) d=1; print 255/d}')
  c=$(awk -v l="$lo" -v h="$hi" 'BEGIN{d=h-l; if (d<1) d=1; print -255*l/d}')
  vips linear --uchar -- "$t/g.v" "$t/s.v" "$a" "$c"
  vips rank "$t/s.v" "$t/m.v" 3 3 4
  vips sharpen "$t/m.v" "$OUT/$b.jpg[Q=92]" --sigma 1
done
rm -rf "$t"
"""


# ---------------------------------------------------------------------------------------------
# The floor and the hand-written OpenCV pipeline (run as worker processes of this script)


def _hand_written(img):
    """Gamma 1.2 + linked 1%/99% stretch as one LUT, 3x3 median, unsharp sigma 1 amount 1."""
    import cv2
    import numpy as np

    gamma = (np.arange(256) / 255.0) ** (1 / 1.2) * 255.0
    lut = np.clip(np.rint(gamma), 0, 255).astype(np.uint8)
    img = cv2.LUT(img, lut)
    hist = cv2.calcHist([cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)], [0], None, [256], [0, 256]).ravel()
    cdf = np.cumsum(hist) / hist.sum()
    lo, hi = int(np.searchsorted(cdf, 0.01)), int(np.searchsorted(cdf, 0.99))
    stretch = np.clip((np.arange(256) - lo) * (255.0 / max(hi - lo, 1)), 0, 255).astype(np.uint8)
    img = cv2.LUT(img, stretch)
    img = cv2.medianBlur(img, 3)
    blur = cv2.GaussianBlur(img, (0, 0), 1.0)
    return cv2.addWeighted(img, 2.0, blur, -1.0, 0)


def _one_image(task):
    src, dst, kind = task
    import cv2
    import numpy as np

    cv2.setNumThreads(1)
    img = cv2.imdecode(np.fromfile(src, np.uint8), cv2.IMREAD_COLOR)
    if kind == "opencv":
        img = _hand_written(img)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    Path(dst).write_bytes(buf.tobytes())


def worker_main(kind: str, src: str, out: str, jobs: int) -> None:
    """`--worker floor|opencv SRC OUT JOBS`: process a folder the way a user's script would."""
    files = sorted(Path(src).glob("*.jpg"))
    tasks = [(str(f), str(Path(out) / f.name), kind) for f in files]
    if jobs <= 1 or len(tasks) < 2:
        for t in tasks:
            _one_image(t)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn, not fork: a child forked after OpenCV started its threads can hang.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_one_image, tasks))


# ---------------------------------------------------------------------------------------------
# Corpus


def make_corpus(count: int, megapixels: float) -> Path:
    """Generated JPEGs (q92) from the sample photos, upscaled with camera-like noise; cached."""
    import cv2
    import numpy as np

    folder = Path(tempfile.gettempdir()) / f"imgenh-bench-{count}x{megapixels:g}mp"
    stamp = folder / ".complete"
    if stamp.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    photos = sorted((ROOT / "sample_images").glob("*.jpg"))
    h = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    w = int(h * 4 / 3)
    rng = np.random.default_rng(0)
    for i in range(count):
        img = cv2.imread(str(photos[i % len(photos)]), cv2.IMREAD_COLOR)
        big = cv2.resize(img, (w, h), interpolation=cv2.INTER_CUBIC)
        noise = rng.standard_normal(big.shape, dtype=np.float32) * np.float32(4.0)
        noisy = cv2.add(big.astype(np.float32), noise)
        cv2.imwrite(str(folder / f"img{i:03d}.jpg"), np.clip(noisy, 0, 255).astype(np.uint8))
    stamp.touch()
    return folder


# ---------------------------------------------------------------------------------------------
# Measuring a whole process tree


def run_tree(cmds: list[list[str]], env: dict) -> tuple[float, float, int, float]:
    """Start ``cmds`` together; wall seconds until all exit, peak RSS (MB) of any one process, worst rc,
    and CPU seconds (user + system) of the commands and the descendants they reaped.

    The CPU seconds are the steadier figure on a shared machine: another session's load
    stretches the wall time of every run by a different amount, the work done much less.

    The peak is the larger of two readings: the resident set of every descendant (pool
    workers included) sampled from /proc every 50 ms with psutil, and ``wait4``'s
    ``ru_maxrss`` of each command's process, which covers the descendants it reaped itself.
    """
    import psutil

    start = time.perf_counter()
    # cwd: a neutral folder. `python -m` puts the working folder first on sys.path, so from a
    # checkout's root it would import that checkout's imgenh whatever PYTHONPATH says.
    neutral = tempfile.gettempdir()
    pending = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, cwd=neutral) for c in cmds]
    me = psutil.Process()
    peak, rc, cpu = 0, 0, 0.0
    while pending:
        for proc in list(pending):
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                rc = max(rc, abs(proc.returncode))
                peak = max(peak, usage.ru_maxrss * 1024)
                cpu += usage.ru_utime + usage.ru_stime
                pending.remove(proc)
        for child in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                peak = max(peak, child.memory_info().rss)
        if pending:
            time.sleep(0.05)
    return time.perf_counter() - start, peak / 2**20, rc, cpu


# ---------------------------------------------------------------------------------------------
# The runs


def imgenh_cmd(pipeline: Path, src: Path, out: Path, jobs: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "imgenh",
        "run",
        str(pipeline),
        str(src),
        "-o",
        str(out),
        "-j",
        str(jobs),
        "-q",
    ]


def write_pipelines(folder: Path) -> dict[str, Path]:
    paths = {}
    for name, steps in PIPELINES.items():
        path = folder / f"{name.replace('.', '_')}.yaml"
        if steps is None:
            path = ROOT / "configs" / "default.yaml"
        else:
            path.write_text(f"version: 1\nname: {name}\nsteps:{steps}\noutput: {{quality: {QUALITY}}}\n")
        paths[name] = path
    return paths


def tool_available(name: str, marker: bytes) -> bool:
    exe = shutil.which(name, path="/usr/bin:/usr/local/bin:/bin")
    if not exe:
        return False
    probe = subprocess.run([exe, "-version" if name != "vips" else "--version"], capture_output=True)
    return marker in probe.stdout + probe.stderr


def build_runs(args, src: Path, work: Path) -> dict:
    """name -> function(out_folder) giving the command lines of one run."""
    me = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    files = sorted(src.glob("*.jpg"))
    runs = {
        "floor": lambda out: [[*me, "floor", str(src), str(out), str(args.jobs)]],
        "opencv": lambda out: [[*me, "opencv", str(src), str(out), str(args.jobs)]],
    }
    for name, path in write_pipelines(work).items():
        runs[name] = lambda out, path=path: [imgenh_cmd(path, src, out, args.jobs)]
        if args.baseline:  # the same pipeline run by another checkout of imgenh, interleaved
            if name == "default.yaml":  # that checkout's own default (its parameters may predate ours)
                path = Path(args.baseline) / "configs" / "default.yaml"
            runs[f"{name}@before"] = lambda out, path=path: [
                ["env", f"PYTHONPATH={args.baseline}", *imgenh_cmd(path, src, out, args.jobs)]
            ]
    shares = [[str(f) for f in files[i :: args.jobs]] for i in range(args.jobs)]
    if args.tools and tool_available("mogrify", b"ImageMagick"):
        runs["mogrify"] = lambda out: [
            ["/usr/bin/mogrify", "-path", str(out), *MOGRIFY, "-quality", str(QUALITY), *s]
            for s in shares
            if s
        ]
    if args.tools and tool_available("vips", b"vips"):
        script = work / "vips.sh"
        script.write_text(VIPS_SCRIPT)
        runs["vips"] = lambda out: [["env", f"OUT={out}", "sh", str(script), *s] for s in shares if s]
    if args.only:
        keep = {"floor", *args.only.split(",")}
        runs = {k: v for k, v in runs.items() if k.split("@")[0] in keep}
    return runs


def measure_rounds(runs: dict, rounds: int, work: Path, env: dict, slow=(), slow_rounds: int = 0) -> dict:
    """Interleaved rounds; per run a list of (round, seconds, peak MB, CPU seconds).

    ``slow`` runs only in the first rounds.
    """
    names = list(runs)
    results = {n: [] for n in names}
    for r in range(rounds):
        # Each round in its own (seeded) order: a rotation kept every run beside the same neighbour, and
        # what one run leaves behind (pages to write back, a cold cache) then always fell on the same next run.
        order = names if r == 0 else random.Random(r).sample(names, len(names))
        for name in order:
            if name in slow and r >= slow_rounds:
                continue
            out = work / "out" / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            seconds, peak, rc, cpu = run_tree(runs[name](out), env)
            # Write back what the run left unwritten before the next starts: the floor does not fsync
            # its outputs, and the run after it paid for their writeback in its own fsyncs (the row
            # right after the floor read ~0.1-0.25 slower than in any other place).
            os.sync()
            if rc:
                sys.exit(f"{name} failed (exit {rc}): {runs[name](out)}")
            results[name].append((r, seconds, peak, cpu))
            print(
                f"  round {r + 1}/{rounds} {name:<24} {seconds:7.2f} s  {peak:6.0f} MB  cpu {cpu:6.2f} s",
                file=sys.stderr,
            )
        shutil.rmtree(work / "out", ignore_errors=True)
    return results


def one_image_and_version(src: Path, work: Path, env: dict, repeats: int, baseline: str | None) -> dict:
    """Start-up costs: `imgenh --version`, and one image (default.yaml) against the 1-image floor."""
    one = work / "one"
    shutil.rmtree(one, ignore_errors=True)
    one.mkdir(parents=True)
    shutil.copy(sorted(src.glob("*.jpg"))[0], one)
    me = [sys.executable, str(Path(__file__).resolve()), "--worker"]
    runs = {
        "version": lambda out: [[sys.executable, "-m", "imgenh", "--version"]],
        "floor 1 image": lambda out: [[*me, "floor", str(one), str(out), "1"]],
        # no -j: what a user types; imgenh runs one image in-process
        "default.yaml 1 image": lambda out: [
            [
                sys.executable,
                "-m",
                "imgenh",
                "run",
                str(ROOT / "configs" / "default.yaml"),
                str(one),
                "-o",
                str(out),
                "-q",
            ]
        ],
    }
    if baseline:
        own_default = str(Path(baseline) / "configs" / "default.yaml")
        for name in ("version", "default.yaml 1 image"):
            runs[f"{name}@before"] = lambda out, name=name: [
                ["env", f"PYTHONPATH={baseline}"]
                + [
                    own_default if arg == str(ROOT / "configs" / "default.yaml") else arg
                    for arg in runs[name](out)[0]
                ]
            ]
    res = measure_rounds(runs, repeats, work, env)
    med = {k: statistics.median(row[1] for row in v) for k, v in res.items()}
    result = {}
    for tag in ("", "@before") if baseline else ("",):
        result[tag or "now"] = {
            "version_s": med["version" + tag],
            "one_image_floor_s": med["floor 1 image"],
            "one_image_default_s": med["default.yaml 1 image" + tag],
            "one_image_over_floor_s": med["default.yaml 1 image" + tag] - med["floor 1 image"],
            "one_image_peak_mb": max(row[2] for row in res["default.yaml 1 image" + tag]),
        }
    return result


def summarise(results: dict) -> dict:
    """Median (and range) over rounds of each run's time divided by the floor's in the same round.

    ``cpu_ratio`` is the same for the CPU seconds of the process tree.
    """
    base = {r: (s, c) for r, s, _, c in results["floor"]}
    table = {}
    for name, rows in results.items():
        if not rows:
            continue
        ratios = [s / base[r][0] for r, s, _, _ in rows]
        table[name] = {
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "cpu_ratio": statistics.median(c / base[r][1] for r, _, _, c in rows),
            "rounds": len(rows),
            "seconds": statistics.median(row[1] for row in rows),
            "peak_mb": max(row[2] for row in rows),
        }
    return table


def print_table(meta: dict, table: dict, extra: dict | None) -> None:
    print(
        f"{meta['images']} JPEGs x {meta['megapixels']:g} MP, {meta['jobs']} workers, {meta['rounds']} interleaved"
        f" rounds; {meta['cpu']} ({meta['nproc']} cores); imgenh {meta['imgenh']}"
    )
    print(
        f"imgenh: {meta.get('tree', '?')}" + (f"; before: {meta['baseline']}" if "baseline" in meta else "")
    )
    if "load_before" in meta:  # a shared machine: how busy it was (1-minute load average)
        print(f"load average {meta['load_before']:.2f} before, {meta['load_after']:.2f} after")
    print(
        "| run | x floor (median) | min-max | s (median) | CPU x floor | peak RSS of one process | target |"
    )
    print("|---|---|---|---|---|---|---|")
    opencv = table.get("opencv", {}).get("ratio")
    for name, row in table.items():
        target = TARGETS.get(name, "") if "@" not in name else ""
        if target == "opencv":
            target = f"<= opencv ({opencv:.2f})" if opencv else ""
        elif target:
            target = f"<= {target}"
        label = name if name in ("floor", "opencv", "mogrify", "vips") else f"imgenh {name.replace('@', ' ')}"
        spread = f"{row['ratio_min']:.2f}-{row['ratio_max']:.2f}"
        if row["rounds"] < meta["rounds"]:
            spread += f" ({row['rounds']} round{'s' if row['rounds'] > 1 else ''})"
        print(
            f"| {label} | {row['ratio']:.2f} | {spread} |"
            f" {row['seconds']:.2f} | {row['cpu_ratio']:.2f} | {row['peak_mb']:.0f} MB | {target} |"
        )
    if "mogrify" in table and "4-step" in table:
        print(
            f"mogrify / imgenh 4-step: {table['mogrify']['ratio'] / table['4-step']['ratio']:.1f}x (target >= 20)"
        )
    for tag, row in (extra or {}).items():
        print(
            f"[{tag}] imgenh --version {row['version_s']:.2f} s (target < 0.25); 1 image default.yaml"
            f" {row['one_image_default_s']:.2f} s = floor {row['one_image_floor_s']:.2f} s"
            f" + {row['one_image_over_floor_s']:.2f} s (target + 0.35), peak {row['one_image_peak_mb']:.0f} MB"
        )


# ---------------------------------------------------------------------------------------------
# Per-step profile (in-process, one thread)


def step_profile(src: Path, repeats: int) -> None:
    """Time decode, encode and each step of each pipeline on one image, single-threaded."""
    import cv2
    import numpy as np
    import yaml

    sys.path.insert(0, str(ROOT))
    from imgenh.executors import keep_freed_memory
    from imgenh.pipeline import run_op
    from imgenh.pipeline_file import parse_pipeline
    from imgenh.plan import Job
    from imgenh.worker import Worker

    cv2.setNumThreads(1)
    keep_freed_memory()  # as every imgenh executor does (the floor and opencv rows do not)
    first = sorted(src.glob("*.jpg"))[0]
    data = np.fromfile(first, np.uint8)
    scratch = Path(tempfile.mkdtemp(prefix="imgenh-steps-"))

    def best(fn):
        times = []
        for _ in range(repeats):
            t = time.thread_time()  # CPU time of this thread: steadier than wall time on a shared machine
            out = fn()
            times.append(time.thread_time() - t)
        return min(times) * 1000, out

    ms, img = best(lambda: cv2.imdecode(data, cv2.IMREAD_COLOR))
    print(f"decode {ms:6.1f} ms   encode {best(lambda: cv2.imencode('.jpg', img))[0]:6.1f} ms")
    print(f"hand-written opencv 4-step {best(lambda: _hand_written(img))[0]:6.1f} ms")
    for name, steps in PIPELINES.items():
        if steps is None:
            steps_list = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())["steps"]
        else:
            steps_list = yaml.safe_load(steps)
        x, parts = img, []
        for step in steps_list:
            params = {k: v for k, v in step.items() if k != "op"}
            ms, x = best(lambda x=x, step=step, params=params: run_op(x, step["op"], **params))
            parts.append(f"{step['op']} {ms:.0f}")
        # The whole image as a run does it: read (+hash), fused pointwise steps, write (+fsync).
        text = yaml.safe_dump(
            {"version": 1, "name": name, "steps": steps_list, "output": {"quality": QUALITY}}
        )
        pipeline = parse_pipeline(text)
        worker = Worker(pipeline, single_thread=True)
        job = Job(first, scratch / first.name, first.name)
        whole = best(lambda worker=worker, job=job: worker(job))[0]
        print(f"{name:<20} " + ", ".join(parts) + f" ms; whole image (read, fused, write) {whole:.0f} ms")
        print(f"{'':<20} as one run applies them: {fused_profile(pipeline, img, repeats)}")
    shutil.rmtree(scratch, ignore_errors=True)


def fused_profile(pipeline, img, repeats: int) -> str:
    """CPU ms of each step inside ``pipeline.apply`` (fused statistics and tables included), best run.

    A pointwise step's time includes the statistics it asks for (counted once per fused group),
    which a step run alone (run_op) pays differently; "table" is the fused group's one pass.
    """
    import imgenh.pipeline as pipeline_module

    spent: dict[str, float] = {}

    def timed(label, fn):
        def call(*args, **kwargs):
            t = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[label(args)] = spent.get(label(args), 0.0) + time.thread_time() - t

        return call

    step_call, table = pipeline_module.Step.__call__, pipeline_module.apply_table
    pipeline_module.Step.__call__ = timed(lambda a: a[0].op.name, step_call)
    pipeline_module.apply_table = timed(lambda a: "table", table)
    try:
        best_total, best_parts = float("inf"), {}
        for _ in range(repeats):
            spent.clear()
            t = time.thread_time()
            pipeline.apply(img)
            total = time.thread_time() - t
            if total < best_total:
                best_total, best_parts = total, dict(spent)
    finally:
        pipeline_module.Step.__call__, pipeline_module.apply_table = step_call, table
    parts = ", ".join(f"{k} {v * 1000:.0f}" for k, v in best_parts.items())
    return f"{parts} ms; all steps {best_total * 1000:.0f} ms"


# ---------------------------------------------------------------------------------------------


def compile_once(env: dict, checkouts: list[Path]) -> None:
    """Byte-compile each checkout's imgenh once, into a cache outside the trees, for every run.

    An installed imgenh has its bytecode (pip compiles it); a checkout run with
    PYTHONDONTWRITEBYTECODE set (as in some shells and CI) would compile all its modules
    again in every process, ~0.3 s each, which no user pays. Changes ``env`` in place.
    """
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "imgenh-bench-pycache")
    for root in checkouts:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "imgenh")], env=env, check=True)


def warm_up(runs: dict, work: Path, env: dict) -> None:
    """One unrecorded run of the floor and of the first imgenh row (and its @before).

    The bytecode cache outside the trees (see :func:`compile_once`) starts without the
    standard library and the dependencies: the first process that imports a module compiles
    it from source, which costs ~1 s of CPU per run and ~35 MB of every worker's peak RSS
    (measured: default.yaml's workers 268 MB on a fresh cache, 232 MB on a warm one), and
    would land on round 1 of whichever row comes first.
    """
    first = next((name for name in runs if name not in ("floor", "opencv", "mogrify", "vips")), None)
    for name in ("floor", first, f"{first}@before"):
        if name in runs:
            out = work / "warm-up" / name
            out.mkdir(parents=True)
            run_tree(runs[name](out), env)
    shutil.rmtree(work / "warm-up", ignore_errors=True)


def tree_identity(root: Path) -> str:
    """What a row measured: the checkout's path, with its commit when it is a git work tree."""
    probe = subprocess.run(
        ["git", "-C", str(root), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return f"{root} ({probe.stdout.strip()})" if probe.returncode == 0 else str(root)


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count()}


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--make-corpus":
        print(make_corpus(int(sys.argv[2]), float(sys.argv[3])))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=24, help="corpus size (>= 16 for the issue's table)")
    ap.add_argument("--megapixels", type=float, default=12)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", help="comma-separated runs (floor is always in): opencv,4-step,clahe,...")
    ap.add_argument("--no-tools", dest="tools", action="store_false", help="skip mogrify and vips")
    ap.add_argument("--no-startup", dest="startup", action="store_false", help="skip --version / 1-image")
    ap.add_argument("--steps", action="store_true", help="print the per-step profile instead")
    ap.add_argument(
        "--baseline", help="another imgenh checkout (its root folder): also run every imgenh row with it"
    )
    ap.add_argument("--tool-rounds", type=int, default=1, help="rounds that include mogrify and vips (slow)")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "bench_speed.json")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    compile_once(env, [ROOT] + ([Path(args.baseline)] if args.baseline else []))
    # The corpus is made in a child process: this one must stay small, because a child's peak
    # RSS starts from its parent's (the kernel carries the high-water mark across fork + exec).
    me = [sys.executable, str(Path(__file__).resolve())]
    made = subprocess.run(
        [*me, "--make-corpus", str(args.images), str(args.megapixels)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    src = Path(made.stdout.strip())
    if args.steps:
        step_profile(src, 3)
        return
    version = subprocess.run(
        [sys.executable, "-m", "imgenh", "--version"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    ).stdout.split()[-1]

    meta = {
        "images": args.images,
        "megapixels": args.megapixels,
        "jobs": args.jobs,
        "rounds": args.rounds,
        "imgenh": version,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        **machine(),
        "load_before": os.getloadavg()[0],
        "tree": tree_identity(ROOT),
    }
    if args.baseline:
        meta["baseline"] = tree_identity(Path(args.baseline).resolve())
    with tempfile.TemporaryDirectory(prefix="imgenh-bench-") as tmp:
        work = Path(tmp)
        runs = build_runs(args, src, work)
        warm_up(runs, work, env)
        results = measure_rounds(runs, args.rounds, work, env, ("mogrify", "vips"), args.tool_rounds)
        extra = (
            one_image_and_version(src, work, env, max(args.rounds, 3), args.baseline)
            if args.startup
            else None
        )
    meta["load_after"] = os.getloadavg()[0]
    table = summarise(results)
    print_table(meta, table, extra)
    raw = {
        k: [{"round": r, "seconds": s, "peak_mb": p, "cpu_s": c} for r, s, p, c in v]
        for k, v in results.items()
    }
    args.json.write_text(json.dumps({"meta": meta, "table": table, "startup": extra, "raw": raw}, indent=1))
    print(f"(JSON: {args.json})")


if __name__ == "__main__":
    main()
