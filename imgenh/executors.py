"""Executors: ways to run a worker over jobs, yielding results as they finish.

Every executor has one signature, ``executor(worker, jobs, n_workers) -> Iterator[Result]``,
so the runner does not care where the work happens. The worker is a picklable callable
built once in the parent; it never raises for a bad image, so an exception out of an
executor means the executor itself broke (:class:`PoolBroken`).

Backends (``--backend``): ``loky`` processes (the default), ``threading``, and ``dask``
(:class:`DaskExecutor`: a Dask cluster, or a LocalCluster; dask is imported only then).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from imgenh.io import RenameGate, header_size, sniff_format
from imgenh.plan import Job, Status
from imgenh.report import Result
from imgenh.worker import Worker

# Starting a process pool costs ~0.5 s; below about this much input a single process wins.
POOL_MIN_PIXELS = 80_000_000
BACKENDS = ("loky", "threading", "dask")
TASK_SECONDS = 1.0  # a Dask task's target length: long enough to hide the scheduler's round trip
MAX_BATCH = 1000  # images per Dask task at most, whatever the estimate
THREADS_RECOUNT = 10.0  # seconds between counts of the cluster's worker threads
log = logging.getLogger("imgenh")


class BackendSettings(Protocol):
    """The run options that choose an executor (:class:`imgenh.runner.RunOptions` has them)."""

    backend: str
    scheduler: str | None
    batch_size: int | None
    jobs: int | None


class PoolBroken(Exception):
    """The worker pool failed as a whole (a worker died: crash, out of memory, killed)."""


def _input_pixels(jobs: list[Job], limit: int) -> int:
    """Pixels in the inputs by their headers, counting only until ``limit`` is passed."""
    total = 0
    for job in jobs:
        try:
            with open(job.source, "rb") as fh:
                head = fh.read(65536)
        except OSError:
            continue
        fmt = sniff_format(head)
        size = header_size(head, fmt) if fmt else None
        if size:
            total += size[0] * size[1]
        else:  # e.g. a JPEG whose size comes after 64 KiB of EXIF: ~0.3 bytes per pixel
            with contextlib.suppress(OSError):
                total += os.path.getsize(job.source) * 3
        if total > limit:
            break
    return total


def usable_cores() -> int:
    """CPU cores this process may run on: its affinity mask (taskset, a container's cpuset), else all."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def choose_workers(jobs: list[Job], requested: int | None, backend: str = "loky") -> int:
    """Number of workers: 1 (in-process) for small batches or ``-j 1``; for dask, -j or the cores.

    An explicit ``-j N`` is honoured (at most one worker per job); :func:`jobs_warning` says
    when it costs time. With an external Dask scheduler the cluster's own workers run the
    batch, whatever this says.
    """
    if backend == "dask":
        return max(1, min(requested or usable_cores(), len(jobs)))
    if requested == 1 or len(jobs) < 2:
        return 1
    n = min(requested or usable_cores(), len(jobs))
    if requested is None and _input_pixels(jobs, POOL_MIN_PIXELS) <= POOL_MIN_PIXELS:
        return 1
    return max(n, 1)


def jobs_warning(jobs: list[Job], n_workers: int, settings: BackendSettings) -> str | None:
    """One line when an explicit ``-j`` is honoured but makes the run slower than imgenh's own choice.

    Two ways it does: more workers than cores (they take turns on the cores, each holding
    its own images in memory), and a process pool for a batch too small to pay for starting
    it (under ``POOL_MIN_PIXELS`` of input, which imgenh would run in-process). None when
    ``-j`` was not given, runs one worker, or goes to an external Dask scheduler (ignored there).
    """
    requested = settings.jobs
    if requested is None or n_workers <= 1 or (settings.backend == "dask" and settings.scheduler):
        return None
    cores = usable_cores()
    problems = []
    if n_workers > cores:
        on_cores = f"{cores} core{'s' * (cores != 1)}"
        problems.append(
            f"{n_workers} workers take turns on {on_cores} (no faster than -j {cores}, more memory)"
        )
    # Threads start at once; a process pool's start-up is what a small batch cannot pay for.
    pixels = _input_pixels(jobs, POOL_MIN_PIXELS) if settings.backend == "loky" else None
    small = pixels is not None and pixels <= POOL_MIN_PIXELS
    if small:
        problems.append(
            f"{len(jobs)} images of {pixels / 1e6:.2g} MP in all finish sooner in one process "
            "than in a pool that has to start first"
        )
    if not problems:
        return None
    default = "runs them in this process" if small or cores == 1 else f"uses {cores} workers"
    return f"-j {requested}: {'; '.join(problems)} (without -j, imgenh {default})"


# glibc's mallopt parameters: sizes up to the threshold come from the heap, which is kept.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_BYTES = 1 << 30
_memory_kept = False


def keep_freed_memory() -> None:
    """Let this process reuse freed image buffers instead of returning them to the kernel.

    Each decoded 12 MP frame is a fresh ~36 MB allocation; above glibc's mmap threshold every
    one is mapped, faulted in page by page and unmapped again (~25% of a worker's time went
    to the kernel). Raising the mmap and trim thresholds keeps freed frames in the heap for
    the next image: the peak stays the same, the page faults go. A no-op off glibc.
    """
    global _memory_kept
    if _memory_kept:
        return
    _memory_kept = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)
        libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES)
    except (OSError, AttributeError):
        pass


