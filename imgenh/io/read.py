"""Reading: file bytes -> checks before decoding -> decode with captured messages -> Image.

Reading goes through bytes (so any file name works and a truncated JPEG is caught rather
than returned half grey), checks the header's pixel count before decoding, splits alpha
off, applies EXIF orientation to the pixels and keeps EXIF/XMP/ICC beside them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import cv2
import numpy as np

from imgenh.io.decoder import DecoderMessages, decoder_messages, one_line
from imgenh.io.exif import apply_orientation, exif_orientation, reset_orientation
from imgenh.io.formats import (
    MD_EXIF,
    MD_ICC,
    MD_XMP,
    XMP_JPEG_HEADER,
    header_size,
    image_complete,
    image_end,
    png_xmp,
    sniff_format,
)
from imgenh.io.image import Image, ImageError

FAIL_ON = ("none", "truncated", "error")
DEFAULT_FAIL_ON = "truncated"
DEFAULT_MAX_PIXELS = 250_000_000


def read_image(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, fail_on: str = DEFAULT_FAIL_ON
) -> Image:
    """Read an image file, ready for a pipeline.

    Parameters
    ----------
    path : str or Path
        Any name the file system accepts (the file is read as bytes).
    max_pixels : int
        Refuse images whose header claims more pixels, before decoding them.
    fail_on : {"none", "truncated", "error"}
        How strict decoding is, as libvips' ``fail_on`` (whose ``warning`` level is folded
        into ``error`` here):

        - ``none`` accepts anything decodable, a truncated JPEG decoded as far as it goes
          (missing rows grey);
        - ``truncated`` (the default) refuses truncated files, nothing else: damaged but
          decodable data ("Corrupt JPEG data: ...") is accepted, as libvips does;
        - ``error`` refuses anything the decoder complains about: truncation, data after
          the image's end marker, and any warning the decoder prints.

        What the decoder prints (libjpeg, libpng, libtiff, OpenCV) never reaches stderr:
        under ``error`` it is the refusal's reason, otherwise it becomes a note starting
        ``"decoder warning: "``. Messages known to be harmless (OpenCV's reader warning about
        the alpha channel of every RGBA TIFF its writer makes) are dropped.

    Returns
    -------
    Image

    Raises
    ------
    ImageError
        With a short reason: "empty file (0 bytes)", "not a supported image ...", etc.
    """
    path = Path(path)
    data = _read_bytes(path)
    fmt = _check_container(data, max_pixels)
    truncated = _check_complete(data, fmt, fail_on)
    pixels, meta, notes = _decode(data, path, fmt, truncated, fail_on)
    return _assemble(pixels, meta, notes, data, fmt)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, or ImageError saying why not (missing, broken symlink, a folder...)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageError(f"broken symlink (points to {os.readlink(path)!r})") from None
        raise ImageError("no such file") from None
    except OSError as exc:
        raise ImageError(exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError("is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError("not a regular file")
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except PermissionError:
        raise ImageError("permission denied") from None
    except OSError as exc:
        raise ImageError(exc.strerror or str(exc)) from None


def _check_container(data: bytes, max_pixels: int) -> str:
    """The container's format, once it is known to be a supported image of acceptable size."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(
            f"not a supported image (content starts with {data[:8]!r}); expected JPEG, PNG, TIFF, WebP or BMP"
        )
    size = header_size(data, fmt)
    if size is None:
        raise ImageError(f"corrupt {fmt.upper()} header")
    if size[0] * size[1] > max_pixels:
        raise ImageError(
            f"{size[0]}x{size[1]} = {size[0] * size[1] / 1e6:.0f} MP exceeds "
            f"--max-pixels {max_pixels / 1e6:g} MP (checked before decoding)"
        )
    return fmt


