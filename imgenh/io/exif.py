"""EXIF: orientation (read it, reset it to upright, turn pixels upright) and the camera's exposure."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

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


# --------------------------------------------------------------------------- exposure

EXIF_IFD_POINTER = 0x8769
EXPOSURE_TIME, F_NUMBER, ISO_SPEED = 0x829A, 0x829D, 0x8827
_TYPE_SIZES = {3: 2, 4: 4, 5: 8}  # SHORT, LONG, RATIONAL: the only types read here


@dataclass(frozen=True)
class CameraExposure:
    """The camera's exposure settings, as EXIF records them.

    Attributes
    ----------
    exposure_time : float
        Seconds.
    f_number : float
    iso : float or None
        ISO speed; None when the file does not say.
    """

    exposure_time: float
    f_number: float
    iso: float | None = None

    @property
    def ev100(self) -> float:
        """Exposure value of the settings at ISO 100: log2(N^2 / t) - log2(ISO / 100).

        A scene metered to mid-grey at these settings has this EV; without an ISO, 100 is
        assumed, the least sensitive usual speed, so the value is an upper bound on the light.
        """
        ev = math.log2(self.f_number**2 / self.exposure_time)
        return ev - math.log2(self.iso / 100.0) if self.iso else ev


def _ifd_values(exif: bytes, order: str, offset: int, wanted: set[int]) -> dict[int, float]:
    """The first value of each ``wanted`` SHORT, LONG or RATIONAL tag in the IFD at ``offset``."""
    (count,) = struct.unpack(order + "H", exif[offset : offset + 2])
    found = {}
    for i in range(count):
        start = offset + 2 + 12 * i
        tag, typ = struct.unpack(order + "HH", exif[start : start + 4])
        if tag not in wanted or typ not in _TYPE_SIZES:
            continue
        where = start + 8
        if _TYPE_SIZES[typ] > 4:  # a value longer than 4 bytes lies at an offset
            (where,) = struct.unpack(order + "I", exif[where : where + 4])
        if typ == 5:
            num, den = struct.unpack(order + "II", exif[where : where + 8])
            found[tag] = num / den if den else math.nan
        else:
            (found[tag],) = struct.unpack(
                order + ("H" if typ == 3 else "I"), exif[where : where + _TYPE_SIZES[typ]]
            )
    return found


def camera_exposure(exif: bytes | None) -> CameraExposure | None:
    """Exposure time, f-number and ISO from a raw EXIF (TIFF) block.

    Returns None when the block is missing, unreadable, or lacks a positive, finite
    exposure time or f-number (a value that cannot have come from a camera).

    Examples
    --------
    >>> camera_exposure(None) is None
    True
    """
    if not exif or len(exif) < 8 or exif[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    try:
        order, offset, _ = tiff_ifd0(exif)
        pointer = _ifd_values(exif, order, offset, {EXIF_IFD_POINTER}).get(EXIF_IFD_POINTER)
        if pointer is None:
            return None
        values = _ifd_values(exif, order, int(pointer), {EXPOSURE_TIME, F_NUMBER, ISO_SPEED})
    except (struct.error, ValueError):
        return None
    time, f_number = values.get(EXPOSURE_TIME, math.nan), values.get(F_NUMBER, math.nan)
    if not (0 < time < 1e5 and 0 < f_number < 1e3):  # NaN fails both
        return None
    iso = values.get(ISO_SPEED)
    return CameraExposure(float(time), float(f_number), float(iso) if iso else None)
