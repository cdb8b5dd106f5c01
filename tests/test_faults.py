"""Crash safety: kill -9 at several points, SIGINT/SIGTERM, and two runs on one output tree.

Each trial runs the real CLI in a subprocess over a few dozen small images, kills it when a
given number of outputs has appeared, checks that no output under its final name is torn,
re-runs, and checks the batch is complete, every output decodes, no temp file is left and
the inputs are byte-for-byte and mtime-for-mtime unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgenh.io import TEMP_MARKER
from imgenh.state import Manifest

N_IMAGES = 48
# A few steps so each image takes a few milliseconds and a kill lands mid-batch.
PIPELINE = """version: 1
steps:
  - op: gamma
    value: 1.2
  - op: clahe
  - op: saturation
    factor: 1.2
"""


class Started:
    """A CLI run in the background, in its own process group (so its pool workers can be reaped)."""

    def __init__(self, cwd: Path, *args: str):
        self.log = cwd / f"stderr-{time.monotonic_ns()}.txt"
        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "imgenh", "run", "p.yaml", "in", "-o", "out", *args],
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def poll(self):
        return self.proc.poll()

    @property
    def returncode(self):
        return self.proc.returncode

    def kill9(self) -> None:
        """SIGKILL the imgenh process itself (what `kill -9 PID` does) and wait for it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def signal(self, sig, to_group: bool = False) -> str:
        """Send ``sig`` to the imgenh process (or its whole process group, as a terminal's Ctrl-C does)."""
        if to_group:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        return self.log.read_text()

    def wait(self, timeout: float = 60) -> str:
        self.proc.wait(timeout=timeout)
        return self.log.read_text()

    def reap(self) -> None:
        """Kill what is left of the run's process group (orphaned pool workers idle for minutes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def start(cwd: Path, *args: str) -> Started:
    return Started(cwd, *args)


def run(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgenh", "run", "p.yaml", "in", "-o", "out", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def outputs(out: Path) -> list[Path]:
    if not out.is_dir():
        return []
    return [p for p in out.rglob("*.png") if not p.name.startswith(".")]


def temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(TEMP_MARKER)] if out.is_dir() else []


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime_ns of every input file."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def wait_for(predicate, timeout: float = 30, step: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


@pytest.fixture
def batch(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for i in range(N_IMAGES):
        sub = "sub/" if i % 3 == 0 else ""
        img = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{sub}img{i:03d}.png"), cv2.GaussianBlur(img, (5, 5), 0))
    (tmp_path / "p.yaml").write_text(PIPELINE)
    return tmp_path


def assert_whole(out: Path) -> None:
    """Every output under its final name decodes to the full size."""
    for p in outputs(out):
        img = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        assert img is not None and img.shape == (48, 64, 3), f"torn output {p}"


def expected_outputs(batch: Path) -> set[str]:
    return {str(p.relative_to(batch / "in")) for p in (batch / "in").rglob("*.png")}


@pytest.mark.parametrize(("jobs", "after"), [("1", 1), ("1", 12), ("1", 30), ("2", 3), ("2", 25)])
def test_kill9_then_rerun_completes(batch, jobs, after):
    before = snapshot(batch / "in")
    out = batch / "out"
    proc = start(batch, "-j", jobs, "-r")
    reached = wait_for(lambda: len(outputs(out)) >= after or proc.poll() is not None)
    proc.kill9()
    proc.reap()
    assert reached
    done_at_kill = len(outputs(out))
    print(f"kill -9 (-j {jobs}, target {after}): {done_at_kill}/{N_IMAGES} outputs in place")
    if done_at_kill >= N_IMAGES:
        pytest.skip(f"the run finished before the kill ({done_at_kill} outputs); machine too fast")
    assert_whole(out)  # nothing torn under a final name, even right after the kill

    proc = run(batch, "-j", jobs, "-r", "--report", "r.json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((batch / "r.json").read_text())
    assert report["totals"]["failed"] == 0
    assert report["totals"]["ok"] + report["totals"]["skipped"] == N_IMAGES
    # Outputs the killed run finished but did not record are redone, not taken for foreign files.
    assert not any("not made by imgenh" in r["reason"] for r in report["images"])
    assert {str(p.relative_to(out)) for p in outputs(out)} == expected_outputs(batch)
    assert_whole(out)
    assert not temp_files(out)
    assert not (out / ".imgenh" / "manifest.jsonl.tmp").exists()
    assert snapshot(batch / "in") == before
    # ...and a third run has nothing left to do.
    proc = run(batch, "-j", jobs, "-r", "--report", "r3.json")
    totals = json.loads((batch / "r3.json").read_text())["totals"]
    assert (proc.returncode, totals["ok"], totals["skipped"]) == (0, 0, N_IMAGES)


def test_kill9_at_random_moments(batch):
    """Five kills at random delays on the same tree, then one run to finish: still complete and whole."""
    out = batch / "out"
    before = snapshot(batch / "in")
    rng = np.random.default_rng(7)
    for _ in range(5):
        proc = start(batch, "-j", "1", "-r")
        time.sleep(float(rng.uniform(0.2, 0.9)))
        proc.kill9()
        assert_whole(out)
    proc = run(batch, "-j", "1", "-r")
    assert proc.returncode == 0, proc.stderr
    assert {str(p.relative_to(out)) for p in outputs(out)} == expected_outputs(batch)
    assert_whole(out)
    assert not temp_files(out)
    assert snapshot(batch / "in") == before


def test_leftover_temp_files_are_cleaned(batch):
    out = batch / "out"
    (out / "sub").mkdir(parents=True)
    stale = [out / f".img001.png.x1{TEMP_MARKER}", out / "sub" / f".img000.png.x2{TEMP_MARKER}"]
    for p in stale:
        p.write_bytes(b"half an image")
    proc = run(batch, "-j", "1", "-r")
    assert proc.returncode == 0, proc.stderr
    assert not temp_files(out)


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize(("jobs", "to_group"), [("1", False), ("2", False), ("2", True)])
def test_signal_stops_writes_report_and_exits(batch, sig, code, jobs, to_group):
    """To the main process only (a supervisor, `timeout -s INT`) or the whole group (Ctrl-C in a terminal)."""
    out = batch / "out"
    proc = start(batch, "-j", jobs, "-r", "--report", "r.json")
    assert wait_for(lambda: len(outputs(out)) >= 2 or proc.poll() is not None)
    stderr = proc.signal(sig, to_group)
    proc.reap()
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal arrived")
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert "; interrupted" in stderr
    report = json.loads((batch / "r.json").read_text())
    assert report["totals"]["interrupted"] is True
    assert report["totals"]["exit_code"] == code
    assert report["totals"]["ok"] < N_IMAGES
    # Every image written is recorded as written: in the report and in the manifest.
    on_disk = {str(p.relative_to(out)) for p in outputs(out)}
    assert {i["key"] for i in report["images"] if i["status"] == "ok"} == on_disk
    records = Manifest(out).load().records
    assert {k for k, r in records.items() if r.status == "ok"} == on_disk
    assert not temp_files(out)
    assert_whole(out)
    proc = run(batch, "-j", "1", "-r")
    assert proc.returncode == 0, proc.stderr
    assert {str(p.relative_to(out)) for p in outputs(out)} == expected_outputs(batch)


def test_second_run_on_locked_tree_exits_75(batch):
    holder = Manifest(batch / "out")
    holder.lock()  # an imgenh run in this process holds the tree
    try:
        t0 = time.monotonic()
        proc = run(batch, "-j", "1", "-r")
        assert time.monotonic() - t0 < 10
        assert proc.returncode == 75
        assert f"imgenh: error: out is in use by another imgenh run (pid {os.getpid()} on " in proc.stderr
        assert "wait for it to finish or choose another output folder" in proc.stderr
        assert outputs(batch / "out") == []
    finally:
        holder.close()
    assert run(batch, "-j", "1", "-r").returncode == 0


def test_two_concurrent_cli_runs(batch):
    out, report = batch / "out", batch / "second.json"
    first = start(batch, "-j", "1", "-r")
    assert wait_for(lambda: len(outputs(out)) >= 1 or first.poll() is not None)
    second = run(batch, "-j", "1", "-r", "--report", str(report), timeout=20)
    err = first.wait()
    assert first.returncode == 0, err
    if second.returncode == 75:
        assert "is in use by another imgenh run" in second.stderr
    else:
        # Only if the first run had written every image and let the lock go before the second
        # asked for it (a loaded machine; the first may still be exiting): then the second
        # found nothing to do. Had both run at once, the second would have processed images.
        assert second.returncode == 0, second.stderr
        statuses = {image["status"] for image in json.loads(report.read_text())["images"]}
        assert statuses == {"skipped"}, statuses


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_lock_of_killed_run_does_not_block(batch, jobs):
    out = batch / "out"
    proc = start(batch, "-j", jobs, "-r")
    assert wait_for(lambda: len(outputs(out)) >= 1 or proc.poll() is not None)
    proc.kill9()
    try:
        # the lock file stays, but the kernel dropped the flock with the process; with -j 2
        # its orphaned pool workers are still alive here and must not hold it either
        assert (out / ".imgenh" / "lock").exists()
        second = run(batch, "-j", "1", "-r")
    finally:
        proc.reap()
    assert second.returncode == 0, second.stderr
    assert len(outputs(out)) == N_IMAGES


class _DiesOnSecond:
    """A worker that kills its own process on one image, as the OOM killer would."""

    def __init__(self, worker):
        self.worker = worker

    def __call__(self, job):
        if job.key.endswith("img001.png"):
            os._exit(137)
        return self.worker(job)


def test_dead_pool_worker_is_reported_not_a_traceback(batch, monkeypatch):
    from imgenh import pipeline_from_steps, runner

    real = runner.Worker
    monkeypatch.setattr(runner, "Worker", lambda *a, **k: _DiesOnSecond(real(*a, **k)))
    pipe = pipeline_from_steps([{"op": "gamma", "value": 1.2}])
    summary = runner.run_batch(pipe, [str(batch / "in")], batch / "out", runner.RunOptions(jobs=2))
    assert summary.exit_code == 1
    failed = [r for r in summary.results if r.status == "failed"]
    assert failed and all("a worker process died" in r.reason for r in failed)
    assert len(summary.results) == N_IMAGES - N_IMAGES // 3  # top folder only; each reported once
    assert not temp_files(batch / "out")


def test_gate_closed_stops_renames_and_leaves_no_temp_file(tmp_path):
    from imgenh.io import OutputError, RenameGate, atomic_write

    gate = RenameGate.create(tmp_path / "state")
    atomic_write(tmp_path / "before.bin", b"x", gate)
    gate.close()
    with pytest.raises(OutputError, match="run stopped"):
        atomic_write(tmp_path / "after.bin", b"y", gate)
    assert (tmp_path / "before.bin").read_bytes() == b"x"
    assert not (tmp_path / "after.bin").exists()
    assert not temp_files(tmp_path)
    assert not gate.path.exists()


def test_image_written_before_a_stop_is_recorded_as_written(batch, monkeypatch):
    """A worker renamed an output into place, then the run stopped before its result arrived."""
    from imgenh import pipeline_from_steps, runner

    def written_then_interrupted(jobs, worker, n_workers, *backend):  # execute()'s backend arguments
        worker(jobs[0])  # the output is on disk; its result is lost with the stop
        raise KeyboardInterrupt
        yield  # a generator, like every executor

    monkeypatch.setattr(runner, "execute", written_then_interrupted)
    pipe = pipeline_from_steps([{"op": "gamma", "value": 1.2}])
    summary = runner.run_batch(pipe, [str(batch / "in")], batch / "out", runner.RunOptions(jobs=1))
    assert summary.exit_code == 130
    ok = {r.key for r in summary.results if r.status == "ok"}
    on_disk = {str(p.relative_to(batch / "out")) for p in outputs(batch / "out")}
    assert len(on_disk) == 1 and ok == on_disk
    records = Manifest(batch / "out").load().records
    assert {k for k, r in records.items() if r.status == "ok"} == on_disk
    # the next run skips it: its record is complete (input hash included)
    again = runner.run_batch(pipe, [str(batch / "in")], batch / "out", runner.RunOptions(jobs=1))
    assert next(r for r in again.results if r.key in on_disk).reason == "up to date"


def test_interrupt_while_decoder_output_is_captured_keeps_stderr(tmp_path, capfd):
    """A Ctrl-C while fd 2 points at the decoder capture waits until fd 2 is back, then raises."""
    import signal as sig

    from imgenh.io.decoder import DecoderMessages

    # Python's own Ctrl-C handler, as in a terminal: a process started in the background
    # (`cmd &`, nohup) inherits SIGINT ignored and Python then installs none, so there is
    # nothing to hold back (that was this test's "DID NOT RAISE" in background runs).
    previous = sig.signal(sig.SIGINT, sig.default_int_handler)
    try:
        printed = DecoderMessages()
        with pytest.raises(KeyboardInterrupt), printed:
            sig.raise_signal(sig.SIGINT)  # arrives while fd 2 is redirected: held back
            time.sleep(0.05)
            os.write(2, b"decoder noise\n")  # so the decode's output is still captured
    finally:
        sig.signal(sig.SIGINT, previous)
    assert printed.text == "decoder noise\n"
    os.write(2, b"after the interrupt\n")
    err = capfd.readouterr().err
    assert "after the interrupt" in err and "decoder noise" not in err


def test_a_single_thread_worker_run_in_its_parent_keeps_ctrl_c(tmp_path, photo8):
    # Pool workers ignore SIGINT (the parent decides); the process that built the worker must not.
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), photo8)
    from imgenh import pipeline_from_steps
    from imgenh.plan import Job, Status
    from imgenh.worker import Worker

    before = signal.getsignal(signal.SIGINT)
    worker = Worker(pipeline_from_steps([{"op": "gamma", "value": 1.2}]), single_thread=True)
    try:
        assert worker(Job(src, tmp_path / "out.png", "out.png")).status == Status.OK
        assert signal.getsignal(signal.SIGINT) is before
    finally:
        signal.signal(signal.SIGINT, before)
