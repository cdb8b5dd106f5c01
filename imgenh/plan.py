"""Found inputs -> jobs: each image's output, and whether it is processed, skipped or failing.

Pure apart from reading the file system: nothing is written, so ``--dry-run`` prints
exactly what a run would do. Whether an existing output is up to date is the manifest's
decision (:meth:`imgenh.state.Manifest.verdict`); this module only asks.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from functools import cached_property
from pathlib import Path, PurePosixPath

from imgenh import augment
from imgenh.discover import Filters, Found
from imgenh.errors import UsageError
from imgenh.io import FORMAT_EXTENSION
from imgenh.state import Manifest


class PlanError(UsageError):
    """The inputs and output cannot make a valid batch (exit code 2); one line per problem."""


class Status(str, Enum):
    """What happened (or will happen) to one image; the value is what reports and the manifest say."""

    PLANNED = "planned"  # to be processed (a dry run's answer)
    PENDING = "pending"  # started by a run that did not record the end (manifest only)
    OK = "ok"
    SKIPPED = "skipped"
    FAILED = "failed"

    def __str__(self) -> str:
        return self.value


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
    touched : bool
        Skipped as unchanged in content although its mtime moved (the manifest records the new mtime).
    variant : int or None
        Augmentation: which variant of its input this output is (``--variants``); None otherwise.
    input_key : str
        The input's path relative to where it was found (POSIX): with ``variant``, what its
        random draws depend on (see :mod:`imgenh.augment`).
    """

    source: Path
    output: Path
    key: str
    skip: str | None = None
    error: str | None = None
    why: str = "new"
    touched: bool = False
    variant: int | None = None
    input_key: str = ""

    @property
    def status(self) -> Status:
        """``failed`` (known before reading), ``skipped``, or ``planned``."""
        if self.error is not None:
            return Status.FAILED
        return Status.SKIPPED if self.skip is not None else Status.PLANNED

    @property
    def reason(self) -> str:
        """Why the job has its status: the error, the skip reason, or why it is processed."""
        return self.error or self.skip or self.why


@dataclass
class Plan:
    """The jobs of a run, the warnings met while finding them, and the files passed over.

    ``ignored`` holds (path, reason) for files that are not images imgenh reads, from
    :attr:`imgenh.discover.Inputs.ignored`.
    """

    jobs: list[Job]
    warnings: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)

    @cached_property
    def todo(self) -> list[Job]:
        """Jobs that will be read and processed."""
        return [j for j in self.jobs if j.status is Status.PLANNED]

    @cached_property
    def counts(self) -> Counter:
        """Number of jobs per :class:`Status` (planned, skipped, failed)."""
        return Counter(j.status for j in self.jobs)


def output_name(rel: PurePosixPath, fmt: str, suffix: str, content_ext: str | None = None) -> PurePosixPath:
    """Output path for an input found at ``rel``: suffix before the extension, extension per format.

    ``content_ext`` is the extension of an image found by its content (``a.jfif`` holding a
    JPEG: ``.jpg``); with ``keep`` it replaces the name's, which OpenCV could not write.
    """
    ext = (content_ext or rel.suffix) if fmt == "keep" else FORMAT_EXTENSION[fmt]
    return rel.with_name(rel.stem + suffix + ext)


def _inside(child: Path, parent: Path) -> bool:
    return child == parent or parent in child.parents


def build_plan(
    found: list[Found],
    out: Path | None,
    *,
    fmt: str = "keep",
    suffix: str = "",
    manifest: Manifest | None = None,
    overwrite: bool = False,
    filters: Filters | None = None,
    variants: int | None = None,
    variant_name: str = augment.DEFAULT_VARIANT_NAME,
) -> Plan:
    """Turn found inputs into jobs, refusing unsafe or ambiguous batches.

    Parameters
    ----------
    found : list of Found
        From :func:`imgenh.discover.find_inputs`.
    out : Path or None
        Output root; None replaces the inputs themselves (``--in-place``).
    fmt, suffix : str
        Output format (``keep`` or an extension name) and file-name suffix.
    manifest : Manifest, optional
        Records of earlier runs into ``out``; it decides which outputs are up to date.
    overwrite : bool
        Process every image even when its output exists and is up to date.
    filters : Filters, optional
        The filters the inputs were found with: an output folder inside an input folder is
        allowed when they exclude it (nothing under it is read).
    variants : int, optional
        Augmentation: this many outputs per input, named by ``variant_name``
        (:func:`imgenh.augment.variant_names`).

    Raises
    ------
    PlanError
        No images, output tree inside an input folder, two inputs for one output, an
        output that would escape the output root.
    """
    if not found:
        raise PlanError(["no images found in the given inputs"])
    if out is None:
        if variants is not None:
            raise PlanError(
                ["--variants writes new files beside each other; give -o OUT instead of --in-place"]
            )
        return _plan_in_place(found, fmt, suffix)
    errors = _output_inside_input(found, out, filters or Filters())
    if errors:
        raise PlanError(errors)
    naming = (variants, variant_name)
    return _plan_mirror(found, out, fmt, suffix, manifest or Manifest(out), overwrite, naming)


