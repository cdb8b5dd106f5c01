"""Executors: ways to run a worker over jobs, yielding results as they finish.

Every executor has one signature, ``executor(worker, jobs, n_workers) -> Iterator[Result]``,
so the runner does not care where the work happens. The worker is a picklable callable
built once in the parent; it never raises for a bad image, so an exception out of an
executor means the executor itself broke (:class:`PoolBroken`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterator

from imgenh.io import header_size, sniff_format
from imgenh.plan import Job
from imgenh.report import Result
from imgenh.worker import Worker

# Starting a process pool costs ~0.5 s; below about this much input a single process wins.
POOL_MIN_PIXELS = 80_000_000


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


def choose_workers(jobs: list[Job], requested: int | None) -> int:
    """Number of worker processes: 1 (in-process) for small batches or ``-j 1``."""
    if requested == 1 or len(jobs) < 2:
        return 1
    cores = os.cpu_count() or 1
    n = min(requested or cores, len(jobs))
    if requested is None and _input_pixels(jobs, POOL_MIN_PIXELS) <= POOL_MIN_PIXELS:
        return 1
    return max(n, 1)


def run_in_process(worker: Worker, jobs: list[Job], n_workers: int) -> Iterator[Result]:
    """Run the jobs one after the other in this process."""
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
        results = parallel(delayed(worker)(job) for job in jobs)
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


def execute(jobs: list[Job], worker: Worker, n_workers: int) -> Iterator[Result]:
    """Run jobs through the executor that fits: in-process for one worker, else loky."""
    executor = run_in_process if n_workers <= 1 else run_loky
    return executor(worker, jobs, n_workers)
