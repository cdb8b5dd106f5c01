"""Fast paths of reading agree with the full checks they stand in for."""

import cv2
import numpy as np
import pytest

from imgenh.io.formats import image_complete, image_end


def _jpeg(progressive: bool) -> bytes:
    rng = np.random.default_rng(3)
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), (5, 5), 0)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)])
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_complete_agrees_with_image_end_at_every_cut(progressive):
    data = _jpeg(progressive)
    eoi, sos, zeros = b"\xff\xd9", b"\xff\xda", b"\x00" * 7
    variants = [data[:n] for n in range(0, len(data) + 1)]  # cut anywhere, the whole file last
    variants += [
        data + zeros,  # camera padding
        data + b"junk" + eoi,  # trailing data holding an EOI
        data + sos + b"junk",  # an SOS after the last EOI: a second image cut short
        data + eoi + sos,
        data.replace(sos, b"\xff\xdb"),  # no scan at all
        eoi + data[2:],
    ]
    for d in variants:
        assert image_complete(d, "jpeg") == (image_end(d, "jpeg") is not None), len(d)
    assert image_complete(data, "jpeg") and not image_complete(data[:-2], "jpeg")


def test_png_complete_is_image_end():
    ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    data = buf.tobytes()
    assert image_complete(data, "png") and not image_complete(data[:-5], "png")