def _plan_in_place(found: list[Found], fmt: str, suffix: str) -> Plan:
    """Jobs that replace each input file itself, once per real file."""
    errors = []
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
    if errors:
        raise PlanError(errors)
    by_real: dict[str, Found] = {}
    for f in found:
        # A file named twice (a symlink, ../x/a.jpg) is one job on its real path; writing to
        # the real file keeps a symlink a symlink to the enhanced image.
        by_real.setdefault(os.path.realpath(f.path), f)
    jobs = [
        Job(f.path, Path(real), real, error=f.error or _in_place_problem(f, Path(real)), why="--in-place")
        for real, f in sorted(by_real.items())
    ]
    return Plan(jobs)


def _plan_mirror(
    found: list[Found],
    out: Path,
    fmt: str,
    suffix: str,
    manifest: Manifest,
    overwrite: bool,
    naming: tuple[int | None, str] = (None, ""),
) -> Plan:
    """Jobs that mirror each input's relative path under ``out`` (``naming``: variants and their names)."""
    out_real = out.resolve()
    by_output = _by_output(_unique_files(found), fmt, suffix, naming)
    sources_real = {os.path.realpath(f.path) for f in found}
    jobs = []
    for key, (f, variant) in sorted(by_output.items()):
        target = out / key
        if os.path.realpath(target) in sources_real:
            raise PlanError([f"output {target} would overwrite input {f.path}; choose another -o"])
        if not _inside(Path(os.path.realpath(target)).parent, out_real):
            raise PlanError([f"output {target} would be written outside {out} (through a symlink); refusing"])
        ids = {"variant": variant, "input_key": f.rel.as_posix()}
        if f.error:
            jobs.append(Job(f.path, target, key, error=f.error, **ids))
            continue
        verdict = manifest.verdict(f.path, target, key, overwrite)
        jobs.append(
            Job(f.path, target, key, skip=verdict.skip, why=verdict.why, touched=verdict.touched, **ids)
        )
    return Plan(jobs)


def _output_inside_input(found: list[Found], out: Path, filters: Filters) -> list[str]:
    """Why ``out`` may not be where it is: inside an input folder whose files the filters would read.

    A later run would read its own outputs, unless ``--exclude`` leaves the output folder out.
    The way out suggested is another -o, never --in-place (which overwrites the originals).
    """
    out_real = out.resolve()
    roots: dict[Path, Path] = {}
    for f in found:
        if f.root is not None:
            roots.setdefault(f.root.resolve(), f.root)
    errors = []
    for root_real, root in sorted(roots.items()):
        if not _inside(out_real, root_real):
            continue
        rel = out_real.relative_to(root_real).as_posix()
        if rel != "." and filters.excludes_folder(rel):
            continue
        elsewhere = os.path.relpath(root_real.parent / f"{root_real.name}_{out_real.name}")
        where = "is input folder" if rel == "." else "is inside input folder"
        text = f"output folder {out} {where} {root}; a later run would read its own outputs. "
        text += f"Choose an -o outside {root}, such as -o {elsewhere}"
        errors.append(text + ("" if rel == "." else f"; or, to keep it there, --exclude '{rel}/'"))
    return errors


def _unique_files(found: list[Found]) -> list[Found]:
    """Overlapping inputs (photos and photos/a, with -r) reach one file twice: keep the first.

    A symlink is a name of its own and is mirrored under that name.
    """
    seen: set[str] = set()
    unique = []
    for f in found:
        real = os.path.abspath(f.path)
        if real not in seen or f.error:
            unique.append(f)
            seen.add(real)
    return unique


def _by_output(
    found: list[Found], fmt: str, suffix: str, naming: tuple[int | None, str] = (None, "")
) -> dict[str, tuple[Found, int | None]]:
    """Each output key, the one input that makes it, and which variant of it (None: no variants).

    Raises
    ------
    PlanError
        When two different inputs would be written to the same output.
    """
    by_output: dict[str, list[Found]] = {}
    variant_of: dict[str, int | None] = {}
    for f in found:
        plain = output_name(f.rel, fmt, suffix, f.content_ext)
        for name, variant in augment.variant_names(plain, *naming):  # augmentation hook: N names per input
            sources = by_output.setdefault(name.as_posix(), [])
            variant_of[name.as_posix()] = variant
            if not any(os.path.abspath(s.path) == os.path.abspath(f.path) for s in sources):
                sources.append(f)
    errors = [
        f"{len(sources)} inputs would be written to the same output {key}: "
        + ", ".join(str(s.path) for s in sources)
        for key, sources in sorted(by_output.items())
        if len(sources) > 1
    ]
    if errors:
        raise PlanError(errors)
    return {key: (sources[0], variant_of[key]) for key, sources in by_output.items()}


def _in_place_problem(f: Found, real: Path) -> str | None:
    """Why a file must not be replaced in place, or None."""
    try:
        links = os.stat(real).st_nlink
    except OSError:
        return None  # the worker reports it (missing, unreadable...)
    if f.content_ext:
        return (
            f"an image by content ({f.content_ext[1:].upper()}) under a name imgenh cannot write; "
            "not replaced in place (use -o: the output is named with its format's extension)"
        )
    if links > 1:
        return f"has {links} hard links; replacing it in place would split them (use -o instead)"
    if f.root is not None and not _inside(real, f.root.resolve()):
        return f"symlink to {real}, outside input folder {f.root}; not replaced in place"
    return None
