"""Inputs (files, folders, globs, listed paths) -> the image files they name.

Pure apart from reading the file system: nothing is written. Each file found carries its
path relative to the folder (or glob base) it was found in, which is where its output goes.

One rule chooses files everywhere (folders, ``-r``, glob patterns, ``--include``/``--exclude``),
the .gitignore one: ``*`` and ``?`` stay within one path segment, ``**`` crosses folders, a
pattern without ``/`` matches a file or folder name at any depth, a pattern with ``/`` is
anchored at the input folder (or glob base), a trailing ``/`` matches folders only, and case
does not matter. A folder that ``--exclude`` matches is not entered. Hidden files and folders
(names starting with ``.``) are skipped unless ``hidden`` is set; a file named as an input is
always taken.

A file whose extension is not an image one is sniffed (its first bytes): a JPEG named
``.jfif`` is read. Image formats imgenh cannot read, and files that are not images, are
returned as ignored with a reason; sidecars and system clutter are skipped without a word.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imgenh.errors import UsageError
from imgenh.io import IMAGE_EXTENSIONS, is_temp_name, sniff_format

GLOB_CHARS = set("*?[")
# The extension a sniffed file is written with when the output keeps its format: OpenCV
# chooses the encoder by extension and cannot write .jfif or .img.
SNIFFED_EXTENSION = {"jpeg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp", "bmp": ".bmp"}
# Image formats imgenh does not read. Never sniffed: camera raw files are TIFF containers
# whose first image is a small preview, which would be enhanced in place of the photo.
_UNSUPPORTED = (
    ".heic .heif .hif .avif .gif .jxl .jp2 .j2k .psd .svg .ico .ppm .pgm .pbm .pnm .exr .hdr "
    ".dng .nef .nrw .cr2 .cr3 .crw .arw .srf .sr2 .orf .rw2 .raf .pef .srw .raw .rwl .3fr .erf "
    ".kdc .mrw .x3f .iiq"
)
UNSUPPORTED = frozenset(_UNSUPPORTED.split())
# What travels with photos and is not a picture to enhance: skipped without a word. Sidecars
# (.thm is a camera's JPEG thumbnail: sniffing would take it for a photo) and OS clutter.
COMPANIONS = frozenset({".xmp", ".aae", ".thm", ".pp3", ".dop"})
CLUTTER = frozenset({"thumbs.db", "desktop.ini"})
NOT_SUPPORTED, NOT_AN_IMAGE, UNREADABLE = "not supported", "not an image", "unreadable"
# The rule in the words of `imgenh run --help`.
INCLUDE_HELP = (
    "Only files that match, in any case: '*.jpg' (a name, at any depth), '2024/*.jpg' (a path from the "
    "input folder: * stays within a folder, ** crosses folders), '2024' or '2024/' (all in that folder)."
)
EXCLUDE_HELP = (
    "Leave out what matches (same rule); a folder that matches is left out whole: "
    "--exclude .thumbnails, --exclude 'raw/', --exclude '2024/*/'."
)


@dataclass(frozen=True)
class Found:
    """One input file, where it was found, and a problem met on the way (None if none)."""

    path: Path
    rel: PurePosixPath  # path relative to the folder it was found in
    root: Path | None  # that folder, for the output-inside-input check; None for a named file
    error: str | None = None
    content_ext: str | None = None  # an image found by content: the extension its format writes


@dataclass
class Inputs:
    """What :func:`find_inputs` found.

    Attributes
    ----------
    found : list of Found
        The images, each with its path relative to the folder it was found in.
    warnings : list of str
        Patterns that matched nothing, folders without images, one line counting what was ignored.
    ignored : list of (str, str)
        Files passed over, with the reason: ``not supported`` (HEIC, camera raw...),
        ``not an image``, ``unreadable``; sorted by path.
    """

    found: list[Found] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ignored: list[tuple[str, str]] = field(default_factory=list)


def is_image_name(name: str) -> bool:
    """True when ``name`` ends with an image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _segment_regex(part: str) -> str:
    """One path segment of a pattern as a regex: ``*`` and ``?`` never match ``/``."""
    out, i = [], 0
    while i < len(part):
        char = part[i]
        if char == "*":
            while part[i + 1 : i + 2] == "*":  # a** is a*, as in .gitignore
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := _class_end(part, i)) != -1:
            body = part[i + 1 : end]
            negate = body[:1] in ("!", "^")
            body = (body[1:] if negate else body).replace("\\", "\\\\")
            out.append(f"[^/{body}]" if negate else f"[{body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def _class_end(part: str, start: int) -> int:
    """Index of the ``]`` closing the class opened at ``start`` (a leading ``]`` is literal), or -1."""
    j = start + 1
    if part[j : j + 1] in ("!", "^"):
        j += 1
    if part[j : j + 1] == "]":
        j += 1
    return part.find("]", j)


@dataclass(frozen=True)
class Pattern:
    """One ``--include``/``--exclude`` pattern or glob, compiled (the rule is in the module docstring).

    Examples
    --------
    >>> Pattern.compile("2024/*.jpg").matches("2024/a.JPG")
    True
    >>> Pattern.compile("2024/*.jpg").matches("2024/sub/a.jpg")
    False
    >>> Pattern.compile(".thumbnails").matches("a/b/.thumbnails", folder=True)
    True
    """

    text: str
    regex: re.Pattern
    anchored: bool  # matched against the whole relative path, not a name
    folders_only: bool  # written with a trailing /

    @classmethod
    def compile(cls, text: str) -> Pattern:
        """Translate ``text`` into a case-insensitive regex over POSIX relative paths."""
        folders_only = text.endswith("/")
        body = text.rstrip("/")
        anchored = "/" in body  # a leading / or ./ anchors too
        parts = (body[2:] if body.startswith("./") else body.lstrip("/")).split("/")
        regex = ""
        for number, part in enumerate(parts):
            last = number == len(parts) - 1
            if part == "**":
                regex += ".*" if last else "(?:[^/]*/)*"
            else:
                regex += _segment_regex(part) + ("" if last else "/")
        return cls(text, re.compile(regex, re.IGNORECASE), anchored, folders_only)

    def matches(self, rel: str, folder: bool = False) -> bool:
        """Whether the file (or, with ``folder``, the folder) at relative path ``rel`` matches."""
        if self.folders_only and not folder:
            return False
        return self.regex.fullmatch(rel if self.anchored else rel.rpartition("/")[2]) is not None


def _folders_above(rel: str) -> list[str]:
    """``a``, ``a/b`` for ``a/b/c.jpg``."""
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True)
class Filters:
    """``--include``, ``--exclude`` and ``--hidden``: which of the files reached are taken.

    ``--exclude`` leaves out a file it matches and everything under a folder it matches.
    ``--include`` (when given) keeps the files it matches, and everything under a folder it
    matches by name (``2024``) or with a trailing slash (``2024/``): ``2024/*`` keeps only the
    files directly in ``2024``.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hidden: bool = False  # take hidden files and folders under input folders and glob bases
    _include: tuple[Pattern, ...] = field(init=False, repr=False, compare=False)
    _exclude: tuple[Pattern, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_include", tuple(Pattern.compile(p) for p in self.include))
        object.__setattr__(self, "_exclude", tuple(Pattern.compile(p) for p in self.exclude))

    def excludes_folder(self, rel: str) -> bool:
        """True when nothing under the folder at ``rel`` is taken: it or a folder above it is excluded."""
        return any(p.matches(f, folder=True) for f in [*_folders_above(rel), rel] for p in self._exclude)

    def keeps(self, rel: str, folder: bool = False) -> bool:
        """Whether the file at ``rel`` (relative to its input folder) passes --include and --exclude."""
        above = _folders_above(rel)
        if any(p.matches(rel, folder) for p in self._exclude) or (above and self.excludes_folder(above[-1])):
            return False
        if not self._include or any(p.matches(rel, folder) for p in self._include):
            return True
        by_folder = [p for p in self._include if p.folders_only or not p.anchored]
        return any(p.matches(f, folder=True) for f in above for p in by_folder)

    def skips_name(self, name: str) -> bool:
        """A hidden file or folder met while walking, left out unless ``--hidden``."""
        return name.startswith(".") and not self.hidden


def _walk(
    top: Path, filters: Filters, max_depth: int | None
) -> tuple[list[tuple[Path, PurePosixPath]], list[Found], int]:
    """Files under ``top``, down to ``max_depth`` folder levels (None: all).

    Hidden and excluded folders are not entered. A folder past ``max_depth`` that is named
    like an image is returned as a file (reading it fails, saying it is a folder).

    Returns
    -------
    files : list of (path, rel)
    loops : list of Found
        Folders that link back to one already walked (an error each).
    not_entered : int
        Folders left out by ``max_depth`` (for the "add --recursive" hint).
    """
    files: list[tuple[Path, PurePosixPath]] = []
    loops: list[Found] = []
    not_entered = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        st = os.stat(dirpath)
        seen.add((st.st_dev, st.st_ino))
        rel_dir = PurePosixPath(Path(dirpath).relative_to(top).as_posix())
        depth = len(rel_dir.parts)  # PurePosixPath(".").parts is ()
        keep = []
        for name in sorted(dirnames):
            sub, rel = Path(dirpath, name), rel_dir / name
            if filters.skips_name(name) or filters.excludes_folder(rel.as_posix()):
                continue
            if max_depth is not None and depth >= max_depth:
                if is_image_name(name):
                    files.append((sub, rel))
                else:
                    not_entered += 1
                continue
            try:
                sst = os.stat(sub)
            except OSError:
                continue
            if (sst.st_dev, sst.st_ino) in seen or _is_ancestor(sub, top):
                loops.append(Found(sub, rel, top, "symlink loop: folder links back to itself (not followed)"))
            else:
                keep.append(name)
                seen.add((sst.st_dev, sst.st_ino))
        dirnames[:] = keep
        files += [(Path(dirpath, n), rel_dir / n) for n in filenames if not filters.skips_name(n)]
    return files, loops, not_entered


def _is_ancestor(link: Path, top: Path) -> bool:
    """True if the folder ``link`` resolves to contains ``top`` (following it would loop)."""
    try:
        target, top_real = link.resolve(), top.resolve()
    except (OSError, RuntimeError):
        return True
    return top_real == target or target in top_real.parents


def _glob(pattern: str, filters: Filters) -> tuple[Path, list[tuple[Path, PurePosixPath]], list[Found]]:
    """Base folder of a pattern (its parts before the first wildcard), the files matching the rest, loops.

    The wildcard part follows the one rule (``*`` within a folder, ``**`` across, any case,
    hidden names skipped unless ``--hidden``); the base folder is taken as written.
    """
    parts = Path(pattern).parts
    cut = next((i for i, part in enumerate(parts) if GLOB_CHARS & set(part)), len(parts))
    base = Path(*parts[:cut]) if cut else Path(".")
    wild = parts[cut:]
    if not wild or not base.is_dir():
        return base, [], []
    matcher = Pattern.compile("/" + "/".join(wild))  # anchored at the base
    files, loops, _ = _walk(base, filters, None if "**" in wild else len(wild) - 1)
    return base, [(p, rel) for p, rel in files if matcher.matches(rel.as_posix())], loops


def _sniff(path: Path) -> tuple[str | None, str]:
    """The image format of a file from its first bytes, or None and why it is not taken."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # never open a FIFO or a device
            return None, NOT_AN_IMAGE
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return None, UNREADABLE
    return sniff_format(head), NOT_AN_IMAGE


