"""Jobs -> results, in parallel: the worker reads, processes and writes one image itself.

No pixels cross process boundaries: the parent sends a job (two paths) and gets a
:class:`~imgenh.report.Result` back. The worker never raises; one bad image never takes
the batch down. The parent keeps the progress bar, the manifest and the report.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2

from imgenh import __version__
from imgenh.io import (
    DEFAULT_MAX_PIXELS,
    TEMP_MARKER,
    ImageError,
    OutputError,
    header_size,
    read_image,
    sniff_format,
    write_image,
)
from imgenh.manifest import Manifest, Record, lock_folders
from imgenh.pipeline import Pipeline, StepError
from imgenh.plan import SAME_CONTENT, Job, Plan, PlanError, build_plan, find_inputs
from imgenh.report import Result, Summary

# Starting a process pool costs ~0.5 s; below about this much input a single process wins.
POOL_MIN_PIXELS = 80_000_000


class Worker:
    """Process one job: read, apply the pipeline, write. Picklable; built once in the parent.

    Parameters
    ----------
    pipeline : Pipeline
    max_pixels : int
        Refuse inputs whose header claims more pixels.
    fail_on : {"none", "truncated", "error"}
        Decoding strictness (see :func:`imgenh.io.read_image`).
    single_thread : bool
        Limit OpenCV to one thread, so N workers do not oversubscribe the cores.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        fail_on: str = "truncated",
        single_thread: bool = False,
    ):
        self.pipeline = pipeline
        self.max_pixels = max_pixels
        self.fail_on = fail_on
        self.single_thread = single_thread

    def __call__(self, job: Job) -> Result:
        if self.single_thread:
            cv2.setNumThreads(1)
        start = time.perf_counter()
        result = Result(str(job.source), str(job.output), job.key, "failed")
        try:
            st = os.stat(job.source)
            result.size, result.mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            pass
        try:
            image = read_image(job.source, max_pixels=self.max_pixels, fail_on=self.fail_on)
            result.sha256 = image.sha256  # of the very bytes decoded
            image, result.values = self.pipeline.apply_image(image)
            out = self.pipeline.output
            result.notes = image.notes + write_image(
                job.output, image, quality=out.quality, metadata=out.metadata
            )
            written = os.stat(job.output)  # so a later run can tell if someone changed it
            result.out_size, result.out_mtime_ns = written.st_size, written.st_mtime_ns
            result.status = "ok"
        except (ImageError, OutputError, StepError) as exc:
            result.reason = str(exc)  # a StepError names the step: "steps[0] white_balance: ..."
        except MemoryError:
            result.reason = "out of memory"
        except Exception as exc:  # a bug or an operator limit: report it, keep the batch going
            result.reason = f"internal error: {type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - start
        return result


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


class PoolBroken(Exception):
    """The worker pool failed as a whole (a worker died: crash, out of memory, killed)."""


