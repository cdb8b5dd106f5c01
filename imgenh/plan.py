"""Inputs (files, folders, globs) -> jobs (input, output, and whether to skip and why).

Pure apart from reading the file system: nothing is written, so ``--dry-run`` prints
exactly what a run would do.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imgenh.errors import UsageError
from imgenh.io import FORMAT_EXTENSION, IMAGE_EXTENSIONS
from imgenh.manifest import Manifest, file_sha256

GLOB_CHARS = set("*?[")
SAME_CONTENT = "up to date (same content, new mtime)"


class PlanError(UsageError):
    """The inputs and output cannot make a valid batch (exit code 2); one line per problem."""


@dataclass(frozen=True)
class Job:
    """One image to process.

    Attributes
    ----------
    source : Path
        The input file (as found: a symlink stays a symlink).
    output : Path
        Where the result goes.
    key : str
        ``output`` relative to the output root, POSIX separators (the manifest key).
    skip : str or None
        Why the image is not processed this time, or None.
    error : str or None
        A problem found while planning (e.g. a symlink loop); the job is reported failed.
    why : str
        Why it is processed: new, input changed, pipeline changed, --overwrite...
    """

    source: Path
    output: Path
    key: str
    skip: str | None = None
    error: str | None = None
    why: str = "new"


@dataclass
class Plan:
    """The jobs of a run and the warnings met while finding them."""

    jobs: list[Job]
    warnings: list[str] = field(default_factory=list)

    @property
    def to_process(self) -> list[Job]:
        """Jobs that will be read and processed (or reported failed)."""
        return [j for j in self.jobs if j.skip is None]


@dataclass(frozen=True)
class _Found:
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


def _walk(folder: Path, recursive: bool, warnings: list[str]) -> list[_Found]:
    found: list[_Found] = []
    if not recursive:
        subfolders = 0
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_image_name(entry.name):
                    found.append(_Found(Path(entry.path), PurePosixPath(entry.name), folder))
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
                    _Found(
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
                found.append(_Found(Path(dirpath, name), rel_dir / name, folder))
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
) -> tuple[list[_Found], list[str]]:
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
    found: list[_Found] = []
    warnings: list[str] = []
    from_list = len(inputs)
    for number, arg in enumerate([*inputs, *listed]):
        path = Path(arg)
        if GLOB_CHARS & set(arg) and not os.path.lexists(arg):
            base, matches = _glob(arg)
            hits = [
                _Found(Path(m), PurePosixPath(Path(m).relative_to(base).as_posix()), base)
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
                found.append(_Found(path, _named_rel(path, number >= from_list), None))
            else:
                warnings.append(f"{arg}: not an image name ({', '.join(IMAGE_EXTENSIONS)}); skipped")
        else:
            # A named input that is gone is a failure, not a warning: a cron job fed a file
            # list must notice (exit 1, and a line in the report).
            found.append(_Found(path, _named_rel(path, number >= from_list), None, "no such file or folder"))
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


def output_name(rel: PurePosixPath, fmt: str, suffix: str) -> PurePosixPath:
    """Output path for an input found at ``rel``: suffix before the extension, extension per format."""
    ext = rel.suffix if fmt == "keep" else FORMAT_EXTENSION[fmt]
    return rel.with_name(rel.stem + suffix + ext)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def build_plan(
    found: list[_Found],
    out: Path | None,
    *,
    fmt: str = "keep",
    suffix: str = "",
    pipeline_hash: str = "",
    version: str = "",
    manifest: Manifest | None = None,
    overwrite: bool = False,
    in_place: bool = False,
) -> Plan:
    """Turn found inputs into jobs, refusing unsafe or ambiguous batches.

    Parameters
    ----------
    found : list
        From :func:`find_inputs`.
    out : Path or None
        Output root; None with ``in_place``.
    fmt, suffix : str
        Output format (``keep`` or an extension name) and file-name suffix.
    pipeline_hash : str
        Hash of the pipeline, compared with the manifest for incremental runs.
    version : str
        imgenh version; outputs written by another version are redone (operators may have changed).
    manifest : Manifest, optional
        Records of earlier runs into ``out``.
    overwrite : bool
        Process every image even when its output exists and is up to date.
    in_place : bool
        Replace the inputs themselves.

    Raises
    ------
    PlanError
        No images, output tree inside an input folder, two inputs for one output, an
        output that would escape the output root.
    """
    if not found:
        raise PlanError(["no images found in the given inputs"])
    errors: list[str] = []
    if in_place:
        if fmt != "keep":
            errors.append(
                f"--in-place keeps each file's name and format, but the output format is {fmt!r} "
                "(output.format in the pipeline, or --format); pass --format keep"
            )
        if suffix:
            errors.append(
                f"--in-place keeps each file's name, but the output suffix is {suffix!r} "
                "(output.suffix in the pipeline, or --suffix); pass --suffix ''"
            )
    else:
        out_real = out.resolve()
        roots = {f.root.resolve() for f in found if f.root is not None}
        for root in sorted(roots):
            if _inside(out_real, root):
                errors.append(
                    f"output folder {out} is inside input folder {root}; a later run would read its own "
                    "outputs. Choose another -o, or pass --in-place to replace the inputs"
                )
    if errors:
        raise PlanError(errors)

    if not in_place:
        # Overlapping inputs (photos and photos/a, with -r) reach one file twice: keep the
        # first. (A symlink is a name of its own and is mirrored under that name.)
        seen_files: set[str] = set()
        unique = []
        for f in found:
            real = os.path.abspath(f.path)
            if real not in seen_files or f.error:
                unique.append(f)
                seen_files.add(real)
        found = unique
    by_output: dict[str, list[_Found]] = {}
    for f in found:
        # In place, a file named twice (a symlink, ../x/a.jpg) is one job on its real path.
        key = os.path.realpath(f.path) if in_place else output_name(f.rel, fmt, suffix).as_posix()
        sources = by_output.setdefault(key, [])
        if in_place or not any(os.path.abspath(s.path) == os.path.abspath(f.path) for s in sources):
            sources.append(f)
    for key, sources in sorted(by_output.items()):
        if in_place:
            del sources[1:]  # the same file reached by several names
        elif len(sources) > 1:
            names = ", ".join(str(s.path) for s in sources)
            errors.append(f"{len(sources)} inputs would be written to the same output {key}: {names}")
    if errors:
        raise PlanError(errors)

    sources_real = {os.path.realpath(f.path) for f in found}
    jobs = []
    for key, (f,) in sorted(by_output.items()):
        if in_place:
            # Write to the real file, so a symlink stays a symlink to the enhanced image.
            error = f.error or _in_place_problem(f, Path(key))
            jobs.append(Job(f.path, Path(key), key, error=error, why="--in-place"))
            continue
        target = out / key
        if os.path.realpath(target) in sources_real:
            raise PlanError([f"output {target} would overwrite input {f.path}; choose another -o"])
        if not _inside(Path(os.path.realpath(target)).parent, out_real):
            raise PlanError([f"output {target} would be written outside {out} (through a symlink); refusing"])
        if f.error:
            jobs.append(Job(f.path, target, key, error=f.error))
            continue
        skip, why = _incremental(f.path, target, key, pipeline_hash, version, manifest, overwrite)
        jobs.append(Job(f.path, target, key, skip=skip, why=why))
    return Plan(jobs)


def _changed(path: Path, size: int, mtime_ns: int) -> bool:
    try:
        st = os.stat(path)
    except OSError:
        return True
    return (st.st_size, st.st_mtime_ns) != (size, mtime_ns)


def _in_place_problem(f: _Found, real: Path) -> str | None:
    """Why a file must not be replaced in place, or None."""
    try:
        links = os.stat(real).st_nlink
    except OSError:
        return None  # the worker reports it (missing, unreadable...)
    if links > 1:
        return f"has {links} hard links; replacing it in place would split them (use -o instead)"
    if f.root is not None and not _inside(real, f.root.resolve()):
        return f"symlink to {real}, outside input folder {f.root}; not replaced in place"
    return None


def _incremental(
    source: Path,
    target: Path,
    key: str,
    pipeline_hash: str,
    version: str,
    manifest: Manifest | None,
    overwrite: bool,
) -> tuple[str | None, str]:
    """(skip reason or None, why processed) for one output, without decoding anything."""
    rec = manifest.records.get(key) if manifest else None
    unfinished = {"failed": "retry: failed before", "pending": "redo: interrupted before"}
    if not os.path.lexists(target):
        if rec is None:
            return None, "new"
        return None, unfinished.get(rec.status, "output missing")
    if overwrite:
        return None, "--overwrite"
    if rec is None:
        return "output exists (not made by imgenh here; --overwrite replaces it)", ""
    if rec.status == "ok" and rec.out_size and _changed(target, rec.out_size, rec.out_mtime_ns):
        # Someone edited or replaced the output since imgenh wrote it: never overwrite their work.
        return "output changed since imgenh wrote it (--overwrite replaces it)", ""
    if rec.pipeline != pipeline_hash:
        return None, "pipeline changed"
    if version and rec.version != version:
        return None, f"made by imgenh {rec.version}"
    if rec.status != "ok":
        return None, unfinished.get(rec.status, "retry")
    try:
        st = os.stat(source)
    except OSError:
        return None, "input changed"
    if st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns:
        return "up to date", ""
    if st.st_size == rec.size and file_sha256(source) == rec.sha256:
        return SAME_CONTENT, ""
    return None, "input changed"
