"""Per-image results, run totals, and the machine-readable report (JSON or JSON Lines)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imgenh import __version__
from imgenh.io import atomic_write
from imgenh.plan import Job, Plan, Status
from imgenh.state import FileStamps


@dataclass
class Result:
    """What happened to one image. Workers return it instead of raising, and never return pixels.

    Attributes
    ----------
    source, output, key : str
        Input path, output path, and the output relative to the output root.
    status : Status
        ``ok``, ``skipped`` or ``failed`` (``planned`` in a dry run).
    reason : str
        Why it was skipped or failed, or why it is planned (empty when ok).
    seconds : float
        Time spent on it in the worker (read, process, write).
    values : list of dict
        Values operators reported, e.g. ``{"step": 0, "op": "white_balance", "illuminant": [...]}``.
    notes : list of str
        Conversions and fixes worth knowing (orientation applied, 16-bit written as 8-bit...).
    stamps : FileStamps or None
        Input and output identity for the manifest; not part of the report.
    extras : dict
        Quality figures (``before``, ``after``) and ``thumbs``, when the run measures them.
    """

    source: str
    output: str
    key: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    values: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    stamps: FileStamps | None = field(default=None, repr=False)
    extras: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_job(cls, job: Job, status: Status | None = None, reason: str | None = None) -> Result:
        """A result for ``job``: by default its planned status and reason (``failed``, ``skipped``, ``planned``)."""
        return cls(
            str(job.source),
            str(job.output),
            job.key,
            job.status if status is None else status,
            job.reason if reason is None else reason,
        )

    def to_json(self, thumbs: bool = False) -> dict[str, Any]:
        """The result as it appears in the report (with thumbnails only for the HTML page)."""
        extras = {k: v for k, v in self.extras.items() if thumbs or k != "thumbs"}
        return {
            # Names that are not UTF-8 stay readable and valid JSON.
            "source": os.fsencode(self.source).decode("utf-8", "backslashreplace"),
            "output": os.fsencode(self.output).decode("utf-8", "backslashreplace"),
            "key": self.key,
            "status": str(self.status),
            "reason": self.reason,
            "seconds": round(self.seconds, 4),
            "values": self.values,
            "notes": self.notes,
            **extras,
        }


@dataclass
class Summary:
    """Totals of a run, and every result in the order they finished."""

    pipeline_hash: str = ""
    pipeline_name: str = ""
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: int = 0  # signal number that stopped the run, 0 if none
    stopped_early: str = ""  # e.g. "--max-failures 5 reached"
    warnings: list[str] = field(default_factory=list)  # e.g. patterns that matched nothing
    ignored: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}: files not read

    @classmethod
    def from_plan(cls, plan: Plan, pipeline_hash: str = "", pipeline_name: str = "") -> Summary:
        """A dry run's plan in report form: status ``planned``, ``skipped`` or ``failed`` per image."""
        results = [Result.from_job(job) for job in plan.jobs]
        return cls(pipeline_hash, pipeline_name, results, warnings=plan.warnings, ignored=ignored_json(plan))

    def count(self, status: str) -> int:
        """Number of results with ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def exit_code(self) -> int:
        """0 all processed or skipped, 1 any failed, 128+signal when interrupted."""
        if self.interrupted:
            return 128 + self.interrupted
        return 1 if self.count("failed") or self.stopped_early else 0

    def line(self) -> str:
        """The one-line summary printed at the end of a run."""
        done = self.count("ok")
        rate = done / self.seconds if self.seconds > 0 else 0.0
        text = (
            f"{done} processed, {self.count('skipped')} skipped, {self.count('failed')} failed "
            f"in {self.seconds:.1f} s ({rate:.1f} images/s)"
        )
        unchanged = sum(1 for r in self.results if r.status == "ok" and _says_unchanged(r.notes))
        if unchanged:  # written as the input's own bytes: a user comparing files should not be surprised
            text += f"; {unchanged} unchanged by the steps (input bytes kept)"
        if self.stopped_early:
            text += f"; stopped early: {self.stopped_early}"
        if self.interrupted:
            text += "; interrupted"
        return text

    def totals(self) -> dict[str, Any]:
        """Counts and timing as a dict (the report's ``totals``)."""
        return {
            "ok": self.count("ok"),
            "planned": self.count("planned"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "interrupted": bool(self.interrupted),
            "stopped_early": self.stopped_early,
        }


def ignored_json(plan: Plan) -> list[dict[str, str]]:
    """The files a plan passed over, as the report lists them (names that are not UTF-8 escaped)."""
    return [
        {"path": os.fsencode(p).decode("utf-8", "backslashreplace"), "reason": r} for p, r in plan.ignored
    ]


def html_target_problem(html: str | None, out: Path | None) -> str | None:
    """Why ``--html`` cannot be written (not .html, a folder, or in a missing folder), checked before any work."""
    if not html:
        return None
    if Path(html).suffix.lower() not in (".html", ".htm"):
        return f"--html {html}: name the page .html"
    return _target_problem("--html", html, out)


def report_target_problem(report: str | None, out: Path | None) -> str | None:
    """Why ``--report`` cannot be written (a folder, or in a missing folder), checked before any work.

    A folder inside the output root ``out`` counts as existing: the run creates it.
    """
    if not report or report == "-":
        return None
    target = Path(report)
    if report_format(report) is None:
        return (
            f"--report {report}: unknown report format {target.suffix!r}; name it .json, .jsonl or .csv "
            "(or - for JSON on standard output)"
        )
    return _target_problem("--report", report, out)


def _target_problem(flag: str, report: str, out: Path | None) -> str | None:
    """A report file that cannot be written: a folder, or in a folder that will not exist."""
    target = Path(report)
    if target.is_dir():
        name = "report.html" if flag == "--html" else "report.json"
        return f"{flag} {report} is a folder; give a file name such as {target / name}"
    folder = target.parent
    will_exist = out is not None and (
        folder.resolve() == out.resolve() or out.resolve() in folder.resolve().parents
    )
    if not folder.is_dir() and not will_exist:
        return f"{flag} {report}: folder {folder} does not exist"
    return None


# Notes a result carries, by how they are shown: about one file (printed with its name),
# shared by many (printed once, counted in the report), or only in the per-image report.
PER_FILE_NOTES = ("truncated", "decoder warning")
UNCHANGED_PREFIX = "unchanged by the steps"
QUIET_NOTES = ("EXIF orientation", "written just before", UNCHANGED_PREFIX)


def _says_unchanged(notes: list[str]) -> bool:
    return any(n.startswith(UNCHANGED_PREFIX) for n in notes)


def note_kind(note: str) -> str:
    """``"per_file"``, ``"quiet"`` or ``"shared"``: how a result's note is reported (see above)."""
    if note.startswith(PER_FILE_NOTES):
        return "per_file"
    return "quiet" if note.startswith(QUIET_NOTES) else "shared"


def note_warnings(results: list[Result]) -> list[str]:
    """The warnings the results' notes make, as printed: per file, or once with a count."""
    lines: list[str] = []
    shared: dict[str, list[str]] = {}
    for result in results:
        for note in result.notes:
            kind = note_kind(note)
            if kind == "per_file":
                lines.append(f"{result.source}: {note}")
            elif kind == "shared":
                shared.setdefault(note, []).append(result.source)
    for note, sources in shared.items():
        count = f"{len(sources)} image{'s' * (len(sources) != 1)}"
        lines.append(f"{note} ({count}, first: {sources[0]})")
    return lines


REPORT_FORMATS = {".json": "json", "": "json", ".jsonl": "jsonl", ".csv": "csv"}
CSV_COLUMNS = ("key", "source", "output", "status", "reason", "seconds", "notes", "values")


def report_format(target: str) -> str | None:
    """``json``, ``jsonl`` or ``csv`` from a report path's extension (``-`` is JSON); None if unknown."""
    return "json" if target == "-" else REPORT_FORMATS.get(Path(target).suffix.lower())


def report_document(summary: Summary, thumbs: bool = False) -> dict[str, Any]:
    """The report as one JSON-ready dict: head, totals and one entry per image (``thumbs`` for HTML)."""
    return {
        "imgenh_version": __version__,
        "pipeline": summary.pipeline_name,
        "pipeline_hash": summary.pipeline_hash,
        "warnings": summary.warnings + note_warnings(summary.results),
        "ignored": summary.ignored,
        "totals": summary.totals(),
        "images": [r.to_json(thumbs) for r in summary.results],
    }


def _csv_text(doc: dict[str, Any]) -> str:
    """One row per image; notes joined with '; ', operator values as JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for image in doc["images"]:
        row = {**image, "notes": "; ".join(image["notes"]), "values": json.dumps(image["values"])}
        writer.writerow(row[c] for c in CSV_COLUMNS)
    return out.getvalue()


def write_report(target: str, summary: Summary) -> None:
    """Write the run report; the format follows the extension.

    Parameters
    ----------
    target : str
        ``.json`` (or no extension): one JSON document; ``.jsonl``: one line per image, then
        a totals line; ``.csv``: one row per image; ``-``: JSON on standard output.
    summary : Summary

    Raises
    ------
    ValueError
        For another extension (checked before a run by :func:`report_target_problem`).
    """
    doc = report_document(summary)
    fmt = report_format(target)
    if fmt == "jsonl":
        head = {k: v for k, v in doc.items() if k not in ("totals", "images")}
        lines = [json.dumps({"type": "image", **image}) for image in doc["images"]]
        lines.append(json.dumps({"type": "totals", **head, **doc["totals"]}))
        text = "\n".join(lines) + "\n"
    elif fmt == "csv":
        text = _csv_text(doc)
    elif fmt == "json":
        text = json.dumps(doc, indent=2) + "\n"
    else:
        raise ValueError(f"unknown report format {Path(target).suffix!r}")
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(Path(target), text.encode("utf-8"))
