"""The decoded image as io hands it over, and the two errors io raises."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class ImageError(Exception):
    """An input that cannot be used; the message says why in a few words."""


class OutputError(Exception):
    """An output that could not be written; nothing partial is left behind."""


@dataclass
class Image:
    """Decoded pixels plus what travels with them.

    Attributes
    ----------
    pixels : ndarray
        (H, W) grey or (H, W, 3) BGR; uint8, uint16 or float32.
    alpha : ndarray or None
        (H, W) alpha plane, carried untouched.
    exif, xmp, icc : bytes or None
        Metadata blobs (EXIF as a raw TIFF block, orientation already reset to 1).
    format : str
        Detected container: jpeg, png, tiff, webp or bmp.
    notes : list of str
        Things worth a line in the log (orientation applied, damaged data accepted...).
    sha256 : str
        Hash of the file bytes that were decoded (for the manifest).
    turned : bool
        EXIF orientation was applied to the pixels (they are no longer as the file stores them).
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    icc: bytes | None = None
    format: str = ""
    notes: list[str] = field(default_factory=list)
    sha256: str = ""
    turned: bool = False

    def same_pixels_as(self, other: Image) -> bool:
        """True when ``other`` has exactly these pixels and alpha (same shape, depth and values).

        Compared in bands of about a million values, so a changed image is told apart in its
        first band and no full-size boolean copy is made.
        """
        if self.alpha is None or other.alpha is None:
            if self.alpha is not other.alpha:
                return False
        elif not _same_array(self.alpha, other.alpha):
            return False
        return _same_array(self.pixels, other.pixels)


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a is b:
        return True
    rows = max(1, (1 << 20) // max(a[0].size, 1))
    return all(np.array_equal(a[top : top + rows], b[top : top + rows]) for top in range(0, a.shape[0], rows))
