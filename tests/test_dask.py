"""--backend dask (a real LocalCluster, and `dask scheduler` / `dask worker` processes), --shard, the optional extra."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from imgenh import cluster, load_pipeline
from imgenh.cli import main
from imgenh.executors import BatchSizer, execute
from imgenh.io import is_temp_name
from imgenh.plan import Job, Plan, Status
from imgenh.report import Result
from imgenh.runner import RunOptions, make_plan
from imgenh.shard import parse_shard, select_shard, shard_of
from imgenh.worker import Worker

PIPELINE = "version: 1\nname: t\nsteps:\n  - op: gamma\n    value: 1.4\n  - op: sharpen\n    amount: 0.5\n"
PINNED = [1, 2, 4, 3, 3, 3, 4, 1]  # shard_of(f"img{i}.jpg", 4), i = 0..7
needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None, reason="the dask extra is not installed"
)
TIMEOUT = 240  # seconds any one CLI run may take on a loaded 2-core CI machine


def _images(folder: Path, photo8: np.ndarray, count: int, size: int = 96) -> Path:
    """``count`` distinct small images (JPEG and PNG) under ``folder``, some in a subfolder."""
    (folder / "sub").mkdir(parents=True)
    base = cv2.resize(photo8, (size, size * 2 // 3), interpolation=cv2.INTER_LINEAR)
    for i in range(count):
        img = np.roll(base, i * 7, axis=1)
        name = folder / ("sub" if i % 3 == 0 else "") / (f"img{i:03d}" + (".png" if i % 2 else ".jpg"))
        cv2.imwrite(str(name), img)
    return folder


def _cli(*args: str, env: dict | None = None, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgenh", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _outputs(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".imgenh" not in p.parts
    }


def _temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if is_temp_name(p.name)]


def _report_images(path: Path) -> dict[str, dict]:
    """The report's images by key, without the timing (which differs run to run)."""
    doc = json.loads(path.read_text())
    return {img["key"]: {k: v for k, v in img.items() if k != "seconds"} for img in doc["images"]}


def _manifest(out: Path) -> dict[str, dict]:
    """The manifest's records by output, without the output's own mtime."""
    lines = (out / ".imgenh" / "manifest.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {r["output"]: {k: v for k, v in r.items() if k != "out_mtime_ns"} for r in records}


@pytest.fixture
def batch(tmp_path, photo8) -> tuple[Path, Path]:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    return tmp_path / "p.yaml", _images(tmp_path / "in", photo8, 14)


# --shard ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    keys=st.sets(st.text(min_size=1, max_size=30), max_size=60),
    n=st.integers(min_value=1, max_value=9),
)
def test_shards_partition_any_key_set(keys, n):
    plan = Plan([Job(Path("in") / f"{i}", Path("out") / k, k) for i, k in enumerate(sorted(keys))])
    shards = [select_shard(plan, (k, n)) for k in range(1, n + 1)]
    seen = [job.key for shard in shards for job in shard.jobs]
    assert sorted(seen) == sorted(keys)  # every key once: none lost, none twice
    for k, shard in enumerate(shards, start=1):
        assert all(shard_of(job.key, n) == k for job in shard.jobs)  # stable: the same answer again


def test_shard_is_a_fixed_hash_of_the_key():
    # SHA-1, not Python's per-process string hash: every machine and run cuts the same way.
    assert [shard_of(f"img{i}.jpg", 4) for i in range(8)] == PINNED
    digest = hashlib.sha1(b"sub/img001.png").digest()
    assert shard_of("sub/img001.png", 7) == int.from_bytes(digest[:8], "big") % 7 + 1


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "3", "a/b", "1/2/3", ""])
def test_bad_shard_is_a_usage_error(text):
    with pytest.raises(ValueError, match="K"):
        parse_shard(text)
    result = CliRunner().invoke(main, ["run", "p.yaml", "x", "-o", "o", "--shard", text])
    assert result.exit_code == 2
    assert "--shard" in result.output


