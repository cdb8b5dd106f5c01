"""One image, start to end: read -> pipeline.apply_image -> write, returning a Result.

The worker never raises for a bad image and never returns pixels: only a small
:class:`~imgenh.report.Result` crosses the process boundary. It is a picklable callable
built once in the parent, so it runs the same in-process, under loky or on a cluster.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np

from imgenh import augment
from imgenh.io import (
    DEFAULT_FAIL_ON,
    DEFAULT_MAX_PIXELS,
    EXTENSION_CONTAINER,
    Image,
    ImageError,
    OutputError,
    RenameGate,
    read_image,
    write_image,
    write_source_bytes,
)
from imgenh.pipeline import Pipeline, StepError
from imgenh.plan import Job, Status
from imgenh.report import UNCHANGED_PREFIX, Result
from imgenh.state import FileStamps

# The note of an image written as its input's bytes (quiet: a per-image fact, in the report).
UNCHANGED_NOTE = f"{UNCHANGED_PREFIX}: the input's bytes were written as they are"


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
        Limit OpenCV to one thread, so N workers do not oversubscribe the cores. Set for
        pool workers, which also ignore SIGINT: a Ctrl-C reaches the whole process group,
        and the parent alone decides what happens (see :class:`imgenh.runner.Runner`).
    gate : RenameGate, optional
        The run's gate: once the run stops, outputs are no longer renamed into place.
    figures : bool
        Measure the quality figures of each input and output (``result.extras``).
    thumbnails : bool
        Also make small before/after thumbnails (for the HTML report).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        fail_on: str = DEFAULT_FAIL_ON,
        single_thread: bool = False,
        gate: RenameGate | None = None,
        figures: bool = False,
        thumbnails: bool = False,
    ):
        self.pipeline = pipeline
        self.max_pixels = max_pixels
        self.fail_on = fail_on
        self.single_thread = single_thread
        self.gate = gate
        self.figures = figures or thumbnails
        self.thumbnails = thumbnails
        self._parent_pid = os.getpid()  # the process that built it: its Ctrl-C handling is its own

    def __call__(self, job: Job) -> Result:
        if self.single_thread:
            cv2.setNumThreads(1)
            # Only a pool process ignores SIGINT; run in the parent (joblib may fall back to
            # running tasks there), it would leave Ctrl-C ignored for the rest of that process.
            in_pool = os.getpid() != self._parent_pid
            if in_pool and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)
        start = time.perf_counter()
        result = Result.from_job(job, Status.FAILED, "")
        result.stamps = stamps = FileStamps()
        try:
            st = os.stat(job.source)
            stamps.size, stamps.mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            pass
        try:
            self._process(job, result)
            result.status = Status.OK
        except (ImageError, OutputError, StepError) as exc:
            result.reason = str(exc)  # a StepError names the step: "steps[0] white_balance: ..."
        except MemoryError:
            result.reason = "out of memory"
        except Exception as exc:  # a bug or an operator limit: report it, keep the batch going
            result.reason = f"internal error: {type(exc).__name__}: {exc}"
        result.seconds = time.perf_counter() - start
        return result

    def _process(self, job: Job, result: Result) -> None:
        """Read, apply and write one image, filling ``result`` as it goes."""
        image = read_image(job.source, max_pixels=self.max_pixels, fail_on=self.fail_on)
        result.stamps.sha256 = image.sha256  # of the very bytes decoded
        before = image
        pipeline, drawn = self.pipeline, []
        if pipeline.is_random:  # augmentation hook: this variant's concrete steps, drawn for it alone
            pipeline, drawn = augment.draw(pipeline, job.input_key, job.variant or 0)
        # The decoded pixels are this worker's: a pointwise group may be written over them unless
        # the figures compare them with the result.
        image, values = pipeline.apply_image(image, reuse_input=not self.figures)
        result.values = drawn + values
        if self.figures:  # measured before writing: the pixels as processed, not as re-encoded
            from imgenh.html_report import image_extras  # only here: html and its tables load late

            result.extras = image_extras(
                before.pixels,
                image.pixels,
                before_alpha=before.alpha,
                after_alpha=image.alpha,
                thumbs=self.thumbnails,
            )
        out = self.pipeline.output
        if self._copied_unchanged(job, before, image):
            result.notes = image.notes + [UNCHANGED_NOTE]
        else:
            result.notes = image.notes + write_image(
                job.output, image, quality=out.quality, metadata=out.metadata, gate=self.gate
            )
        written = os.stat(job.output)  # so a later run can tell if someone changed it
        result.stamps.out_size, result.stamps.out_mtime_ns = written.st_size, written.st_mtime_ns

    def _copied_unchanged(self, job: Job, before: Image, after: Image) -> bool:
        """Write the input's own bytes when the steps left it exactly as decoded (``unchanged: copy``).

        Only where that is the same file an encode would describe: the output's container is
        the input's, metadata is kept, and the pixels were not turned upright from EXIF
        orientation (an encode would store them turned).
        """
        out = self.pipeline.output
        if out.unchanged != "copy" or out.metadata != "keep" or before.turned:
            return False
        if EXTENSION_CONTAINER.get(Path(job.output).suffix.lower()) != before.format:
            return False
        if after.pixels is not before.pixels and np.may_share_memory(after.pixels, before.pixels):
            return False  # written over the decoded pixels (apply_image's reuse_input): they changed
        if not before.same_pixels_as(after):
            return False
        return write_source_bytes(job.output, job.source, before.sha256, self.gate)
