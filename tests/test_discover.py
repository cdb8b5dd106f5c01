"""Choosing files: one pattern rule everywhere, hidden names, sniffed and ignored files, output inside input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from helpers import invoke_in

from imgenh.discover import Filters, Pattern, find_inputs

GAMMA = "version: 1\nname: g\nsteps:\n  - op: gamma\n    value: 1.5\n"

# (pattern, relative path, is a folder, matches)
PATTERN_TABLE = [
    # * and ? stay within one path segment
    ("*.jpg", "a.jpg", False, True),
    ("*.jpg", "sub/deeper/a.JPG", False, True),  # no /: a name at any depth, any case
    ("2024/*", "2024/a.jpg", False, True),
    ("2024/*", "2024/sub/a.jpg", False, False),
    ("2024/*.jpg", "2024/sub/a.jpg", False, False),
    ("2024/?.jpg", "2024/a.jpg", False, True),
    ("2024/?.jpg", "2024/ab.jpg", False, False),
    ("a?b", "a/b", False, False),
    ("*/.thumbnails/*", "x/.thumbnails/t.jpg", False, True),
    # ** crosses segments, including none
    ("2024/**", "2024/sub/deeper/a.jpg", False, True),
    ("**/*.jpg", "a.jpg", False, True),
    ("**/*.jpg", "x/y/a.jpg", False, True),
    ("2024/**/a.jpg", "2024/a.jpg", False, True),
    ("2024/**/a.jpg", "2024/x/y/a.jpg", False, True),
    ("2024/**/a.jpg", "2025/x/a.jpg", False, False),
    ("a**b.jpg", "a/x/b.jpg", False, False),  # ** inside a segment is *
    ("a**b.jpg", "axxb.jpg", False, True),
    # a pattern with / is anchored at the input folder
    ("sub/a.jpg", "sub/a.jpg", False, True),
    ("sub/a.jpg", "x/sub/a.jpg", False, False),
    ("/a.jpg", "a.jpg", False, True),
    ("/a.jpg", "sub/a.jpg", False, False),
    ("./a.jpg", "sub/a.jpg", False, False),
    # a bare name matches a file or folder name at any depth
    (".thumbnails", ".thumbnails", True, True),
    (".thumbnails", "a/b/.thumbnails", True, True),
    ("2024", "photos/2024", True, True),
    ("2024", "2024.jpg", False, False),
    # a trailing / matches folders only
    ("raw/", "raw", True, True),
    ("raw/", "a/raw", True, True),
    ("raw/", "raw", False, False),
    ("trips/raw/", "trips/raw", True, True),
    ("trips/raw/", "x/trips/raw", True, False),
    # classes, case, escaping
    ("[ab].jpg", "b.JPG", False, True),
    ("[!ab].jpg", "c.jpg", False, True),
    ("[!ab].jpg", "a.jpg", False, False),
    ("IMG_[0-9]*.JPG", "img_1234.jpg", False, True),
    ("a+b (1).jpg", "a+b (1).jpg", False, True),  # regex characters are literal
    ("a.jpg", "axjpg", False, False),
]


@pytest.mark.parametrize(("pattern", "path", "folder", "expected"), PATTERN_TABLE)
def test_pattern_table(pattern, path, folder, expected):
    assert Pattern.compile(pattern).matches(path, folder=folder) is expected


# (include, exclude, file path, kept)
FILTER_TABLE = [
    ((), (".thumbnails",), ".thumbnails/t.jpg", False),  # a folder match leaves out all under it
    ((), (".thumbnails",), "a/.thumbnails/b/t.jpg", False),
    ((), (".thumbnails/*",), ".thumbnails/t.jpg", False),
    ((), (".thumbnails/*",), ".thumbnails/sub/t.jpg", False),  # .thumbnails/sub matches
    ((), ("*/.thumbnails/*",), "x/.thumbnails/t.jpg", False),
    ((), ("*/.thumbnails/*",), ".thumbnails/t.jpg", True),  # anchored: one folder, then .thumbnails
    ((), ("raw/",), "raw/a.jpg", False),
    ((), ("raw/",), "raw.jpg", True),
    ((), ("2024/*/",), "2024/a.jpg", True),
    ((), ("2024/*/",), "2024/sub/a.jpg", False),
    (("2024/*",), (), "2024/a.jpg", True),
    (("2024/*",), (), "2024/sub/a.jpg", False),  # include: * does not reach into subfolders
    (("2024",), (), "2024/sub/a.jpg", True),  # ... a bare folder name takes all under it
    (("2024/",), (), "2024/sub/a.jpg", True),
    (("2024/**",), (), "2024/sub/a.jpg", True),
    (("*.png",), (), "sub/deeper/d.PNG", True),
    (("*.png",), ("sub",), "sub/deeper/d.png", False),  # exclude wins
]


@pytest.mark.parametrize(("include", "exclude", "path", "kept"), FILTER_TABLE)
def test_filter_table(include, exclude, path, kept):
    assert Filters(include, exclude).keeps(path) is kept


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner, args, cwd: Path):
    return invoke_in(cwd, args, runner)


def files_under(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and ".imgenh" not in p.parts
    )


# --- point 8: other extensions, sniffing, the ignored list -------------------------------


@pytest.fixture
def mixed(tmp_path, photo8) -> Path:
    """phone/: 2 .HEIC, 1 .NEF (a TIFF container, as raw files are), a JPEG named .jfif, a PNG
    named .img, an .xmp sidecar, Thumbs.db, a text file; and p.yaml."""
    phone = tmp_path / "phone"
    phone.mkdir()
    for name in ("IMG_1.HEIC", "IMG_2.HEIC"):
        (phone / name).write_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
    (phone / "DSC_3.NEF").write_bytes(cv2.imencode(".tif", photo8)[1].tobytes())
    (phone / "shot.jfif").write_bytes(cv2.imencode(".jpg", photo8)[1].tobytes())
    (phone / "scan.img").write_bytes(cv2.imencode(".png", photo8)[1].tobytes())
    (phone / "shot.xmp").write_text("<x:xmpmeta/>")
    (phone / "Thumbs.db").write_bytes(bytes(32))
    (phone / "notes.txt").write_text("not an image")
    (tmp_path / "p.yaml").write_text(GAMMA)
    return tmp_path


def test_other_extensions_are_counted_sniffed_and_reported(runner, mixed, photo8):
    res = invoke(runner, ["run", "p.yaml", "phone", "-o", "out", "-v"], cwd=mixed)
    assert res.exit_code == 0, res.output
    assert (
        "imgenh: warning: 4 files ignored: 2 .HEIC, 1 .NEF (not supported); 1 .txt (not an image)"
        in res.stderr
    )
    assert "2 processed, 0 skipped, 0 failed" in res.stderr
    # Read by content; written with the extension of its format (OpenCV cannot encode .jfif or .img).
    assert files_under(mixed / "out") == ["scan.png", "shot.jpg"]
    assert (mixed / "out" / "shot.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    png = cv2.imread(str(mixed / "out" / "scan.png"))
    expected = np.rint(255 * (photo8 / 255.0) ** (1 / 1.5))
    assert np.abs(png - expected).max() <= 1  # the .img really went through the pipeline
    # Sidecars and clutter are skipped without a word.
    assert ".xmp" not in res.stderr and "Thumbs" not in res.stderr


@pytest.mark.parametrize("dry_run", [True, False])
def test_ignored_files_are_listed_in_the_report(runner, mixed, dry_run):
    args = ["run", "p.yaml", "phone", "-o", "out", "--report", "r.json"] + ["-n"] * dry_run
    res = invoke(runner, args, cwd=mixed)
    assert res.exit_code == 0, res.output
    report = json.loads((mixed / "r.json").read_text())
    assert report["ignored"] == [
        {"path": "phone/DSC_3.NEF", "reason": "not supported"},
        {"path": "phone/IMG_1.HEIC", "reason": "not supported"},
        {"path": "phone/IMG_2.HEIC", "reason": "not supported"},
        {"path": "phone/notes.txt", "reason": "not an image"},
    ]
    assert sorted(Path(i["output"]).name for i in report["images"]) == ["scan.png", "shot.jpg"]


def test_named_and_globbed_files_follow_the_same_rules(runner, mixed):
    found = find_inputs([str(mixed / "phone" / "shot.jfif"), str(mixed / "phone" / "IMG_1.HEIC")])
    assert [(f.rel.as_posix(), f.content_ext) for f in found.found] == [("shot.jfif", ".jpg")]
    assert found.ignored == [(str(mixed / "phone" / "IMG_1.HEIC"), "not supported")]
    globbed = find_inputs([str(mixed / "phone" / "*")])
    assert sorted(f.rel.as_posix() for f in globbed.found) == ["scan.img", "shot.jfif"]
    assert "4 files ignored" in globbed.warnings[-1]


def test_sniffed_file_collision_and_in_place_are_clear(runner, mixed, photo8):
    cv2.imwrite(str(mixed / "phone" / "shot.jpg"), photo8)
    res = invoke(runner, ["run", "p.yaml", "phone", "-o", "out"], cwd=mixed)
    assert res.exit_code == 2
    assert "2 inputs would be written to the same output shot.jpg" in res.stderr
    before = (mixed / "phone" / "shot.jfif").read_bytes()
    res = invoke(runner, ["run", "p.yaml", "phone/shot.jfif", "--in-place"], cwd=mixed)
    assert res.exit_code == 1
    assert "phone/shot.jfif: an image by content (JPG) under a name imgenh cannot write" in res.stderr
    assert (mixed / "phone" / "shot.jfif").read_bytes() == before


# --- point 12: hidden names and one pattern rule everywhere ------------------------------


@pytest.fixture
def clutter(tmp_path, photo8) -> Path:
    """photos/{a.JPG, .thumbnails/t.JPG, .thumbnails/sub/u.JPG, .hidden.JPG, 2024/b.JPG, 2024/x/c.JPG}."""
    root = tmp_path / "photos"
    for rel in (
        "a.JPG",
        ".thumbnails/t.JPG",
        ".thumbnails/sub/u.JPG",
        ".hidden.JPG",
        "2024/b.JPG",
        "2024/x/c.JPG",
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), photo8[:16, :16])
    (tmp_path / "p.yaml").write_text(GAMMA)
    return tmp_path


VISIBLE = ["2024/b.JPG", "2024/x/c.JPG", "a.JPG"]
EVERYTHING = sorted([*VISIBLE, ".hidden.JPG", ".thumbnails/sub/u.JPG", ".thumbnails/t.JPG"])


@pytest.mark.parametrize("inputs", [["photos", "-r"], ["photos/**/*.JPG"], ["photos/**"]])
def test_hidden_names_are_skipped_alike_by_walks_and_globs(runner, clutter, inputs):
    res = invoke(runner, ["run", "p.yaml", *inputs, "-o", "out"], cwd=clutter)
    assert res.exit_code == 0, res.output
    assert files_under(clutter / "out") == VISIBLE
    res = invoke(runner, ["run", "p.yaml", *inputs, "-o", "all", "--hidden"], cwd=clutter)
    assert files_under(clutter / "all") == EVERYTHING


def test_a_hidden_file_named_on_the_command_line_is_taken(runner, clutter):
    res = invoke(runner, ["run", "p.yaml", "photos/.hidden.JPG", "-o", "out"], cwd=clutter)
    assert res.exit_code == 0, res.output
    assert files_under(clutter / "out") == [".hidden.JPG"]


@pytest.mark.parametrize("exclude", [".thumbnails", ".thumbnails/", ".thumbnails/*", ".THUMBNAILS/**"])
def test_excluding_a_folder_by_name_or_path_leaves_it_out(runner, clutter, exclude):
    args = ["run", "p.yaml", "photos", "-r", "--hidden", "-o", "out", "--exclude", exclude]
    assert invoke(runner, args, cwd=clutter).exit_code == 0
    assert files_under(clutter / "out") == [".hidden.JPG", *VISIBLE]


@pytest.mark.parametrize(
    ("include", "expected"),
    [
        ("2024/*", ["2024/b.JPG"]),
        ("2024", ["2024/b.JPG", "2024/x/c.JPG"]),
        ("2024/**", ["2024/b.JPG", "2024/x/c.JPG"]),
    ],
)
def test_include_star_stays_within_its_folder(runner, clutter, include, expected):
    args = ["run", "p.yaml", "photos", "-r", "-o", "out", "--include", include]
    assert invoke(runner, args, cwd=clutter).exit_code == 0
    assert files_under(clutter / "out") == expected


def test_excluded_folders_are_not_entered(tmp_path, photo8):
    root = tmp_path / "in"
    (root / "keep").mkdir(parents=True)
    cv2.imwrite(str(root / "keep" / "a.png"), photo8[:8, :8])
    locked = root / "locked"
    locked.mkdir()
    os.symlink(root, locked / "loop")  # entering it would report a symlink loop
    found = find_inputs([str(root)], recursive=True, filters=Filters(exclude=("locked",)))
    assert [f.rel.as_posix() for f in found.found] == ["keep/a.png"]


# --- point 13 (with test_cli's test_output_inside_input_is_refused_unless_excluded) ----------


def test_output_folder_equal_to_input_folder_offers_no_exclude(runner, clutter):
    res = invoke(runner, ["run", "p.yaml", "photos", "-o", "photos"], cwd=clutter)
    assert res.exit_code == 2
    assert "output folder photos is input folder photos" in res.stderr
    assert "--exclude" not in res.stderr and "--in-place" not in res.stderr


def test_the_recursive_hint_only_where_a_subfolder_was_left_unsearched(tmp_path, photo8):
    empty, nested, hidden_only = tmp_path / "empty", tmp_path / "nested", tmp_path / "hidden_only"
    empty.mkdir()
    (nested / "2024").mkdir(parents=True)
    cv2.imwrite(str(nested / "2024" / "a.jpg"), photo8)
    (hidden_only / ".thumbnails").mkdir(parents=True)  # skipped anyway: --recursive would find nothing
    cv2.imwrite(str(hidden_only / ".thumbnails" / "t.jpg"), photo8)
    for folder in (empty, hidden_only):
        assert find_inputs([str(folder)]).warnings == [f"folder {str(folder)!r} holds no images"]
        assert find_inputs([str(folder)], recursive=True).warnings == [
            f"folder {str(folder)!r} holds no images"
        ]
    assert find_inputs([str(nested)]).warnings == [  # one line, not two
        f"folder {str(nested)!r} holds no images directly; 1 subfolder(s) not searched (add --recursive)"
    ]
    found = find_inputs([str(nested)], recursive=True)
    assert [f.rel.as_posix() for f in found.found] == ["2024/a.jpg"] and found.warnings == []
    cv2.imwrite(str(nested / "b.jpg"), photo8)  # images at the top: the hint stands alone
    assert find_inputs([str(nested)]).warnings == [
        f"folder '{nested}' has 1 subfolder(s) not searched (add --recursive)"
    ]


def test_an_empty_folder_through_the_cli_gets_no_recursive_hint(runner, tmp_path):
    (tmp_path / "p.yaml").write_text(GAMMA)
    (tmp_path / "photos").mkdir()
    res = invoke_in(tmp_path, ["run", "p.yaml", "photos", "-o", "out"], runner)
    assert res.exit_code == 2 and not (tmp_path / "out").exists()
    assert res.stderr == (
        "imgenh: warning: folder 'photos' holds no images\nimgenh: error: no images found in the given inputs\n"
    )