def _classify(path: Path) -> tuple[bool, str | None, str | None]:
    """(take it, extension of its content if sniffed, why it is ignored; None when silently)."""
    name = path.name.lower()
    if is_image_name(name):
        return True, None, None
    ext = os.path.splitext(name)[1]
    if ext in COMPANIONS or name in CLUTTER or is_temp_name(path.name):
        return False, None, None
    if ext in UNSUPPORTED:
        return False, None, NOT_SUPPORTED
    fmt, reason = _sniff(path)
    return (True, SNIFFED_EXTENSION[fmt], None) if fmt else (False, None, reason)


def find_inputs(
    inputs: list[str],
    *,
    listed: list[str] = (),
    recursive: bool = False,
    filters: Filters | None = None,
) -> Inputs:
    """Expand files, folders and glob patterns into image paths.

    Parameters
    ----------
    inputs : list of str
        Files (mirrored by name), folders and glob patterns (mirrored relative to themselves).
    listed : list of str
        Paths read from ``--files-from``: like ``inputs``, except that a relative file path
        keeps its folders under the output (``shots/a/x.jpg`` -> ``OUT/shots/a/x.jpg``),
        as ``rsync --files-from`` does, so same-named files in different folders coexist.
    recursive : bool
        Walk folders (not glob patterns: ``**`` says how deep they go).
    filters : Filters, optional
        ``--include``, ``--exclude``, ``--hidden``; they apply to every input.

    Returns
    -------
    Inputs
        The images found; warnings (patterns that matched nothing, folders without images,
        one line counting the files ignored); the ignored files with their reasons. A named
        file that does not exist is found with an error instead, so it is reported as failed.
    """
    filters = filters or Filters()
    result = Inputs()
    dropped: list[PurePosixPath] = []  # files --include/--exclude left out
    missing: list[str] = []  # named folders that do not exist
    for number, arg in enumerate([*inputs, *listed]):
        path, root, empty, unsearched = Path(arg), None, None, ""
        if GLOB_CHARS & set(arg) and not os.path.lexists(arg):
            root, files, loops = _glob(arg, filters)
            empty = f"pattern {arg!r} matched no images"
        elif path.is_dir():
            files, loops, not_entered = _walk(path, filters, None if recursive else 0)
            root, empty = path, f"folder {arg!r} holds no images"
            if not_entered:  # the hint only where --recursive could find more
                unsearched = f"{not_entered} subfolder(s) not searched (add --recursive)"
                empty += f" directly; {unsearched}"
        else:
            if not os.path.lexists(path) and _names_a_folder(arg):
                missing.append(arg)
                continue
            files, loops = [(path, _named_rel(path, number >= len(inputs)))], []
        before, dropped_before = len(result.found), len(dropped)
        result.found += [f for f in loops if filters.keeps(f.rel.as_posix(), folder=True)]
        _take(files, root, filters, result, dropped)
        if empty and len(result.found) == before and len(dropped) == dropped_before:
            result.warnings.append(empty)
        elif unsearched:
            result.warnings.append(f"folder '{arg}' has {unsearched}")
    if missing:
        raise UsageError(
            [f"input folder {arg!r} does not exist (a drive not mounted? a typo?)" for arg in missing],
            result.warnings,
        )
    if dropped and not result.found:
        images = sum(1 for rel in dropped if is_image_name(rel.name))
        result.warnings.append(
            f"--include/--exclude left none of the {f'{images} images' if images else f'{len(dropped)} files'} "
            "found (a pattern with / matches the path from the input folder; one without, any file or folder name)"
        )
    result.ignored = sorted({os.path.abspath(p): (p, why) for p, why in result.ignored}.values())
    if result.ignored:
        result.warnings.append(ignored_line(result.ignored))
    return result


