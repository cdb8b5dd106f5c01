"""Writing: fit the pixels to the container, encode in memory with metadata, write atomically."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from imgenh.io.atomic import RenameGate, atomic_write
from imgenh.io.formats import (
    EIGHT_BIT_ONLY,
    MD_EXIF,
    MD_ICC,
    MD_XMP,
    METADATA_FORMATS,
    NO_ALPHA,
    XMP_JPEG_HEADER,
)
from imgenh.io.image import Image, OutputError

# JPEG and WebP quality when the caller gives none.
DEFAULT_QUALITY = 92


def prepare_for_format(image: Image, ext: str) -> tuple[np.ndarray, list[str]]:
    """Pixels (alpha attached) in a layout and depth the container can hold, and notes on any change."""
    notes = []
    pixels, alpha = image.pixels, image.alpha
    if pixels.dtype == np.float32 and ext not in (".tif", ".tiff"):
        pixels = np.rint(np.clip(pixels, 0, 1) * 65535).astype(np.uint16)
        alpha = None if alpha is None else np.rint(np.clip(alpha, 0, 1) * 65535).astype(np.uint16)
    if pixels.dtype == np.uint16 and ext in EIGHT_BIT_ONLY:
        notes.append(f"16-bit image written as 8-bit ({ext} holds 8 bits per channel)")
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
        alpha = None if alpha is None else ((alpha.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if alpha is not None and ext in NO_ALPHA:
        notes.append(f"alpha flattened onto white ({ext} has no alpha channel)")
        top = float(np.iinfo(pixels.dtype).max)
        a = alpha.astype(np.float32) / top
        if pixels.ndim == 3:
            a = a[..., None]
        pixels = np.rint(pixels * a + top * (1 - a)).astype(pixels.dtype)
        alpha = None
    if alpha is not None:
        if pixels.ndim == 2:  # OpenCV writes grey+alpha as BGRA
            pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        pixels = np.dstack([pixels, alpha.astype(pixels.dtype)])
    return pixels, notes


def encode(
    image: Image, ext: str, *, quality: int = DEFAULT_QUALITY, metadata: str = "keep"
) -> tuple[bytes, list[str]]:
    """Encode an image for a file with extension ``ext``.

    Returns
    -------
    data : bytes
    notes : list of str
        Conversions the container forced (depth, alpha, dropped metadata).
    """
    ext = ext.lower()
    pixels, notes = prepare_for_format(image, ext)
    params: list[int] = []
    if ext in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif ext == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, quality]
    blobs = []
    if metadata == "keep":
        xmp = image.xmp
        if xmp and ext in (".jpg", ".jpeg"):
            xmp = XMP_JPEG_HEADER + xmp
        elif xmp and ext == ".png":
            xmp = xmp + b"\x00"  # OpenCV's PNG writer reads it as a C string: stop it at the end
        blobs = [(t, b) for t, b in ((MD_EXIF, image.exif), (MD_XMP, xmp), (MD_ICC, image.icc)) if b]
        if blobs and ext not in METADATA_FORMATS:
            notes.append(f"metadata (EXIF/XMP/ICC) not written: OpenCV does not write it to {ext}")
            blobs = []
    try:
        if blobs:
            types = [t for t, _ in blobs]
            arrays = [np.frombuffer(b, np.uint8) for _, b in blobs]
            ok, buf = cv2.imencodeWithMetadata(ext, pixels, types, arrays, params)
        else:
            ok, buf = cv2.imencode(ext, pixels, params)
    except cv2.error as exc:
        raise OutputError(f"cannot encode {ext}: {exc.err or exc}") from None
    if not ok:
        raise OutputError(f"cannot encode {ext}")
    return buf.tobytes(), notes


def write_image(
    path: str | Path,
    image: Image,
    *,
    quality: int = DEFAULT_QUALITY,
    metadata: str = "keep",
    gate: RenameGate | None = None,
) -> list[str]:
    """Encode ``image`` for ``path``'s extension and write it atomically (through ``gate``, if given).

    Returns
    -------
    list of str
        Notes on conversions the format forced (e.g. 16-bit written as 8-bit).
    """
    path = Path(path)
    data, notes = encode(image, path.suffix, quality=quality, metadata=metadata)
    atomic_write(path, data, gate)
    return notes


def write_source_bytes(
    path: str | Path, source: str | Path, sha256: str, gate: RenameGate | None = None
) -> bool:
    """Write ``source``'s bytes to ``path`` as they are (atomically), if they are still the ones decoded.

    For an image the pipeline left exactly as decoded: no second JPEG generation, metadata as
    in the file.

    Parameters
    ----------
    path : str or Path
        The output.
    source : str or Path
        The input file.
    sha256 : str
        Hash of the bytes that were decoded (:attr:`Image.sha256`).
    gate : RenameGate, optional
        As for :func:`write_image`.

    Returns
    -------
    bool
        False, with nothing written, when the source cannot be read or no longer has those bytes.
    """
    try:
        data = Path(source).read_bytes()
    except OSError:
        return False
    if hashlib.sha256(data).hexdigest() != sha256:
        return False
    atomic_write(path, data, gate)
    return True
