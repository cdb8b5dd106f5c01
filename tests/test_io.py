"""Faithful outputs: orientation, metadata, depth, grey and alpha; and the machine reports.

What OpenCV 5.0 can write, as tested here: EXIF, XMP and ICC go into JPEG, PNG and WebP;
TIFF gets none of them (imgenh says so once in the log). WebP has no grey mode (grey comes
back as three equal channels) and OpenCV cannot write grey+alpha, so grey+alpha is written
as BGRA with equal colour channels.
"""

from __future__ import annotations

import functools
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from imgenh import pipeline_from_steps
from imgenh.io import Image, exif_orientation, read_image, write_image
from imgenh.runner import RunOptions, run_batch

PIL_FORMAT = {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tif": "TIFF"}
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>imgenh test</dc:creator>'
    b"</rdf:Description></rdf:RDF></x:xmpmeta>"
)


@functools.cache
def srgb_icc() -> bytes:
    """An sRGB profile (built once: it carries a creation time, so each build differs)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def asymmetric(h: int = 20, w: int = 30) -> np.ndarray:
    """An RGB image whose every flip and rotation differs (blocks in distinct corners)."""
    img = np.full((h, w, 3), 40, np.uint8)
    img[:5, :10] = (255, 255, 255)
    img[-6:, -8:] = (255, 0, 0)
    img[:4, -3:] = (0, 255, 0)
    return img


def save_with_pillow(path: Path, rgb: np.ndarray, orientation: int = 1, icc=None, xmp=None, make="TestMake"):
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = make
    kwargs = {"exif": exif.tobytes()}
    fmt = PIL_FORMAT[path.suffix]
    if icc:
        kwargs["icc_profile"] = icc
    if xmp:
        kwargs["xmp"] = xmp
    if fmt == "JPEG":
        kwargs["quality"] = 95
    if fmt == "WEBP":
        kwargs["lossless"] = True
    PILImage.fromarray(rgb).save(path, format=fmt, **kwargs)


def cli(cwd: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgenh", "run", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- EXIF orientation -------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_applied_to_pixels(tmp_path, ext, orientation):
    path = tmp_path / f"o{orientation}{ext}"
    save_with_pillow(path, asymmetric(), orientation)
    image = read_image(path)
    if ext == ".tif" and orientation >= 5:
        # OpenCV 5.0's imread fails on these ('original_ptr == real_mat.data'): Pillow is the reference
        reference = np.asarray(ImageOps.exif_transpose(PILImage.open(path)).convert("RGB"))[..., ::-1]
    else:
        reference = cv2.imread(str(path), cv2.IMREAD_COLOR)  # OpenCV applies EXIF orientation here
    assert image.pixels.shape == reference.shape
    assert np.abs(image.pixels.astype(int) - reference).max() <= 2
    if orientation in (5, 6, 7, 8):
        assert image.pixels.shape[:2] == (30, 20)
    if ext != ".tif":  # TIFF orientation is handled by the decoder; no EXIF block comes out
        assert exif_orientation(image.exif) == 1
    # written back: upright pixels and orientation 1, so no viewer rotates twice
    if ext in (".jpg", ".png", ".webp"):
        out = tmp_path / f"out{ext}"
        write_image(out, image)
        assert PILImage.open(out).getexif().get(0x0112) == 1
        again = read_image(out)
        assert np.abs(again.pixels.astype(int) - image.pixels).mean() <= 3  # same way up (JPEG blurs edges)
        assert again.notes == []


# --- metadata through the CLI -----------------------------------------------------------------


@pytest.fixture
def phone_photo(tmp_path):
    """An EXIF-rotated (6) JPEG with an sRGB ICC profile, XMP and a Make tag."""
    (tmp_path / "in").mkdir()
    save_with_pillow(tmp_path / "in" / "phone.jpg", asymmetric(), 6, icc=srgb_icc(), xmp=XMP)
    (tmp_path / "p.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.0\n")
    return tmp_path


@pytest.mark.parametrize("fmt", ["jpg", "png", "webp"])
def test_rotated_jpeg_with_icc_round_trip(phone_photo, fmt):
    proc = cli(phone_photo, "p.yaml", "in", "-o", "out", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    out = phone_photo / "out" / f"phone.{'jpg' if fmt == 'jpg' else fmt}"
    upright = cv2.imread(str(phone_photo / "in" / "phone.jpg"), cv2.IMREAD_COLOR)
    got = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert got.shape == upright.shape == (30, 20, 3)
    assert np.abs(got.astype(int) - upright).mean() <= 3  # upright (lossy codecs blur edges)
    pil = PILImage.open(out)
    assert pil.info.get("icc_profile") == srgb_icc()
    exif = pil.getexif()
    assert exif.get(0x0112) == 1
    assert exif.get(0x010F) == "TestMake"
    assert read_image(out).xmp == XMP


def test_metadata_strip(phone_photo):
    proc = cli(phone_photo, "p.yaml", "in", "-o", "out", "--metadata", "strip")
    assert proc.returncode == 0, proc.stderr
    out = phone_photo / "out" / "phone.jpg"
    image = read_image(out)
    assert (image.exif, image.icc, image.xmp) == (None, None, None)
    assert cv2.imread(str(out)).shape == (30, 20, 3)  # still upright without the EXIF tag
    pil = PILImage.open(out)
    assert "icc_profile" not in pil.info and len(pil.getexif()) == 0


def test_tiff_gets_no_metadata_and_says_so_once(phone_photo):
    save_with_pillow(phone_photo / "in" / "second.jpg", asymmetric(), 1, icc=srgb_icc())
    proc = cli(phone_photo, "p.yaml", "in", "-o", "out", "--format", "tiff")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("metadata (EXIF/XMP/ICC) not written: OpenCV does not write it to .tif") == 1
    image = read_image(phone_photo / "out" / "phone.tif")
    assert image.pixels.shape == (30, 20, 3)
    assert (image.exif, image.icc, image.xmp) == (None, None, None)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp"])
def test_xmp_round_trips_between_formats(tmp_path, ext):
    src = tmp_path / "src.jpg"
    save_with_pillow(src, asymmetric(), 1, xmp=XMP)
    image = read_image(src)
    assert image.xmp == XMP  # bare, without JPEG's APP1 namespace header
    write_image(tmp_path / f"a{ext}", image)
    again = read_image(tmp_path / f"a{ext}")
    assert again.xmp == XMP  # no header, no NUL appended
    write_image(tmp_path / "b.jpg", again)
    assert read_image(tmp_path / "b.jpg").xmp == XMP


# --- depth, grey, alpha -------------------------------------------------------------------------

COLOUR_PIPELINE = [{"op": "gamma", "value": 1.5}, {"op": "saturation", "factor": 1.5}]


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_stays_16bit(tmp_path, ext, photo16):
    cv2.imwrite(str(tmp_path / f"in{ext}"), photo16[:20, :30])
    summary = run_batch(pipeline_from_steps(COLOUR_PIPELINE), [str(tmp_path / f"in{ext}")], tmp_path / "out")
    assert summary.exit_code == 0
    out = cv2.imread(str(tmp_path / "out" / f"in{ext}"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (20, 30, 3)
    assert len(np.unique(out)) > 256  # really 16-bit data, not 8-bit scaled


@pytest.mark.parametrize("ext", [".png", ".tif", ".jpg"])
def test_grey_stays_grey(tmp_path, ext, gray8):
    cv2.imwrite(str(tmp_path / f"in{ext}"), gray8[:20, :30])
    run_batch(
        pipeline_from_steps([{"op": "gamma", "value": 1.5}]), [str(tmp_path / f"in{ext}")], tmp_path / "out"
    )
    out = cv2.imread(str(tmp_path / "out" / f"in{ext}"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (20, 30)


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
@pytest.mark.parametrize("depth", [8, 16])
def test_alpha_kept_untouched(tmp_path, ext, depth, photo8, photo16):
    if ext == ".webp" and depth == 16:
        pytest.skip("WebP holds 8 bits only")
    colour = (photo8 if depth == 8 else photo16)[:20, :30]
    dtype = colour.dtype
    top = np.iinfo(dtype).max
    alpha = np.linspace(0, top, 20 * 30).reshape(20, 30).astype(dtype)
    cv2.imwrite(str(tmp_path / f"in{ext}"), np.dstack([colour, alpha]), [cv2.IMWRITE_WEBP_QUALITY, 101])
    summary = run_batch(pipeline_from_steps(COLOUR_PIPELINE), [str(tmp_path / f"in{ext}")], tmp_path / "out")
    assert summary.exit_code == 0, summary.results[0].reason
    out = cv2.imread(str(tmp_path / "out" / f"in{ext}"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (20, 30, 4) and out.dtype == dtype
    tolerance = 0 if ext != ".webp" else 2  # lossy WebP (quality 92) keeps alpha almost exactly
    assert np.abs(out[..., 3].astype(int) - alpha).max() <= tolerance
    assert np.abs(out[..., :3].astype(int) - colour).mean() > 1  # the colour did change


def test_16bit_to_jpeg_converts_and_says_so_once(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    levels = np.arange(0, 256, dtype=np.uint16)
    img16 = np.tile(levels * 257, (8, 1)).astype(np.uint16)  # every 8-bit level, scaled by 257
    for i in range(3):
        cv2.imwrite(str(folder / f"deep{i}.png"), np.dstack([img16] * 3))
    (tmp_path / "p.yaml").write_text("version: 1\nsteps:\n  - op: gamma\n    value: 1.0\n")
    proc = cli(tmp_path, "p.yaml", "in", "-o", "out", "--format", "png", "--suffix", "_16")
    assert proc.returncode == 0
    proc = cli(tmp_path, "p.yaml", "in", "-o", "out", "--format", "jpg", "--quality", "100")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("16-bit image written as 8-bit (.jpg holds 8 bits per channel)") == 1
    out = cv2.imread(str(tmp_path / "out" / "deep0.jpg"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint8
    assert np.abs(out[..., 0].astype(int) - np.tile(levels, (8, 1))).max() <= 2  # v*257 -> v
    # the exact conversion, without JPEG's loss
    notes = write_image(tmp_path / "exact.png", Image(img16))  # png keeps 16
    assert notes == []
    from imgenh.io import prepare_for_format

    pixels, notes = prepare_for_format(Image(img16), ".jpg")
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, np.tile(levels, (8, 1)).astype(np.uint8))
    assert notes == ["16-bit image written as 8-bit (.jpg holds 8 bits per channel)"]


# --- reports ------------------------------------------------------------------------------------


@pytest.fixture
def reported(tmp_path):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "ok.png"), asymmetric())
    (tmp_path / "in" / "bad.jpg").write_bytes(b"nope")
    (tmp_path / "p.yaml").write_text(
        "version: 1\nname: wb\nsteps:\n  - op: white_balance\n  - op: gamma\n    value: 1.2\n"
    )
    return tmp_path


def test_report_json(reported):
    proc = cli(reported, "p.yaml", "in", "-o", "out", "--report", "r.json")
    assert proc.returncode == 1
    doc = json.loads((reported / "r.json").read_text())
    from imgenh import __version__, load_pipeline

    assert doc["imgenh_version"] == __version__
    assert doc["pipeline_hash"] == load_pipeline(reported / "p.yaml").hash()
    assert doc["totals"] == {
        "ok": 1,
        "planned": 0,
        "skipped": 0,
        "failed": 1,
        "seconds": doc["totals"]["seconds"],
        "exit_code": 1,
        "interrupted": False,
        "stopped_early": "",
    }
    images = {Path(r["source"]).name: r for r in doc["images"]}
    ok, bad = images["ok.png"], images["bad.jpg"]
    assert ok["status"] == "ok" and ok["output"] == "out/ok.png" and ok["reason"] == ""
    assert isinstance(ok["seconds"], float) and ok["seconds"] >= 0
    wb = [v for v in ok["values"] if v.get("op") == "white_balance"]
    assert wb and "illuminant" in wb[0]
    assert bad["status"] == "failed" and "not a supported image" in bad["reason"]


def test_report_jsonl(reported):
    cli(reported, "p.yaml", "in", "-o", "out", "--report", "r.jsonl")
    lines = [json.loads(line) for line in (reported / "r.jsonl").read_text().splitlines()]
    assert [line["type"] for line in lines] == ["image", "image", "totals"]
    assert lines[-1]["ok"] == 1 and lines[-1]["failed"] == 1 and lines[-1]["pipeline_hash"]
    assert {line["status"] for line in lines[:2]} == {"ok", "failed"}


def test_report_stdout_is_only_json(reported):
    proc = cli(reported, "p.yaml", "in", "-o", "out", "--report", "-", "-v")
    doc = json.loads(proc.stdout)  # nothing else on stdout
    assert doc["totals"]["failed"] == 1
    assert "imgenh: error: in/bad.jpg: not a supported image" in proc.stderr
    assert "1 processed, 0 skipped, 1 failed" in proc.stderr


def test_read_image_unsupported_bytes_name(tmp_path):
    """Any file name the file system takes works (the file is read as bytes)."""
    name = tmp_path / "naïve ☃ [1].png"
    cv2.imwrite(str(tmp_path / "x.png"), asymmetric())
    name.write_bytes((tmp_path / "x.png").read_bytes())
    assert read_image(name).pixels.shape == (20, 30, 3)
    pil = PILImage.open(io.BytesIO(name.read_bytes()))
    assert pil.size == (30, 20)


def test_written_file_permissions_follow_umask(tmp_path):
    import os

    write_image(tmp_path / "a.png", Image(asymmetric()))
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o666 & ~umask


def test_run_batch_api_report_values(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), asymmetric())
    summary = run_batch(
        pipeline_from_steps([{"op": "white_balance"}]),
        [str(tmp_path / "a.png")],
        tmp_path / "o",
        RunOptions(jobs=1),
    )
    assert summary.results[0].values
