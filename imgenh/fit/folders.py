"""Fit a look from two folders of before/after images: what ``imgenh fit`` runs.

Matching, checking, fitting and rendering live in their own modules; this one strings them
together and decides what is a usage error (fewer than two usable pairs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imgenh.errors import UsageError
from imgenh.fit.pairs import Pair, PairMatch, load_pairs, match_pairs
from imgenh.fit.render import render_pipeline
from imgenh.fit.select import FitResult, fit_look


@dataclass
class FolderFit:
    """A fitted look and how the folders' files were used.

    Attributes
    ----------
    result : FitResult or AdaptiveFit
        Steps, chosen complexity, errors per pair.
    match : PairMatch
        Pairs found, files without a partner, ambiguous names.
    refused : list of (Pair, str)
        Pairs refused while loading (cropped, rotated, not the same picture...), with why.
    """

    result: FitResult
    match: PairMatch
    refused: list[tuple[Pair, str]] = field(default_factory=list)

    @property
    def unmatched(self) -> list[str]:
        """``before: a/x.jpg`` / ``after: b.jpg`` for every file without a partner."""
        return [f"before: {p.as_posix()}" for p in self.match.unmatched_before] + [
            f"after: {p.as_posix()}" for p in self.match.unmatched_after
        ]

    def pipeline_text(self) -> str:
        """The tuned pipeline file, starting with the comment block of measured errors."""
        refused = [f"{pair.key}: {why}" for pair, why in self.refused]
        if hasattr(self.result, "render"):  # an AdaptiveFit writes its own file (the adaptive: block)
            return self.result.render(self.unmatched, refused)
        return render_pipeline(self.result, self.unmatched, refused)

    def report(self) -> dict:
        """Plain data for ``--report``: the fit's errors per pair plus unmatched and refused files."""
        return {
            **self.result.to_dict(),
            "unmatched": self.unmatched,
            "ambiguous": list(self.match.ambiguous),
            "refused": [{"key": pair.key, "reason": why} for pair, why in self.refused],
        }


def fit_folders(
    before: str | Path,
    after: str | Path,
    *,
    holdout: int | None = None,
    seed: int = 0,
    on_pair: Callable[[Pair, str | None], None] | None = None,
    adaptive: bool = False,
) -> FolderFit:
    """Learn the edit that turns the images in ``before`` into those in ``after``.

    Parameters
    ----------
    before, after : str or Path
        Folders, matched by relative path and file stem (``a/IMG_1.CR2.jpg`` pairs ``a/IMG_1.png``).
    holdout : int, optional
        Pairs kept out of fitting and reported as held-out; default about 20% from 5 pairs on.
    seed : int
        Same seed, same result.
    on_pair : callable, optional
        ``on_pair(pair, reason_or_None)`` as each pair is loaded (progress bars, logs).
    adaptive : bool
        Per-image parameters predicted from image statistics (:func:`imgenh.fit.adaptive.fit_adaptive`).

    Raises
    ------
    UsageError
        A folder is missing, or fewer than two pairs can be used.
    """
    try:
        match = match_pairs(before, after)
    except FileNotFoundError as exc:
        raise UsageError([str(exc)]) from None
    if len(match.pairs) < 2:
        raise UsageError(
            [f"{len(match.pairs)} pair(s) matched between {before} and {after}; fitting needs at least 2"],
            list(match.ambiguous) + [f"no partner: {name}" for name in _names(match)],
        )
    loaded, refused = load_pairs(match.pairs, on_pair=on_pair)
    if len(loaded) < 2:
        reasons = [f"{pair.key}: {why}" for pair, why in refused]
        raise UsageError(
            [f"{len(loaded)} usable pair(s) of {len(match.pairs)}; fitting needs at least 2"], reasons
        )
    try:
        if adaptive:
            from imgenh.fit.adaptive import fit_adaptive

            result = fit_adaptive(loaded, holdout=holdout, seed=seed)
        else:
            result = fit_look(loaded, holdout=holdout, seed=seed)
    except ValueError as exc:
        raise UsageError([f"--holdout: {exc}"]) from None
    return FolderFit(result, match, refused)


def _names(match: PairMatch) -> list[str]:
    return [p.as_posix() for p in match.unmatched_before + match.unmatched_after]
