"""Per-image results, run totals, and the machine-readable report (JSON or JSON Lines)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from imgenh import __version__
from imgenh.io import atomic_write


@dataclass
class Result:
    """What happened to one image. Workers return it instead of raising, and never return pixels.

    Attributes
    ----------
    source, output, key : str
        Input path, output path, and the output relative to the output root.
    status : str
        ``ok``, ``skipped`` or ``failed``.
    reason : str
        Why it was skipped or failed (empty when ok).
    seconds : float
        Time spent on it in the worker (read, process, write).
    values : list of dict
        Values operators reported, e.g. ``{"step": 0, "op": "white_balance", "illuminant": [...]}``.
    notes : list of str
        Conversions and fixes worth knowing (orientation applied, 16-bit written as 8-bit...).
    size, mtime_ns : int
        Input identity as read, for the manifest.
    sha256 : str
        Input content hash, for the manifest.
    """

    source: str
    output: str
    key: str
    status: str
    reason: str = ""
    seconds: float = 0.0
    values: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    size: int = 0
    mtime_ns: int = 0
    sha256: str = ""
    out_size: int = 0
    out_mtime_ns: int = 0

    def to_json(self) -> dict[str, Any]:
        """The result as it appears in the report (identity fields left out)."""
        data = asdict(self)
        for key in ("size", "mtime_ns", "sha256", "out_size", "out_mtime_ns"):
            data.pop(key)
        for key in ("source", "output"):  # names that are not UTF-8 stay readable and valid
            data[key] = os.fsencode(data[key]).decode("utf-8", "backslashreplace")
        data["seconds"] = round(self.seconds, 4)
        return data


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
        if self.stopped_early:
            text += f"; stopped early: {self.stopped_early}"
        if self.interrupted:
            text += "; interrupted"
        return text

    def totals(self) -> dict[str, Any]:
        """Counts and timing as a dict (the report's ``totals``)."""
        return {
            "ok": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "seconds": round(self.seconds, 3),
            "exit_code": self.exit_code,
            "interrupted": bool(self.interrupted),
            "stopped_early": self.stopped_early,
        }


def write_report(target: str, summary: Summary) -> None:
    """Write the run report.

    Parameters
    ----------
    target : str
        A path ending in ``.jsonl`` (one line per image, then a totals line), any other path
        (one JSON document), or ``-`` for JSON on standard output.
    summary : Summary
    """
    head = {
        "imgenh_version": __version__,
        "pipeline": summary.pipeline_name,
        "pipeline_hash": summary.pipeline_hash,
        "warnings": summary.warnings,
    }
    if target.lower().endswith(".jsonl"):
        lines = [json.dumps({"type": "image", **r.to_json()}) for r in summary.results]
        lines.append(json.dumps({"type": "totals", **head, **summary.totals()}))
        text = "\n".join(lines) + "\n"
    else:
        doc = {**head, "totals": summary.totals(), "images": [r.to_json() for r in summary.results]}
        text = json.dumps(doc, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(Path(target), text.encode("utf-8"))
