"""Reading and writing image files safely.

Reading goes through bytes (so any file name works and a truncated JPEG is caught rather
than returned half grey), checks the header's pixel count before decoding, splits alpha
off, applies EXIF orientation to the pixels and keeps EXIF/XMP/ICC beside them.
What the decoders print (libjpeg, libpng, libtiff, OpenCV's log) is captured per decode
and turned into a note or, with ``fail_on="error"``, a refusal, so it reaches the user with
the file's name instead of as a bare line on stderr.
Writing encodes in memory, writes a temp file in the target folder, fsyncs it and renames
it into place, so no reader ever sees a half-written image under the final name.

One module per concern; import from here, the layout inside may change:

- ``image``: the :class:`Image` dataclass, :class:`ImageError`, :class:`OutputError`;
- ``formats``: extensions, what each container holds, sniffing, header sizes, image end;
- ``exif``: EXIF orientation (read, reset, apply to pixels) and the camera's exposure settings;
- ``decoder``: capturing what decoders print on fd 2, and cleaning the messages;
- ``read``: :func:`read_image` and the reading defaults;
- ``write``: :func:`prepare_for_format`, :func:`encode`, :func:`write_image`;
- ``atomic``: atomic files, temp names and their cleanup.
"""

from imgenh.io.atomic import (
    TEMP_MARKER,
    RenameGate,
    atomic_write,
    atomic_writer,
    is_temp_name,
    remove_temp_files,
)
from imgenh.io.decoder import decoder_messages
from imgenh.io.exif import (
    CameraExposure,
    apply_orientation,
    camera_exposure,
    exif_orientation,
    reset_orientation,
)
from imgenh.io.formats import (
    EIGHT_BIT_ONLY,
    EXTENSION_CONTAINER,
    FORMAT_EXTENSION,
    IMAGE_EXTENSIONS,
    METADATA_FORMATS,
    NO_ALPHA,
    header_size,
    sniff_format,
)
from imgenh.io.image import Image, ImageError, OutputError
from imgenh.io.read import DEFAULT_FAIL_ON, DEFAULT_MAX_PIXELS, FAIL_ON, read_image
from imgenh.io.write import DEFAULT_QUALITY, encode, prepare_for_format, write_image, write_source_bytes

__all__ = [
    "DEFAULT_FAIL_ON",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_QUALITY",
    "EIGHT_BIT_ONLY",
    "FAIL_ON",
    "EXTENSION_CONTAINER",
    "FORMAT_EXTENSION",
    "IMAGE_EXTENSIONS",
    "METADATA_FORMATS",
    "NO_ALPHA",
    "TEMP_MARKER",
    "Image",
    "ImageError",
    "OutputError",
    "CameraExposure",
    "apply_orientation",
    "camera_exposure",
    "RenameGate",
    "atomic_write",
    "atomic_writer",
    "decoder_messages",
    "encode",
    "exif_orientation",
    "header_size",
    "is_temp_name",
    "prepare_for_format",
    "read_image",
    "remove_temp_files",
    "reset_orientation",
    "sniff_format",
    "write_image",
    "write_source_bytes",
]
