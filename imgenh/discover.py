"""Inputs (files, folders, globs, listed paths) -> the image files they name.

Pure apart from reading the file system: nothing is written. Each file found carries its
path relative to the folder (or glob base) it was found in, which is where its output goes.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from imgenh.io import IMAGE_EXTENSIONS

GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Found:
    """One input file, where it was found, and a problem met on the way (None if none)."""

    path: Path
    rel: PurePosixPath  # path relative to the folder it was found in
    root: Path | None  # that folder, for the output-inside-input check; None for a named file
    error: str | None = None


def is_image_name(name: str) -> bool:
    """True when ``name`` ends with an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _filtered(rel: PurePosixPath, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    # Case-insensitive, like the extension match: --include '*.jpg' also takes IMG_1.JPG.
    path, name = str(rel).lower(), rel.name.lower()

    def matches(patterns):
        return any(
            fnmatch.fnmatchcase(path, p.lower()) or fnmatch.fnmatchcase(name, p.lower()) for p in patterns
        )

    return (not include or matches(include)) and not matches(exclude)


def _walk(folder: Path, recursive: bool, warnings: list[str]) -> list[Found]:
    found: list[Found] = []
    if not recursive:
        subfolders = 0
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_image_name(entry.name):
                    found.append(Found(Path(entry.path), PurePosixPath(entry.name), folder))
                elif entry.is_dir() and not entry.name.startswith("."):
                    subfolders += 1
        if subfolders:
            warnings.append(f"folder '{folder}' has {subfolders} subfolder(s) not searched (add --recursive)")
        return found
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        st = os.stat(dirpath)
        seen.add((st.st_dev, st.st_ino))
        rel_dir = PurePosixPath(Path(dirpath).relative_to(folder).as_posix())
        keep = []
        for name in sorted(dirnames):
            sub = Path(dirpath, name)
            try:
                sst = os.stat(sub)
            except OSError:
                continue
            if (sst.st_dev, sst.st_ino) in seen or _is_ancestor(sub, folder):
                found.append(
                    Found(
                        sub,
                        rel_dir / name,
                        folder,
                        "symlink loop: folder links back to itself (not followed)",
                    )
                )
            else:
                keep.append(name)
                seen.add((sst.st_dev, sst.st_ino))
        dirnames[:] = keep
        for name in filenames:
            if is_image_name(name):
                found.append(Found(Path(dirpath, name), rel_dir / name, folder))
    return found


def _is_ancestor(link: Path, top: Path) -> bool:
    """True if the folder ``link`` resolves to contains ``top`` (following it would loop)."""
    try:
        target, top_real = link.resolve(), top.resolve()
    except (OSError, RuntimeError):
        return True
    return top_real == target or target in top_real.parents


def _any_case(pattern: str) -> str:
    """Let letters outside ``[...]`` classes match either case: ``*.JPG`` -> ``*.[jJ][pP][gG]``."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        end = pattern.find("]", i + 2) if char == "[" else -1
        if end != -1:  # keep a character class as written
            out.append(pattern[i : end + 1])
            i = end + 1
            continue
        out.append(f"[{char.lower()}{char.upper()}]" if char.lower() != char.upper() else char)
        i += 1
    return "".join(out)


def _glob(pattern: str) -> tuple[Path, list[str]]:
    """Base folder of a pattern (its parts before the first wildcard) and its matches.

    Like the extension match, the wildcard part is case-insensitive: ``'shots/**/*.JPG'``
    also finds ``shots/a/b.jpg``; the base folder is taken as written.
    """
    parts = Path(pattern).parts
    cut = next((i for i, part in enumerate(parts) if GLOB_CHARS & set(part)), len(parts))
    base = Path(*parts[:cut]) if cut else Path(".")
    wild = _any_case(str(Path(*parts[cut:]))) if cut < len(parts) else ""
    return base, sorted(glob.glob(os.path.join(*parts[:cut], wild) if cut else wild, recursive=True))


def find_inputs(
    inputs: list[str],
    *,
    listed: list[str] = (),
    recursive: bool = False,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> tuple[list[Found], list[str]]:
    """Expand files, folders and glob patterns into image paths.

    Parameters
    ----------
    inputs : list of str
        Files (mirrored by name), folders and glob patterns (mirrored relative to themselves).
    listed : list of str
        Paths read from ``--files-from``: like ``inputs``, except that a relative file path
        keeps its folders under the output (``shots/a/x.jpg`` -> ``OUT/shots/a/x.jpg``),
        as ``rsync --files-from`` does, so same-named files in different folders coexist.
    recursive, include, exclude
        As the ``imgenh run`` flags.

    Returns
    -------
    found : list
        Each image with its path relative to the folder it was found in.
    warnings : list of str
        Patterns that matched nothing, folders without images, names that are not images.
        A named file that does not exist is returned with an error instead, so it is
        reported as failed.
    """
    found: list[Found] = []
    warnings: list[str] = []
    from_list = len(inputs)
    for number, arg in enumerate([*inputs, *listed]):
        path = Path(arg)
        if GLOB_CHARS & set(arg) and not os.path.lexists(arg):
            base, matches = _glob(arg)
            hits = [
                Found(Path(m), PurePosixPath(Path(m).relative_to(base).as_posix()), base)
                for m in matches
                if is_image_name(m)
            ]
            if not hits:
                warnings.append(f"pattern {arg!r} matched no images")
            found += hits
        elif path.is_dir():
            hits = _walk(path, recursive, warnings)
            if not hits:
                warnings.append(f"folder {arg!r} holds no images{'' if recursive else ' (add --recursive?)'}")
            found += hits
        elif os.path.lexists(path):
            if is_image_name(path.name):
                found.append(Found(path, _named_rel(path, number >= from_list), None))
            else:
                warnings.append(f"{arg}: not an image name ({', '.join(IMAGE_EXTENSIONS)}); skipped")
        else:
            # A named input that is gone is a failure, not a warning: a cron job fed a file
            # list must notice (exit 1, and a line in the report).
            found.append(Found(path, _named_rel(path, number >= from_list), None, "no such file or folder"))
    kept = [f for f in found if _filtered(f.rel, include, exclude)]
    if found and not kept:
        warnings.append(
            f"--include/--exclude left none of the {len(found)} images found (patterns match the path "
            "relative to each input folder, or the file name)"
        )
    return kept, warnings


def _named_rel(path: Path, keep_folders: bool) -> PurePosixPath:
    """Where a named file lands under OUT: by name, or by its relative path for listed files."""
    norm = PurePosixPath(os.path.normpath(path).replace(os.sep, "/"))
    if keep_folders and not norm.is_absolute() and ".." not in norm.parts:
        return norm
    return PurePosixPath(path.name)


def read_path_list(source: str) -> list[str]:
    """Paths from a file or stdin (``-``), one per line; blank lines and # comments are skipped.

    Bytes that are not UTF-8 are kept as they are (surrogateescape), the way Python names
    such files, so any name the file system holds can be listed.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    if source == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    lines = [line.strip() for line in data.decode("utf-8", "surrogateescape").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
