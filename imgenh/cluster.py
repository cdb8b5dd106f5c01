"""A Dask cluster for ``--backend dask``: connect (or start a LocalCluster), check storage, install the worker.

Only imported for ``--backend dask``; the core install never imports dask. Workers read
and write the images themselves, so inputs and outputs must be on storage every worker
sees at the same paths: :func:`check_shared_storage` proves it before any work. The
imgenh :class:`~imgenh.worker.Worker` (the pipeline) reaches each Dask worker once, as a
worker plugin, which the scheduler also hands to workers that join or restart later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2

from imgenh import __version__
from imgenh.io import atomic_write
from imgenh.plan import Job, PlanError
from imgenh.report import Result
from imgenh.worker import Worker

try:  # the base class must be distributed's own; without the extra this module still imports
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - exercised only without the dask extra
    WorkerPlugin = object

# The extra's one requirement, so the hint works however imgenh was installed (index, clone, wheel).
INSTALL_HINT = (
    "--backend dask needs the dask extra: pip install 'dask[distributed]>=2026.8' "
    "(or install imgenh with it: pip install 'imgenh[dask]', or '.[dask]' in a clone)"
)
CONNECT_TIMEOUT = 30  # seconds to reach the scheduler
WORKERS_TIMEOUT = 60  # seconds for a first worker to join
PROBE_NAME = "probe"  # in OUT/.imgenh; rewritten by every run, removed at its end
# A LocalCluster's workers run like loky's: distributed's defaults trim freed memory (so each
# image's buffers fault in afresh) and sample stacks every 10 ms; together they cost ~2x per
# image on a 2-core machine (benchmarks/bench_dask.py). None unsets the variable.
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
}
log = logging.getLogger("imgenh")

# Worker processes keep the imgenh Worker of each run here, by the run's token.
_INSTALLED: dict[str, Worker] = {}


class BackendError(PlanError):
    """The chosen backend cannot run the batch (missing extra, no scheduler, storage not shared); exit 2."""


def require_dask() -> None:
    """Raise :class:`BackendError` saying how to install dask when it is missing."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise BackendError([INSTALL_HINT]) from None


@dataclass
class Connection:
    """A client, and the LocalCluster it started (None for an external scheduler)."""

    client: object
    cluster: object | None
    threads: int  # worker threads when connected: the number of batches that can run at once

    def close(self) -> None:
        """Close the client, and stop the LocalCluster's worker processes."""
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()


def connect(scheduler: str | None, n_workers: int) -> Connection:
    """Connect to ``scheduler``, or start a LocalCluster of ``n_workers`` single-threaded processes.

    Raises
    ------
    BackendError
        The dask extra is missing, the scheduler cannot be reached, or no worker joined in time.
    """
    require_dask()
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        else:
            with dask.config.set(LOCAL_CLUSTER_CONFIG):  # read when the nannies start, kept for restarts
                cluster = LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    silence_logs=logging.CRITICAL,  # teardown races (heartbeats) are noise here
                )
            client = Client(cluster, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError, RuntimeError) as exc:  # refused, unknown host, bad address
        if cluster is not None:
            cluster.close()
        where = f"reach the Dask scheduler at {scheduler}" if scheduler else "start a local Dask cluster"
        raise BackendError([f"cannot {where}: {type(exc).__name__}: {exc}"]) from None
    if cluster is not None:
        # Ctrl-C reaches the whole process group; the run stops the cluster itself.
        client.register_plugin(IgnoreInterrupt(), name="imgenh-ignore-interrupt")
    connection = Connection(client, cluster, 0)
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
    except TimeoutError:
        connection.close()
        where = scheduler or "the local cluster"
        raise BackendError([f"no Dask worker joined {where} within {WORKERS_TIMEOUT} s"]) from None
    connection.threads = sum(client.nthreads().values())
    return connection


def read_probe(path: str, size: int) -> tuple[str, bytes | str]:
    """On a worker: imgenh's version and the first ``size`` bytes of ``path`` (or why they cannot be read)."""
    try:
        with open(path, "rb") as fh:
            return __version__, fh.read(size)
    except OSError as exc:
        return __version__, f"cannot read {path}: {exc.strerror or exc}"