def _check_complete(data: bytes, fmt: str, fail_on: str) -> bool:
    """Whether the file is truncated, after refusing truncation and trailing data as ``fail_on`` asks."""
    if fail_on == "error":
        end = image_end(data, fmt)
        truncated = end is None
    else:  # only whether the image ends matters here, not where (a cheaper test)
        end, truncated = None, not image_complete(data, fmt)
    if truncated and fail_on != "none":
        raise ImageError(
            f"truncated {fmt.upper()} (file ends before the image data does); --fail-on none accepts it"
        )
    # Zero padding after the end is common (cameras, disk images) and harmless.
    if fail_on == "error" and not truncated and data[end:].strip(b"\x00"):
        raise ImageError(f"unexpected data after the end of the {fmt.upper()} image (--fail-on error)")
    return truncated


def _decode(
    data: bytes, path: Path, fmt: str, truncated: bool, fail_on: str
) -> tuple[np.ndarray, dict[int, bytes], list[str]]:
    """Pixels as stored, metadata blobs by OpenCV type, and notes; decoder messages judged by ``fail_on``."""
    notes = []
    buf = np.frombuffer(data, np.uint8)
    printed = DecoderMessages()
    try:
        with printed:
            pixels, types, blobs = cv2.imdecodeWithMetadata(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"cannot decode {fmt.upper()}: {exc.err or exc}") from None
    messages = decoder_messages(printed.text)
    if pixels is None and truncated:
        pixels, messages = _decode_truncated(path)
        types, blobs = (), ()
        notes.append(f"truncated {fmt.upper()} accepted (--fail-on none): missing rows are grey")
    if pixels is None:
        said = f": {one_line(messages)}" if messages else ""
        raise ImageError(f"corrupt {fmt.upper()} data (the decoder could not read it){said}")
    if messages and fail_on == "error":
        raise ImageError(f"decoder reported damage: {one_line(messages)} (--fail-on error)")
    if messages:
        notes.append(f"decoder warning: {one_line(messages)}")
    meta = {int(t): np.asarray(b).tobytes() for t, b in zip(types, blobs, strict=False)}
    return pixels, meta, notes


def _decode_truncated(path: Path) -> tuple[np.ndarray | None, list[str]]:
    """Decode a truncated file as far as it goes, and what the decoder printed."""
    # OpenCV's in-memory decoder gives up on a truncated JPEG; its file reader decodes
    # what is there and fills the rest with grey, which is what fail_on=none asks for.
    printed = DecoderMessages()
    with printed:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    # libjpeg's "Premature end of JPEG file" says what the caller's note already says.
    messages = [m for m in decoder_messages(printed.text) if m != "Premature end of JPEG file"]
    return pixels, messages


def _assemble(pixels: np.ndarray, meta: dict[int, bytes], notes: list[str], data: bytes, fmt: str) -> Image:
    """The Image: pixels in a supported depth, alpha split off, turned upright, metadata beside them."""
    pixels, alpha = _split_alpha(_supported_depth(pixels))
    exif = meta.get(MD_EXIF)
    orientation = exif_orientation(exif)
    if orientation != 1:
        pixels = apply_orientation(pixels, orientation)
        alpha = apply_orientation(alpha, orientation) if alpha is not None else None
        notes.append(f"EXIF orientation {orientation} applied to the pixels")
    if exif:
        exif = reset_orientation(exif)
    xmp = png_xmp(data) if fmt == "png" else meta.get(MD_XMP)
    if xmp:
        xmp = xmp.removeprefix(XMP_JPEG_HEADER)
    digest = hashlib.sha256(data).hexdigest()
    return Image(pixels, alpha, exif, xmp or None, meta.get(MD_ICC), fmt, notes, digest, orientation != 1)


def _supported_depth(pixels: np.ndarray) -> np.ndarray:
    """The pixels if their type is one imgenh works in (float clipped to 0..1), else ImageError."""
    if pixels.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(
            f"unsupported pixel type {pixels.dtype} (imgenh reads 8-bit, 16-bit and 32-bit float)"
        )
    if pixels.dtype == np.float32:
        pixels = np.clip(pixels, 0.0, 1.0)
    return pixels


def _split_alpha(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W) grey or (H, W, 3) colour, and the alpha plane if the file had one."""
    alpha = None
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        alpha = np.ascontiguousarray(pixels[..., -1])
        pixels = np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 2 else pixels[..., :3])
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return pixels, alpha
