"""color_matrix and lut3d operators, and .cube files, against colour-science, numpy and ImageMagick."""

from __future__ import annotations

import shutil
import subprocess
import warnings

import cv2
import numpy as np
import pytest

from imgenh.cube import CubeError, CubeLut, format_cube, identity_table, parse_cube, read_cube, write_cube
from imgenh.ops.lut import interpolate_rgb
from imgenh.pipeline import StepError, run_op
from imgenh.pixels import LUMA_BGR

_PRINT_OPTIONS = np.get_printoptions()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # colour warns that matplotlib is missing
    import colour
# colour-science switches numpy to 1.13-style printing on import, which breaks the doctests that
# run after this module is collected: put it back.
np.set_printoptions(**_PRINT_OPTIONS)

IMAGEMAGICK = "/usr/bin/convert"


def random_table(size: int, seed: int = 0) -> np.ndarray:
    """A smooth but far-from-identity table: identity, a twist and noise."""
    rng = np.random.default_rng(seed)
    ident = identity_table(size)
    twist = ident[..., [1, 2, 0]] * 0.3 + ident * 0.6
    return np.clip(twist + rng.normal(0, 0.05, ident.shape), 0, 1).astype(np.float32)


def flat(table: np.ndarray) -> list[float]:
    """An inline ``table`` parameter (red fastest)."""
    return table.transpose(2, 1, 0, 3).ravel().tolist()


def colour_reference(bgr_float: np.ndarray, table: np.ndarray, method: str) -> np.ndarray:
    """colour-science's interpolation of a BGR float image, as BGR float64."""
    rgb = bgr_float[..., ::-1].reshape(-1, 3).astype(np.float64)
    out = colour.algebra.table_interpolation(rgb, table.astype(np.float64), method=method.capitalize())
    return out[:, ::-1].reshape(bgr_float.shape)


@pytest.mark.parametrize("method", ["trilinear", "tetrahedral"])
def test_lut3d_matches_colour_table_interpolation(method, photo8, photo16):
    table = random_table(9)
    # float32: colour-science in float64 vs imgenh in float32; measured max 6e-7.
    img = photo16.astype(np.float32) / 65535
    out = run_op(img, "lut3d", table=flat(table), size=9, interpolation=method)
    ref = np.clip(colour_reference(img, table, method), 0, 1)
    assert np.abs(out - ref).max() < 2e-6
    # Integer depths: the reference rounded to the level; float32 sums may tip a half level.
    for pixels, top in ((photo8, 255), (photo16, 65535)):
        out = run_op(pixels, "lut3d", table=flat(table), size=9, interpolation=method)
        ref = np.clip(colour_reference(pixels / top, table, method), 0, 1) * top
        assert np.abs(out - ref).max() <= 0.5 + 1e-3 * (top / 255)


def test_lut3d_identity_table_is_identity(photo8, photo16):
    for size in (2, 17, 33):
        table = flat(identity_table(size))
        for img in (photo8, photo16, photo16.astype(np.float32) / 65535, photo8[..., 1].copy()):
            for method in ("trilinear", "tetrahedral"):
                out = run_op(img, "lut3d", table=table, size=size, interpolation=method)
                tol = 2e-6 if img.dtype == np.float32 else 0
                assert np.abs(out.astype(np.float64) - img).max() <= tol, (size, img.dtype, method)


def test_lut3d_grey_image_is_luma_of_the_diagonal(gray8):
    """A grey level v is looked up as R = G = B = v and the Rec. 709 luma of the result is returned."""
    table = random_table(5, seed=3)
    out = run_op(gray8, "lut3d", table=flat(table), size=5, interpolation="trilinear")
    v = gray8.reshape(-1, 1).astype(np.float64) / 255
    rgb = colour.algebra.table_interpolation(
        np.repeat(v, 3, axis=1), table.astype(np.float64), method="Trilinear"
    )
    ref = np.clip(rgb @ LUMA_BGR[::-1], 0, 1).reshape(gray8.shape) * 255
    assert out.ndim == 2 and np.abs(out - ref).max() <= 0.5 + 1e-3


HAND_WRITTEN = """\
# Swaps red and blue, and lifts the blacks a little.
# Written by hand, as another tool would write it.
TITLE "swap red and blue"

LUT_3D_SIZE 2
DOMAIN_MIN 0 0 0
DOMAIN_MAX 1 1 1
0.1 0.1 0.1
0.1 0.1 1.0
0.1 1.0 0.1
0.1 1.0 1.0
1.0 0.1 0.1   # trailing comments are allowed
1.0 0.1 1.0
1.0 1.0 0.1
1 1 1
"""


