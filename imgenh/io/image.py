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
    """

    pixels: np.ndarray
    alpha: np.ndarray | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    icc: bytes | None = None
    format: str = ""
    notes: list[str] = field(default_factory=list)
    sha256: str = ""
