"""Fit a look, or a pipeline's ``{fit: ...}`` parameters, from two folders of before/after images.

What ``imgenh fit`` runs. Matching, checking, fitting, searching and rendering live in their
own modules; this one strings them together and decides what is a usage error (a bad pipeline
file, fewer than two usable pairs, a hold-out that leaves too few).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from imgenh.errors import UsageError
from imgenh.fit.pairs import Pair, PairMatch, load_pairs, match_pairs
from imgenh.fit.render import render_pipeline
from imgenh.fit.search import DEFAULT_BUDGET, SearchResult, fit_search
from imgenh.fit.select import FitResult, fit_look, split_holdout
from imgenh.fit.space import load_space


@dataclass
class FolderFit:
    """A fitted look (or pipeline) and how the folders' files were used.

    Attributes
    ----------
    result : FitResult or SearchResult or AdaptiveFit
        The look model's steps, chosen complexity and errors per pair; or, for a pipeline,
        its fitted values, steps and errors per pair; or, with ``adaptive``, both plus the model.
    match : PairMatch
        Pairs found, files without a partner, ambiguous names.
    refused : list of (Pair, str)
        Pairs refused while loading (cropped, rotated, not the same picture...), with why.
    """

    result: FitResult | SearchResult
    match: PairMatch
    refused: list[tuple[Pair, str]] = field(default_factory=list)

    @property
    def unmatched(self) -> list[str]:
        """``before: a/x.jpg`` / ``after: b.jpg`` for every file without a partner."""
        return [f"before: {p.as_posix()}" for p in self.match.unmatched_before] + [
            f"after: {p.as_posix()}" for p in self.match.unmatched_after
        ]

    def pipeline_text(self, folder: str | Path | None = None) -> str:
        """The tuned pipeline file, starting with the comment block of measured errors.

        ``folder``: where the file will be written; files the steps name (a lut3d ``.cube``) are
        then written relative to it, as a pipeline file's paths are read.
        """
        refused = [f"{pair.key}: {why}" for pair, why in self.refused]
        if hasattr(self.result, "render"):  # an AdaptiveFit writes its own file (the adaptive: block)
            return self.result.render(self.unmatched, refused, folder)
        return render_pipeline(self.result, self.unmatched, refused, folder)

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
    pipeline: str | Path | None = None,
    holdout: int | None = None,
    seed: int = 0,
    budget: int = DEFAULT_BUDGET,
    on_pair: Callable[[Pair, str | None], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    adaptive: bool = False,
) -> FolderFit:
    """Learn the edit that turns the images in ``before`` into those in ``after``.

    Parameters
    ----------
    before, after : str or Path
        Folders, matched by relative path and file stem (``a/IMG_1.CR2.jpg`` pairs ``a/IMG_1.png``).
    pipeline : str or Path, optional
        A pipeline file with ``{fit: ...}`` parameters (:mod:`imgenh.fit.space`): those are
        searched (:func:`imgenh.fit.search.fit_search`). Without it, the look model is fitted.
    holdout : int, optional
        Pairs kept out of fitting and reported as held-out; default about 20% from 5 pairs on.
    seed : int
        Same seed, same result.
    budget : int
        A pipeline's search: evaluations of the pipeline over the training pairs.
    on_pair : callable, optional
        ``on_pair(pair, reason_or_None)`` as each pair is loaded (progress bars, logs).
    on_progress : callable, optional
        ``on_progress(stage, done, total)`` as the fit goes; stage is "searching" or
        "cross-validating".
    adaptive : bool
        Per-image parameters predicted from image statistics (:func:`imgenh.fit.adaptive.fit_adaptive`):
        the look model's per-image step, or the pipeline's ``{fit: [lo, hi]}`` ranges.

    Raises
    ------
    UsageError
        A folder is missing, the pipeline file is invalid (every problem, with its line), fewer
        than two pairs can be used, or ``holdout`` leaves fewer than two for fitting.
    """
    space = load_space(pipeline) if pipeline is not None else None  # its errors before any image is read
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
        split_holdout(len(loaded), holdout, seed)
    except ValueError as exc:
        raise UsageError([f"--holdout: {exc}"]) from None
    if adaptive:
        from imgenh.fit.adaptive import fit_adaptive

        try:
            result = fit_adaptive(
                loaded, holdout=holdout, seed=seed, space=space, budget=budget, on_progress=on_progress
            )
        except ValueError as exc:
            raise UsageError([f"{space.source if space else 'fit --adaptive'}: {exc}"]) from None
    elif space is None:
        stage = "cross-validating"
        result = fit_look(loaded, holdout=holdout, seed=seed, on_progress=_staged(on_progress, stage))
    else:
        report = _staged(on_progress, "searching")
        try:
            result = fit_search(space, loaded, holdout=holdout, seed=seed, budget=budget, on_eval=report)
        except ValueError as exc:
            raise UsageError([f"{space.source}: {exc}"]) from None
    return FolderFit(result, match, refused)


def _staged(on_progress: Callable[[str, int, int], None] | None, stage: str) -> Callable | None:
    return None if on_progress is None else lambda done, total: on_progress(stage, done, total)


def _names(match: PairMatch) -> list[str]:
    return [p.as_posix() for p in match.unmatched_before + match.unmatched_after]
