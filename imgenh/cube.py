"""Read and write 3D colour tables in the ``.cube`` format.

The format is the Adobe Cube LUT Specification 1.0 (2013): keyword lines, then ``N^3``
lines of three numbers, red changing fastest, then green, then blue. Keywords read:

- ``LUT_3D_SIZE N`` (2..256), required;
- ``TITLE "text"``;
- ``DOMAIN_MIN r g b`` / ``DOMAIN_MAX r g b`` (default 0 0 0 / 1 1 1): the input range;
- ``LUT_3D_INPUT_RANGE lo hi``, DaVinci Resolve's form of the same for all three channels;
- ``#`` comments and blank lines anywhere.

A file holding a 1D table (``LUT_1D_SIZE``) is refused: imgenh's ``lut3d`` applies 3D tables,
and 1D curves are the ``curve`` operator's job.

Tables are held as float32 arrays of shape ``(N, N, N, 3)`` indexed ``[r, g, b]``, output in
R, G, B order: the layout of ``colour.LUT3D.table`` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_SIZE = 256


class CubeError(ValueError):
    """A ``.cube`` file that cannot be read; the message names the file and the line."""


@dataclass
class CubeLut:
    """A 3D colour table with its input domain.

    Attributes
    ----------
    table : ndarray
        float32, shape ``(N, N, N, 3)``, indexed ``[r, g, b]``, R, G, B outputs.
    domain_min, domain_max : ndarray
        float64, shape ``(3,)``: the input values that map to the first and last nodes.
    title : str
        The ``TITLE`` line, or ``""``.
    comments : list of str
        Comment lines written at the top of the file (without ``#``).
    """

    table: np.ndarray
    domain_min: np.ndarray = field(default_factory=lambda: np.zeros(3))
    domain_max: np.ndarray = field(default_factory=lambda: np.ones(3))
    title: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Nodes per axis, N."""
        return int(self.table.shape[0])


def identity_table(size: int) -> np.ndarray:
    """The table that maps every colour to itself: shape ``(size, size, size, 3)``, float32."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    r, g, b = np.meshgrid(ramp, ramp, ramp, indexing="ij")
    return np.stack([r, g, b], axis=-1)


def table_from_rows(rows: np.ndarray, size: int) -> np.ndarray:
    """``N^3`` rows of R G B in file order (red fastest) -> table indexed ``[r, g, b]``."""
    return np.ascontiguousarray(
        np.asarray(rows, np.float32).reshape(size, size, size, 3).transpose(2, 1, 0, 3)
    )


def rows_from_table(table: np.ndarray) -> np.ndarray:
    """Inverse of :func:`table_from_rows`: shape ``(N^3, 3)``, red fastest."""
    return np.asarray(table).transpose(2, 1, 0, 3).reshape(-1, 3)


def _numbers(words: list[str], count: int, where: str, keyword: str) -> list[float]:
    if len(words) != count:
        raise CubeError(f"{where}: {keyword} needs {count} numbers (got {len(words)})")
    try:
        values = [float(w) for w in words]
    except ValueError:
        raise CubeError(f"{where}: {keyword} needs numbers (got {' '.join(words)!r})") from None
    if not all(np.isfinite(values)):
        raise CubeError(f"{where}: {keyword} has a value that is not finite")
    return values


def _keyword(line: str, words: list[str], where: str, header: dict) -> None:
    key, rest = words[0].upper(), words[1:]
    if key == "TITLE":
        header["title"] = line.strip()[len("TITLE") :].strip().strip('"')
    elif key == "LUT_3D_SIZE":
        (size,) = _numbers(rest, 1, where, key)
        if not size.is_integer() or not 2 <= size <= MAX_SIZE:
            raise CubeError(f"{where}: LUT_3D_SIZE must be an integer from 2 to {MAX_SIZE} (got {rest[0]})")
        header["size"] = int(size)
    elif key in ("DOMAIN_MIN", "DOMAIN_MAX"):
        header[key.lower()] = np.array(_numbers(rest, 3, where, key))
    elif key == "LUT_3D_INPUT_RANGE":
        lo, hi = _numbers(rest, 2, where, key)
        header["domain_min"], header["domain_max"] = np.full(3, lo), np.full(3, hi)
    elif key == "LUT_1D_SIZE":
        raise CubeError(f"{where}: a 1D table (LUT_1D_SIZE) is not a 3D colour table; use the curve operator")
    elif key.replace("_", "").isalpha():
        raise CubeError(f"{where}: unknown keyword {words[0]!r}")
    else:
        raise CubeError(f"{where}: data line before LUT_3D_SIZE")


def parse_cube(text: str, source: str = "<text>") -> CubeLut:
    """Parse the text of a ``.cube`` file.

    Parameters
    ----------
    text : str
        The file's contents.
    source : str
        Name used in error messages (the file's path).

    Returns
    -------
    CubeLut

    Raises
    ------
    CubeError
        With ``source:line: what is wrong``.
    """
    header: dict = {"title": "", "domain_min": np.zeros(3), "domain_max": np.ones(3)}
    rows: list[list[float]] = []
    comments: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            if stripped.startswith("#") and not rows and "size" not in header:
                comments.append(stripped[1:].strip())
            continue
        words = stripped.split("#", 1)[0].split()
        if words[0][0] in "+-.0123456789" and "size" in header:
            rows.append(_numbers(words, 3, where, "a table line"))
        else:
            if rows:
                raise CubeError(f"{where}: keyword {words[0]!r} after the table data")
            _keyword(stripped, words, where, header)
    return _finish(header, rows, comments, source)


def _finish(header: dict, rows: list, comments: list[str], source: str) -> CubeLut:
    if "size" not in header:
        raise CubeError(f"{source}: no LUT_3D_SIZE line; not a 3D .cube file")
    size = header["size"]
    if len(rows) != size**3:
        raise CubeError(f"{source}: LUT_3D_SIZE {size} needs {size**3} table lines, found {len(rows)}")
    lo, hi = header["domain_min"], header["domain_max"]
    if np.any(hi <= lo):
        raise CubeError(f"{source}: DOMAIN_MAX must be above DOMAIN_MIN in every channel (got {lo} and {hi})")
    return CubeLut(table_from_rows(np.array(rows), size), lo, hi, header["title"], comments)


def read_cube(path: str | Path) -> CubeLut:
    """Read a ``.cube`` file (see the module docstring for what is accepted).

    Raises
    ------
    CubeError
        The file is missing, unreadable or malformed; the message names it (and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except FileNotFoundError:
        raise CubeError(f"{path}: no such .cube file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CubeError(f"{path}: cannot read .cube file ({exc})") from None
    return parse_cube(text, str(path))


def format_cube(lut: CubeLut) -> str:
    """The text of a ``.cube`` file for ``lut`` (spec 1.0, red fastest, 6 decimals)."""
    lines = [f"# {c}" for c in lut.comments]
    if lut.title:
        lines.append(f'TITLE "{lut.title}"')
    lines.append(f"LUT_3D_SIZE {lut.size}")
    if np.any(lut.domain_min != 0) or np.any(lut.domain_max != 1):
        lines.append("DOMAIN_MIN " + " ".join(f"{v:.6g}" for v in lut.domain_min))
        lines.append("DOMAIN_MAX " + " ".join(f"{v:.6g}" for v in lut.domain_max))
    body = rows_from_table(lut.table).astype(np.float64)
    lines.extend(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in body)
    return "\n".join(lines) + "\n"


def write_cube(path: str | Path, lut: CubeLut) -> None:
    """Write ``lut`` as a ``.cube`` file (see :func:`format_cube`)."""
    Path(path).write_text(format_cube(lut), encoding="utf-8")