def execute(jobs: list[Job], worker: Worker, n_workers: int) -> Iterator[Result]:
    """Run jobs and yield results as they finish (in-process when ``n_workers == 1``).

    Raises
    ------
    PoolBroken
        When the pool cannot go on; the jobs not yet yielded were not finished.
    """
    if n_workers <= 1:
        for job in jobs:
            yield worker(job)
        return
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
    try:
        yield from parallel(delayed(worker)(job) for job in jobs)
    except Exception as exc:  # Worker never raises, so this is the pool itself (TerminatedWorkerError...)
        raise PoolBroken(f"{type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


def _refreshed(plan: Plan, manifest: Manifest) -> list[Record]:
    """Records with the new mtime of inputs that were touched but not changed (hashed once)."""
    recs = []
    for job in plan.jobs:
        if job.skip == SAME_CONTENT:
            with contextlib.suppress(OSError):
                st = os.stat(job.source)
                recs.append(replace(manifest.records[job.key], size=st.st_size, mtime_ns=st.st_mtime_ns))
    return recs


def remove_temp_files(folders: set[Path]) -> int:
    """Delete leftover ``*.imgenh-tmp`` files (from a killed run) in ``folders``; return the count."""
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith(".") and entry.name.endswith(TEMP_MARKER):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


class Terminated(BaseException):
    """SIGTERM arrived; handled like Ctrl-C.

    A BaseException, like KeyboardInterrupt, so the in-process worker's catch-all for
    per-image errors does not swallow it and go on with the batch.
    """


@dataclass
class RunOptions:
    """Everything about a run except the pipeline and the inputs.

    Attributes mirror the ``imgenh run`` flags.
    """

    recursive: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    jobs: int | None = None
    overwrite: bool = False
    in_place: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    fail_on: str = "truncated"
    max_failures: int = 0
    listed: tuple[str, ...] = ()  # paths from --files-from: relative files keep their folders


def make_plan(
    pipeline: Pipeline,
    inputs: list[str],
    out: Path | None,
    options: RunOptions,
    manifest: Manifest | None = None,
) -> Plan:
    """Find the inputs and plan the jobs (see :mod:`imgenh.plan`); touches nothing.

    Parameters
    ----------
    manifest : Manifest, optional
        Records of earlier runs into ``out``; read from ``out`` when not given.

    Raises
    ------
    imgenh.plan.PlanError
        Carrying the warnings met while finding inputs (they often explain the error).
    """
    found, found_warnings = find_inputs(
        inputs,
        listed=options.listed,
        recursive=options.recursive,
        include=options.include,
        exclude=options.exclude,
    )
    if manifest is None and out is not None and not options.in_place:
        manifest = Manifest(out).load()
    try:
        plan = build_plan(
            found,
            out,
            fmt=pipeline.output.format,
            suffix=pipeline.output.suffix,
            pipeline_hash=pipeline.hash(),
            version=__version__,
            manifest=manifest,
            overwrite=options.overwrite,
            in_place=options.in_place,
        )
    except PlanError as exc:
        raise PlanError(exc.errors, found_warnings) from None
    plan.warnings[:0] = found_warnings
    return plan


def run_batch(
    pipeline: Pipeline,
    inputs: list[str],
    out: str | Path | None,
    options: RunOptions | None = None,
    *,
    on_plan: Callable[[Plan, int], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Summary:
    """Run ``pipeline`` over ``inputs`` into ``out``.

    Parameters
    ----------
    pipeline : Pipeline
        From :func:`imgenh.load_pipeline`.
    inputs : list of str
        Files, folders and glob patterns.
    out : str or Path or None
        Output root (None with ``options.in_place``).
    options : RunOptions
    on_plan : callable, optional
        Called with the plan and the number of workers before work starts.
    on_result : callable, optional
        Called in the parent with each result as it arrives (progress bars, logs).

    Returns
    -------
    Summary
        Check ``summary.exit_code``; ``interrupted`` is set when SIGINT/SIGTERM stopped it.

    Raises
    ------
    imgenh.plan.PlanError
        Unusable inputs or output (nothing was written).
    imgenh.manifest.LockedError
        Another run holds the output tree.

    Examples
    --------
    >>> from imgenh import load_pipeline, run_batch  # doctest: +SKIP
    >>> summary = run_batch(load_pipeline("configs/default.yaml"), ["sample_images"], "out")  # doctest: +SKIP
    """
    options = options or RunOptions()
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # one folder or file, not a sequence of characters
    inputs = [os.fspath(i) for i in inputs]
    out_path = Path(out) if out is not None and not options.in_place else None
    manifest = Manifest(out_path).load() if out_path is not None else None
    # Plan first (a refused batch writes nothing, not even OUT/.imgenh), then lock; if
    # another run finished in between, its records are read again and the plan redone.
    plan = make_plan(pipeline, inputs, out_path, options, manifest)
    if manifest is not None:
        seen = manifest.stamp()
        try:
            manifest.lock()
        except OSError as exc:  # e.g. a read-only output folder: nothing can be written
            raise PlanError([f"cannot write in output folder {out_path}: {exc.strerror or exc}"]) from None
        if manifest.stamp() != seen:
            manifest.records.clear()
            plan = make_plan(pipeline, inputs, out_path, options, manifest.load())
    # In place there is no output tree to lock: lock the input folders instead (flock on the
    # folders themselves), so two runs never enhance the same files twice.
    folder_locks = lock_folders({j.output.parent for j in plan.jobs}) if options.in_place else []
    summary = Summary(pipeline_hash=pipeline.hash(), pipeline_name=pipeline.name, warnings=plan.warnings)
    todo = [j for j in plan.jobs if j.skip is None and j.error is None]
    n_workers = choose_workers(todo, options.jobs)
    if on_plan:
        on_plan(plan, n_workers)
    folders = {j.output.parent for j in plan.jobs}
    remove_temp_files(folders)

    def record(result: Result) -> Record:
        return Record(
            result.key,
            os.path.abspath(result.source),
            result.size,
            result.mtime_ns,
            result.sha256,
            summary.pipeline_hash,
            __version__,
            result.status,
            result.out_size,
            result.out_mtime_ns,
        )

    def emit(result: Result) -> None:
        summary.results.append(result)
        if manifest is not None and result.status in ("ok", "failed"):
            try:
                manifest.append(record(result))
            except OSError as exc:  # e.g. disk full: the image itself is fine; say so, go on
                result.notes.append(f"not recorded in {manifest.path}: {exc.strerror or exc}")
        if on_result:
            on_result(result)

    def on_term(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_term)
    start = time.perf_counter()
    results = None
    try:
        for job in plan.jobs:
            if job.skip is not None:
                emit(Result(str(job.source), str(job.output), job.key, "skipped", reason=job.skip))
            elif job.error is not None:
                emit(Result(str(job.source), str(job.output), job.key, "failed", reason=job.error))
        if manifest is not None:
            pending = [record(Result(str(j.source), str(j.output), j.key, "pending")) for j in todo]
            with contextlib.suppress(OSError):  # best effort: only refines the next run's plan
                manifest.start(pending + _refreshed(plan, manifest))
        results = execute(
            todo, Worker(pipeline, max_pixels=options.max_pixels, fail_on=options.fail_on), n_workers
        )
        failures = summary.count("failed")
        for result in results:
            emit(result)
            failures += result.status == "failed"
            if options.max_failures and failures >= options.max_failures:
                summary.stopped_early = f"--max-failures {options.max_failures} reached"
                break
    except PoolBroken as exc:
        # Report what did not finish instead of losing the whole run; a re-run retries it.
        done = {r.key for r in summary.results}
        for job in todo:
            if job.key not in done:
                reason = f"not processed: a worker process died ({exc})"
                emit(Result(str(job.source), str(job.output), job.key, "failed", reason=reason))
    except KeyboardInterrupt:
        summary.interrupted = signal.SIGINT
    except Terminated:
        summary.interrupted = signal.SIGTERM
    finally:
        if results is not None:
            with warnings.catch_warnings():  # joblib warns that it cancelled tasks: we asked it to
                warnings.simplefilter("ignore", UserWarning)
                results.close()  # stops dispatching; a pool discards work in flight
        signal.signal(signal.SIGTERM, previous)
        summary.seconds = time.perf_counter() - start
        remove_temp_files(folders)
        if manifest is not None:
            manifest.close()
        for fd in folder_locks:
            os.close(fd)
    # Everything planned appears in the report: what a stop left undone is listed as such.
    done = {r.key for r in summary.results}
    why = "interrupted" if summary.interrupted else summary.stopped_early
    for job in todo:
        if job.key not in done:
            reason = f"not finished: {why} (done on the next run)"
            summary.results.append(
                Result(str(job.source), str(job.output), job.key, "skipped", reason=reason)
            )
    return summary
