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

from imgenh.io import FORMAT_EXTENSION, IMAGE_EXTENSIONS
from imgenh.manifest import Manifest, file_sha256

GLOB_CHARS = set("*?[")


class PlanError(Exception):
    """The inputs and output cannot make a valid batch (exit code 2); one line per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


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
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_image_name(entry.name):
                    found.append(_Found(Path(entry.path), PurePosixPath(entry.name), folder))
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
                    _Found(sub, rel_dir / name, folder, "symlink loop (folder links back to itself); skipped")
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


def _glob_base(pattern: str) -> Path:
    parts = Path(pattern).parts
    base = []
    for part in parts:
        if GLOB_CHARS & set(part):
            break
        base.append(part)
    return Path(*base) if base else Path(".")


def find_inputs(
    inputs: list[str],
    *,
    recursive: bool = False,
    include: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
) -> tuple[list[_Found], list[str]]:
    """Expand files, folders and glob patterns into image paths.

    Returns
    -------
    found : list
        Each image with its path relative to the folder it was found in.
    warnings : list of str
        Patterns that matched nothing, paths that do not exist, names that are not images.
    """
    found: list[_Found] = []
    warnings: list[str] = []
    for arg in inputs:
        path = Path(arg)
        if GLOB_CHARS & set(arg) and not os.path.lexists(arg):
            base = _glob_base(arg)
            matches = sorted(glob.glob(arg, recursive=True))
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
                found.append(_Found(path, PurePosixPath(path.name), None))
            else:
                warnings.append(f"{arg}: not an image name ({', '.join(IMAGE_EXTENSIONS)}); skipped")
        else:
            warnings.append(f"{arg}: no such file or folder")
    kept = [f for f in found if _filtered(f.rel, include, exclude)]
    return kept, warnings


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
        if fmt != "keep" or suffix:
            errors.append("--in-place replaces each input, so --format and --suffix cannot change its name")
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

    by_output: dict[str, list[_Found]] = {}
    for f in found:
        key = f.path.as_posix() if in_place else output_name(f.rel, fmt, suffix).as_posix()
        sources = by_output.setdefault(key, [])
        if not any(os.path.abspath(s.path) == os.path.abspath(f.path) for s in sources):
            sources.append(f)
    for key, sources in sorted(by_output.items()):
        if len(sources) > 1:
            names = ", ".join(str(s.path) for s in sources)
            errors.append(f"{len(sources)} inputs would be written to the same output {key}: {names}")
    if errors:
        raise PlanError(errors)

    sources_real = {os.path.realpath(f.path) for f in found}
    jobs = []
    for key, (f,) in sorted(by_output.items()):
        if in_place:
            jobs.append(Job(f.path, f.path, key, error=f.error, why="--in-place"))
            continue
        target = out / key
        if os.path.realpath(target) in sources_real:
            raise PlanError([f"output {target} would overwrite input {f.path}; choose another -o"])
        if not _inside(Path(os.path.realpath(target)).parent, out_real):
            raise PlanError([f"output {target} would be written outside {out} (through a symlink); refusing"])
        if f.error:
            jobs.append(Job(f.path, target, key, error=f.error))
            continue
        skip, why = _incremental(f.path, target, key, pipeline_hash, manifest, overwrite)
        jobs.append(Job(f.path, target, key, skip=skip, why=why))
    return Plan(jobs)


def _incremental(
    source: Path, target: Path, key: str, pipeline_hash: str, manifest: Manifest | None, overwrite: bool
) -> tuple[str | None, str]:
    """(skip reason or None, why processed) for one output, without decoding anything."""
    rec = manifest.records.get(key) if manifest else None
    unfinished = {"failed": "retry (failed before)", "pending": "redo (interrupted before)"}
    if not os.path.lexists(target):
        if rec is None:
            return None, "new"
        return None, unfinished.get(rec.status, "output missing")
    if overwrite:
        return None, "--overwrite"
    if rec is None:
        return "output exists (not made by imgenh here; --overwrite replaces it)", ""
    if rec.pipeline != pipeline_hash:
        return None, "pipeline changed"
    if rec.status != "ok":
        return None, unfinished.get(rec.status, "retry")
    try:
        st = os.stat(source)
    except OSError:
        return None, "input changed"
    if st.st_size == rec.size and st.st_mtime_ns == rec.mtime_ns:
        return "up to date", ""
    if st.st_size == rec.size and file_sha256(source) == rec.sha256:
        return "up to date (same content, new mtime)", ""
    return None, "input changed"
