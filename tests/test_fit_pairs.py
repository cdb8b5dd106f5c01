"""Pairing before/after files for imgenh fit, and refusing pairs that do not line up."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from imgenh.fit.pairs import Pair, PairRefused, load_pair, load_pairs, match_pairs, pair_key

SAMPLES = Path(__file__).resolve().parent.parent / "sample_images"


def photo(name: str = "chelsea.jpg", width: int = 160) -> np.ndarray:
    img = cv2.imread(str(SAMPLES / name), cv2.IMREAD_COLOR)
    h = round(img.shape[0] * width / img.shape[1])
    return cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)


def touch(root: Path, rel: str, img: np.ndarray | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), photo() if img is None else img)
    return path


def test_pair_key_strips_image_and_raw_extensions():
    assert pair_key(Path("a/IMG_1.CR2.jpg")) == "a/IMG_1"
    assert pair_key(Path("a/IMG_1.jpg")) == "a/IMG_1"
    assert pair_key(Path("a/IMG_1.tiff")) == "a/IMG_1"
    assert pair_key(Path("2024.05.01 beach.JPG")) == "2024.05.01 beach"  # dots that are not extensions stay
    assert pair_key(Path("b/IMG_1.jpg")) != pair_key(Path("a/IMG_1.jpg"))


def test_match_pairs_by_relative_path_and_stem(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    touch(before, "a/IMG_1.CR2.jpg")
    touch(after, "a/IMG_1.png")  # another format
    touch(before, "IMG_2.jpg")
    touch(after, "IMG_2.jpg")
    touch(before, "only_before.jpg")
    touch(after, "b/only_after.jpg")
    touch(before, "IMG_3.jpg")
    touch(after, "IMG_3.jpg")
    touch(after, "IMG_3.png")  # two afters for one before: ambiguous, neither used
    (before / "notes.txt").write_text("not an image")
    m = match_pairs(before, after)
    assert [(p.key, p.before.name, p.after.name) for p in m.pairs] == [
        ("IMG_2", "IMG_2.jpg", "IMG_2.jpg"),
        ("a/IMG_1", "IMG_1.CR2.jpg", "IMG_1.png"),
    ]
    assert m.unmatched_before == [Path("only_before.jpg")]
    assert m.unmatched_after == [Path("b/only_after.jpg")]
    assert len(m.ambiguous) == 1 and "IMG_3.jpg, IMG_3.png" in m.ambiguous[0]


def test_match_pairs_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="after folder .*nope does not exist"):
        match_pairs(tmp_path, tmp_path / "nope")


def edited(img: np.ndarray) -> np.ndarray:
    """A strong global edit: warm, contrasty, brighter."""
    f = img.astype(np.float32) / 255
    f = np.clip((f**0.7 - 0.1) * 1.3 * np.array([0.85, 1.0, 1.15], np.float32), 0, 1)
    return (f * 255 + 0.5).astype(np.uint8)


def make_pair(tmp_path: Path, after: np.ndarray, before: np.ndarray | None = None) -> Pair:
    b = touch(tmp_path, "before/x.png", photo() if before is None else before)
    a = touch(tmp_path, "after/x.png", after)
    return Pair("x", b, a)


def test_load_pair_accepts_an_edit_and_resizes_a_smaller_after(tmp_path):
    img = photo(width=320)
    small_after = cv2.resize(edited(img), (160, 107), interpolation=cv2.INTER_AREA)
    loaded = load_pair(make_pair(tmp_path, small_after, img))
    assert loaded.before.shape == loaded.after.shape and loaded.before.dtype == np.float32
    assert loaded.notes == [f"after resized from 160x107 to 320x{img.shape[0]}"]
    # The after is the edit, not the before: its mean is well above the before's.
    assert loaded.after.mean() > loaded.before.mean() + 0.03


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda a: a[:, 20:], "another aspect ratio"),
        (lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE), "another aspect ratio"),
        (lambda a: cv2.resize(a[8:-8, 12:-12], (a.shape[1], a.shape[0])), "does not line up"),
        (lambda a: a[::-1, ::-1].copy(), "does not line up"),
        (lambda a: a[:, ::-1].copy(), "does not line up"),
        (lambda a: cv2.resize(photo("coffee.jpg"), (a.shape[1], a.shape[0])), "does not line up"),
    ],
    ids=["cropped", "rotated90", "cropped-scaled-back", "rotated180", "flipped", "other-picture"],
)
def test_load_pair_refuses_pairs_that_do_not_line_up(tmp_path, change, reason):
    with pytest.raises(PairRefused, match=reason):
        load_pair(make_pair(tmp_path, change(edited(photo()))))


def test_load_pairs_goes_on_after_a_corrupt_after(tmp_path):
    good = make_pair(tmp_path, edited(photo()))
    bad_after = tmp_path / "after" / "y.jpg"
    bad_after.write_bytes(b"<html>not a picture</html>")
    bad = Pair("y", touch(tmp_path, "before/y.jpg"), bad_after)
    seen = []
    loaded, refused = load_pairs([bad, good], on_pair=lambda p, why: seen.append((p.key, why)))
    assert [p.pair.key for p in loaded] == ["x"]
    assert refused[0][0] == bad and "cannot read the after" in refused[0][1] and "y.jpg" in refused[0][1]
    assert [k for k, _ in seen] == ["y", "x"] and seen[1][1] is None
