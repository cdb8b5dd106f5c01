"""Jobs -> results through one executor seam; the parent keeps the manifest and the report.

No pixels cross process boundaries: the parent sends a job (two paths) to a
:class:`~imgenh.worker.Worker` and gets a :class:`~imgenh.report.Result` back. A run goes
through fixed phases (:class:`Runner`): plan, lock, emit what is known before any work
(skips, failures found while planning), drain results as they finish, finish (close the
manifest, remove temp files, list what a stop left undone).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imgenh import __version__, augment
from imgenh.discover import Filters, find_inputs
from imgenh.executors import PoolBroken, choose_workers, execute, jobs_warning
from imgenh.io import DEFAULT_FAIL_ON, DEFAULT_MAX_PIXELS, RenameGate, remove_temp_files
from imgenh.pipeline import Pipeline
from imgenh.plan import Plan, PlanError, Status, build_plan
from imgenh.report import Result, Summary, ignored_json
from imgenh.shard import select_shard
from imgenh.state import CHANGED_SINCE, NOT_MADE_HERE, FileStamps, Manifest, file_sha256, lock_folders
from imgenh.worker import Worker


@dataclass
class RunOptions:
    """Everything about a run except the pipeline and the inputs.

    Attributes mirror the ``imgenh run`` flags.
    """

    recursive: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hidden: bool = False  # take hidden files and folders (names starting with .)
    jobs: int | None = None
    overwrite: bool = False
    in_place: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    fail_on: str = DEFAULT_FAIL_ON
    max_failures: int = 0
    listed: tuple[str, ...] = ()  # paths from --files-from: relative files keep their folders
    figures: bool = False  # measure quality figures before/after (--figures, --html)
    thumbnails: bool = False  # and before/after thumbnails (--html)
    backend: str = "loky"  # loky, threading or dask (see imgenh.executors)
    scheduler: str | None = None  # a Dask scheduler's address; None: a LocalCluster for the run
    batch_size: int | None = None  # images per Dask task; None: about a second's worth
    shard: tuple[int, int] | None = None  # (K, N): only shard K of N (see imgenh.shard)
    variants: int | None = None  # augmentation: outputs per input (--variants); see imgenh.augment
    seed: int | None = None  # augmentation: the seed of the draws (--seed)
    variant_name: str = augment.DEFAULT_VARIANT_NAME  # augmentation: names of variants (--variant-name)


class Terminated(BaseException):
    """SIGTERM arrived; handled like Ctrl-C.

    A BaseException, like KeyboardInterrupt, so the in-process worker's catch-all for
    per-image errors does not swallow it and go on with the batch.
    """


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
    out : Path or None
        Output root; None (or ``options.in_place``) replaces the inputs.
    manifest : Manifest, optional
        Records of earlier runs into ``out``; read from ``out`` when not given.

    Raises
    ------
    imgenh.plan.PlanError
        Carrying the warnings met while finding inputs (they often explain the error).
    """
    pipeline, seed_warnings = _for_run(pipeline, options)
    filters = Filters(options.include, options.exclude, options.hidden)
    found = find_inputs(inputs, listed=options.listed, recursive=options.recursive, filters=filters)
    out = None if options.in_place else out
    if manifest is None and out is not None:
        manifest = Manifest(out).load()
    if manifest is not None:  # the run's identity, which records of earlier runs are compared with
        manifest.pipeline_hash, manifest.version = pipeline.hash(), __version__
    try:
        plan = build_plan(
            found.found,
            out,
            fmt=pipeline.output.format,
            suffix=pipeline.output.suffix,
            manifest=manifest,
            overwrite=options.overwrite,
            filters=filters,
            variants=options.variants,
            variant_name=options.variant_name,
        )
    except PlanError as exc:
        raise PlanError(exc.errors, found.warnings) from None
    plan = select_shard(plan, options.shard)
    plan.warnings[:0] = found.warnings
    plan.warnings += seed_warnings + _run_warnings(pipeline, plan, options)
    plan.ignored = found.ignored
    return plan


def _for_run(pipeline: Pipeline, options: RunOptions) -> tuple[Pipeline, list[str]]:
    """Augmentation hook: the seed set on a random pipeline; UsageError for a random run not asked for."""
    return augment.for_run(
        pipeline,
        options.variants,
        options.seed,
        in_place=options.in_place,
        variant_name=options.variant_name,
    )


