"""``imgenh stats``: quality figures of images, optionally beside their outputs of an earlier run.

An input is matched to its output the way a run mirrors it: the manifest of the output
folder (``OUT/.imgenh/manifest.jsonl``) names the output made from each input; without a
record, the output is looked for at the input's path relative to the folder it was found in,
with the same stem and any image extension, or the stem plus a suffix (``photo_enh.png``).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from imgenh.discover import find_inputs, is_image_name
from imgenh.io import ImageError, read_image
from imgenh.quality import FIGURE_NAMES, deltas, figures
from imgenh.state import Manifest

# Digits after the point per figure in the table (CSV and JSON carry the full values).
DECIMALS = {
    "brightness": 3,
    "contrast": 3,
    "entropy": 2,
    "clipped_shadows": 2,
    "clipped_highlights": 2,
    "cast_degrees": 1,
    "colourfulness": 1,
    "sharpness": 1,
    "noise_sigma": 2,
}
FORMATS = ("table", "csv", "json")


@dataclass
class Row:
    """One image's figures, and its output's when compared."""

    path: str
    values: dict[str, float]
    output: str | None = None
    after: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        """``{"path", <figures>}``, plus ``output``, ``after`` and ``delta`` when compared."""
        data: dict = {"path": self.path, **self.values}
        if self.output is not None:
            data.update(output=self.output, after=self.after, delta=deltas(self.values, self.after))
        return data


def image_figures(path: str | Path) -> dict[str, float]:
    """Figures of one image file (EXIF orientation applied, alpha ignored).

    Raises
    ------
    ImageError
        The file cannot be read as an image (the message says why).
    """
    try:
        return figures(read_image(path).pixels)
    except OSError as exc:
        raise ImageError(exc.strerror or str(exc)) from None


class OutputFinder:
    """Finds the output an earlier run wrote for an input, under the output folder ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.by_source = {
            rec.source: rec.output
            for rec in Manifest(self.root).load().records.values()
            if rec.status == "ok"
        }

    def find(self, source: Path, rel: PurePosixPath) -> Path | None:
        """The output for input ``source`` found at ``rel`` (relative to its folder), or None."""
        key = self.by_source.get(os.path.abspath(source))
        if key is not None and (self.root / key).is_file():
            return self.root / key
        exact = self.root / rel
        if exact.is_file():
            return exact
        folder = self.root / rel.parent
        try:
            names = sorted(n for n in os.listdir(folder) if is_image_name(n) and n.startswith(rel.stem))
        except OSError:
            return None
        # The same stem with any extension first, then the stem plus the shortest suffix
        # (rocket_enh.png for rocket.jpg, not rocket_dim_warm_enh.png); a tie is no match.
        for group in ([n for n in names if Path(n).stem == rel.stem], names):
            shortest = [n for n in group if len(Path(n).stem) == min(len(Path(m).stem) for m in group)]
            if len(shortest) == 1:
                return folder / shortest[0]
            if shortest:
                return None
        return None


def collect(paths: list[str], recursive: bool = False, compare: str | None = None):
    """Figures for every image under ``paths``, yielded as they are measured.

    Yields
    ------
    (Row, None) or (None, str)
        A row, or a message: ``"warning: ..."`` (a pattern that matched nothing, a folder
        not searched), otherwise an error naming the file (unreadable input, missing output).
    """
    inputs = find_inputs(list(paths), recursive=recursive)
    found, warnings = inputs.found, inputs.warnings
    for warning in warnings:
        yield None, f"warning: {warning}"
    finder = OutputFinder(compare) if compare else None
    for item in sorted(found, key=lambda f: str(f.path)):
        if item.error:
            yield None, f"{item.path}: {item.error}"
            continue
        try:
            row = Row(str(item.path), image_figures(item.path))
        except ImageError as exc:
            yield None, f"{item.path}: {exc}"
            continue
        if finder is not None:
            output = finder.find(item.path, item.rel)
            if output is None:
                yield (
                    None,
                    f"{item.path}: no output for it under {compare} (no manifest record; looked for {item.rel.parent / item.rel.stem}*.*)",
                )
                continue
            try:
                row.output, row.after = str(output), image_figures(output)
            except ImageError as exc:
                yield None, f"{output}: {exc}"
                continue
        yield row, None


def _cells(values: dict[str, float], signed: bool = False) -> list[str]:
    sign = "+" if signed else ""
    return [f"{values[n]:{sign}.{DECIMALS[n]}f}" for n in FIGURE_NAMES]


def format_table(rows: list[Row]) -> str:
    """Aligned columns; a compared image takes three lines: input, output, and the change."""
    lines = [["path", *FIGURE_NAMES]]
    for row in rows:
        lines.append([row.path, *_cells(row.values)])
        if row.output is not None:
            lines.append([f"  -> {row.output}", *_cells(row.after)])
            lines.append(["  change", *_cells(deltas(row.values, row.after), signed=True)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = []
    for line in lines:
        first = line[0].ljust(widths[0])
        text.append(
            "  ".join([first, *(cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True))])
        )
    return "\n".join(text)


def format_csv(rows: list[Row]) -> str:
    """One line per image; compared: ``path, output`` then each figure, ``_after`` and ``_delta``."""
    compared = any(row.output is not None for row in rows)
    header = ["path"]
    if compared:
        header += ["output"] + [f"{n}{end}" for n in FIGURE_NAMES for end in ("", "_after", "_delta")]
    else:
        header += list(FIGURE_NAMES)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        if compared:
            change = deltas(row.values, row.after)
            cells = [v for n in FIGURE_NAMES for v in (row.values[n], row.after[n], change[n])]
            writer.writerow([row.path, row.output, *cells])
        else:
            writer.writerow([row.path, *(row.values[n] for n in FIGURE_NAMES)])
    return buffer.getvalue().rstrip("\n")


def format_json(rows: list[Row]) -> str:
    """A JSON list of :meth:`Row.to_json` objects."""
    return json.dumps([row.to_json() for row in rows], indent=2)


def render(rows: list[Row], fmt: str) -> str:
    """The rows in ``fmt`` (one of :data:`FORMATS`)."""
    return {"table": format_table, "csv": format_csv, "json": format_json}[fmt](rows)


def figure_table() -> str:
    """The Markdown table of figures for README.md, generated from :data:`imgenh.quality.FIGURES`."""
    from imgenh.quality import FIGURES

    rows = ["| figure | definition |", "|---|---|"]
    rows += [f"| `{name}` | {text} |" for name, text in FIGURES]
    return "\n".join(rows)
