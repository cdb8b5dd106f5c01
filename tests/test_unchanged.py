"""An image the steps leave exactly as decoded is written as its input's bytes (output unchanged: copy)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import invoke_in

from imgenh import pipeline_from_steps
from imgenh.io import RenameGate
from imgenh.plan import Job, Status
from imgenh.worker import UNCHANGED_NOTE, Worker


@pytest.fixture
def shots(tmp_path, photo8) -> Path:
    """shots/{a.jpg, b.png, c.jpg (PNG bytes under a JPEG name)}."""
    folder = tmp_path / "shots"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.jpg"), photo8, [cv2.IMWRITE_JPEG_QUALITY, 70])
    cv2.imwrite(str(folder / "b.png"), photo8)
    ok, png = cv2.imencode(".png", photo8)
    (folder / "c.jpg").write_bytes(png.tobytes())
    return tmp_path


def _run(cwd: Path, *args: str) -> dict:
    res = invoke_in(cwd, ["run", *args, "shots", "-o", "out", "-j", "1", "--report", "r.json"])
    assert res.exit_code == 0, res.output
    report = json.loads((cwd / "r.json").read_text())
    return {Path(i["source"]).name: i for i in report["images"]}


def _same_bytes(cwd: Path, name: str) -> bool:
    return (cwd / "out" / name).read_bytes() == (cwd / "shots" / name).read_bytes()


def test_an_image_the_steps_leave_alone_is_its_input_byte_for_byte(shots):
    # gamma 1 maps every level to itself; stretch 0..100 of a photo spanning 0..255 too.
    images = _run(shots, "-s", "gamma value=1", "-s", "stretch low=0 high=100 strength=auto")
    assert _same_bytes(shots, "a.jpg") and _same_bytes(shots, "b.png")
    assert UNCHANGED_NOTE in images["a.jpg"]["notes"]
    # PNG bytes named .jpg: the output must be a JPEG, as any encode would make it.
    assert not _same_bytes(shots, "c.jpg")
    assert (shots / "out" / "c.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert UNCHANGED_NOTE not in images["c.jpg"]["notes"]


def test_the_summary_line_counts_images_left_as_they_were(shots):
    # "3 processed" alone reads as if every file changed; a user comparing files is told.
    res = invoke_in(shots, ["run", "-s", "gamma value=1", "shots", "-o", "out", "-j", "1"])
    assert "3 processed, 0 skipped, 0 failed" in res.stderr
    assert "; 2 unchanged by the steps (input bytes kept)" in res.stderr
    changed = invoke_in(shots, ["run", "-s", "gamma value=1.3", "shots", "-o", "out2", "-j", "1"])
    assert "unchanged by the steps" not in changed.stderr


def test_a_changed_image_is_encoded(shots):
    images = _run(shots, "-s", "gamma value=1.3")
    assert not _same_bytes(shots, "a.jpg") and not _same_bytes(shots, "b.png")
    assert UNCHANGED_NOTE not in images["a.jpg"]["notes"]


@pytest.mark.parametrize("setting", ["unchanged: encode", "metadata: strip"])
def test_encode_or_strip_encodes_even_an_unchanged_image(shots, setting):
    (shots / "p.yaml").write_text(f"version: 1\nsteps:\n  - op: gamma\n    value: 1\noutput:\n  {setting}\n")
    images = _run(shots, "p.yaml")
    assert not _same_bytes(shots, "a.jpg")  # quality 92 over the input's 70
    assert UNCHANGED_NOTE not in images["a.jpg"]["notes"]


def test_the_default_unchanged_setting_keeps_pipeline_hashes():
    steps = [{"op": "gamma", "value": 1.2}]
    plain = pipeline_from_steps(steps)
    assert "unchanged" not in plain.canonical()["output"]
    assert plain.with_output(unchanged="encode").hash() != plain.hash()


def test_a_source_changed_since_it_was_read_is_encoded_not_copied(tmp_path, photo8, monkeypatch):
    src = tmp_path / "a.jpg"
    cv2.imwrite(str(src), photo8)
    worker = Worker(pipeline_from_steps([{"op": "gamma", "value": 1}]))
    import imgenh.worker as worker_module

    real_read = worker_module.read_image

    def read_then_change(path, **kw):
        image = real_read(path, **kw)
        cv2.imwrite(str(src), 255 - photo8)  # someone rewrites it while imgenh works
        return image

    monkeypatch.setattr(worker_module, "read_image", read_then_change)
    out = tmp_path / "out.jpg"
    result = worker(Job(src, out, "out.jpg"))
    assert result.status == Status.OK and UNCHANGED_NOTE not in result.notes
    decoded = cv2.imread(str(out))
    assert np.abs(decoded.astype(int) - photo8).mean() < 12  # the pixels read (not 255 - them), encoded twice


def test_a_closed_gate_keeps_the_worker_from_renaming_an_output_into_place(tmp_path, photo8):
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), photo8)
    gate = RenameGate.create(tmp_path / "state")
    gate.close()
    for steps in ([{"op": "gamma", "value": 1.3}], [{"op": "gamma", "value": 1}]):  # encoded, copied
        worker = Worker(pipeline_from_steps(steps), gate=gate)
        result = worker(Job(src, tmp_path / "out.png", "out.png"))
        assert result.status == Status.FAILED and "run stopped" in result.reason
        assert not (tmp_path / "out.png").exists()
