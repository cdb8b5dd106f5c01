"""Before/after pairs for ``imgenh fit``: matching files, reading them, refusing bad pairs.

Matching: a before and an after pair when they have the same path relative to their folders
once every known image extension is taken off the name, so ``a/IMG_1.CR2.jpg`` (a JPEG made
from a raw file) pairs ``a/IMG_1.jpg`` and the after may be another format (``a/IMG_1.png``).

Checking: an after that is the same picture at another size is resized to the before's
size; one with another aspect ratio (cropped, rotated by 90 degrees) or whose lightness is
not explained by a tone curve of the before's lightness (cropped and scaled back, rotated,
flipped, another picture) is refused with the reason, and the other pairs go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from imgenh.io import IMAGE_EXTENSIONS, ImageError, read_image
from imgenh.pixels import luma, to_float

# Extensions taken off a name to find its stem: what imgenh reads plus raw and other formats
# people export from (IMG_1.CR2.jpg is a JPEG of IMG_1.CR2).
STRIPPED_EXTENSIONS = frozenset(
    IMAGE_EXTENSIONS
    + (".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".dng", ".raf", ".orf", ".rw2")
    + (".pef", ".srw", ".x3f", ".3fr", ".iiq", ".rwl", ".heic", ".heif", ".avif", ".jxl", ".psd", ".xcf")
)
# Aspect ratios closer than this (relative) are the same framing at another size.
ASPECT_TOLERANCE = 0.02
# Lightness of a good pair is explained by a tone curve of the before's to at least this share
# (eta squared of after luma given 32 bins of before luma, at CHECK_SIDE pixels). Measured on
# skimage/sample photos: global edits, vignettes, noise, blur 0.80-1.00; a 10% crop scaled
# back 0.29-0.69, a 5% crop 0.59-0.79, a 3% shift 0.27-0.56, rotations and other pictures < 0.4.
MIN_EXPLAINED = 0.75
CHECK_SIDE = 128
# Working copies are at most this many pixels on their long side.
WORKING_SIDE = 384


@dataclass(frozen=True)
class Pair:
    """A before file and the after file made from it; ``key`` is their shared relative stem."""

    key: str
    before: Path
    after: Path


@dataclass
class PairMatch:
    """The result of matching two folders.

    Attributes
    ----------
    pairs : list of Pair
        Sorted by key.
    unmatched_before, unmatched_after : list of Path
        Files with no partner (relative to their folder).
    ambiguous : list of str
        Messages for keys that several files of one folder share (none of them is used).
    """

    pairs: list[Pair] = field(default_factory=list)
    unmatched_before: list[Path] = field(default_factory=list)
    unmatched_after: list[Path] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


def pair_key(relative: Path) -> str:
    """The matching key of a relative path: its folder and its name without image extensions.

    Examples
    --------
    >>> pair_key(Path("a/IMG_1.CR2.jpg")), pair_key(Path("a/IMG_1.png")), pair_key(Path("2024.05 b.jpg"))
    ('a/IMG_1', 'a/IMG_1', '2024.05 b')
    """
    name = relative.name
    while True:
        stem, dot, ext = name.rpartition(".")
        if not dot or not stem or f".{ext.lower()}" not in STRIPPED_EXTENSIONS:
            break
        name = stem
    return (relative.parent / name).as_posix()


def _images_by_key(folder: Path) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("."):
            rel = path.relative_to(folder)
            found.setdefault(pair_key(rel), []).append(rel)
    unique = {k: v[0] for k, v in found.items() if len(v) == 1}
    return unique, {k: v for k, v in found.items() if len(v) > 1}


def match_pairs(before_dir: str | Path, after_dir: str | Path) -> PairMatch:
    """Pair the images of two folders (recursively) by relative path and stem.

    Raises
    ------
    FileNotFoundError
        A folder does not exist.
    """
    folders = Path(before_dir), Path(after_dir)
    for label, folder in zip(("before", "after"), folders, strict=True):
        if not folder.is_dir():
            raise FileNotFoundError(f"{label} folder {folder} does not exist")
    before, before_dups = _images_by_key(folders[0])
    after, after_dups = _images_by_key(folders[1])
    result = PairMatch()
    for label, folder, dups in (("before", folders[0], before_dups), ("after", folders[1], after_dups)):
        for key, paths in sorted(dups.items()):
            names = ", ".join(p.as_posix() for p in paths)
            result.ambiguous.append(f"{label} folder {folder} has several files for {key!r}: {names}")
    ambiguous = set(before_dups) | set(after_dups)
    for key in sorted(before):
        if key in after:
            result.pairs.append(Pair(key, folders[0] / before[key], folders[1] / after[key]))
        elif key not in ambiguous:
            result.unmatched_before.append(before[key])
    result.unmatched_after = [p for k, p in sorted(after.items()) if k not in before and k not in ambiguous]
    return result


class PairRefused(Exception):
    """A pair that cannot be used; the message says why."""


@dataclass
class PairImages:
    """Working copies of one pair: float32 BGR in [0, 1], the same size.

    Attributes
    ----------
    pair : Pair
    before, after : ndarray
        (H, W, 3) float32, at most ``WORKING_SIDE`` pixels on the long side.
    notes : list of str
        What was done to make them comparable (e.g. the after resized).
    grey : bool
        The before is a grey image: pipelines run on one plane of it (:meth:`run`), as
        ``imgenh run`` would, and only the comparison is in colour.
    """

    pair: Pair
    before: np.ndarray
    after: np.ndarray
    notes: list[str] = field(default_factory=list)
    grey: bool = False

    def run(self, pipeline, before: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
        """``pipeline.apply`` on ``before`` (default: the working before) as stored; the image as BGR."""
        before = self.before if before is None else before
        if self.grey:
            before = np.ascontiguousarray(before[..., 0])
        out, reports = pipeline.apply(before)
        return _colour(out), reports


def resize_to_side(img: np.ndarray, side: int) -> np.ndarray:
    """Shrink so the long side is at most ``side`` pixels (area averaging); never enlarges."""
    h, w = img.shape[:2]
    scale = side / max(h, w)
    if scale >= 1:
        return img
    return cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def explained_lightness(before: np.ndarray, after: np.ndarray, bins: int = 32) -> float:
    """Share of the after's luma variance explained by a function of the before's luma (eta squared).

    Both are float32 images of the same size; they are shrunk to ``CHECK_SIDE`` first. 1 means
    the after's lightness is a tone curve of the before's; 0 that it is unrelated.
    """
    a = resize_to_side(luma(before), CHECK_SIDE).ravel()
    b = resize_to_side(luma(after), CHECK_SIDE).ravel().astype(np.float64)
    k = np.clip((a * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(k, minlength=bins)
    means = np.bincount(k, b, minlength=bins) / np.maximum(counts, 1)
    total = float(((b - b.mean()) ** 2).sum())
    if total <= 1e-12:
        return 1.0  # a flat after is a tone curve (a constant) of anything
    return 1.0 - float(((b - means[k]) ** 2).sum()) / total


def _colour(img: np.ndarray) -> np.ndarray:
    f = to_float(img)
    return cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f


def check_sizes(before_shape: tuple[int, ...], after_shape: tuple[int, ...]) -> str | None:
    """A note when the after is the same framing at another size; None when the sizes agree.

    Raises
    ------
    PairRefused
        The aspect ratios differ by more than ``ASPECT_TOLERANCE`` (cropped, rotated).
    """
    (hb, wb), (ha, wa) = before_shape[:2], after_shape[:2]
    if (hb, wb) == (ha, wa):
        return None
    if abs(wa / ha - wb / hb) > ASPECT_TOLERANCE * (wb / hb):
        raise PairRefused(
            f"after is {wa}x{ha} and before {wb}x{hb}: another aspect ratio (cropped or rotated?)"
        )
    return f"after resized from {wa}x{ha} to {wb}x{hb}"


def align_after(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Bring ``after`` to ``before``'s size, or refuse the pair.

    Parameters
    ----------
    before, after : ndarray
        float32 BGR images in [0, 1], any sizes.

    Returns
    -------
    ndarray
        ``after`` at ``before``'s size.

    Raises
    ------
    PairRefused
        Another aspect ratio (:func:`check_sizes`), or lightness not explained by the
        before's (below ``MIN_EXPLAINED``, see :func:`explained_lightness`).
    """
    check_sizes(before.shape, after.shape)
    if before.shape != after.shape:
        (hb, wb), wa = before.shape[:2], after.shape[1]
        after = cv2.resize(after, (wb, hb), interpolation=cv2.INTER_AREA if wa > wb else cv2.INTER_CUBIC)
    share = explained_lightness(before, after)
    if share < MIN_EXPLAINED:
        raise PairRefused(
            f"after does not line up with before: a tone curve of the before explains only {share:.0%} of "
            f"its lightness (needs {MIN_EXPLAINED:.0%}); cropped, rotated, flipped or another picture?"
        )
    return np.clip(after, 0.0, 1.0)


