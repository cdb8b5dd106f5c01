"""What earlier runs wrote into an output tree, and the lock that keeps two runs apart.

The manifest lives in ``OUT/.imgenh/``: ``manifest.jsonl`` is a journal with one JSON line
per finished image, appended (and fsynced) only after the image is in place. A run killed
mid-line leaves a torn last line, which is ignored when reading; the newest record for an
output wins. At the end of a run the journal is compacted to one line per output and
swapped in atomically.

The lock is an ``flock`` on ``OUT/.imgenh/lock``: the kernel drops it when its process
dies, so a run killed with SIGKILL never blocks the next cron run.
"""

from __future__ import annotations

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
        ``ok`` or ``failed``.
    """

    output: str
    source: str
    size: int
    mtime_ns: int
    sha256: str
    pipeline: str
    version: str
    status: str


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

    def append(self, rec: Record) -> None:
        """Record one finished image (after its output is in place)."""
        if self._fh is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the run)
        self._fh.write(json.dumps(asdict(rec), separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.records[rec.output] = rec

    def close(self) -> None:
        """Compact the journal to one line per output, atomically, and release the lock."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            tmp = self.path.with_name(JOURNAL + ".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                for rec in self.records.values():
                    fh.write(json.dumps(asdict(rec), separators=(",", ":")) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None
