"""Security: pipelines cannot run code, outputs cannot escape OUT, inputs are never touched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from imgenh.pipeline_file import ConfigError, parse_pipeline

GOOD = "version: 1\nsteps:\n  - op: gamma\n    value: 1.3\n"


def cli(cwd: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "imgenh", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def snapshot(*folders: Path) -> dict[str, tuple]:
    """Every entry under the folders: link target or (content hash, mtime_ns, mode)."""
    state = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_symlink():
                state[str(p)] = ("link", os.readlink(p))
            elif p.is_file():
                st = p.stat()
                state[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns, st.st_mode)
            else:
                state[str(p)] = ("dir",)
    return state


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "sub/b.png", "c.jpg"):
        cv2.imwrite(str(tmp_path / "in" / name), rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    (tmp_path / "p.yaml").write_text(GOOD)
    return tmp_path


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:os.system ['touch {marker}']",
        "!!python/object/new:os.system ['touch {marker}']",
        "!!python/name:os.system",
        "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
    ],
)
def test_yaml_code_tags_are_rejected(tree, payload):
    marker = tree / "pwned"
    text = f"version: 1\nsteps:\n  - op: gamma\n    value: {payload.format(marker=marker)}\n"
    (tree / "evil.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"evil.yaml:4:\d+: unsafe or unknown YAML tag: .*python/"):
        parse_pipeline(text, "evil.yaml")
    for cmd in (("validate", "evil.yaml"), ("run", "evil.yaml", "in", "-o", "out")):
        proc = cli(tree, *cmd)
        assert proc.returncode == 2
        assert "imgenh: error: evil.yaml:4:12: unsafe or unknown YAML tag" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not marker.exists()
    assert not (tree / "out").exists()


def test_top_level_code_tag_rejected(tree):
    (tree / "evil.yaml").write_text(f"!!python/object/apply:os.system ['touch {tree / 'pwned'}']\n")
    proc = cli(tree, "run", "evil.yaml", "in", "-o", "out")
    assert proc.returncode == 2
    assert not (tree / "pwned").exists()


def test_out_subfolder_symlinked_elsewhere_is_refused(tree, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (tree / "out").mkdir()
    os.symlink(elsewhere, tree / "out" / "sub")
    proc = cli(tree, "run", "p.yaml", "in", "-r", "-o", "out")
    assert proc.returncode == 2
    assert (
        "imgenh: error: output out/sub/b.png would be written outside out (through a symlink); refusing"
        in (proc.stderr)
    )
    assert list(elsewhere.iterdir()) == []
    assert not (tree / "out" / "a.png").exists()  # refused before anything is written


def test_output_file_symlinked_elsewhere_is_refused(tree, tmp_path_factory):
    victim_dir = tmp_path_factory.mktemp("victim")
    victim = victim_dir / "precious.png"
    victim.write_bytes(b"precious")
    (tree / "out").mkdir()
    os.symlink(victim, tree / "out" / "a.png")
    proc = cli(tree, "run", "p.yaml", "in", "-o", "out", "--overwrite")
    assert proc.returncode == 2
    assert "would be written outside out" in proc.stderr
    assert victim.read_bytes() == b"precious"


def test_suffix_cannot_hold_a_path(tree):
    for suffix in ("/../../x", "..\\x", "a/b"):
        proc = cli(tree, "run", "p.yaml", "in", "-o", "out", "--suffix", suffix)
        assert proc.returncode == 2
        assert "--suffix: may not contain path separators" in proc.stderr
    assert not (tree / "out").exists()


def test_odd_input_names_stay_inside_out(tree):
    """Names with dots, spaces, leading dashes and globs, inputs given as ../ paths: all land in OUT."""
    names = ["..png", "-rf.png", "a b [1].png", "..hidden.png", "*.png"]
    for name in names:
        (tree / "in" / name).write_bytes((tree / "in" / "a.png").read_bytes())
    (tree / "work").mkdir()
    # ..png and ..hidden.png are hidden names (skipped unless --hidden), so ask for them.
    proc = cli(tree / "work", "run", "../p.yaml", "../in", "-o", "../out", "--hidden")
    assert proc.returncode == 0, proc.stderr
    out = (tree / "out").resolve()
    for p in (tree / "out").rglob("*"):
        assert out in p.resolve().parents
    assert {p.name for p in (tree / "out").iterdir() if p.is_file()} >= set(names)
    assert not list((tree / "work").iterdir())


def test_symlinked_input_is_read_not_followed_out(tree, tmp_path_factory):
    """An input symlink to a file elsewhere: output under the link's name, in OUT; target untouched."""
    far = tmp_path_factory.mktemp("far")
    cv2.imwrite(str(far / "real.png"), np.zeros((8, 8, 3), np.uint8))
    os.symlink(far / "real.png", tree / "in" / "link.png")
    before = snapshot(tree / "in", far)
    proc = cli(tree, "run", "p.yaml", "in", "-o", "out")
    assert proc.returncode == 0, proc.stderr
    assert (tree / "out" / "link.png").is_file() and not (tree / "out" / "link.png").is_symlink()
    assert list(far.iterdir()) == [far / "real.png"]
    assert snapshot(tree / "in", far) == before


def test_inputs_never_modified_moved_or_deleted(tree):
    """Every kind of run (fresh, re-run, --overwrite, format change, failures) leaves inputs as they were."""
    (tree / "in" / "bad.jpg").write_bytes(b"not an image")
    before = snapshot(tree / "in")
    runs = [
        ("-r",),
        ("-r",),
        ("-r", "--overwrite"),
        ("-r", "--format", "webp", "--suffix", "_x"),
        ("-r", "--metadata", "strip", "--overwrite"),
    ]
    for extra in runs:
        proc = cli(tree, "run", "p.yaml", "in", "-o", "out", *extra)
        assert proc.returncode == 1  # bad.jpg fails every time
    assert snapshot(tree / "in") == before


def test_output_inside_input_is_refused(tree):
    proc = cli(tree, "run", "p.yaml", "in", "-r", "-o", "in/out")
    assert proc.returncode == 2
    assert "is inside input folder" in proc.stderr
    assert not (tree / "in" / "out").exists()