def test_lut3d_reads_a_hand_written_cube_file(tmp_path, photo8):
    path = tmp_path / "swap.cube"
    path.write_text(HAND_WRITTEN)
    lut = read_cube(path)
    assert lut.size == 2 and lut.title == "swap red and blue"
    assert lut.comments[0].startswith("Swaps red and blue")
    # Node (r=1, g=0, b=0) is the second line: red changes fastest.
    assert lut.table[1, 0, 0].tolist() == pytest.approx([0.1, 0.1, 1.0])
    out = run_op(photo8, "lut3d", file=str(path), interpolation="trilinear")
    # A 2-node trilinear table is affine per channel: out = 0.1 + 0.9 * (the swapped channel).
    expected = np.rint(0.1 * 255 + 0.9 * photo8[..., ::-1].astype(np.float64))
    assert np.abs(out - expected).max() <= 1


def test_lut3d_reads_resolve_input_range_and_domains_like_colour(tmp_path, photo8):
    table = random_table(5, seed=1)
    body = "\n".join(" ".join(f"{v:.7f}" for v in row) for row in table.transpose(2, 1, 0, 3).reshape(-1, 3))
    resolve = tmp_path / "resolve.cube"
    resolve.write_text(f"LUT_3D_SIZE 5\nLUT_3D_INPUT_RANGE 0.0 2.0\n{body}\n")
    lut = read_cube(resolve)
    assert lut.domain_min.tolist() == [0, 0, 0] and lut.domain_max.tolist() == [2, 2, 2]
    reference = colour.io.read_LUT(str(resolve))
    img = photo8.astype(np.float32) / 255
    out = run_op(img, "lut3d", file=str(resolve), interpolation="trilinear")
    ref = reference.apply(img[..., ::-1].astype(np.float64))[..., ::-1]
    assert np.abs(out - np.clip(ref, 0, 1)).max() < 2e-6


def test_cube_write_read_round_trip_and_colour_agrees(tmp_path):
    table = random_table(7, seed=2)
    lut = CubeLut(
        table, np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]), "round trip", ["made by a test"]
    )
    path = tmp_path / "rt.cube"
    write_cube(path, lut)
    back = read_cube(path)
    assert back.title == "round trip" and back.comments == ["made by a test"]
    assert np.abs(back.table - table).max() <= 6e-7  # 6 decimals written (5e-7), plus float32 rounding
    theirs = colour.io.read_LUT(str(path))
    assert np.abs(theirs.table - table).max() <= 6e-7
    # And a file colour-science writes reads back here.
    colour.io.write_LUT(colour.LUT3D(table.astype(np.float64), name="from colour"), str(tmp_path / "c.cube"))
    ours = read_cube(tmp_path / "c.cube")
    assert ours.title == "from colour" and np.abs(ours.table - table).max() <= 1e-6


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("LUT_3D_SIZE 2\n0 0 0\n", "needs 8 table lines, found 1"),
        (
            "LUT_3D_SIZE 2\n" + "0 0 0\n" * 4 + "0 zero 0\n" + "0 0 0\n" * 3,
            "bad.cube:6: a table line needs numbers",
        ),
        ("LUT_3D_SIZE 2\n" + "0 0\n" * 8, "bad.cube:2: a table line needs 3 numbers"),
        ("LUT_3D_SIZE 1\n0 0 0\n", "bad.cube:1: LUT_3D_SIZE must be an integer from 2"),
        ("LUT_1D_SIZE 4\n0 0 0\n", "bad.cube:1: a 1D table"),
        ("0 0 0\n", "bad.cube:1: data line before LUT_3D_SIZE"),
        ("TITLE x\nLUT_3D_SIZE 2\nGAMMA 2\n", "bad.cube:3: unknown keyword 'GAMMA'"),
        ("LUT_3D_SIZE 2\nDOMAIN_MAX 0 0 0\n" + "0 0 0\n" * 8, "DOMAIN_MAX must be above DOMAIN_MIN"),
        ("TITLE x\n", "no LUT_3D_SIZE line"),
    ],
)
def test_cube_bad_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "bad.cube"
    path.write_text(text)
    with pytest.raises(CubeError, match=message.replace("(", r"\(")):
        read_cube(path)


def test_lut3d_missing_file_names_the_step_and_file(tmp_path, photo8):
    with pytest.raises(StepError, match=r"steps\[0\] lut3d: .*nowhere.cube: no such .cube file"):
        run_op(photo8, "lut3d", file=str(tmp_path / "nowhere.cube"))


