"""Atomic files (imgenh.io.atomic): the target is either the old file or the new one, never a
mix, and no temp file outlives a failed write or survives the next run's cleanup."""

from __future__ import annotations

import errno
import os

import pytest

from imgenh.io import OutputError, atomic_write, atomic_writer, is_temp_name, remove_temp_files


def test_writer_writes_in_pieces_and_replaces_keeping_the_mode(tmp_path):
    target = tmp_path / "manifest.jsonl"
    target.write_bytes(b"old\n")
    target.chmod(0o600)
    with atomic_writer(target) as fh:
        fh.write(b"one\n")
        # Nothing under the final name changes until the block ends; the temp file is hidden beside it.
        assert target.read_bytes() == b"old\n"
        temps = [n for n in os.listdir(tmp_path) if n != target.name]
        assert len(temps) == 1 and is_temp_name(temps[0])
        fh.write(b"two\n")
    assert target.read_bytes() == b"one\ntwo\n"
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == [target.name]


def test_writer_creates_missing_folders(tmp_path):
    target = tmp_path / "a" / "b" / "report.json"
    atomic_write(target, b"{}")
    assert target.read_bytes() == b"{}"


def test_a_failing_block_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="boom"), atomic_writer(target) as fh:
        fh.write(b"half")
        raise ValueError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_disk_full_is_an_output_error_naming_the_file(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match=f"cannot write {target}: No space left on device"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_a_folder_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    target = tmp_path / "file" / "out.png"
    with pytest.raises(OutputError, match=rf"cannot write {target} \(in its folder\): "):
        atomic_write(target, b"new")


def test_remove_temp_files_removes_only_temp_files_of_the_given_folders(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    temps = [tmp_path / ".a.png.0123abcd.imgenh-tmp", sub / ".b.jpg.89abcdef.imgenh-tmp"]
    kept = [tmp_path / "a.png", tmp_path / "x.imgenh-tmp", tmp_path / ".hidden", sub / "b.jpg"]
    for p in temps + kept:
        p.write_bytes(b"x")
    assert remove_temp_files([tmp_path, tmp_path / "missing"]) == 1
    assert remove_temp_files({sub}) == 1
    assert not any(p.exists() for p in temps)
    assert all(p.exists() for p in kept)