def load_pair(pair: Pair, side: int = WORKING_SIDE) -> PairImages:
    """Read a pair and make its working copies (see :class:`PairImages`).

    Raises
    ------
    PairRefused
        A file cannot be read, or the after does not line up (:func:`align_after`).
    """
    images = []
    for label, path in (("before", pair.before), ("after", pair.after)):
        try:
            images.append(read_image(path).pixels)
        except (ImageError, OSError) as exc:
            raise PairRefused(f"cannot read the {label} {path}: {exc}") from None
    note = check_sizes(images[0].shape, images[1].shape)
    # Shrink before converting: a 12 MP frame never becomes float.
    before, after = (_colour(resize_to_side(img, side)) for img in images)
    notes = [note] if note else []
    return PairImages(pair, before, align_after(before, after), notes, grey=images[0].ndim == 2)


def load_pairs(
    pairs: Iterable[Pair], side: int = WORKING_SIDE, on_pair: Callable[[Pair, str | None], None] | None = None
) -> tuple[list[PairImages], list[tuple[Pair, str]]]:
    """Load every pair; refused ones are collected with their reason, not raised.

    Parameters
    ----------
    pairs : iterable of Pair
    side : int
        Long side of the working copies.
    on_pair : callable, optional
        ``on_pair(pair, reason_or_None)`` after each pair (for a progress bar or log).

    Returns
    -------
    loaded : list of PairImages
    refused : list of (Pair, reason)
    """
    loaded, refused = [], []
    for pair in pairs:
        try:
            loaded.append(load_pair(pair, side))
            reason = None
        except PairRefused as exc:
            reason = str(exc)
            refused.append((pair, reason))
        if on_pair:
            on_pair(pair, reason)
    return loaded, refused