def test_shard_runs_together_make_exactly_one_run(batch, tmp_path):
    pipeline, images = batch
    cv2.imwrite(str(images / "broken.jpg"), np.zeros((4, 4, 3), np.uint8))
    (images / "broken.jpg").write_bytes((images / "broken.jpg").read_bytes()[:40])  # fails in every run
    whole = _cli("run", str(pipeline), str(images), "-r", "-o", str(tmp_path / "whole"), "-j", "1")
    assert whole.returncode == 1, whole.stderr
    keys = []
    for k in (1, 2, 3):
        report = tmp_path / f"shard{k}.json"
        shard = _cli(
            "run", str(pipeline), str(images), "-r", "-o", str(tmp_path / "shards"), "--shard", f"{k}/3",
            "--report", str(report), "-j", "1",
        )  # fmt: skip
        assert shard.returncode in (0, 1), shard.stderr
        mine = _report_images(report)
        assert all(shard_of(key, 3) == k for key in mine)  # only its own images, failures included
        keys += mine
    assert sorted(keys) == sorted([*_outputs(tmp_path / "whole"), "broken.jpg"])
    assert _outputs(tmp_path / "shards") == _outputs(tmp_path / "whole")


# The optional extra ------------------------------------------------------------------------


def test_core_run_never_imports_dask(batch, tmp_path):
    pipeline, images = batch
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "imgenh", "run", str(pipeline), str(images), "-r"]
        + ["-o", str(tmp_path / "out"), "-j", "2", "--backend", "loky"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert run.returncode == 0, run.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if "import time:" in line]
    assert "imgenh.runner" in imported and "joblib" in imported  # the measurement works
    assert not [m for m in imported if m.split(".")[0] in ("dask", "distributed")]


def test_dask_backend_without_dask_says_how_to_install(batch, tmp_path, monkeypatch):
    pipeline, images = batch
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(pipeline), str(images), "-o", str(out), "--backend", "dask"]
    )
    assert result.exit_code == 2, result.output
    assert "pip install 'dask[distributed]>=2026.8'" in result.output  # works however imgenh was installed
    assert _outputs(out) == {}


def test_the_install_hint_names_the_extras_own_requirement():
    import tomllib

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    (requirement,) = project["optional-dependencies"]["dask"]
    assert f"pip install '{requirement}'" in cluster.INSTALL_HINT


@needs_dask
def test_unreachable_scheduler_is_a_usage_error(batch, tmp_path, monkeypatch):
    pipeline, images = batch
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)
    monkeypatch.setenv("IMGENH_SCHEDULER", f"tcp://127.0.0.1:{_free_port()}")  # nothing listens there
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run", str(pipeline), str(images), "-o", str(out), "--backend", "dask"]
    )
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in result.output
    assert _outputs(out) == {}


@pytest.mark.parametrize("in_place", [False, True])
def test_storage_not_shared_is_refused(tmp_path, in_place):
    """A worker that sees another disk at the same path (stood in by a client that reads elsewhere)."""

    class OtherDiskClient:
        def run(self, function, path, size, on_error):
            elsewhere = tmp_path / "other-disk" / Path(path).relative_to(tmp_path)
            elsewhere.parent.mkdir(parents=True, exist_ok=True)
            return {"tcp://10.0.0.9:4000": function(str(elsewhere), size)}

    photo = tmp_path / "in" / "a.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff\xd8 not really a JPEG")
    state_dir = None if in_place else tmp_path / "out" / ".imgenh"
    jobs = [Job(tmp_path / "in" / "missing.jpg", photo, "k"), Job(photo, photo, "a.jpg")]
    with pytest.raises(cluster.BackendError) as info:
        cluster.check_shared_storage(OtherDiskClient(), state_dir, jobs, gate=tmp_path / "tmp" / "gate")
    probe = photo if in_place else state_dir / cluster.PROBE_NAME
    assert (
        f"worker tcp://10.0.0.9:4000 does not see {probe} as written here: cannot read"
        in info.value.errors[0]
    )
    assert any("shared file system" in line for line in info.value.errors)
    assert f"does not see {tmp_path / 'tmp' / 'gate'}" in " ".join(info.value.errors)  # the rename gate too
    assert ("use -o OUT" in info.value.errors[-1]) == in_place
    assert not (
        tmp_path / "out" / ".imgenh" / cluster.PROBE_NAME
    ).exists()  # the probe does not outlive the check


