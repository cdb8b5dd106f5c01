"""Reading and writing image files safely.

Reading goes through bytes (so any file name works and a truncated JPEG is caught rather
than returned half grey), checks the header's pixel count before decoding, splits alpha
off, applies EXIF orientation to the pixels and keeps EXIF/XMP/ICC beside them.
What the decoders print (libjpeg, libpng, libtiff, OpenCV's log) is captured per decode
and turned into a note or, with ``fail_on="error"``, a refusal, so it reaches the user with
the file's name instead of as a bare line on stderr.
Writing encodes in memory, writes a temp file in the target folder, fsyncs it and renames
it into place, so no reader ever sees a half-written image under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import struct
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")
FORMAT_EXTENSION = {"jpg": ".jpg", "png": ".png", "tiff": ".tif", "webp": ".webp"}
# What each container can hold, by extension.
EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp", ".bmp")
NO_ALPHA = (".jpg", ".jpeg", ".bmp")
METADATA_FORMATS = (".jpg", ".jpeg", ".png", ".webp")
TEMP_MARKER = ".imgenh-tmp"
FAIL_ON = ("none", "truncated", "error")
DEFAULT_MAX_PIXELS = 250_000_000


_MD_EXIF, _MD_XMP, _MD_ICC = cv2.IMAGE_METADATA_EXIF, cv2.IMAGE_METADATA_XMP, cv2.IMAGE_METADATA_ICCP
# OpenCV hands JPEG XMP over with its APP1 namespace header and writes the blob as given;
# it writes PNG XMP up to the first NUL (reading past the blob otherwise) and reads it back
# with a stray byte. So: XMP is kept bare in memory (as PNG and WebP hold it), PNG's text
# chunk is read here, and each writer gets the form it needs.
_XMP_JPEG_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
_XMP_PNG_KEYWORD = b"XML:com.adobe.xmp"


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


# --- container sniffing and header sizes ------------------------------------------------


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


def _tiff_ifd0(data: bytes) -> tuple[str, int, int]:
    """Byte order, offset of IFD0 and its entry count."""
    order = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    return order, offset, count


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order, offset, count = _tiff_ifd0(data)
    size = {}
    for i in range(count):
        entry = data[offset + 2 + 12 * i : offset + 14 + 12 * i]
        tag, typ = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            fmt = "H" if typ == 3 else "I"
            (size[tag],) = struct.unpack(order + fmt, entry[8 : 8 + struct.calcsize(fmt)])
    return (size[256], size[257]) if len(size) == 2 else None


# --- EXIF orientation ---------------------------------------------------------------------


def _orientation_entry(exif: bytes) -> tuple[int, str] | None:
    """Byte offset of the Orientation value in a raw EXIF (TIFF) block, and the byte order."""
    if len(exif) < 8 or exif[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    try:
        order, offset, count = _tiff_ifd0(exif)
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


# --- reading ----------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
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


def _png_xmp(data: bytes) -> bytes | None:
    """XMP from a PNG ``tEXt`` or uncompressed ``iTXt`` chunk before the pixel data."""
    pos = 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"IDAT":
            return None
        keyword, _, text = data[pos + 8 : pos + 8 + length].partition(b"\x00")
        if keyword == _XMP_PNG_KEYWORD:
            if kind == b"tEXt":
                return text
            # iTXt: compression flag, method, language\0, translated keyword\0, text
            if kind == b"iTXt" and text[:1] == b"\x00" and text[2:].count(b"\x00") >= 2:
                return text[2:].split(b"\x00", 2)[2]
        pos += 12 + length
    return None


# --- what the decoders print --------------------------------------------------------------

# libjpeg, libpng and libtiff (through OpenCV's log) write warnings straight to file
# descriptor 2, with no file name and past any logging setup. Each decode runs with fd 2
# pointed at an in-memory file; what lands there becomes a note or a refusal.
_CAPTURE_LOCK = threading.Lock()
# "[ WARN:0@0.032] global grfmt_tiff.cpp:123 TIFF_Warning " before OpenCV's log messages.
_CV_LOG_PREFIX = re.compile(r"^\[\s*[A-Z]+:[^\]]*\]\s+(?:\S+\s+)?\S+:\d+\s+(?:\S+\s+)?")
# "OpenCV(5.0.0) /io/opencv/modules/imgcodecs/src/bitstrm.cpp:59: error: (-2:Unspecified error) "
_CV_ERROR_PREFIX = re.compile(r"OpenCV\([^)]*\)\s+\S+:\d+:\s+error:\s+\([^)]*\)\s+")
_CV_FUNCTION_SUFFIX = re.compile(r"\s+in function '[^']*'$")
# Messages that say nothing about the file's health. OpenCV's own TIFF writer labels an
# alpha channel in a way its reader then warns about, for every RGBA TIFF it writes.
_HARMLESS = ("Sum of Photometric type-related color channels and ExtraSamples doesn't match",)
_MESSAGE_MAX = 300


def _new_capture_fd() -> int:
    """A readable, writable fd with no name: a memfd on Linux, else an unlinked temp file."""
    try:
        return os.memfd_create("imgenh-decoder-messages", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        fd, name = tempfile.mkstemp(prefix="imgenh-decoder-")
        os.unlink(name)
        return fd


class _DecoderMessages:
    """Context manager: file descriptor 2 goes to an in-memory file while the block runs.

    After the block ``text`` holds what was written there. The real fd 2 is restored in
    every case (exceptions included); a closed fd 2 is closed again. Captures in one
    process take turns (a lock): fd 2 is process-wide, so threads decoding at the same
    time would otherwise read each other's messages.
    """

    def __init__(self) -> None:
        self.text = ""

    def __enter__(self) -> _DecoderMessages:
        _CAPTURE_LOCK.acquire()
        try:
            if sys.stderr is not None:
                with contextlib.suppress(Exception):
                    sys.stderr.flush()  # what Python buffered goes out first
            try:
                self._saved: int | None = os.dup(2)
            except OSError:  # fd 2 closed: capture anyway (it may be the capture fd itself)
                self._saved = None
            self._fd = _new_capture_fd()
            if self._fd != 2:
                os.dup2(self._fd, 2)
        except BaseException:
            _CAPTURE_LOCK.release()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self._saved is not None:
                os.dup2(self._saved, 2)
                os.close(self._saved)
            elif self._fd != 2:
                os.close(2)
            size = os.lseek(self._fd, 0, os.SEEK_END)
            self.text = os.pread(self._fd, min(size, 1 << 16), 0).decode("utf-8", "replace")
        finally:
            os.close(self._fd)
            _CAPTURE_LOCK.release()


def decoder_messages(text: str) -> list[str]:
    """The distinct messages in what a decoder printed, without OpenCV's log prefixes.

    Known-harmless messages (see ``_HARMLESS``) are left out.
    """
    messages: list[str] = []
    for line in text.splitlines():
        line = _CV_ERROR_PREFIX.sub("", _CV_LOG_PREFIX.sub("", line.strip()))
        line = _CV_FUNCTION_SUFFIX.sub("", line).strip()
        line = line.removeprefix("imdecode_(''): ")
        if line and line not in messages and not any(h in line for h in _HARMLESS):
            messages.append(line)
    return messages


def _one_line(messages: list[str]) -> str:
    text = "; ".join(messages)
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 3].rstrip() + "..."


def _image_end(data: bytes, fmt: str) -> int | None:
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


def read_image(
    path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS, fail_on: str = "truncated"
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
    notes = []
    end = _image_end(data, fmt)
    truncated = end is None
    if truncated and fail_on != "none":
        raise ImageError(
            f"truncated {fmt.upper()} (file ends before the image data does); --fail-on none accepts it"
        )
    # Zero padding after the end is common (cameras, disk images) and harmless.
    if fail_on == "error" and not truncated and data[end:].strip(b"\x00"):
        raise ImageError(f"unexpected data after the end of the {fmt.upper()} image (--fail-on error)")
    buf = np.frombuffer(data, np.uint8)
    printed = _DecoderMessages()
    try:
        with printed:
            pixels, types, blobs = cv2.imdecodeWithMetadata(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"cannot decode {fmt.upper()}: {exc.err or exc}") from None
    messages = decoder_messages(printed.text)
    if pixels is None and truncated:
        # OpenCV's in-memory decoder gives up on a truncated JPEG; its file reader decodes
        # what is there and fills the rest with grey, which is what fail_on=none asks for.
        printed = _DecoderMessages()
        with printed:
            pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        types, blobs = (), ()
        notes.append(f"truncated {fmt.upper()} accepted (--fail-on none): missing rows are grey")
        # libjpeg's "Premature end of JPEG file" says what the note above already says.
        messages = [m for m in decoder_messages(printed.text) if m != "Premature end of JPEG file"]
    if pixels is None:
        said = f": {_one_line(messages)}" if messages else ""
        raise ImageError(f"corrupt {fmt.upper()} data (the decoder could not read it){said}")
    if messages and fail_on == "error":
        raise ImageError(f"decoder reported damage: {_one_line(messages)} (--fail-on error)")
    if messages:
        notes.append(f"decoder warning: {_one_line(messages)}")
    meta = {int(t): np.asarray(b).tobytes() for t, b in zip(types, blobs, strict=False)}

    if pixels.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(
            f"unsupported pixel type {pixels.dtype} (imgenh reads 8-bit, 16-bit and 32-bit float)"
        )
    if pixels.dtype == np.float32:
        pixels = np.clip(pixels, 0.0, 1.0)
    alpha = None
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        alpha = np.ascontiguousarray(pixels[..., -1])
        pixels = np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 2 else pixels[..., :3])
    elif pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]

    exif = meta.get(_MD_EXIF)
    orientation = exif_orientation(exif)
    if orientation != 1:
        pixels = apply_orientation(pixels, orientation)
        alpha = apply_orientation(alpha, orientation) if alpha is not None else None
        notes.append(f"EXIF orientation {orientation} applied to the pixels")
    if exif:
        exif = reset_orientation(exif)
    xmp = _png_xmp(data) if fmt == "png" else meta.get(_MD_XMP)
    if xmp:
        xmp = xmp.removeprefix(_XMP_JPEG_HEADER)
    digest = hashlib.sha256(data).hexdigest()
    return Image(pixels, alpha, exif, xmp or None, meta.get(_MD_ICC), fmt, notes, digest)


# --- writing ----------------------------------------------------------------------------------


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


def encode(image: Image, ext: str, *, quality: int = 92, metadata: str = "keep") -> tuple[bytes, list[str]]:
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
            xmp = _XMP_JPEG_HEADER + xmp
        elif xmp and ext == ".png":
            xmp = xmp + b"\x00"  # OpenCV's PNG writer reads it as a C string: stop it at the end
        blobs = [(t, b) for t, b in ((_MD_EXIF, image.exif), (_MD_XMP, xmp), (_MD_ICC, image.icc)) if b]
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


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder, fsync, rename.

    A crash at any moment leaves either the old file or the new one under ``path``, plus
    at worst a ``*.imgenh-tmp`` file that the next run removes.

    Raises
    ------
    OutputError
        Naming the reason (read-only folder, disk full...); the temp file is removed.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL with mode 0666: the kernel applies the umask, as for any new file.
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TEMP_MARKER}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OutputError(f"cannot write {path} (in its folder): {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _keep_permissions(path, tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


def _keep_permissions(path: Path, tmp: Path) -> None:
    """Give a replacement the mode (and, where allowed, the owner) of the file it replaces.

    So ``--in-place`` and ``--overwrite`` never make a private photo world-readable.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    with contextlib.suppress(OSError):  # only root may give a file away
        os.chown(tmp, st.st_uid, st.st_gid)


def write_image(path: str | Path, image: Image, *, quality: int = 92, metadata: str = "keep") -> list[str]:
    """Encode ``image`` for ``path``'s extension and write it atomically.

    Returns
    -------
    list of str
        Notes on conversions the format forced (e.g. 16-bit written as 8-bit).
    """
    path = Path(path)
    data, notes = encode(image, path.suffix, quality=quality, metadata=metadata)
    atomic_write(path, data)
    return notes
