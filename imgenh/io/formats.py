"""Containers: which files are images, what each container can hold, and its header.

Owns the extension tables, sniffing the container from its first bytes, the pixel size
from the header (checked before decoding), where the image data ends (truncation and
trailing data), and how each container carries XMP through OpenCV.
"""

from __future__ import annotations

import struct

import cv2

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
FORMAT_EXTENSION = {"jpg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp"}
# The container each writable extension holds (as sniff_format names it).
EXTENSION_CONTAINER = {
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".png": "png",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".webp": "webp",
    ".bmp": "bmp",
}
# What each container can hold, by extension.
EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp", ".bmp")
NO_ALPHA = (".jpg", ".jpeg", ".bmp")
METADATA_FORMATS = (".jpg", ".jpeg", ".png", ".webp")

# OpenCV's ids for the metadata blobs it reads and writes beside the pixels.
MD_EXIF, MD_XMP, MD_ICC = cv2.IMAGE_METADATA_EXIF, cv2.IMAGE_METADATA_XMP, cv2.IMAGE_METADATA_ICCP
# OpenCV hands JPEG XMP over with its APP1 namespace header and writes the blob as given;
# it writes PNG XMP up to the first NUL (reading past the blob otherwise) and reads it back
# with a stray byte. So: XMP is kept bare in memory (as PNG and WebP hold it), PNG's text
# chunk is read here, and each writer gets the form it needs.
XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"


def sniff_format(data: bytes) -> str | None:
    """Container type from the first bytes, or None if it is not a supported image."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the container header without decoding, or None if unreadable."""
    try:
        if fmt == "png":
            return struct.unpack(">II", data[16:24])
        if fmt == "bmp":
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if fmt == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                h = int.from_bytes(data[27:30], "little") + 1
                return w, h
            if chunk == b"VP8L":
                bits = int.from_bytes(data[21:25], "little")
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return w & 0x3FFF, h & 0x3FFF
            return None
        if fmt == "jpeg":
            return _jpeg_size(data)
        if fmt == "tiff":
            return _tiff_size(data)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return w, h
        pos += 2 + length
    return None


def tiff_ifd0(data: bytes) -> tuple[str, int, int]:
    """Byte order, offset of IFD0 and its entry count."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    return order, offset, count


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order, offset, count = tiff_ifd0(data)
    size = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            (size[tag],) = struct.unpack(order + fmt, entry[8 : 8 + struct.calcsize(fmt)])
    return (size[256], size[257]) if len(size) == 2 else None


def image_end(data: bytes, fmt: str) -> int | None:
    """Offset just past the image's end marker, or None when the file stops before it.

    Only JPEG (EOI after the last start-of-scan) and PNG (the IEND chunk) are checked; other
    formats count as complete. Bytes after the end are trailing data, not truncation.
    """
    if fmt == "jpeg":
        # Entropy-coded data cannot hold FF D9 (FF is byte-stuffed), so the first EOI after
        # the last SOS ends the main image; an EXIF thumbnail's EOI comes before that SOS.
        sos = data.rfind(b"\xff\xda")
        eoi = data.find(b"\xff\xd9", sos) if sos >= 0 else -1
        return None if eoi < 0 else eoi + 2
    if fmt == "png":
        pos = 8
        while pos + 8 <= len(data):
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            if pos + 12 + length > len(data):
                return None
            if data[pos + 4 : pos + 8] == b"IEND":
                return pos + 12 + length
            pos += 12 + length
        return None
    return len(data)


def image_complete(data: bytes, fmt: str) -> bool:
    """Whether :func:`image_end` finds the end marker, without scanning the image data.

    For JPEG: an EOI follows the last SOS exactly when there is an SOS and none after the
    last EOI. Both searches stop near an end of the file (the first SOS comes after the
    headers, the last EOI is at or near the end), where :func:`image_end` reads the whole
    entropy-coded data (~5 ms at 12 MP).
    """
    if fmt != "jpeg":
        return image_end(data, fmt) is not None
    last_eoi = data.rfind(b"\xff\xd9")
    return last_eoi >= 0 and data.find(b"\xff\xda") >= 0 and data.find(b"\xff\xda", last_eoi) < 0


def png_xmp(data: bytes) -> bytes | None:
    """XMP from a PNG ``tEXt`` or uncompressed ``iTXt`` chunk before the pixel data."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            return None
        keyword, _, text = data[pos + 8 : pos + 8 + length].partition(b"\x00")
        if keyword == XMP_PNG_KEYWORD:
            if kind == b"tEXt":
                return text
            # iTXt: compression flag, method, language\0, translated keyword\0, text
            if kind == b"iTXt" and text[:1] == b"\x00" and text[2:].count(b"\x00") >= 2:
                return text[2:].split(b"\x00", 2)[2]
        pos += 12 + length
    return None