def test_batch_sizer_targets_about_a_second():
    sizer = BatchSizer()
    assert sizer.size(1000, 2) == 1  # nothing known yet: one image per task
    sizer.observe([Result("a", "b", "k", Status.OK, seconds=0.01)] * 5)
    assert sizer.size(10_000, 2) == 100  # 1 s / 0.01 s
    assert sizer.size(30, 2) == 15  # the tail is shared between the workers
    assert BatchSizer(fixed=7).size(3, 2) == 7


class _LostThenRecomputed:
    """A Dask future whose result died with its worker: "lost" until Dask recomputes it."""

    status = "lost"

    def __init__(self, results):
        self.results, self.released = results, False

    def result(self):
        self.status = "finished"
        return self.results

    def release(self):
        self.released = True


def test_a_result_lost_with_its_worker_is_waited_for_not_an_error():
    """Dask recomputes a finished task whose worker died before the result was read."""
    from imgenh.executors import _Batches

    pytest.importorskip("distributed")
    job = Job(Path("a.png"), Path("out/a.png"), "a.png")
    batches = _Batches(None, "token", 2, [job], BatchSizer())
    future = _LostThenRecomputed([Result(str(job.source), str(job.output), job.key, Status.OK, seconds=0.1)])
    batches.running[future] = ([job], False)
    results = list(batches.finished(future))
    assert [(r.key, r.status, r.source) for r in results] == [("a.png", Status.OK, "a.png")]
    assert future.released and not batches.running and not batches.suspects


def test_threading_backend_matches_in_process(batch, tmp_path):
    pipeline, images = batch
    for name, args in (("threads", ["--backend", "threading", "-j", "2"]), ("single", ["-j", "1"])):
        done = _cli("run", str(pipeline), str(images), "-r", "-o", str(tmp_path / name), *args)
        assert done.returncode == 0, done.stderr
    assert len(_outputs(tmp_path / "threads")) == 14
    assert _outputs(tmp_path / "threads") == _outputs(tmp_path / "single")


# A real LocalCluster ---------------------------------------------------------------------


