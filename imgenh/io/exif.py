"""EXIF orientation: read it from a raw EXIF block, reset it to upright, turn pixels upright."""

from __future__ import annotations

import struct

import cv2
import numpy as np

from imgenh.io.formats import tiff_ifd0


def _orientation_entry(exif: bytes) -> tuple[int, str] | None:
    """Byte offset of the Orientation value in a raw EXIF (TIFF) block, and the byte order."""
    if len(exif) < 8 or exif[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    try:
        order, offset, count = tiff_ifd0(exif)
        for i in range(count):
            start = offset + 2 + 12 * i
            (tag,) = struct.unpack(order + "H", exif[start : start + 2])
            if tag == 0x0112:
                return start + 8, order
    except struct.error:
        return None
    return None


def exif_orientation(exif: bytes | None) -> int:
    """EXIF Orientation (1-8) from a raw EXIF block; 1 when absent or unreadable."""
    entry = _orientation_entry(exif) if exif else None
    if entry is None:
        return 1
    (value,) = struct.unpack(entry[1] + "H", exif[entry[0] : entry[0] + 2])
    return value if 1 <= value <= 8 else 1


def reset_orientation(exif: bytes) -> bytes:
    """A copy of the EXIF block with Orientation set to 1 (upright), so viewers do not rotate again."""
    entry = _orientation_entry(exif)
    if entry is None:
        return exif
    return exif[: entry[0]] + struct.pack(entry[1] + "H", 1) + exif[entry[0] + 2 :]


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with EXIF ``orientation`` (1-8) upright."""
    if orientation == 2:
        return cv2.flip(img, 1)
    if orientation == 3:
        return cv2.rotate(img, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(img, 0)
    if orientation == 5:
        return cv2.transpose(img)
    if orientation == 6:
        return cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return cv2.rotate(cv2.flip(img, 1), cv2.ROTATE_90_CLOCKWISE)
    if orientation == 8:
        return cv2.rotate(img, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return img