def _take(
    files: list[tuple[Path, PurePosixPath]],
    root: Path | None,
    filters: Filters,
    result: Inputs,
    dropped: list[PurePosixPath],
) -> None:
    """Filter files reached from one input, then keep the images and note what is ignored."""
    for path, rel in files:
        if not filters.keeps(rel.as_posix()):
            dropped.append(rel)
        elif root is None and not os.path.lexists(path):
            # A named input that is gone is a failure, not a warning: a cron job fed a file
            # list must notice (exit 1, and a line in the report).
            result.found.append(Found(path, rel, None, "no such file or folder"))
        else:
            take, content_ext, reason = _classify(path)
            if take:
                result.found.append(Found(path, rel, root, content_ext=content_ext))
            elif reason:
                result.ignored.append((str(path), reason))


def ignored_line(ignored: list[tuple[str, str]]) -> str:
    """One warning line counting ignored files by reason and extension.

    Examples
    --------
    >>> ignored_line([("a.HEIC", "not supported"), ("b.HEIC", "not supported"), ("c.NEF", "not supported")])
    '3 files ignored: 2 .HEIC, 1 .NEF (not supported)'
    """
    by_reason: dict[str, Counter] = {}
    spelled: dict[str, str] = {}
    for path, reason in ignored:
        ext = os.path.splitext(os.path.basename(path))[1] or "(no extension)"
        spelled.setdefault(ext.lower(), ext)
        by_reason.setdefault(reason, Counter())[ext.lower()] += 1
    groups = [
        ", ".join(f"{n} {spelled[ext]}" for ext, n in counts.most_common()) + f" ({reason})"
        for reason, counts in by_reason.items()
    ]
    return f"{len(ignored)} file{'s' if len(ignored) != 1 else ''} ignored: " + "; ".join(groups)