def check_shared_storage(client, state_dir: Path | None, jobs: list[Job], gate: Path | None = None) -> None:
    """Every worker reads files the client knows, with imgenh's own version, or the run stops.

    With an output folder the file is a fresh random probe in ``OUT/.imgenh``; in place it is
    the first input. The run's rename gate (``gate``) must be visible too, or no output could
    be renamed into place. Paths are absolute: a worker's working folder is not the client's.

    Raises
    ------
    BackendError
        Naming each worker that cannot see a file, sees other bytes, or runs another imgenh.
    """
    probes = []
    if state_dir is not None:
        probe = Path(os.path.abspath(state_dir / PROBE_NAME))
        probes.append((probe, secrets.token_hex(16).encode()))
        atomic_write(*probes[0])
    elif (first := _first_readable(jobs))[0] is not None:
        probes.append(first)  # nothing readable at all: each image fails on its own, with its reason
    if gate is not None:
        probes.append((Path(os.path.abspath(gate)), b""))
    try:
        problems = [line for path, expected in probes for line in _probe_workers(client, path, expected)]
    finally:
        if state_dir is not None:
            with contextlib.suppress(OSError):
                probe.unlink()
    if problems:
        problems.append(
            "every worker needs the same imgenh version and must see inputs and outputs at the "
            "same paths (a shared file system): start the workers from the same imgenh install "
            "(README, 'Scale out on a cluster')"
        )
        if state_dir is None and gate is not None:
            problems.append(
                f"in place, the run's rename gate is in {gate.parent} on this machine: use -o OUT"
            )
        raise BackendError(problems)


def _probe_workers(client, path: Path, expected: bytes) -> list[str]:
    """What is wrong with each worker's view of ``path`` (which should start with ``expected``)."""
    problems = []
    replies = client.run(read_probe, str(path), len(expected), on_error="return")
    for address, reply in sorted(replies.items()):
        if isinstance(reply, BaseException):
            problems.append(f"worker {address} cannot run imgenh ({type(reply).__name__}: {reply})")
        elif reply[0] != __version__:
            problems.append(f"worker {address} runs imgenh {reply[0]}, this client {__version__}")
        elif reply[1] != expected:
            seen = reply[1] if isinstance(reply[1], str) else "it holds other bytes"
            problems.append(f"worker {address} does not see {path} as written here: {seen}")
    return problems


def _first_readable(jobs: list[Job]) -> tuple[Path | None, bytes]:
    """The first input this machine can read, and its first 4 KiB (in place, the probe)."""
    for job in jobs:
        path = Path(os.path.abspath(job.source))
        try:
            with open(path, "rb") as fh:
                return path, fh.read(4096)
        except OSError:
            continue
    return None, b""


class InstallWorker(WorkerPlugin):
    """A worker plugin carrying the run's imgenh Worker to every Dask worker, once.

    The scheduler keeps registered plugins and sets them up on workers that join or are
    restarted later, so a worker replacing a dead one gets the pipeline too.
    """

    def __init__(self, token: str, worker: Worker):
        self.token = token
        self.worker = worker

    def setup(self, worker) -> None:
        _INSTALLED[self.token] = self.worker

    def teardown(self, worker) -> None:
        _INSTALLED.pop(self.token, None)


class IgnoreInterrupt(WorkerPlugin):
    """Make a LocalCluster's worker processes ignore SIGINT (the run closes them on Ctrl-C, quietly)."""

    def setup(self, worker) -> None:
        with contextlib.suppress(ValueError):  # only the main thread may set handlers
            signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def installed(client, worker: Worker) -> Iterator[str]:
    """Install ``worker`` on every Dask worker for the block; yields the token tasks name it by."""
    token = f"imgenh-{secrets.token_hex(8)}"
    client.register_plugin(InstallWorker(token, worker), name=token)
    try:
        yield token
    finally:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(token)


def run_batch(token: str, jobs: list[Job]) -> list[Result]:
    """On a worker: run the installed Worker over ``jobs`` (a task's worth of images).

    OpenCV gets one thread, as under loky: the worker's processes or threads are the parallelism.
    """
    worker = _INSTALLED[token]
    cv2.setNumThreads(1)
    return [worker(job) for job in jobs]
