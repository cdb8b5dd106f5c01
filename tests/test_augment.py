"""Augmentation: random parameters, their validation, the distribution and reproducibility of the
draws, and `imgenh run --variants/--seed` end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from imgenh import augment
from imgenh.errors import UsageError
from imgenh.ops import REGISTRY
from imgenh.pipeline import StepError
from imgenh.pipeline_file import ConfigError, parse_pipeline, pipeline_from_steps

AUG = """\
version: 1
name: aug
steps:
  - op: flip
    p: 0.5
  - op: rotate
    angle: {random: [-10, 10]}
    border: {choice: [reflect, replicate]}
  - op: crop
    scale: {random: [0.7, 1.0]}
    x: {random: [0, 1]}
    y: {random: [0, 1]}
  - op: gamma
    value: {random: [0.7, 1.4], log: true}
  - op: white_balance
    method: manual
    gains: [{random: [0.9, 1.1]}, 1, {random: [0.9, 1.1]}]
"""


def _seeded(text: str = AUG, seed: int = 7):
    pipeline, _ = augment.for_run(parse_pipeline(text, "aug.yaml"), variants=3, seed=seed)
    return pipeline


def _draws(step, n: int, seed: int = 7, key: str = "a.jpg") -> list[tuple[dict, bool]]:
    return [augment.draw_step(step, seed, key, v) for v in range(n)]


# --- the distribution of the draws (chi-square goodness of fit, fixed seed) ---------------

N_DRAWS = 4000


def _chi_square_p(counts: np.ndarray, expected: np.ndarray) -> float:
    return float(stats.chisquare(counts, expected).pvalue)


def test_uniform_draws_are_uniform():
    step = pipeline_from_steps([{"op": "rotate", "angle": {"random": [-10, 30]}}]).steps[0]
    values = np.array([d["angle"] for d, _ in _draws(step, N_DRAWS)])
    assert values.min() >= -10 and values.max() <= 30
    counts, _ = np.histogram(values, bins=20, range=(-10, 30))
    assert _chi_square_p(counts, np.full(20, N_DRAWS / 20)) > 0.001


def test_log_uniform_draws_are_uniform_in_log():
    step = pipeline_from_steps([{"op": "gamma", "value": {"random": [0.25, 4.0], "log": True}}]).steps[0]
    values = np.array([d["value"] for d, _ in _draws(step, N_DRAWS)])
    counts, _ = np.histogram(np.log(values), bins=16, range=(np.log(0.25), np.log(4.0)))
    assert _chi_square_p(counts, np.full(16, N_DRAWS / 16)) > 0.001
    assert abs(np.mean(values < 1.0) - 0.5) < 0.03  # as likely below 1 as above: not uniform in value


def test_integer_and_choice_draws_are_equally_likely():
    step = pipeline_from_steps(
        [{"op": "crop", "width": {"random": [3, 8]}, "x": {"choice": [0, 0.5, 1]}}]
    ).steps[0]
    draws = _draws(step, N_DRAWS)
    widths = np.array([d["width"] for d, _ in draws])
    assert set(widths) == set(range(3, 9)) and all(isinstance(d["width"], int) for d, _ in draws)
    assert _chi_square_p(np.bincount(widths)[3:], np.full(6, N_DRAWS / 6)) > 0.001
    xs = [d["x"] for d, _ in draws]
    assert _chi_square_p(np.array([xs.count(v) for v in (0, 0.5, 1)]), np.full(3, N_DRAWS / 3)) > 0.001


@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_step_probability(p):
    step = pipeline_from_steps([{"op": "flip", "p": p}]).steps[0]
    applied = sum(a for _, a in _draws(step, N_DRAWS))
    counts = np.array([applied, N_DRAWS - applied])
    assert _chi_square_p(counts, np.array([p, 1 - p]) * N_DRAWS) > 0.001


def test_white_balance_keeps_its_own_p_and_takes_probability():
    step = pipeline_from_steps(
        [{"op": "white_balance", "method": "shades_of_gray", "p": {"random": [2, 8]}, "probability": 0.3}]
    ).steps[0]
    assert step.random.p == 0.3 and "p" in step.random.params
    draws = _draws(step, 200)
    assert all(2 <= d["p"] <= 8 for d, _ in draws) and 0 < sum(a for _, a in draws) < 200


# --- reproducibility --------------------------------------------------------------------------


def test_draws_depend_only_on_seed_key_variant_step_and_parameter():
    pipeline = _seeded()
    first = [augment.draw(pipeline, "a.jpg", v)[1] for v in range(6)]
    assert first == [augment.draw(pipeline, "a.jpg", v)[1] for v in range(6)]
    # Variant 4 is the same whether it is drawn first, last, or alone.
    assert augment.draw(pipeline, "a.jpg", 4)[1] == first[4]
    assert len({json.dumps(d) for d in first}) == 6  # every variant differs
    assert augment.draw(pipeline, "b.jpg", 0)[1] != first[0]
    assert augment.draw(_seeded(seed=8), "a.jpg", 0)[1] != first[0]


def test_hash_covers_ranges_and_seed_but_not_the_variant_count():
    base = _seeded()
    assert augment.for_run(parse_pipeline(AUG, "aug.yaml"), variants=8, seed=7)[0].hash() == base.hash()
    assert _seeded(seed=8).hash() != base.hash()
    assert _seeded(AUG.replace("[-10, 10]", "[-10, 11]")).hash() != base.hash()
    assert _seeded(AUG.replace("p: 0.5", "p: 0.6")).hash() != base.hash()
    assert _seeded(AUG.replace("1.1]}, 1, {", "1.1]}, 1.05, {")).hash() != base.hash()  # a fixed item
    plain = parse_pipeline("version: 1\nsteps:\n  - op: gamma\n    value: 1.2\n")
    assert "seed" not in plain.canonical()  # plain pipelines keep the hash they had


def test_a_drawn_pipeline_is_concrete_and_the_report_lists_the_draws():
    pipeline, drawn = augment.draw(_seeded(), "a.jpg", 0)
    assert all(step.random is None for step in pipeline.steps)
    assert [d["op"] for d in drawn] == ["flip", "rotate", "crop", "gamma", "white_balance"]
    rotate = next(d for d in drawn if d["op"] == "rotate")
    step = next(s for s in pipeline.steps if s.op.name == "rotate")
    assert rotate["drawn"]["angle"] == step.params["angle"] and rotate["seed"] == 7
    assert set(rotate["drawn"]) == {"angle", "border"}
    gains = next(d for d in drawn if d["op"] == "white_balance")["drawn"]["gains"]
    assert gains[1] == 1.0 and 0.9 <= gains[0] <= 1.1


def test_unresolved_random_steps_are_never_applied_with_placeholders(photo8):
    with pytest.raises(StepError, match=r"steps\[0\] flip: has random parameters; draw a variant first"):
        _seeded().apply(photo8)


def test_drawn_values_that_break_a_cross_parameter_rule_fail_that_variant():
    pipeline = _seeded(
        "version: 1\nsteps:\n  - op: levels\n    black: {random: [0.0, 0.9]}\n    white: 0.5\n"
    )
    messages = []
    for v in range(20):
        try:
            augment.draw(pipeline, "a.jpg", v)
        except StepError as exc:
            messages.append(str(exc))
    assert messages and messages[0].startswith("steps[0] levels: drawn values (black=")
    assert "black must be < white" in messages[0]


# --- validation: file:line: steps[i] op.param: message ----------------------------------------


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("  - op: gamma\n    value: {random: [-1, 2]}\n", "aug.yaml:4: steps[0] gamma.value: random: must be > 0 (got -1)"),
        ("  - op: gamma\n    value: {random: [2, 1]}\n", "aug.yaml:4: steps[0] gamma.value: random: lo must be <= hi (got [2, 1])"),
        ("  - op: rotate\n    angle: {random: [0, 400]}\n", "aug.yaml:4: steps[0] rotate.angle: random: must be <= 360 (got 400)"),
        ("  - op: flip\n    direction: {choice: [horizontal, sideways]}\n", "aug.yaml:4: steps[0] flip.direction: choice: must be one of: horizontal, vertical, both (got 'sideways')"),
        ("  - op: flip\n    p: 1.5\n", "aug.yaml:4: steps[0] flip.p: must be between 0 and 1 (got 1.5)"),
        ("  - op: flip\n    probability: -0.1\n", "aug.yaml:4: steps[0] flip.probability: must be between 0 and 1 (got -0.1)"),
        ("  - op: rotate\n    expand: {random: [0, 1]}\n", "aug.yaml:4: steps[0] rotate.expand: random: ranges are for numbers; use {choice: [...]} for a bool parameter"),
        ("  - op: median\n    size: {random: [3, 7]}\n", "aug.yaml:4: steps[0] median.size: random: an odd-only parameter needs {choice: [3, 5, ...]}"),
        ("  - op: affine\n    translate_x: {random: [-0.1, 0.1], log: true}\n", "aug.yaml:4: steps[0] affine.translate_x: random: log: true needs a range of numbers above 0 (got [-0.1, 0.1])"),
        ("  - op: gamma\n    value: {randum: [1, 2]}\n", "aug.yaml:4: steps[0] gamma.value: a random value is {random: [lo, hi]}, {random: [lo, hi], log: true} or {choice: [a, b, ...]} (got {'randum': [1, 2]})"),
        ("  - op: white_balance\n    method: manual\n    gains: [1, {random: [0, 2]}, 1]\n", "aug.yaml:5: steps[0] white_balance.gains: item 1: random: must be > 0 (got 0)"),
    ],
)  # fmt: skip
def test_bad_ranges_name_file_line_step_and_parameter(step, message):
    with pytest.raises(ConfigError) as info:
        parse_pipeline(f"version: 1\nsteps:\n{step}", "aug.yaml")
    assert info.value.errors == [message]


def test_validate_checks_ranges_from_the_command_line(tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(AUG)
    bad.write_text("version: 1\nsteps:\n  - op: gamma\n    value: {random: [0, 2]}\n")
    out = _imgenh("validate", str(good), str(bad))
    assert out.returncode == 2
    assert f"ok: {good}" in out.stdout
    assert f"{bad}:4: steps[0] gamma.value: random: must be > 0 (got 0)" in out.stderr


# --- runs -------------------------------------------------------------------------------------


def _imgenh(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    return subprocess.run(
        [sys.executable, "-m", "imgenh", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


@pytest.fixture
def data(tmp_path, photo8, photo16) -> Path:
    """data/{a.jpg, b.png (16-bit), sub/c.png (grey + alpha)} and aug.yaml."""
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "a.jpg"), photo8)
    cv2.imwrite(str(root / "b.png"), photo16[:40, :50])
    alpha = np.zeros(photo8.shape[:2], np.uint8)
    alpha[10:40, 20:70] = 255
    cv2.imwrite(str(root / "sub" / "c.png"), np.dstack([photo8, alpha]))
    (tmp_path / "aug.yaml").write_text(AUG)
    return tmp_path


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".imgenh" not in p.parts
    }


def test_random_pipeline_without_variants_is_refused(data):
    out = _imgenh("run", "aug.yaml", "data", "-o", "out", cwd=data)
    assert out.returncode == 2
    assert "aug.yaml has random parameters (steps[0] flip, steps[1] rotate" in out.stderr
    assert "pass --variants N" in out.stderr and "--seed S for one variant" in out.stderr
    assert not (data / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "3", "--variant-name", "{stem}{ext}"], "must contain {i}"),
        (["--variants", "3", "--variant-name", "{stem}_{n}{ext}"], "use the placeholders"),
        (["--variants", "3", "--variant-name", "../{i}/{stem}{ext}"], "must name a file beside"),
        (["--seed", "1", "--in-place"], "give -o OUT, not --in-place"),
    ],
)
def test_bad_variant_runs_exit_2(data, args, message):
    out_args = [] if "--in-place" in args else ["-o", "out"]
    out = _imgenh("run", "aug.yaml", "data", *out_args, *args, cwd=data)
    assert out.returncode == 2 and message in out.stderr


def test_variants_of_a_plain_pipeline_are_refused(data):
    (data / "plain.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.2\n")
    out = _imgenh("run", "plain.yaml", "data", "-o", "out", "--variants", "2", cwd=data)
    assert out.returncode == 2 and "has no random parameters" in out.stderr


def test_variants_are_byte_identical_across_runs_and_worker_counts(data):
    args = ["run", "aug.yaml", "data", "-r", "--variants", "3", "--seed", "7"]
    one = _imgenh(*args, "-o", "one", "-j", "1", "--report", "one.json", cwd=data)
    two = _imgenh(*args, "-o", "two", "-j", "2", cwd=data)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    files = _files(data / "one")
    assert sorted(files) == [
        f"{s}_v{i}{e}" for s, e in (("a", ".jpg"), ("b", ".png"), ("sub/c", ".png")) for i in range(3)
    ]
    assert files == _files(data / "two")
    # Another seed gives other images; a part of the batch (as a shard takes) the same ones: the draws
    # depend on the input's relative path (what the outputs mirror), not on the other inputs.
    other = _imgenh(*args[:-1], "8", "-o", "other", cwd=data)
    assert other.returncode == 0 and _files(data / "other")["a_v0.jpg"] != files["a_v0.jpg"]
    alone = _imgenh(*args, "--include", "sub/*", "-o", "alone", cwd=data)
    assert alone.returncode == 0 and _files(data / "alone") == {
        k: v for k, v in files.items() if k.startswith("sub/")
    }
    # The report lists each variant's draws; the 16-bit and alpha images kept their depth and alpha.
    report = json.loads((data / "one.json").read_text())
    entry = next(i for i in report["images"] if i["key"] == "a_v1.jpg")
    drawn = {d["op"]: d for d in entry["values"] if "drawn" in d}
    assert (
        drawn["rotate"]["variant"] == 1
        and drawn["rotate"]["seed"] == 7
        and -10 <= drawn["rotate"]["drawn"]["angle"] <= 10
    )
    assert cv2.imread(str(data / "one" / "b_v0.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert cv2.imread(str(data / "one" / "sub" / "c_v0.png"), cv2.IMREAD_UNCHANGED).shape[2] == 4


def test_shards_together_make_the_same_variants(data):
    args = ["run", "aug.yaml", "data", "-r", "--variants", "3", "--seed", "7"]
    whole = _imgenh(*args, "-o", "whole", cwd=data)
    first = _imgenh(*args, "-o", "sharded", "--shard", "1/2", "--report", "s1.json", cwd=data)
    second = _imgenh(*args, "-o", "sharded", "--shard", "2/2", "--report", "s2.json", cwd=data)
    assert whole.returncode == first.returncode == second.returncode == 0, first.stderr + second.stderr
    done = [json.loads((data / f"s{k}.json").read_text())["totals"]["ok"] for k in (1, 2)]
    assert all(done) and sum(done) == 9  # variants of one input are spread over both shards
    assert _files(data / "sharded") == _files(data / "whole")


def test_more_variants_later_add_only_the_new_ones(data):
    args = ["run", "aug.yaml", "data", "-r", "--seed", "7", "-o", "out", "--report"]
    first = _imgenh(*args, "r1.json", "--variants", "2", cwd=data)
    assert first.returncode == 0
    before = {k: os.stat(data / "out" / k).st_mtime_ns for k in _files(data / "out")}
    again = _imgenh(*args, "r2.json", "--variants", "4", cwd=data)
    assert again.returncode == 0
    report = json.loads((data / "r2.json").read_text())
    status = {i["key"]: i["status"] for i in report["images"]}
    assert {k for k, s in status.items() if s == "ok"} == {
        f"{s}_v{i}{e}" for s, e in (("a", ".jpg"), ("b", ".png"), ("sub/c", ".png")) for i in (2, 3)
    }
    assert {k for k, s in status.items() if s == "skipped"} == set(before)
    assert all(os.stat(data / "out" / k).st_mtime_ns == t for k, t in before.items())
    # ...and v2, v3 are the images a 4-variant run from scratch makes.
    fresh = _imgenh(
        "run", "aug.yaml", "data", "-r", "--seed", "7", "--variants", "4", "-o", "fresh", cwd=data
    )
    assert fresh.returncode == 0 and _files(data / "fresh") == _files(data / "out")
    # Another seed is another pipeline: everything is redone.
    reseeded = _imgenh(*args, "r3.json", "--variants", "4", "--seed", "9", cwd=data)
    assert json.loads((data / "r3.json").read_text())["totals"]["ok"] == 12, reseeded.stderr


def test_seed_alone_makes_one_variant_under_the_plain_name(data):
    out = _imgenh("run", "aug.yaml", "data/a.jpg", "--seed", "7", "-o", "single", cwd=data)
    many = _imgenh("run", "aug.yaml", "data/a.jpg", "--seed", "7", "--variants", "1", "-o", "many", cwd=data)
    assert out.returncode == 0 and many.returncode == 0
    assert _files(data / "single") == {"a.jpg": _files(data / "many")["a_v0.jpg"]}  # variant 0 either way


def test_variant_name_pattern_can_make_folders(data):
    out = _imgenh(
        "run",
        "aug.yaml",
        "data/a.jpg",
        "--variants",
        "2",
        "--variant-name",
        "v{i}/{stem}{ext}",
        "-o",
        "o",
        cwd=data,
    )
    assert out.returncode == 0 and sorted(_files(data / "o")) == ["v0/a.jpg", "v1/a.jpg"]


def test_python_api_refuses_a_random_pipeline_without_variants(data):
    from imgenh import RunOptions, run_batch

    pipeline = parse_pipeline(AUG, "aug.yaml")
    with pytest.raises(UsageError, match="pass --variants N"):
        run_batch(pipeline, [str(data / "data")], data / "o")
    summary = run_batch(pipeline, [str(data / "data" / "a.jpg")], data / "o", RunOptions(variants=2, seed=3))
    assert summary.exit_code == 0 and sorted(r.key for r in summary.results) == ["a_v0.jpg", "a_v1.jpg"]


def test_json_schema_takes_random_specs_and_step_probability():
    from imgenh.pipeline_file import pipeline_schema

    steps = {s["title"]: s for s in pipeline_schema()["properties"]["steps"]["items"]["oneOf"]}
    value = steps["gamma"]["properties"]["value"]["anyOf"]
    assert value[0]["type"] == "number" and value[0]["exclusiveMinimum"] == 0
    assert {"random", "log"} <= set(value[1]["oneOf"][0]["properties"])
    assert steps["flip"]["properties"]["p"]["maximum"] == 1
    # white_balance keeps its own p (the Minkowski norm); its probability is `probability`.
    assert steps["white_balance"]["properties"]["p"]["anyOf"][0]["maximum"] == 64
    assert steps["white_balance"]["properties"]["probability"]["maximum"] == 1
    json.dumps(pipeline_schema())


def test_preview_draws_the_variant_a_run_writes(data):
    out = _imgenh(
        "preview", "aug.yaml", "data/a.jpg", "-o", "sheet.png", "--seed", "7", "--variant", "1", cwd=data
    )
    assert out.returncode == 0, out.stderr
    assert cv2.imread(str(data / "sheet.png")) is not None


def _inner_range(param) -> list[float] | None:
    """A range inside a number parameter's declared bounds (None when unbounded on a side)."""
    lo = param.ge if param.ge is not None else param.gt
    hi = param.le if param.le is not None else param.lt
    if lo is None or hi is None or param.odd:
        return None
    span = hi - lo
    lo, hi = lo + 0.25 * span, lo + 0.5 * span
    return [int(np.ceil(lo)), int(np.floor(hi))] if param.type is int else [lo, hi]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_every_operator_takes_random_numbers_within_its_bounds(name, photo8):
    """Each number parameter of each operator given as a range inside its bounds: valid, drawn, applied."""
    spec = REGISTRY[name]
    example = {k: v for k, v in spec.example_step().items() if k != "op"}
    for pname, param in spec.params.items():
        ends = _inner_range(param) if param.type in (int, float) else None
        if ends is None or ends[0] > ends[1]:
            continue
        try:
            pipeline = pipeline_from_steps([{"op": name, **example, pname: {"random": ends}}])
        except ConfigError as exc:  # only a rule across parameters may refuse the placeholder
            assert "random" not in str(exc), exc
            continue
        pipeline, _ = augment.for_run(pipeline, variants=2, seed=1)
        for variant in range(2):
            try:
                concrete, drawn = augment.draw(pipeline, "x.png", variant)
            except StepError as exc:
                assert "drawn values" in str(exc)
                continue
            value = drawn[0]["drawn"][pname]
            assert ends[0] <= value <= ends[1]
            out, _ = concrete.apply(photo8[:16, :24])
            assert out.dtype == np.uint8


def test_html_report_shows_the_drawn_values():
    from imgenh.html_report import values_text

    text = values_text(
        [{"step": 1, "op": "rotate", "variant": 3, "seed": 7, "applied": True, "drawn": {"angle": 7.5}}]
    )
    assert text == "2 rotate: variant=3, seed=7, applied=yes, angle=7.5"


def test_one_off_steps_take_random_values_too(data):
    args = ["run", "-s", "rotate angle={random: [-5, 5]}", "-s", "flip p=0.5", "data/a.jpg", "-o", "s"]
    assert _imgenh(*args, "--variants", "2", cwd=data).returncode == 0
    assert sorted(_files(data / "s")) == ["a_v0.jpg", "a_v1.jpg"]
    bad = _imgenh(
        "run", "-s", "rotate angle={random: [-5, 500]}", "data/a.jpg", "-o", "t", "--seed", "1", cwd=data
    )
    assert bad.returncode == 2 and "--step 1 rotate.angle: random: must be <= 360 (got 500)" in bad.stderr
