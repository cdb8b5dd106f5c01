"""Bad input, one file at a time: every hostile file is reported with its name and a reason,
the good images in the same batch are processed, and the exit code is 1.

The corpus is generated here (tiny files). Permission cases run the CLI as user ``nobody``
because root reads and writes through any file mode.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from imgenh import pipeline_from_steps
from imgenh.io import TEMP_MARKER, ImageError, read_image
from imgenh.runner import RunOptions, run_batch

PIPELINE = "version: 1\nsteps:\n  - op: gamma\n    value: 1.3\n"
NOBODY = 65534


# --- helpers ---------------------------------------------------------------------------


SETPRIV = shutil.which("setpriv")
AS_NOBODY = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def can_drop_privileges() -> bool:
    # setpriv rather than os.setuid in preexec_fn: this venv's python links into /root, which
    # a process that dropped root itself before exec cannot traverse.
    return os.geteuid() == 0 and SETPRIV is not None


def cli(*args, cwd: Path, as_nobody: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``imgenh`` in a subprocess (optionally as user nobody) and capture its output."""
    prefix = AS_NOBODY if as_nobody else []
    return subprocess.run(
        [*prefix, sys.executable, "-m", "imgenh", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def shared(tmp_path):
    """A folder user nobody can use too (pytest's tmp_path is root-only), with the pipeline in it."""
    root = Path(tempfile.mkdtemp(prefix="imgenh-hostile-", dir="/tmp"))
    root.chmod(0o777)
    (root / "p.yaml").write_text(PIPELINE)
    (root / "p.yaml").chmod(0o644)
    yield root
    subprocess.run(["umount", str(root / "small")], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def image(seed: int = 0, h: int = 24, w: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(w: int = 30000, h: int = 30000) -> bytes:
    """A 60-byte PNG whose header claims w x h pixels."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 16)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def huge_jpeg(w: int = 30000, h: int = 30000) -> bytes:
    """A small real JPEG whose SOF header is patched to claim w x h pixels."""
    data = bytearray(cv2.imencode(".jpg", image(1, 8, 8))[1].tobytes())
    pos = data.index(b"\xff\xc0")
    data[pos + 5 : pos + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_corpus(folder: Path) -> dict[str, str]:
    """Write the hostile corpus plus good images; return {file name: expected reason text}."""
    folder.mkdir(parents=True, exist_ok=True)
    good = image(0)
    cv2.imwrite(str(folder / "good1.png"), good)
    cv2.imwrite(str(folder / "good2.jpg"), good)
    jpeg = cv2.imencode(".jpg", good)[1].tobytes()
    png = cv2.imencode(".png", good)[1].tobytes()
    write(folder / "zero.jpg", b"")
    write(folder / "truncated.jpg", jpeg[: len(jpeg) // 2])
    write(folder / "html.jpg", b"<!doctype html><html><body>404 not found</body></html>\n")
    bad = bytearray(png)
    idat = bad.index(b"IDAT")
    bad[idat + 8 : idat + 40] = bytes(32)  # zlib stream wrecked, stale CRC
    write(folder / "badcrc.png", bytes(bad))
    write(folder / "garbage.png", png[:33] + os.urandom(200))  # valid header, then noise
    gif = io.BytesIO()
    PILImage.fromarray(good).save(gif, format="GIF")
    write(folder / "gif.png", gif.getvalue())
    write(folder / "huge.png", huge_png())
    write(folder / "huge.jpg", huge_jpeg())
    os.symlink("/nonexistent/photo.png", folder / "broken.png")
    (folder / "folder.jpg").mkdir()
    cv2.imwrite(str(folder / "noperm.png"), good)
    (folder / "noperm.png").chmod(0)
    return {
        "zero.jpg": "empty file (0 bytes)",
        "truncated.jpg": "truncated JPEG",
        "html.jpg": "not a supported image",
        "badcrc.png": "corrupt PNG data",
        "garbage.png": "truncated PNG",
        "gif.png": "not a supported image (content starts with b'GIF8",
        "huge.png": "30000x30000 = 900 MP exceeds --max-pixels",
        "huge.jpg": "30000x30000 = 900 MP exceeds --max-pixels",
        "broken.png": "broken symlink (points to '/nonexistent/photo.png')",
        "folder.jpg": "is a folder, not an image file",
        "noperm.png": "permission denied",
    }


def no_temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(TEMP_MARKER) or p.name.endswith(".tmp")]


def decodes(path: Path) -> bool:
    return cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED) is not None


# --- the corpus through the CLI ---------------------------------------------------------


@pytest.mark.skipif(not can_drop_privileges(), reason="needs root and setpriv to run the CLI as nobody")
def test_hostile_corpus_reported_one_by_one(shared):
    expected = make_corpus(shared / "in")
    out = shared / "out"
    proc = cli(
        "run", "p.yaml", "in", "-o", "out", "-j", "1", "--report", "report.json", cwd=shared, as_nobody=True
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads((shared / "report.json").read_text())
    by_name = {Path(r["source"]).name: r for r in report["images"]}
    for name, reason in expected.items():
        rec = by_name[name]
        assert rec["status"] == "failed", (name, rec)
        assert reason in rec["reason"], (name, rec["reason"])
        # stderr names the file and gives the same reason
        assert f"imgenh: error: in/{name}: {rec['reason']}" in proc.stderr, name
    for name in ("good1.png", "good2.jpg"):
        assert by_name[name]["status"] == "ok"
        assert decodes(out / name)
    assert report["totals"]["ok"] == 2
    assert report["totals"]["failed"] == len(expected)
    assert report["totals"]["exit_code"] == 1
    assert f"2 processed, 0 skipped, {len(expected)} failed" in proc.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["good1.png", "good2.jpg"]
    assert not no_temp_files(out)
    assert "Traceback" not in proc.stderr


def test_symlink_loop_and_image_named_folder_in_recursive_walk(tmp_path):
    tree = tmp_path / "in"
    (tree / "sub").mkdir(parents=True)
    cv2.imwrite(str(tree / "a.png"), image(2))
    cv2.imwrite(str(tree / "sub" / "b.png"), image(3))
    os.symlink("..", tree / "sub" / "loop")
    os.symlink(str(tree), tree / "sub" / "top")
    # With --recursive a folder named like an image is a folder: walked, not read.
    (tree / "album.jpg").mkdir()
    cv2.imwrite(str(tree / "album.jpg" / "c.png"), image(4))
    (tmp_path / "p.yaml").write_text(PIPELINE)
    proc = cli("run", "p.yaml", "in", "-o", "out", "-r", "--report", "r.json", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1, proc.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    failed = {r["key"]: r["reason"] for r in report["images"] if r["status"] == "failed"}
    assert set(failed) == {"sub/loop", "sub/top"}
    for key in failed:
        assert "symlink loop" in failed[key]
        assert f"imgenh: error: in/{key}: symlink loop" in proc.stderr
    ok = sorted(r["key"] for r in report["images"] if r["status"] == "ok")
    assert ok == ["a.png", "album.jpg/c.png", "sub/b.png"]


def test_max_pixels_checked_before_decoding(tmp_path, monkeypatch):
    path = write(tmp_path / "huge.png", huge_png(20000, 20000))
    jpg = write(tmp_path / "huge.jpg", huge_jpeg(20000, 20000))

    def no_decode(*args, **kwargs):
        raise AssertionError("decoder called for an image over --max-pixels")

    monkeypatch.setattr(cv2, "imdecodeWithMetadata", no_decode)
    monkeypatch.setattr(cv2, "imread", no_decode)
    for p in (path, jpg):
        with pytest.raises(ImageError, match="20000x20000 = 400 MP exceeds --max-pixels 250 MP"):
            read_image(p)
    # A lower limit applies to ordinary images too.
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), image(0, 30, 40))
    with pytest.raises(ImageError, match="1200 pixels|0 MP exceeds --max-pixels"):
        read_image(small, max_pixels=1000)


def test_max_pixels_flag(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), image(0, 30, 40))
    (tmp_path / "p.yaml").write_text(PIPELINE)
    proc = cli("run", "p.yaml", "a.png", "-o", "out", "--max-pixels", "1000", cwd=tmp_path)
    assert proc.returncode == 1
    assert "a.png: 40x30 = 0 MP exceeds --max-pixels 0.001 MP (checked before decoding)" in proc.stderr
    assert not (tmp_path / "out" / "a.png").exists()


# --- --fail-on and --max-failures ---------------------------------------------------------


@pytest.fixture
def damaged(tmp_path):
    good = image(5, 32, 48)
    jpeg = cv2.imencode(".jpg", good)[1].tobytes()
    write(tmp_path / "in" / "truncated.jpg", jpeg[: int(len(jpeg) * 0.6)])
    write(tmp_path / "in" / "trailing.jpg", jpeg + b"TRAILING GARBAGE" * 4)
    cv2.imwrite(str(tmp_path / "in" / "good.png"), good)
    (tmp_path / "p.yaml").write_text(PIPELINE)
    return tmp_path


@pytest.mark.parametrize(
    ("fail_on", "truncated_ok", "trailing_ok"),
    [("none", True, True), ("truncated", False, True), ("error", False, False)],
)
def test_fail_on(damaged, fail_on, truncated_ok, trailing_ok):
    proc = cli("run", "p.yaml", "in", "-o", "out", "--fail-on", fail_on, "--report", "r.json", cwd=damaged)
    report = json.loads((damaged / "r.json").read_text())
    status = {r["key"]: r for r in report["images"]}
    assert status["good.png"]["status"] == "ok"
    assert (status["truncated.jpg"]["status"] == "ok") is truncated_ok
    assert (status["trailing.jpg"]["status"] == "ok") is trailing_ok
    assert proc.returncode == (0 if truncated_ok and trailing_ok else 1)
    if truncated_ok:
        # accepted, but said out loud, and the output is a whole image of the full size
        assert "truncated JPEG accepted (--fail-on none)" in proc.stderr
        out = cv2.imread(str(damaged / "out" / "truncated.jpg"))
        assert out.shape == (32, 48, 3)
    else:
        assert (
            "truncated JPEG (file ends before the image data does); --fail-on none accepts it"
            in (status["truncated.jpg"]["reason"])
        )
    if not trailing_ok:
        assert (
            "unexpected data after the end of the JPEG image (--fail-on error)"
            in (status["trailing.jpg"]["reason"])
        )


def test_max_failures_stops_early(tmp_path):
    folder = tmp_path / "in"
    for i in range(6):
        write(folder / f"bad{i}.jpg", b"not an image")
        cv2.imwrite(str(folder / f"good{i}.png"), image(i, 8, 8))
    (tmp_path / "p.yaml").write_text(PIPELINE)
    proc = cli(
        "run",
        "p.yaml",
        "in",
        "-o",
        "out",
        "-j",
        "1",
        "--max-failures",
        "2",
        "--report",
        "r.json",
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["totals"]["failed"] == 2
    assert report["totals"]["stopped_early"] == "--max-failures 2 reached"
    # bad0, bad1 come first (sorted); nothing after them ran, and the report lists it as such
    assert [i["status"] for i in report["images"]][:2] == ["failed", "failed"]
    rest = report["images"][2:]
    assert rest and all(i["status"] == "skipped" and i["reason"].startswith("not finished") for i in rest)
    assert "stopped early: --max-failures 2 reached" in proc.stderr
    # the next run picks up where it stopped
    proc = cli("run", "p.yaml", "in", "-o", "out", "-j", "1", "--report", "r2.json", cwd=tmp_path)
    totals = json.loads((tmp_path / "r2.json").read_text())["totals"]
    assert (totals["ok"], totals["failed"]) == (6, 6)


# --- what the decoders print ----------------------------------------------------------------


def damaged_scan_jpeg(seed: int = 0) -> bytes:
    """A JPEG with 20 random bytes written over the middle of its scan data.

    OpenCV still decodes it (libjpeg resynchronises), but libjpeg prints "Corrupt JPEG data: ...".
    """
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8), (5, 5), 0)
    data = bytearray(cv2.imencode(".jpg", smooth)[1].tobytes())
    sos, eoi = data.rfind(b"\xff\xda"), data.rfind(b"\xff\xd9")
    mid = (sos + eoi) // 2
    data[mid : mid + 20] = rng.integers(0, 255, 20, dtype=np.uint8).tobytes()  # no 0xFF: no fake markers
    assert cv2.imdecode(np.frombuffer(bytes(data), np.uint8), cv2.IMREAD_UNCHANGED) is not None
    return bytes(data)


def png_with_bad_text_crc() -> bytes:
    """A PNG whose tEXt chunk has a wrong CRC: libpng warns and decodes the pixels anyway."""
    png = cv2.imencode(".png", image(6))[1].tobytes()
    text = b"tEXt" + b"Comment\x00hello"
    bad = struct.pack(">I", len(text) - 4) + text + struct.pack(">I", zlib.crc32(text) ^ 1)
    return png[:33] + bad + png[33:]


@pytest.mark.parametrize("fail_on", ["none", "truncated", "error"])
def test_damaged_jpeg_data(tmp_path, capfd, fail_on):
    path = write(tmp_path / "damaged.jpg", damaged_scan_jpeg())
    assert "Corrupt JPEG data" in capfd.readouterr().err  # libjpeg does complain (to fd 2)...
    if fail_on == "error":
        with pytest.raises(ImageError) as info:
            read_image(path, fail_on=fail_on)
        message = str(info.value)
        assert message.startswith("decoder reported damage: Corrupt JPEG data: ")
        assert message.endswith(" (--fail-on error)")
        assert "\n" not in message and "WARN" not in message
    else:
        # libvips semantics: "truncated" refuses truncation only; damaged but decodable data is let
        # through, and said out loud.
        img = read_image(path, fail_on=fail_on)
        assert img.pixels.shape == (64, 96, 3)
        [note] = img.notes
        assert note.startswith("decoder warning: Corrupt JPEG data: ")
        assert "\n" not in note
    assert capfd.readouterr() == ("", "")  # ...but not during read_image: nothing on fd 1 or 2


def test_truncated_jpeg_accepted_prints_nothing(tmp_path, capfd):
    jpeg = cv2.imencode(".jpg", image(5, 32, 48))[1].tobytes()
    path = write(tmp_path / "truncated.jpg", jpeg[: int(len(jpeg) * 0.6)])
    img = read_image(path, fail_on="none")
    # libjpeg's "Premature end of JPEG file" is what the truncation note already says
    assert img.notes == ["truncated JPEG accepted (--fail-on none): missing rows are grey"]
    assert capfd.readouterr() == ("", "")


def test_libpng_warning(tmp_path, capfd):
    path = write(tmp_path / "crc.png", png_with_bad_text_crc())
    assert read_image(path).notes == ["decoder warning: libpng warning: tEXt: CRC error"]
    with pytest.raises(
        ImageError, match=r"^decoder reported damage: libpng warning: tEXt: CRC error \(--fail-on error\)$"
    ):
        read_image(path, fail_on="error")
    assert capfd.readouterr() == ("", "")


def test_decoder_error_text_in_reason(tmp_path, capfd):
    bad = bytearray(cv2.imencode(".png", image(0))[1].tobytes())
    idat = bad.index(b"IDAT")
    bad[idat + 8 : idat + 40] = bytes(32)
    bmp = cv2.imencode(".bmp", image(0))[1].tobytes()
    with pytest.raises(
        ImageError, match=r"^corrupt PNG data \(the decoder could not read it\): libpng error: IDAT"
    ):
        read_image(write(tmp_path / "bad.png", bytes(bad)))
    # OpenCV's log prefix, source path and function name are trimmed off
    with pytest.raises(ImageError) as info:
        read_image(write(tmp_path / "short.bmp", bmp[:1000]))
    assert str(info.value) == (
        "corrupt BMP data (the decoder could not read it): can't read data: Unexpected end of input stream"
    )
    assert capfd.readouterr() == ("", "")


def test_opencv_rgba_tiff_reads_cleanly(tmp_path, capfd):
    """OpenCV's TIFF reader warns about the ExtraSamples its own writer sets: harmless, dropped."""
    path = tmp_path / "rgba.tif"
    cv2.imwrite(str(path), np.dstack([image(7), image(8)[..., 0]]))
    img = read_image(path, fail_on="error")
    assert img.alpha is not None
    assert img.notes == []
    assert capfd.readouterr() == ("", "")


READ_AND_REPORT = """
import os, sys
from imgenh.io import read_image
img = read_image(sys.argv[1], fail_on="none")
print(img.notes)
try:
    os.fstat(2)
    os.write(2, b"fd 2 is back\\n")
except OSError:
    print("fd 2 still closed")
"""


@pytest.mark.parametrize("stderr", ["pipe", "closed"])
def test_capture_with_fd2_pipe_or_closed(tmp_path, stderr):
    path = write(tmp_path / "damaged.jpg", damaged_scan_jpeg())
    proc = subprocess.run(
        [sys.executable, "-c", READ_AND_REPORT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=(lambda: os.close(2)) if stderr == "closed" else None,
    )
    assert proc.returncode == 0
    assert "decoder warning: Corrupt JPEG data: " in proc.stdout
    if stderr == "pipe":
        assert proc.stderr == "fd 2 is back\n"  # restored, and nothing of libjpeg's on it
    else:
        assert "fd 2 still closed" in proc.stdout
        assert proc.stderr == ""


def test_damaged_jpeg_through_cli(tmp_path):
    write(tmp_path / "in" / "damaged.jpg", damaged_scan_jpeg())
    write(tmp_path / "in" / "damaged2.jpg", damaged_scan_jpeg())  # same damage, same message
    cv2.imwrite(str(tmp_path / "in" / "good.png"), image(0))
    (tmp_path / "p.yaml").write_text(PIPELINE)

    # -q: the damage is accepted (default --fail-on truncated) and nothing is printed at all
    proc = cli("run", "p.yaml", "in", "-o", "out", "-q", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert decodes(tmp_path / "out" / "damaged.jpg")

    # without -q the warning is logged with each file's name, even when the text repeats
    proc = cli("run", "p.yaml", "in", "-o", "out2", "-j", "1", cwd=tmp_path)
    assert proc.returncode == 0
    lines = [ln for ln in proc.stderr.splitlines() if "decoder warning" in ln]
    assert len(lines) == 2 and "in/damaged.jpg" in lines[0] and "in/damaged2.jpg" in lines[1]
    assert all("decoder warning: Corrupt JPEG data: " in ln for ln in lines)
    assert all(ln.startswith("imgenh: ") for ln in proc.stderr.splitlines()), proc.stderr

    # --fail-on error -q: refused, named, one line; the good image is written
    proc = cli("run", "p.yaml", "in", "-o", "out3", "-q", "--fail-on", "error", cwd=tmp_path)
    assert proc.returncode == 1
    line = proc.stderr.splitlines()[0]
    assert len(proc.stderr.splitlines()) == 2  # one line per damaged file
    assert line.startswith("imgenh: ")
    assert ": in/damaged.jpg: decoder reported damage: Corrupt JPEG data: " in line
    assert line.endswith(" (--fail-on error)")
    assert decodes(tmp_path / "out3" / "good.png")
    assert not (tmp_path / "out3" / "damaged.jpg").exists()


# --- output errors --------------------------------------------------------------------------


@pytest.mark.skipif(not can_drop_privileges(), reason="needs root and setpriv to run the CLI as nobody")
def test_read_only_output_subfolder(shared):
    (shared / "in" / "locked").mkdir(parents=True)
    cv2.imwrite(str(shared / "in" / "locked" / "a.png"), image(1))
    cv2.imwrite(str(shared / "in" / "b.png"), image(2))
    for p in (shared / "in").rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    (shared / "out" / "locked").mkdir(parents=True)
    (shared / "out").chmod(0o777)
    (shared / "out" / "locked").chmod(0o555)
    proc = cli(
        "run", "p.yaml", "in", "-r", "-o", "out", "-j", "1", "--report", "r.json", cwd=shared, as_nobody=True
    )
    assert proc.returncode == 1, proc.stderr
    assert (
        "imgenh: error: in/locked/a.png: cannot write out/locked/a.png (in its folder): Permission denied"
        in (proc.stderr)
    )
    report = json.loads((shared / "r.json").read_text())
    status = {r["key"]: r["status"] for r in report["images"]}
    assert status == {"b.png": "ok", "locked/a.png": "failed"}
    assert list((shared / "out" / "locked").iterdir()) == []
    assert decodes(shared / "out" / "b.png")
    assert not no_temp_files(shared / "out")


@pytest.mark.skipif(not can_drop_privileges(), reason="needs root and setpriv to run the CLI as nobody")
def test_read_only_output_root_is_a_usage_error(shared):
    cv2.imwrite(str(shared / "a.png"), image(1))
    (shared / "a.png").chmod(0o644)
    (shared / "ro").mkdir()
    (shared / "ro").chmod(0o555)
    proc = cli("run", "p.yaml", "a.png", "-o", "ro/out", cwd=shared, as_nobody=True)
    assert proc.returncode == 2
    assert "imgenh: error: cannot write in output folder ro/out: Permission denied" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_disk_full_injected(tmp_path, monkeypatch):
    """ENOSPC while writing: the file is named, no partial or temp file is left, the batch goes on."""
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"in{i}.png"), image(i))
    real_fsync = os.fsync
    calls = {"n": 0}

    def fsync(fd):
        # image writes are fsynced; fail the 2nd and 3rd image (the manifest fsyncs too: let those pass)
        target = os.readlink(f"/proc/self/fd/{fd}")
        if target.endswith(TEMP_MARKER):
            calls["n"] += 1
            if calls["n"] in (2, 3):
                raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    pipe = pipeline_from_steps([{"op": "gamma", "value": 1.2}])
    inputs = [str(tmp_path / f"in{i}.png") for i in range(4)]
    summary = run_batch(pipe, inputs, tmp_path / "out", RunOptions(jobs=1))
    status = {r.key: (r.status, r.reason) for r in summary.results}
    assert status["in0.png"] == ("ok", "")
    assert status["in3.png"] == ("ok", "")
    for key in ("in1.png", "in2.png"):
        assert status[key] == ("failed", f"cannot write {tmp_path / 'out' / key}: No space left on device")
        assert not (tmp_path / "out" / key).exists()
    assert summary.exit_code == 1
    assert not no_temp_files(tmp_path / "out")


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return proc.returncode == 0


def test_disk_full_real_tmpfs(shared):
    """A real full disk (a 160 KiB tmpfs): outputs that fit are whole, the rest named, nothing torn."""
    small = shared / "small"
    if not _mount_tmpfs(small, "160k"):
        pytest.skip("cannot mount a tmpfs here (needs root and mount permission)")
    rng = np.random.default_rng(0)
    (shared / "in").mkdir()
    for i in range(30):  # 30 x ~10 KiB of incompressible 16-bit noise: about twice the space
        cv2.imwrite(
            str(shared / "in" / f"n{i:02d}.png"), rng.integers(0, 65535, (40, 40, 3), dtype=np.uint16)
        )
    proc = cli("run", "p.yaml", "in", "-o", "small/out", "-j", "1", "--report", "r.json", cwd=shared)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = json.loads((shared / "r.json").read_text())
    failed = [r for r in report["images"] if r["status"] == "failed"]
    ok = [r for r in report["images"] if r["status"] == "ok"]
    assert failed and ok
    for r in failed:
        assert r["reason"] == f"cannot write small/out/{r['key']}: No space left on device"
        assert not (small / "out" / r["key"]).exists()
    for r in ok:
        out = cv2.imread(str(small / "out" / r["key"]), cv2.IMREAD_UNCHANGED)
        assert out is not None and out.shape == (40, 40, 3) and out.dtype == np.uint16
    assert not no_temp_files(small)
