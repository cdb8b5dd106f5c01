"""Atomic files: the one place that makes, names, replaces and cleans up temp files.

Every file imgenh writes (images, reports, the manifest) goes to a temp file in the
target's folder, is fsynced, and is renamed over the target, so no reader ever sees a
half-written file under the final name. The temp name is ``.<name>.<random><TEMP_MARKER>``;
only this module makes or recognises it, and :func:`remove_temp_files` clears what a
killed run left behind.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """Write a file in pieces, atomically: yields a binary file that replaces ``path`` on success.

    The file is a temp file in ``path``'s folder (created if missing). When the block ends
    normally it is flushed, fsynced, given the mode (and where allowed the owner) of the
    file it replaces, and renamed over ``path``. When the block raises, the temp file is
    removed and ``path`` is left as it was.

    Parameters
    ----------
    path : str or Path
        The final name.

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
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, rename.

    A crash at any moment leaves either the old file or the new one under ``path``, plus
    at worst a ``*.imgenh-tmp`` file that the next run removes.

    Raises
    ------
    OutputError
        Naming the reason (read-only folder, disk full...); the temp file is removed.
    """
    with atomic_writer(path) as fh:
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
