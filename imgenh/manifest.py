"""What earlier runs wrote into an output tree, and the lock that keeps two runs apart.

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
from dataclasses import asdict, dataclass
from pathlib import Path

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
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = self.root / STATE_DIR
        self.path = self.dir / JOURNAL
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
                tmp = self.path.with_name(JOURNAL + ".tmp")
                try:
                    with open(tmp, "w", encoding="utf-8") as fh:
                        for rec in self.records.values():
                            fh.write(json.dumps(asdict(rec), separators=(",", ":")) + "\n")
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, self.path)
                except OSError:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
        finally:
            if self._lock_fh is not None:
                self._lock_fh.close()
                self._lock_fh = None
