"""Incremental re-runs: skip what is up to date without decoding, redo what changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgenh import pipeline_from_steps, worker
from imgenh.runner import RunOptions, make_plan, run_batch
from imgenh.state import JOURNAL, STATE_DIR, Manifest

GAMMA = [{"op": "gamma", "value": 1.3}]


@pytest.fixture
def tree(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "c.jpg"):
        cv2.imwrite(str(folder / name), rng.integers(0, 256, (16, 24, 3), dtype=np.uint8))
    return tmp_path


def go(tree: Path, steps=GAMMA, **options):
    pipe = pipeline_from_steps(steps)
    return run_batch(pipe, [str(tree / "in")], tree / "out", RunOptions(jobs=1, **options))


def statuses(summary) -> dict[str, tuple[str, str]]:
    return {r.key: (r.status, r.reason) for r in summary.results}


def whys(tree: Path, steps=GAMMA, **options) -> dict[str, str]:
    """What a run would do now, per output: the skip reason or why it is processed."""
    manifest = Manifest(tree / "out").load()
    plan = make_plan(
        pipeline_from_steps(steps), [str(tree / "in")], tree / "out", RunOptions(**options), manifest
    )
    return {j.key: j.skip or j.why for j in plan.jobs}


def test_unchanged_is_skipped_without_decoding(tree, monkeypatch):
    assert go(tree).exit_code == 0
    stamp = {p.name: p.stat().st_mtime_ns for p in (tree / "out").iterdir() if p.is_file()}

    def forbidden(*args, **kwargs):
        raise AssertionError("an up-to-date image was decoded")

    with monkeypatch.context() as m:
        m.setattr(worker, "read_image", forbidden)
        m.setattr(cv2, "imdecodeWithMetadata", forbidden)
        m.setattr(cv2, "imread", forbidden)
        summary = go(tree)
    assert summary.exit_code == 0
    assert statuses(summary) == {k: ("skipped", "up to date") for k in ("a.png", "b.png", "c.jpg")}
    assert {p.name: p.stat().st_mtime_ns for p in (tree / "out").iterdir() if p.is_file()} == stamp


def test_unchanged_skipped_through_cli_even_if_now_undecodable(tree):
    """Same size and mtime: the input is not even opened, so garbage of the same size passes."""
    cmd = [sys.executable, "-m", "imgenh", "run", "p.yaml", "in", "-o", "out", "--report", "r.json"]
    (tree / "p.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.3\n")
    assert subprocess.run(cmd, cwd=tree, capture_output=True).returncode == 0
    src = tree / "in" / "a.png"
    st = src.stat()
    src.write_bytes(b"\0" * st.st_size)
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    totals = json.loads((tree / "r.json").read_text())["totals"]
    assert (totals["ok"], totals["skipped"], totals["failed"]) == (0, 3, 0)


def test_changed_content_is_reprocessed(tree):
    go(tree)
    src = tree / "in" / "a.png"
    img = cv2.imread(str(src))
    img[0, 0] = 255 - img[0, 0]
    cv2.imwrite(str(src), img)
    assert whys(tree)["a.png"] == "input changed"
    before = (tree / "out" / "a.png").read_bytes()
    summary = go(tree)
    assert statuses(summary)["a.png"] == ("ok", "")
    assert statuses(summary)["b.png"] == ("skipped", "up to date")
    assert (tree / "out" / "a.png").read_bytes() != before
    # same size, different content, new mtime: the hash decides
    data = bytearray(src.read_bytes())
    data[-20] ^= 0xFF  # inside the last chunk: same size, new content
    src.write_bytes(bytes(data))
    assert src.stat().st_size == len(data)
    assert whys(tree)["a.png"] == "input changed"


def test_touched_but_same_content_is_skipped(tree, monkeypatch):
    go(tree)
    src = tree / "in" / "b.png"
    os.utime(src, ns=(src.stat().st_atime_ns, src.stat().st_mtime_ns + 5_000_000_000))

    def forbidden(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(worker, "read_image", forbidden)
    summary = go(tree)
    assert statuses(summary)["b.png"] == ("skipped", "up to date (same content, new mtime)")


@pytest.mark.parametrize(
    ("steps", "output"),
    [
        ([{"op": "gamma", "value": 1.4}], {}),  # a parameter
        ([{"op": "gamma", "value": 1.3}, {"op": "clahe"}], {}),  # a step
        (GAMMA, {"quality": 80}),  # an output setting
        (GAMMA, {"metadata": "strip"}),
    ],
)
def test_changed_pipeline_is_reprocessed(tree, steps, output):
    go(tree)
    pipe = pipeline_from_steps(steps, **output)
    manifest = Manifest(tree / "out").load()
    plan = make_plan(pipe, [str(tree / "in")], tree / "out", RunOptions(), manifest)
    assert {j.key: j.why for j in plan.jobs} == {k: "pipeline changed" for k in ("a.png", "b.png", "c.jpg")}
    summary = run_batch(pipe, [str(tree / "in")], tree / "out", RunOptions(jobs=1))
    assert summary.count("ok") == 3
    # and the new pipeline's records make the next run a no-op
    summary = run_batch(pipe, [str(tree / "in")], tree / "out", RunOptions(jobs=1))
    assert summary.count("skipped") == 3


def test_failed_before_is_retried(tree):
    bad = tree / "in" / "b.png"
    good = bad.read_bytes()
    bad.write_bytes(b"oops")
    summary = go(tree)
    assert statuses(summary)["b.png"][0] == "failed"
    assert whys(tree)["b.png"] == "retry: failed before"
    bad.write_bytes(good)
    summary = go(tree)
    assert statuses(summary)["b.png"] == ("ok", "")
    assert statuses(summary)["a.png"] == ("skipped", "up to date")


def test_failed_with_stale_output_is_retried(tree):
    """An output from an earlier success, then the input broke: the failure is retried, not skipped."""
    go(tree)
    bad = tree / "in" / "a.png"
    good = bad.read_bytes()
    bad.write_bytes(b"broken!")
    assert statuses(go(tree))["a.png"][0] == "failed"
    assert whys(tree)["a.png"] == "retry: failed before"
    bad.write_bytes(good)
    assert statuses(go(tree))["a.png"] == ("ok", "")


def test_overwrite_forces(tree):
    go(tree)
    summary = go(tree, overwrite=True)
    assert summary.count("ok") == 3 and summary.count("skipped") == 0


def test_foreign_output_is_skipped_and_counted(tree):
    out = tree / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"someone else's file")
    summary = go(tree)
    status, reason = statuses(summary)["a.png"]
    assert status == "skipped"
    assert reason == "output exists (not made by imgenh here; --overwrite replaces it)"
    assert summary.count("skipped") == 1 and summary.count("ok") == 2
    assert (out / "a.png").read_bytes() == b"someone else's file"
    assert summary.exit_code == 0
    assert statuses(go(tree, overwrite=True))["a.png"] == ("ok", "")


def test_torn_last_line_is_ignored_and_does_not_eat_the_next_record(tree):
    go(tree)
    journal = tree / "out" / STATE_DIR / JOURNAL
    with open(journal, "a") as fh:
        fh.write('{"output":"b.png","source":"/x","size":1')  # a kill mid-line
    # the torn line is ignored: b.png is still up to date from its whole record
    assert whys(tree)["b.png"] == "up to date"
    src = tree / "in" / "a.png"
    img = cv2.imread(str(src))
    cv2.imwrite(str(src), 255 - img)
    assert statuses(go(tree))["a.png"] == ("ok", "")
    # the record appended after the torn line must be readable: a third run skips everything
    assert set(whys(tree).values()) == {"up to date"}


def test_output_renamed_before_the_kill_is_redone(tree):
    """An image left ``pending`` (kill between rename and journal line) is redone, not taken as foreign."""
    go(tree)
    journal = tree / "out" / STATE_DIR / JOURNAL
    lines = journal.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["status"] = "pending"
    with open(journal, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    assert whys(tree)[rec["output"]] == "redo: interrupted before"
    assert statuses(go(tree))[rec["output"]] == ("ok", "")


def test_noop_rerun_counts(tree):
    go(tree)
    cmd = [sys.executable, "-m", "imgenh", "run", "p.yaml", "in", "-o", "out", "--report", "-"]
    (tree / "p.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.3\n")
    proc = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["totals"]["skipped"] == 3
    assert "0 processed, 3 skipped, 0 failed" in proc.stderr


def test_what_a_rerun_skips_redoes_and_leaves_alone_as_readme_says(tree):
    """README's "Incremental" paragraph, claim by claim; then --overwrite redoes every output."""
    (tree / "in" / "d.png").write_bytes((tree / "in" / "a.png").read_bytes())
    (tree / "in" / "e.png").write_bytes((tree / "in" / "a.png").read_bytes())
    assert go(tree).count("ok") == 5
    out = tree / "out"
    src = tree / "in" / "b.png"
    cv2.imwrite(str(src), 255 - cv2.imread(str(src)))  # an edited input
    (out / "c.jpg").write_bytes(b"retouched by hand")  # an output changed since imgenh wrote it
    (out / "d.png").unlink()  # an output deleted
    (tree / "in" / "e.png").unlink()  # an input gone: its output stays
    assert whys(tree) == {
        "a.png": "up to date",
        "b.png": "input changed",
        "c.jpg": "output changed since imgenh wrote it (--overwrite replaces it)",
        "d.png": "output missing",
    }
    assert statuses(go(tree)) == {
        "a.png": ("skipped", "up to date"),
        "b.png": ("ok", ""),
        "c.jpg": ("skipped", "output changed since imgenh wrote it (--overwrite replaces it)"),
        "d.png": ("ok", ""),
    }
    assert (out / "c.jpg").read_bytes() == b"retouched by hand" and (out / "e.png").is_file()
    # A hand-changed output is left alone even when the pipeline changes too.
    assert whys(tree, steps=[{"op": "gamma", "value": 1.4}])["c.jpg"].startswith("output changed since")
    # --overwrite processes every image again, up-to-date and hand-changed outputs included.
    assert {k: s for k, (s, _) in statuses(go(tree, overwrite=True)).items()} == dict.fromkeys(
        ("a.png", "b.png", "c.jpg", "d.png"), "ok"
    )
    assert cv2.imread(str(out / "c.jpg")) is not None
    assert set(whys(tree).values()) == {"up to date"}