def test_lut3d_parameters_are_checked():
    with pytest.raises(ValueError, match="give either file"):
        run_op(np.zeros((2, 2, 3), np.uint8), "lut3d")
    with pytest.raises(ValueError, match="table needs 3 \\* size\\^3 = 24 numbers"):
        run_op(np.zeros((2, 2, 3), np.uint8), "lut3d", table=[0.0] * 23, size=2)


def test_lut3d_format_cube_is_red_fastest():
    table = identity_table(3)
    lines = [ln for ln in format_cube(CubeLut(table)).splitlines() if ln[0].isdigit()]
    assert lines[1] == "0.500000 0.000000 0.000000"  # second node: red moves first
    assert lines[3] == "0.000000 0.500000 0.000000"
    assert parse_cube(format_cube(CubeLut(table))).table.tolist() == table.tolist()


def test_lut3d_interpolate_outside_domain_clamps_to_the_edge():
    table = random_table(4)
    inside = interpolate_rgb(np.array([[1.0, 0.0, 0.5]], np.float32), table)
    outside = interpolate_rgb(np.array([[1.7, -0.3, 0.5]], np.float32), table)
    assert np.array_equal(inside, outside)


MATRIX = [1.2, -0.1, -0.1, 0.05, 0.9, 0.05, -0.2, 0.1, 1.1]
OFFSET = [0.02, -0.01, 0.03]


def test_color_matrix_matches_numpy(photo8, photo16):
    m, o = np.array(MATRIX).reshape(3, 3), np.array(OFFSET)
    for img, top in ((photo8, 255), (photo16, 65535), (photo16.astype(np.float32) / 65535, 1.0)):
        out = run_op(img, "color_matrix", matrix=MATRIX, offset=OFFSET)
        rgb = img[..., ::-1].astype(np.float64) / top
        ref = np.clip(rgb @ m.T + o, 0, 1)[..., ::-1] * top
        tol = 1e-6 if top == 1.0 else 0.5 + 1e-3 * top / 255
        assert np.abs(out - ref).max() <= tol, img.dtype


def test_color_matrix_grey_is_luma_of_grey_in(gray8):
    out = run_op(gray8, "color_matrix", matrix=MATRIX, offset=OFFSET)
    v = gray8.astype(np.float64)[..., None] / 255 * np.ones(3)
    ref = np.clip((v @ np.array(MATRIX).reshape(3, 3).T + OFFSET) @ LUMA_BGR[::-1], 0, 1) * 255
    assert out.ndim == 2 and np.abs(out - ref).max() <= 0.5 + 1e-3


@pytest.mark.skipif(shutil.which(IMAGEMAGICK) is None, reason="ImageMagick not installed")
def test_color_matrix_matches_imagemagick(tmp_path, photo8):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), photo8)
    # ImageMagick's 6x6 form carries the offset in its last column (fractions of full scale).
    rows = [MATRIX[0:3] + [0, 0, OFFSET[0]], MATRIX[3:6] + [0, 0, OFFSET[1]], MATRIX[6:9] + [0, 0, OFFSET[2]]]
    rows += [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    spec = " ".join(str(v) for row in rows for v in row)
    dst = tmp_path / "out.png"
    subprocess.run([IMAGEMAGICK, str(src), "-color-matrix", spec, str(dst)], check=True)
    ref = cv2.imread(str(dst), cv2.IMREAD_COLOR)
    out = run_op(photo8, "color_matrix", matrix=MATRIX, offset=OFFSET)
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_a_missing_or_broken_cube_file_stops_the_pipeline_at_load(tmp_path):
    # Read when the pipeline is loaded, so `imgenh run` exits 2 before any image, naming file and line.
    from imgenh.errors import ConfigError
    from imgenh.pipeline_file import load_pipeline

    (tmp_path / "p.yaml").write_text(
        "version: 1\nsteps:\n  - op: gamma\n  - op: lut3d\n    file: looks/film.cube\n"
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline(tmp_path / "p.yaml")
    assert info.value.errors == [
        f"{tmp_path / 'p.yaml'}:5: steps[1] lut3d.file: {tmp_path / 'looks' / 'film.cube'}: no such .cube file"
    ]
    (tmp_path / "looks").mkdir()
    (tmp_path / "looks" / "film.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n")
    with pytest.raises(
        ConfigError, match=r"p.yaml:5: steps\[1\] lut3d.file: .*film.cube: LUT_3D_SIZE 2 needs 8"
    ):
        load_pipeline(tmp_path / "p.yaml")
    write_cube(tmp_path / "looks" / "film.cube", CubeLut(identity_table(2)))
    assert load_pipeline(tmp_path / "p.yaml").steps[1].params["file"] == str(tmp_path / "looks" / "film.cube")
