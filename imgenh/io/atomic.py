"""Atomic files: the one place that makes, names, replaces and cleans up temp files.

Every file imgenh writes (images, reports, the manifest) goes to a temp file in the
target's folder, is fsynced, and is renamed over the target, so no reader ever sees a
half-written file under the final name. The temp name is ``.<name>.<random><TEMP_MARKER>``;
only this module makes or recognises it, and :func:`remove_temp_files` clears what a
killed run left behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from imgenh.io.image import OutputError

TEMP_MARKER = ".imgenh-tmp"


def is_temp_name(name: str) -> bool:
    """Whether a file name is one of imgenh's temp files (``.<name>.<random>.imgenh-tmp``)."""
    return name.startswith(".") and name.endswith(TEMP_MARKER)


def _temp_path(path: Path) -> Path:
    """A fresh temp name beside ``path`` (hidden, random, ending in TEMP_MARKER)."""
    return path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_MARKER}"


class RenameGate:
    """Lets files be renamed into place only while a run is going on. Picklable (a path).

    The run makes the gate file when it starts (:meth:`create`). Before each rename, a
    writer takes a shared ``flock`` on it and checks that it is still the file at that
    path. To stop, the run takes the exclusive lock, which waits only for renames already
    under way (microseconds), and removes the file (:meth:`close`). From then on no writer
    renames anything, not even a pool worker the run could not stop in time, so the
    outputs on disk are exactly those renamed before :meth:`close` returned.

    Parameters
    ----------
    path : Path
        The gate file.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._held: int | None = None

    @classmethod
    def create(cls, folder: str | Path) -> RenameGate:
        """Make a new, open gate in ``folder`` (its name is a temp name, so a killed run's gate is cleaned up)."""
        gate = cls(_temp_path(Path(folder) / "gate"))
        gate.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(gate.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return gate

    def __getstate__(self) -> dict:
        return {"path": self.path, "_held": None}

    @contextlib.contextmanager
    def passage(self) -> Iterator[bool]:
        """Hold the gate open for one rename: yields True when the rename may go ahead."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:  # removed: the run has stopped
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:  # the run is closing it right now
                yield False
                return
            try:
                still_there = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except OSError:
                still_there = False
            yield still_there
        finally:
            os.close(fd)

    def close(self) -> None:
        """Stop all renames: wait for those under way, then remove the gate file. Idempotent."""
        if self._held is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        fcntl.flock(fd, fcntl.LOCK_EX)  # blocks only while a rename is under way
        self._held = fd  # kept until the process ends: nobody reopens a removed file anyway
        with contextlib.suppress(OSError):
            os.unlink(self.path)


@contextlib.contextmanager
def atomic_writer(path: str | Path, gate: RenameGate | None = None) -> Iterator[BinaryIO]:
    """Write a file in pieces, atomically: yields a binary file that replaces ``path`` on success.

    The file is a temp file in ``path``'s folder (created if missing). When the block ends
    normally it is flushed, fsynced, given the mode (and where allowed the owner) of the
    file it replaces, and renamed over ``path``. When the block raises, the temp file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The final name.
    gate : RenameGate, optional
        The run's gate: when it is closed, the temp file is removed instead of renamed and
        :class:`OutputError` is raised.

    Yields
    ------
    BinaryIO
        Write bytes to it (wrap it in ``io.TextIOWrapper`` for text).

    Raises
    ------
    OutputError
        Naming ``path`` and the reason (read-only folder, disk full...), for any OSError
        while opening, writing (in the block too), syncing or renaming.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temp_path(path)
        # O_EXCL with mode 0666: the kernel applies the umask, as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot write {path} (in its folder): {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        _keep_permissions(path, tmp)
        with contextlib.nullcontext(True) if gate is None else gate.passage() as open_:
            if not open_:
                raise _Stopped(f"not written: the run stopped before {path} was renamed into place")
            os.replace(tmp, path)
    except _Stopped as exc:
        _remove(tmp)
        raise OutputError(str(exc)) from None
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise


class _Stopped(Exception):
    """The gate was closed before the rename."""


def atomic_write(path: str | Path, data: bytes, gate: RenameGate | None = None) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, rename.

    A crash at any moment leaves either the old file or the new one under ``path``, plus
    at worst a ``*.imgenh-tmp`` file that the next run removes.

    Raises
    ------
    OutputError
        Naming the reason (read-only folder, disk full...); the temp file is removed.
    """
    with atomic_writer(path, gate) as fh:
        fh.write(data)


def remove_temp_files(folders: Iterable[str | Path]) -> int:
    """Delete leftover temp files (from a killed run) in ``folders``; return the count.

    Only the folders themselves are looked at, not their subfolders. Files that cannot be
    listed or removed are left alone.
    """
    removed = 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if is_temp_name(entry.name):
                try:
                    os.unlink(entry.path)
                    removed += 1
                except OSError:
                    pass
    return removed


def _keep_permissions(path: Path, tmp: Path) -> None:
    """Give a replacement the mode (and, where allowed, the owner) of the file it replaces.

    So ``--in-place`` and ``--overwrite`` never make a private photo world-readable.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):  # only root may give a file away
        os.chown(tmp, st.st_uid, st.st_gid)


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(tmp)