def _run_warnings(pipeline: Pipeline, plan: Plan, options: RunOptions) -> list[str]:
    """What a person should hear before the run: no steps, in place, existing outputs left alone."""
    warnings = []
    if not pipeline.steps:
        warnings.append(f"{pipeline.source} has no steps: images are only re-encoded")
    if options.in_place:
        warnings.append("--in-place: the inputs themselves are being replaced")
    for reason, what in (
        (CHANGED_SINCE, ("changed since imgenh wrote it", "changed since imgenh wrote them")),
        (NOT_MADE_HERE, ("not made by imgenh here", "not made by imgenh here")),
    ):
        keys = [j.key for j in plan.jobs if j.skip == reason]
        if keys:
            shown = ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")
            one = len(keys) == 1
            count = f"{len(keys)} existing output{'' if one else 's'} {what[0] if one else what[1]}"
            left = (
                "left as it is (--overwrite replaces it)"
                if one
                else "left as they are (--overwrite replaces them)"
            )
            warnings.append(f"{count} {left}: {shown}")
    return warnings


def _on_sigterm(signum, frame):
    raise Terminated


class Runner:
    """One run of a pipeline over inputs, in phases: plan, lock, emit known, drain, finish.

    Parameters
    ----------
    pipeline : Pipeline
    inputs : list of str
        Files, folders and glob patterns.
    out : Path or None
        Output root (ignored with ``options.in_place``).
    options : RunOptions
    on_plan : callable, optional
        ``on_plan(plan, n_workers)``, before work starts.
    on_result : callable, optional
        ``on_result(result)``, in the parent, as each result arrives (progress bars, logs).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        inputs: list[str],
        out: Path | None,
        options: RunOptions,
        on_plan: Callable[[Plan, int], None] | None = None,
        on_result: Callable[[Result], None] | None = None,
    ):
        self.pipeline, _ = _for_run(pipeline, options)  # the seed is part of the hash
        self.inputs = inputs
        self.options = options
        self.out = Path(out) if out is not None and not options.in_place else None
        self.on_plan = on_plan
        self.on_result = on_result
        self.manifest = Manifest(self.out).load() if self.out else None
        self.summary = Summary(pipeline_hash=self.pipeline.hash(), pipeline_name=pipeline.name)
        self._folder_locks: list[int] = []

    def run(self) -> Summary:
        """Run the batch; see :func:`run_batch`."""
        plan = self._plan_and_lock()
        n_workers = choose_workers(plan.todo, self.options.jobs, self.options.backend)
        costly_jobs = jobs_warning(plan.todo, n_workers, self.options)
        if costly_jobs:
            plan.warnings.append(costly_jobs)
        self.summary.warnings = plan.warnings
        self.summary.ignored = ignored_json(plan)
        if self.on_plan:
            self.on_plan(plan, n_workers)
        folders = {j.output.parent for j in plan.jobs}
        remove_temp_files(folders)
        gate = RenameGate.create(self.manifest.dir if self.manifest else tempfile.gettempdir())
        self._gate_opened_ns = os.stat(gate.path).st_mtime_ns
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        start = time.perf_counter()
        results = broken = None
        try:
            self._emit_known(plan)
            opts = self.options
            worker = Worker(
                self.pipeline,
                max_pixels=opts.max_pixels,
                fail_on=opts.fail_on,
                gate=gate,
                figures=opts.figures,
                thumbnails=opts.thumbnails,
            )
            results = execute(plan.todo, worker, n_workers, opts, self.manifest and self.manifest.dir)
            self._drain(results)
        except PoolBroken as exc:
            broken = exc
        except KeyboardInterrupt:
            self.summary.interrupted = signal.SIGINT
        except Terminated:
            self.summary.interrupted = signal.SIGTERM
        finally:
            # A second Ctrl-C must not cut the finish short (and print a traceback).
            previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                self._finish(plan, gate, results, broken, folders)
            finally:
                signal.signal(signal.SIGTERM, previous)
                signal.signal(signal.SIGINT, previous_int)
                self.summary.seconds = time.perf_counter() - start
        # Everything planned appears in the report: what a stop left undone is listed as such.
        why = "interrupted" if self.summary.interrupted else self.summary.stopped_early
        self._emit_unfinished(plan, Status.SKIPPED, f"not finished: {why} (done on the next run)", log=False)
        return self.summary

    def _finish(self, plan: Plan, gate: RenameGate, results, broken: PoolBroken | None, folders) -> None:
        """Close the gate, stop the executor, record what was written, tidy up, release the locks."""
        try:
            gate.close()  # from here on no output appears: what is on disk is final
            if results is not None:
                with warnings.catch_warnings():  # joblib warns that it cancelled tasks: we asked it to
                    warnings.simplefilter("ignore", UserWarning)
                    results.close()  # stops dispatching; a pool discards work in flight
            self._recover_written(plan)
            if broken is not None:
                # Report what did not finish instead of losing the whole run; a re-run retries it.
                reason = f"not processed: a worker process died ({broken})"
                self._emit_unfinished(plan, Status.FAILED, reason)
            remove_temp_files(folders)
        finally:
            self._release()

    def _recover_written(self, plan: Plan) -> None:
        """Record images a worker renamed into place whose result never reached us (the run stopped).

        The gate was open when they were renamed, so each is a whole output of this run: its
        file is newer than the gate. Its input is hashed now, unless the input itself changed
        during the run (then it stays ``pending`` and is redone next time).
        """
        done = {r.key for r in self.summary.results}
        for job in plan.todo:
            if job.key in done:
                continue
            try:
                written = os.stat(job.output)
                source = os.stat(job.source)
            except OSError:
                continue
            if written.st_mtime_ns < self._gate_opened_ns:
                continue
            stamps = FileStamps(out_size=written.st_size, out_mtime_ns=written.st_mtime_ns)
            if self.manifest is not None:
                if source.st_mtime_ns >= self._gate_opened_ns:
                    continue
                stamps.size, stamps.mtime_ns = source.st_size, source.st_mtime_ns
                stamps.sha256 = file_sha256(job.source)
            result = Result.from_job(job, Status.OK, "")
            result.stamps = stamps
            result.notes.append("written just before the run stopped")
            self._emit(result)

    def _plan_and_lock(self) -> Plan:
        """Plan, then lock the output tree (or, in place, the input folders).

        A refused batch writes nothing, not even OUT/.imgenh. If another run finished
        between planning and locking, its records are read again and the plan redone.
        """
        plan = make_plan(self.pipeline, self.inputs, self.out, self.options, self.manifest)
        if self.manifest is not None:
            seen = self.manifest.stamp()
            try:
                self.manifest.lock()
            except OSError as exc:  # e.g. a read-only output folder: nothing can be written
                raise PlanError(
                    [f"cannot write in output folder {self.out}: {exc.strerror or exc}"]
                ) from None
            remove_temp_files({self.manifest.dir})  # a compaction cut short by a kill
            if self.manifest.stamp() != seen:
                self.manifest.records.clear()
                plan = make_plan(self.pipeline, self.inputs, self.out, self.options, self.manifest.load())
        else:
            # In place there is no output tree to lock: lock the input folders themselves, so
            # two runs never enhance the same files twice.
            self._folder_locks = lock_folders({j.output.parent for j in plan.jobs})
        return plan

    def _emit(self, result: Result, log: bool = True) -> None:
        """Record a result: in the manifest first, then in the summary.

        A Ctrl-C in between leaves it out of the summary, where :meth:`_recover_written` finds
        it again; the reverse order could report an image as written that the manifest has not.
        """
        if log and self.manifest is not None and result.status in (Status.OK, Status.FAILED):
            try:
                self.manifest.append(self.manifest.record(result))
            except OSError as exc:  # e.g. disk full: the image itself is fine; say so, go on
                result.notes.append(f"not recorded in {self.manifest.path}: {exc.strerror or exc}")
        self.summary.results.append(result)
        if log and self.on_result:
            self.on_result(result)

    def _emit_known(self, plan: Plan) -> None:
        """Results known before any work (skips, failures found while planning); mark the rest pending."""
        for job in plan.jobs:
            if job.status is not Status.PLANNED:
                self._emit(Result.from_job(job))
        if self.manifest is not None:
            pending = [Result.from_job(j, Status.PENDING) for j in plan.todo]
            self.manifest.begin(pending, [j for j in plan.jobs if j.touched])

    def _drain(self, results: Iterator[Result]) -> None:
        """Take results as they finish, stopping at ``--max-failures``."""
        failures = self.summary.count(Status.FAILED)
        limit = self.options.max_failures
        for result in results:
            self._emit(result)
            failures += result.status == Status.FAILED
            if limit and failures >= limit:
                self.summary.stopped_early = f"--max-failures {limit} reached"
                break

    def _emit_unfinished(self, plan: Plan, status: Status, reason: str, log: bool = True) -> None:
        done = {r.key for r in self.summary.results}
        for job in plan.todo:
            if job.key not in done:
                self._emit(Result.from_job(job, status, reason), log=log)

    def _release(self) -> None:
        if self.manifest is not None:
            self.manifest.close()
        for fd in self._folder_locks:
            os.close(fd)
        self._folder_locks = []


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
    imgenh.state.LockedError
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
    out_path = Path(out) if out is not None else None
    return Runner(pipeline, inputs, out_path, options, on_plan, on_result).run()
