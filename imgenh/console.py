"""What a person sees during a run: log lines, the progress bar and the printed plan.

Fed by the runner's ``on_plan`` / ``on_result`` callbacks; knows nothing of Click. Log lines
go to stderr as ``imgenh: warning: ...`` without breaking the progress bar.
"""

from __future__ import annotations

import logging
import sys
import time

from imgenh.plan import Plan, Status
from imgenh.report import Result, note_kind

log = logging.getLogger("imgenh")


class _TqdmAwareHandler(logging.Handler):
    """Log lines to stderr without breaking a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


class _Formatter(logging.Formatter):
    """``imgenh: warning: ...``: lower-case levels, like the ``imgenh: error:`` usage lines."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def plural(n: int, word: str) -> str:
    """``1 image``, ``2 images``."""
    return f"{n} {word}{'s' * (n != 1)}"


def setup_logging(level: str) -> None:
    """Route the ``imgenh`` logger to stderr at ``level`` (debug, info, warning, error)."""
    handler = _TqdmAwareHandler()
    handler.setFormatter(_Formatter("imgenh: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


class ConsoleReporter:
    """Progress bar and log lines for one run.

    Parameters
    ----------
    show_bar : bool
        Draw a progress bar on stderr.
    """

    def __init__(self, show_bar: bool):
        self.show_bar = show_bar
        self.bar = None
        self._seen_notes: set[str] = set()
        self._done = 0
        self._todo = 0

    def on_plan(self, plan: Plan, n_workers: int) -> None:
        """Say what the run is about to do and start the bar."""
        for warning in plan.warnings:
            log.warning(warning)
        todo = self._todo = len(plan.todo)
        log.info(
            "%s: %d to process with %s, %d to skip",
            plural(len(plan.jobs), "image"),
            todo,
            plural(n_workers, "worker"),
            plan.counts[Status.SKIPPED],
        )
        if self.show_bar:
            from tqdm import tqdm

            # No monitor thread: its writes to stderr could land in a decode's captured output.
            tqdm.monitor_interval = 0
            self.bar = tqdm(total=todo, unit="img", file=sys.stderr, dynamic_ncols=True, desc="imgenh")

    def on_result(self, result: Result) -> None:
        """Log one result and move the bar.

        A processed image's ``-v`` line carries the time and ``[n/N]`` (among the images to
        process), so a cron log shows how far a long run has come.
        """
        if result.status != Status.SKIPPED:
            self._done += 1
        if result.status == Status.FAILED:
            log.error("%s: %s", result.source, result.reason)
        elif result.status == Status.OK:
            when = time.strftime("%Y-%m-%dT%H:%M:%S")
            where = f"[{self._done}/{self._todo}]"
            log.info("%s %s %s -> %s (%.2f s)", when, where, result.source, result.output, result.seconds)
        else:
            log.debug("%s: skipped: %s", result.source, result.reason)
        for note in result.notes:
            kind = note_kind(note)
            if kind == "quiet":
                log.debug("%s: %s", result.source, note)
            elif kind == "per_file":  # about this file: say which
                log.warning("%s: %s", result.source, note)
            elif note not in self._seen_notes:
                self._seen_notes.add(note)
                log.warning("%s (first: %s)", note, result.source)
        if self.bar is not None and result.status != Status.SKIPPED:
            self.bar.update(1)

    def close(self) -> None:
        """Close the progress bar (call once the run is over, also after an error)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def print_plan(plan: Plan, echo) -> None:
    """The plan, one line per image, then its totals.

    Parameters
    ----------
    plan : Plan
    echo : callable
        ``echo(line, err=False)``: where the lines go (stdout, or stderr when stdout carries
        the JSON report); the totals line always goes to stderr.
    """
    for warning in plan.warnings:
        log.warning(warning)
    words = {Status.FAILED: "fail", Status.SKIPPED: "skip", Status.PLANNED: "process"}
    for job in plan.jobs:
        target = f" -> {job.output}" if job.status is Status.PLANNED else ""
        echo(f"{words[job.status]:<8} {job.source}{target}  ({job.reason})")
    counts = plan.counts
    echo(
        f"dry run: {counts[Status.PLANNED]} to process, {counts[Status.SKIPPED]} to skip, "
        f"{counts[Status.FAILED]} failing; nothing written",
        err=True,
    )