@needs_dask
def test_local_cluster_matches_loky(batch, tmp_path):
    pipeline, images = batch
    runs = {}
    for backend in ("loky", "dask"):
        out, report = tmp_path / backend, tmp_path / f"{backend}.json"
        done = _cli(
            "run", str(pipeline), str(images), "-r", "-o", str(out), "-j", "2",
            "--backend", backend, "--report", str(report),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert not _temp_files(out)
        runs[backend] = (_outputs(out), _report_images(report), _manifest(out))
    (loky_files, loky_report, loky_manifest), (dask_files, dask_report, dask_manifest) = runs.values()
    assert len(dask_files) == 14
    assert dask_files == loky_files  # byte for byte
    assert dask_report == {
        k: {**v, "output": v["output"].replace("/loky/", "/dask/")} for k, v in loky_report.items()
    }
    assert len(dask_manifest) == 14 and all(r["status"] == "ok" for r in dask_manifest.values())
    assert dask_manifest == loky_manifest
    again = _cli("run", str(pipeline), str(images), "-r", "-o", str(tmp_path / "dask"), "--backend", "dask")
    assert again.returncode == 0, again.stderr  # all up to date: no cluster is started for nothing
    assert "0 processed, 14 skipped" in again.stderr


@needs_dask
def test_an_image_that_kills_workers_fails_alone(batch, tmp_path):
    """A batch keeps killing its worker: it is split, and only the image that kills workers fails."""
    import dask

    pipeline, images = batch
    cv2.imwrite(str(images / "poison.png"), np.zeros((8, 8, 3), np.uint8))
    out = tmp_path / "out"
    options = RunOptions(recursive=True, backend="dask", batch_size=3, jobs=2)
    plan = make_plan(load_pipeline(pipeline), [str(images)], out, options)

    class KillerWorker(Worker):  # like a decoder that crashes the process on one file
        def __call__(self, job):
            if job.source.name == "poison.png":
                os.kill(os.getpid(), signal.SIGKILL)
            return super().__call__(job)

    # Each task may kill one worker before Dask gives up on it (default 3: slower, same path).
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        results = list(execute(plan.todo, KillerWorker(load_pipeline(pipeline)), 2, options, out / ".imgenh"))
    by_key = {r.key: r for r in results}
    assert len(results) == len(by_key) == 15  # every image exactly once
    assert by_key["poison.png"].status == Status.FAILED
    assert "killed every Dask worker that ran it" in by_key["poison.png"].reason
    assert [r for key, r in by_key.items() if key != "poison.png" and r.status != Status.OK] == []
    assert len(_outputs(out)) == 14


# `dask scheduler` and `dask worker`, started as a user would -----------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _dask_cli() -> str:
    exe = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if exe is None:
        pytest.skip("the `dask` command is not installed")
    return exe


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def dask_processes(tmp_path):
    """A `dask scheduler` and two single-threaded `dask worker` processes on 127.0.0.1, killed at the end."""
    dask_cli, procs = _dask_cli(), []
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    logs = open(tmp_path / "dask.log", "w")  # noqa: SIM115 (closed below)

    def start(*args):
        procs.append(subprocess.Popen([dask_cli, *args], stdout=logs, stderr=subprocess.STDOUT))
        return procs[-1]

    try:
        start(
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--scheduler-file",
            str(scheduler_file),
            *common,
        )
        _wait_for(scheduler_file.exists, 60, "the scheduler file")
        _wait_for(lambda: "address" in scheduler_file.read_text(), 10, "the scheduler address")
        address = json.loads(scheduler_file.read_text())["address"]
        worker_args = ["worker", "--scheduler-file", str(scheduler_file), "--host", "127.0.0.1"]
        workers = [start(*worker_args, "--nthreads", "1", "--no-nanny", *common) for _ in range(2)]
        yield address, workers
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=30)
        logs.close()


@needs_dask
def test_killed_worker_loses_nothing(tmp_path, photo8, dask_processes):
    address, workers = dask_processes
    images = _images(tmp_path / "in", photo8, 30, size=240)
    # Non-local means makes each image take a while, so the run is still going when the kill comes.
    (tmp_path / "p.yaml").write_text(PIPELINE + "  - op: denoise\n    method: nlmeans\n")
    out, report = tmp_path / "out", tmp_path / "report.json"
    command = [sys.executable, "-m", "imgenh", "run", str(tmp_path / "p.yaml"), str(images), "-r"]
    command += ["-o", str(out), "--backend", "dask", "--batch-size", "4", "--report", str(report), "-j", "3"]
    run = subprocess.Popen(command, env={**os.environ, "IMGENH_SCHEDULER": address}, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: len(_outputs(out)) >= 1 or run.poll() is not None, 120, "a first output")
        assert run.poll() is None, "the run ended before a worker could be killed"
        workers[0].send_signal(signal.SIGKILL)  # mid-run: its batch in flight is lost with it
        _, stderr = run.communicate(timeout=TIMEOUT)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
    assert run.returncode == 0, stderr.decode()
    assert "-j 3 is ignored with --scheduler" in stderr.decode()
    assert workers[0].wait(timeout=30) == -signal.SIGKILL
    doc = json.loads(report.read_text())
    assert doc["totals"]["ok"] == 30 and len(doc["images"]) == 30
    assert len(_outputs(out)) == 30
    assert all(r["status"] == "ok" for r in _manifest(out).values()) and len(_manifest(out)) == 30
    assert not _temp_files(out)  # nothing partial on disk
    for name, data in _outputs(out).items():  # every output decodes whole
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) is not None, name
