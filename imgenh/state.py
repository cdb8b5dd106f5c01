"""Run state: what earlier runs wrote into an output tree, whether an output is up to date,
and the locks that keep two runs apart.

This module is the one home of the "changed since last time" decision (:meth:`Manifest.verdict`),
of turning a finished image into its record (:meth:`Manifest.record`) and of refreshing the
recorded mtime of inputs that were touched but not changed.

The manifest lives in ``OUT/.imgenh/``: ``manifest.jsonl`` is a journal with one JSON line
per finished image, appended (and fsynced) only after the image is in place. A run killed
mid-line leaves a torn last line, which is ignored when reading (and closed with a newline
before the next append, so it cannot swallow the next record); the newest record for an
output wins. Before work starts, every image about to be processed gets a ``pending`` line,
so an output renamed into place just before a kill is known to be imgenh's and redone,
not mistaken for a file someone else put there. At the end of a run the journal is
compacted to one line per output and swapped in atomically.

The lock is an ``flock`` on ``OUT/.imgenh/lock``: the kernel drops it when its process
dies, so a run killed with SIGKILL never blocks the next cron run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from imgenh.io import OutputError, atomic_writer

if TYPE_CHECKING:  # only for annotations: the plan and the report import this module
    from imgenh.plan import Job
    from imgenh.report import Result

STATE_DIR = ".imgenh"
JOURNAL = "manifest.jsonl"
LOCK = "lock"


class LockedError(Exception):
    """Another imgenh run holds the output tree."""


@dataclass
class Record:
    """One output's history: where it came from and how it was made.

    Attributes
    ----------
    output : str
        Output path relative to the output root (POSIX separators): the key.
    source : str
        Absolute input path.
    size, mtime_ns : int
        Input identity when it was processed.
    sha256 : str
        Input content hash, checked when size or mtime changed.
    pipeline : str
        Pipeline hash (steps and output settings).
    version : str
        imgenh version that wrote it.
    status : str
        ``ok``, ``failed``, or ``pending`` (started by a run that did not record the end).
    out_size, out_mtime_ns : int
        The output file as written (0 if unknown): a different file there now was
        changed by someone else and is not overwritten without ``--overwrite``.
    """

    output: str
    source: str
    size: int
    mtime_ns: int
    sha256: str
    pipeline: str
    version: str
    status: str
    out_size: int = 0
    out_mtime_ns: int = 0


# Why an existing output is left alone (the plan counts these to warn about them).
NOT_MADE_HERE = "output exists (not made by imgenh here; --overwrite replaces it)"
CHANGED_SINCE = "output changed since imgenh wrote it (--overwrite replaces it)"


@dataclass
class FileStamps:
    """Identity of an input as it was read and of the output written from it.

    The worker fills it in; only the manifest reads it (the report leaves it out).

    Attributes
    ----------
    size, mtime_ns : int
        The input file when it was read.
    sha256 : str
        Hash of the input bytes that were decoded.
    out_size, out_mtime_ns : int
        The output file as written (0 if not written).
    """

    size: int = 0
    mtime_ns: int = 0
    sha256: str = ""
    out_size: int = 0
    out_mtime_ns: int = 0


@dataclass(frozen=True)
class Verdict:
    """Whether one output needs work, decided without decoding anything.

    Attributes
    ----------
    skip : str or None
        Why the image is not processed this time; None to process it.
    why : str
        Why it is processed (new, input changed, pipeline changed, --overwrite...).
    touched : bool
        Skipped because the input's content is unchanged although its mtime moved: the
        new mtime is recorded, so later runs skip it on size and mtime alone.
    """

    skip: str | None
    why: str = ""
    touched: bool = False


def lock_folders(folders: set[Path]) -> list[int]:
    """Lock input folders for ``--in-place`` (flock on the folders themselves: nothing is written).

    Returns
    -------
    list of int
        Open descriptors holding the locks; closing them (or the process dying) releases them.

    Raises
    ------
    LockedError
        When another imgenh run works in place in one of the folders.
    """
    fds: list[int] = []
    for folder in sorted(folders):
        fd = os.open(folder, os.O_RDONLY)
        fds.append(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            for held in fds:
                os.close(held)
            raise LockedError(
                f"{folder} is being changed in place by another imgenh run; try again later"
            ) from None
    return fds


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class Manifest:
    """The journal of one output tree.

    Parameters
    ----------
    root : Path
        The output root (``-o OUT``).
    pipeline_hash : str
        Hash of the pipeline of this run; outputs made by another pipeline are redone.
    version : str
        imgenh version of this run; outputs written by another version are redone
        (operators may have changed). Empty: not compared.
    """

    def __init__(self, root: Path, pipeline_hash: str = "", version: str = ""):
        self.root = Path(root)
        self.dir = self.root / STATE_DIR
        self.path = self.dir / JOURNAL
        self.pipeline_hash = pipeline_hash
        self.version = version
        self.records: dict[str, Record] = {}
        self._fh = None
        self._lock_fh = None

    def load(self) -> Manifest:
        """Read the journal (a missing file is an empty manifest; torn lines are skipped)."""
        try:
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        rec = Record(**json.loads(line))
                    except (ValueError, TypeError):
                        continue  # a line torn by a kill, or from an incompatible version
                    self.records[rec.output] = rec
        except FileNotFoundError:
            pass
        return self

    def verdict(self, source: Path, target: Path, key: str, overwrite: bool = False) -> Verdict:
        """Whether the output ``key`` (at ``target``, made from ``source``) needs work.

        Nothing is decoded: the input's size and mtime are compared with the record, and
        its SHA-256 only when the size matches but the mtime moved.
        """
        rec = self.records.get(key)
        unfinished = {"failed": "retry: failed before", "pending": "redo: interrupted before"}
        if not os.path.lexists(target):
            return Verdict(None, "new" if rec is None else unfinished.get(rec.status, "output missing"))
        if overwrite:
            return Verdict(None, "--overwrite")
        if rec is None:
            return Verdict(NOT_MADE_HERE)
        if rec.status == "ok" and rec.out_size and _changed(target, rec.out_size, rec.out_mtime_ns):
            # Someone edited or replaced the output since imgenh wrote it: never overwrite their work.
            return Verdict(CHANGED_SINCE)
        if rec.pipeline != self.pipeline_hash:
            return Verdict(None, "pipeline changed")
        if self.version and rec.version != self.version:
            return Verdict(None, f"made by imgenh {rec.version}")
        if rec.status != "ok":
            return Verdict(None, unfinished.get(rec.status, "retry"))
        try:
            st = os.stat(source)
        except OSError:
            return Verdict(None, "input changed")
        if st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns:
            return Verdict("up to date")
        if st.st_size == rec.size and file_sha256(source) == rec.sha256:
            return Verdict("up to date (same content, new mtime)", touched=True)
        return Verdict(None, "input changed")

    def record(self, result: Result) -> Record:
        """The record of a result (a finished image, or one about to start as ``pending``)."""
        stamps = result.stamps or FileStamps()
        return Record(
            result.key,
            os.path.abspath(result.source),
            stamps.size,
            stamps.mtime_ns,
            stamps.sha256,
            self.pipeline_hash,
            self.version,
            str(result.status),
            stamps.out_size,
            stamps.out_mtime_ns,
        )

    def begin(self, pending: list[Result], touched: list[Job]) -> None:
        """Mark ``pending`` results before work starts, and record the new mtime of ``touched`` inputs.

        Best effort: a failure here only makes the next run redo or re-hash more.
        """
        recs = [self.record(r) for r in pending]
        for job in touched:
            with contextlib.suppress(OSError, KeyError):
                st = os.stat(job.source)
                recs.append(replace(self.records[job.key], size=st.st_size, mtime_ns=st.st_mtime_ns))
        with contextlib.suppress(OSError):
            self.start(recs)

    def stamp(self) -> tuple[int, int] | None:
        """Size and mtime of the journal (None if absent): tells whether another run wrote to it."""
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_size, st.st_mtime_ns

    def lock(self) -> None:
        """Take the output tree's lock or raise :class:`LockedError` at once."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = open(self.dir / LOCK, "a+")  # noqa: SIM115 (held for the whole run)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LockedError(
                f"{self.root} is in use by another imgenh run ({holder}); "
                "wait for it to finish or choose another output folder"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}")
        fh.flush()
        self._lock_fh = fh

    def _open(self):
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            fh = open(self.path, "a+b")  # noqa: SIM115 (kept open for the run)
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")  # end a line torn by a kill, so the next record stays whole
            self._fh = fh
        return self._fh

    def _write(self, recs: list[Record], sync: bool) -> None:
        fh = self._open()
        fh.write(b"".join(json.dumps(asdict(r), separators=(",", ":")).encode() + b"\n" for r in recs))
        fh.flush()
        if sync:
            os.fsync(fh.fileno())

    def start(self, recs: list[Record]) -> None:
        """Write a batch of records in one go (one write, no fsync).

        Used to mark images ``pending`` before they are processed: a kill leaves them
        pending, so the next run redoes them even when the output was renamed into place
        before the kill; the flush is enough for that, since the kernel keeps written
        data when a process dies. Also used to refresh the identity of inputs whose mtime
        changed but whose content did not, so they are not hashed again on every run.
        """
        if recs:
            self._write(recs, sync=False)
            self.records.update((r.output, r) for r in recs)

    def append(self, rec: Record) -> None:
        """Record one finished image (after its output is in place).

        Raises
        ------
        OSError
            When the journal cannot be written (e.g. disk full); the record is still kept
            in memory for the compaction at :meth:`close`.
        """
        self.records[rec.output] = rec
        self._write([rec], sync=True)

    def close(self) -> None:
        """Compact the journal to one line per output, atomically, and release the lock.

        If the compacted copy cannot be written (disk full), the journal stays as it is:
        longer, but complete up to the last line that could be written.
        """
        try:
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
                self._fh = None
                with contextlib.suppress(OutputError), atomic_writer(self.path) as fh:
                    for rec in self.records.values():
                        fh.write(json.dumps(asdict(rec), separators=(",", ":")).encode() + b"\n")
        finally:
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None


def _changed(path: Path, size: int, mtime_ns: int) -> bool:
    """True when the file at ``path`` is gone or no longer has this size and mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (st.st_size, st.st_mtime_ns) != (size, mtime_ns)