def _named_rel(path: Path, keep_folders: bool) -> PurePosixPath:
    """Where a named file lands under OUT: by name, or by its relative path for listed files."""
    norm = PurePosixPath(os.path.normpath(path).replace(os.sep, "/"))
    if keep_folders and not norm.is_absolute() and ".." not in norm.parts:
        return norm
    return PurePosixPath(path.name)


def _names_a_folder(arg: str) -> bool:
    """Whether a path that does not exist was meant as a folder: a trailing slash, or no extension."""
    return arg.endswith(("/", os.sep)) or not PurePosixPath(arg.replace(os.sep, "/")).suffix


def read_path_list(source: str, null: bool = False) -> list[str]:
    """Paths from a file or stdin (``-``), one per line, or NUL-separated (``find -print0``).

    In a line list, blank lines and # comments are skipped and surrounding spaces dropped; a
    NUL list is taken as it is (names may start with # or hold spaces and newlines). Bytes
    that are not UTF-8 are kept as they are (surrogateescape), the way Python names such
    files, so any name the file system holds can be listed.

    Raises
    ------
    OSError
        When the file cannot be read.
    ValueError
        A line list holds a NUL byte (output of ``-print0``, which needs ``null=True``).
    """
    if source == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    if null:
        return [name.decode("utf-8", "surrogateescape") for name in data.split(b"\0") if name]
    if b"\0" in data:
        raise ValueError("holds NUL bytes, as `find -print0` writes; pass -0/--null to read such a list")
    lines = [line.strip() for line in data.decode("utf-8", "surrogateescape").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]