@dataclasses.dataclass
class _KeepingMemory:
    """A worker that first calls :func:`keep_freed_memory` in the process it runs in (picklable)."""

    worker: Worker

    def __call__(self, job: Job) -> Result:
        keep_freed_memory()
        return self.worker(job)


def run_in_process(worker: Worker, jobs: list[Job], n_workers: int) -> Iterator[Result]:
    """Run the jobs one after the other in this process."""
    keep_freed_memory()
    for job in jobs:
        yield worker(job)


def run_loky(worker: Worker, jobs: list[Job], n_workers: int) -> Iterator[Result]:
    """Run the jobs in a loky process pool of ``n_workers``, yielding results as they finish.

    Raises
    ------
    PoolBroken
        When the pool cannot go on; the jobs not yet yielded were not finished.
    """
    from joblib import Parallel, delayed

    worker.single_thread = True
    # A short idle timeout: workers orphaned by a killed run (kill -9) exit within seconds
    # instead of loky's default five minutes.
    parallel = Parallel(
        n_jobs=n_workers,
        backend="loky",
        return_as="generator_unordered",
        batch_size=1,
        idle_worker_timeout=10,
    )
    # The pool's processes are started by this call. They start with SIGINT ignored (an
    # ignored signal survives exec), so a Ctrl-C sent to the whole process group while they
    # boot prints no tracebacks from them; the parent alone handles it. The cost: a SIGINT
    # in these ~0.1 s is lost (SIGTERM is not).
    previous = _ignore_sigint()
    try:
        results = parallel(delayed(_KeepingMemory(worker))(job) for job in jobs)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        yield from results
    except GeneratorExit:
        # The run stopped (Ctrl-C, SIGTERM, --max-failures) and its gate is closed, so the
        # workers' images in flight are worth nothing: kill them now rather than wait for
        # them, then let joblib tidy up without its warnings about the dead workers.
        kill_pool_workers()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results.close()
        raise
    except Exception as exc:  # Worker never raises, so this is the pool itself (TerminatedWorkerError...)
        raise PoolBroken(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


def _ignore_sigint():
    """Ignore SIGINT and return the previous handler (None when not on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, signal.SIG_IGN)


def kill_pool_workers() -> int:
    """SIGKILL this process's loky worker processes (Linux: found in /proc); return how many.

    loky's own shutdown waits for busy workers, and without psutil it cannot kill them
    (it prints tracebacks instead); the resource tracker is left alone.
    """
    killed = 0
    me = str(os.getpid())
    for entry in _proc_entries():
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                ppid = fh.read().rsplit(b")", 1)[1].split()[1].decode()
            if ppid != me:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except (OSError, IndexError):
            continue
        if b"loky" in cmdline and b"resource_tracker" not in cmdline:
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGKILL)
                killed += 1
    return killed


def _proc_entries() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # not Linux: loky's own shutdown does what it can
        return []


def run_threading(worker: Worker, jobs: list[Job], n_workers: int) -> Iterator[Result]:
    """Run the jobs on ``n_workers`` threads of this process (OpenCV releases the GIL)."""
    import cv2
    from joblib import Parallel, delayed

    # One OpenCV thread per image, set here for the whole process: the worker's own
    # single_thread mode also sets signal handlers, which only the main thread may do.
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    keep_freed_memory()
    parallel = Parallel(n_jobs=n_workers, backend="threading", return_as="generator_unordered")
    try:
        yield from parallel(delayed(worker)(job) for job in jobs)
    finally:
        cv2.setNumThreads(previous)


class BatchSizer:
    """Images per Dask task: a fixed ``--batch-size``, or enough for about ``TASK_SECONDS`` each.

    The estimate starts at one image per task and follows the mean time per image of
    finished tasks; near the end batches shrink so every worker gets a share of what is left.
    """

    def __init__(self, fixed: int | None = None):
        self.fixed = fixed
        self.per_image: float | None = None

    def observe(self, results: list[Result]) -> None:
        """Fold a finished task's results into the time-per-image estimate."""
        if results:
            mean = max(sum(r.seconds for r in results) / len(results), 1e-4)
            self.per_image = mean if self.per_image is None else 0.7 * self.per_image + 0.3 * mean

    def size(self, remaining: int, workers: int) -> int:
        """How many of ``remaining`` images the next task takes."""
        if self.fixed:
            return self.fixed
        if self.per_image is None:
            return 1
        target = min(MAX_BATCH, max(1, int(TASK_SECONDS / self.per_image)))
        return max(1, min(target, math.ceil(remaining / max(workers, 1))))


def _absolute(job: Job) -> Job:
    """The job with absolute paths: a Dask worker's working folder is not the client's."""
    return dataclasses.replace(
        job, source=Path(os.path.abspath(job.source)), output=Path(os.path.abspath(job.output))
    )


class DaskExecutor:
    """Run jobs on a Dask cluster, in batches, yielding each image's result as its batch finishes.

    Parameters
    ----------
    scheduler : str or None
        ``tcp://HOST:PORT`` of a running scheduler; None starts a LocalCluster of
        ``n_workers`` single-threaded processes for the run.
    batch_size : int or None
        Images per task; None sizes tasks to about ``TASK_SECONDS``.
    state_dir : Path or None
        ``OUT/.imgenh``, where the shared-storage probe is written (None in place).
    jobs_flag : int or None
        ``-j`` as given; only noted as ignored with an external scheduler.

    Notes
    -----
    A worker that dies mid-task has its task rescheduled by Dask on another worker (up to
    the scheduler's ``allowed-failures``); outputs are atomic, so nothing half-written is
    ever renamed into place. A batch that kept killing workers (``KilledWorker``) is split
    and its images retried one per task, one at a time at the end, so only the image that
    kills workers fails.
    """

    def __init__(self, scheduler=None, batch_size=None, state_dir=None, jobs_flag=None):
        self.scheduler = scheduler
        self.batch_size = batch_size
        self.state_dir = state_dir
        self.jobs_flag = jobs_flag

    def __call__(self, worker: Worker, jobs: list[Job], n_workers: int) -> Iterator[Result]:
        from imgenh import cluster

        if self.scheduler and self.jobs_flag:
            log.warning(
                "-j %d is ignored with --scheduler: the cluster's own workers run the images", self.jobs_flag
            )
        connection = cluster.connect(self.scheduler, n_workers)
        try:
            client = connection.client
            log.info("Dask: %d worker threads (%s)", connection.threads, client.scheduler.address)
            gate = getattr(worker, "gate", None)
            if gate is not None:  # workers elsewhere need its absolute path
                worker.gate = gate = RenameGate(os.path.abspath(gate.path))
            cluster.check_shared_storage(client, self.state_dir, jobs, gate and gate.path)
            with cluster.installed(client, worker) as token:
                yield from self._drain(client, connection.threads, token, jobs)
        finally:
            connection.close()

    def _drain(self, client, threads: int, token: str, jobs: list[Job]) -> Iterator[Result]:
        """Keep about two tasks per worker thread in flight; yield results as tasks finish."""
        from distributed import as_completed

        batches = _Batches(client, token, threads, jobs, BatchSizer(self.batch_size))
        done = as_completed()
        batches.top_up(done)
        try:
            for future in done:
                yield from batches.finished(future)
                batches.top_up(done)
        finally:
            batches.cancel()


KILLED_REASON = (
    "killed every Dask worker that ran it, even alone (a crash in a decoder or an operator, "
    "or out of memory); not retried"
)


class _Batches:
    """The Dask tasks of one run: what is queued, what runs, and which images are suspects.

    A task that keeps killing workers ends as ``KilledWorker``; its images become suspects,
    run one per task and one at a time once everything else is done, so a suspect that
    kills its worker takes no innocent task with it. A suspect killed even alone fails.
    """

    def __init__(self, client, token: str, threads: int, jobs: list[Job], sizer: BatchSizer):
        self.client, self.token, self.threads, self.sizer = client, token, threads, sizer
        self.originals = {job.key: job for job in jobs}
        self.queue = deque(_absolute(job) for job in jobs)
        self.suspects: deque[Job] = deque()
        self.running: dict = {}  # future -> (its jobs, whether it ran alone)
        self._counted = time.monotonic()

    def _count_threads(self) -> None:
        """Follow a cluster that grows or shrinks during the run (checked every few seconds)."""
        if time.monotonic() - self._counted > THREADS_RECOUNT:
            self._counted = time.monotonic()
            with contextlib.suppress(Exception):
                self.threads = sum(self.client.nthreads().values()) or self.threads

    def _submit(self, done, batch: list[Job], alone: bool = False) -> None:
        from imgenh import cluster

        future = self.client.submit(cluster.run_batch, self.token, batch, pure=False)
        self.running[future] = (batch, alone)
        done.add(future)

    def top_up(self, done) -> None:
        """Submit batches until two per worker thread are in flight, or a suspect alone at the end."""
        self._count_threads()
        while self.queue and len(self.running) < 2 * self.threads:
            size = min(self.sizer.size(len(self.queue), self.threads), len(self.queue))
            self._submit(done, [self.queue.popleft() for _ in range(size)])
        if self.suspects and not self.queue and not self.running:
            self._submit(done, [self.suspects.popleft()], alone=True)

    def finished(self, future) -> Iterator[Result]:
        """The results of a finished task (none when its images became suspects)."""
        from distributed import KilledWorker

        batch, alone = self.running.pop(future)
        try:
            # Not the status: a result lost with a dying worker is "lost", then recomputed by
            # Dask, and result() waits for that.
            results = future.result()
            self.sizer.observe(results)
        except KilledWorker:
            if alone:
                results = [Result.from_job(batch[0], Status.FAILED, KILLED_REASON)]
            else:
                log.warning("%d images kept killing Dask workers: retrying them one at a time", len(batch))
                self.suspects.extend(batch)
                results = []
        except Exception as exc:
            raise PoolBroken(f"{type(exc).__name__}: {(str(exc) or '?').splitlines()[0]}") from exc
        future.release()
        for result in results:  # the paths as planned, not the absolute ones the workers were given
            job = self.originals[result.key]
            result.source, result.output = str(job.source), str(job.output)
            yield result

    def cancel(self) -> None:
        """Cancel what is still queued or running (a task already running on a worker finishes)."""
        if self.running:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self.running))


def execute(
    jobs: list[Job],
    worker: Worker,
    n_workers: int,
    settings: BackendSettings | None = None,
    state_dir: Path | None = None,
) -> Iterator[Result]:
    """Run jobs through the executor that fits.

    ``--backend dask`` always goes to the cluster; otherwise one worker runs in-process, and
    more run in a loky process pool or, with ``threading``, on threads.

    Parameters
    ----------
    settings : BackendSettings, optional
        The run's ``backend``, ``scheduler``, ``batch_size`` and ``jobs``; loky when None.
    state_dir : Path, optional
        ``OUT/.imgenh`` (the dask backend writes its shared-storage probe there).
    """
    backend = settings.backend if settings is not None else "loky"
    if backend == "dask":
        if not jobs:
            return run_in_process(worker, jobs, n_workers)  # nothing to do: no cluster to start
        dask = DaskExecutor(settings.scheduler, settings.batch_size, state_dir, settings.jobs)
        return dask(worker, jobs, n_workers)
    if n_workers <= 1:
        return run_in_process(worker, jobs, n_workers)
    executor = run_threading if backend == "threading" else run_loky
    return executor(worker, jobs, n_workers)
