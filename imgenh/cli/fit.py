"""``imgenh fit``: learn a look (or a pipeline's ``{fit: ...}`` parameters) from before/after folders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from imgenh.cli import fail, main
from imgenh.errors import UsageError
from imgenh.io import OutputError, atomic_write


@main.command()
@click.argument("pipeline", required=False, type=click.Path(dir_okay=False))
@click.option("--before", required=True, type=click.Path(file_okay=False), help="Folder of original images.")
@click.option(
    "--after", required=True, type=click.Path(file_okay=False), help="Folder of the same images, edited."
)
@click.option(
    "-o", "--output", "out", required=True, metavar="FILE", help="The pipeline file to write (.yaml)."
)
@click.option("--cube", metavar="FILE", help="Also export the look as a .cube 3D LUT (33^3, Adobe/Resolve).")
@click.option(
    "--holdout",
    type=click.IntRange(min=0),
    help="Pairs kept out of fitting to measure the error honestly [default: ~20% from 5 pairs on].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same result.")
@click.option(
    "--budget",
    type=click.IntRange(min=1),
    default=None,
    # The numbers are imgenh.fit.search's DEFAULT_BUDGET and SEARCH_SIDE (a test holds them equal): importing
    # it here would load numpy for every `imgenh --help`.
    help="With a PIPELINE: evaluations of it over the fitted pairs, each one run of the pipeline on every "
    "pair shrunk to 128 px; the search's time is about proportional to it [default: 300].",
)
@click.option("--report", metavar="FILE", help="Write the errors per pair as JSON.")
@click.option(
    "--adaptive",
    is_flag=True,
    help="Per-image parameters predicted from image statistics by boosted trees: the look model's "
    "white balance, levels and saturation, or a PIPELINE's {fit: [lo, hi]} ranges.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def fit(pipeline, before, after, out, cube, holdout, seed, budget, report, progress, adaptive):
    """Learn an edit from before/after pairs and write it as a pipeline `imgenh run` applies.

    Pairs are matched by relative path and file stem (a/IMG_1.CR2.jpg pairs a/IMG_1.png); an
    after at another size is resized, one that is cropped, rotated or another picture is
    refused with its reason. Without PIPELINE, imgenh fits its look model: tone curves, a
    colour matrix and a small 3D colour table, as complex as cross-validation over the pairs
    supports. With PIPELINE, its parameters written as {fit: [lo, hi]} (a range) or
    {fit: [a, b, ...]} (choices) are searched (restarts of Nelder-Mead and choice sweeps,
    within --budget evaluations) and the rest stay as written; the tuned file is PIPELINE with
    the fitted values in place (its comments are not kept). The file starts with the measured
    mean CIEDE2000: doing nothing vs fitted, on fitted and held-out pairs.

    \b
    Examples:
      imgenh fit --before edits/before --after edits/after -o look.yaml --cube look.cube
      imgenh fit my.yaml --before edits/before --after edits/after -o tuned.yaml
      imgenh run look.yaml shoot/ -o shoot_edited -r
      imgenh fit --adaptive --before edits/before --after edits/after -o tuned.yaml
    """
    from imgenh.fit.folders import fit_folders
    from imgenh.fit.search import DEFAULT_BUDGET

    if Path(out).suffix.lower() not in (".yaml", ".yml"):
        fail(f"-o {out}: name the pipeline file .yaml")
    if pipeline is not None and cube:
        fail("--cube exports the look model; a PIPELINE's steps may depend on each image, so fit without one")
    if adaptive and cube:
        fail("--cube: an adaptive look differs per image; a .cube file holds one fixed look")
    if pipeline is None and budget is not None:
        fail("--budget is for a PIPELINE's search; the look model has no budget")
    bar = _ProgressBar(progress)
    try:
        fitted = fit_folders(
            before,
            after,
            pipeline=pipeline,
            holdout=holdout,
            seed=seed,
            budget=budget or DEFAULT_BUDGET,
            on_pair=bar,
            on_progress=bar.stage,
            adaptive=adaptive,
        )
    except UsageError as exc:
        fail(exc)
    finally:
        bar.close()
    for line in fitted.unmatched + list(fitted.match.ambiguous):
        click.echo(f"imgenh: warning: no pair for {line}", err=True)
    for pair, why in fitted.refused:
        click.echo(f"imgenh: warning: refused {pair.key}: {why}", err=True)
    try:
        atomic_write(Path(out), fitted.pipeline_text(Path(out).resolve().parent).encode("utf-8"))
        if cube:
            from imgenh.cube import write_cube
            from imgenh.fit.render import look_to_cube

            write_cube(cube, look_to_cube(fitted.result.steps))
        if report:
            atomic_write(Path(report), (json.dumps(fitted.report(), indent=2) + "\n").encode("utf-8"))
    except (OSError, OutputError) as exc:
        fail(str(exc), code=1)
    click.echo(f"imgenh: {_summary_line(fitted.result)}; wrote {out}", err=True)
    for note in fitted.result.verdict() if adaptive else []:
        click.echo(f"imgenh: note: {note}", err=True)


def _summary_line(result) -> str:
    def error(role: str) -> str:
        fitted, nothing = result.mean_error(role), result.mean_error(role, fitted=False)
        return "-" if fitted is None else f"{fitted:.2f} (nothing done {nothing:.2f})"

    counts = {role: sum(e.role == role for e in result.errors) for role in ("train", "held-out")}
    if hasattr(result, "complexity"):
        how = result.complexity
    else:
        how = f"{len(result.values)} parameters in {result.evaluations} evaluations"
    return (
        f"fitted {counts['train']} pairs, {counts['held-out']} held out; {how}; "
        f"mean CIEDE2000 train {error('train')}, held-out {error('held-out')}"
    )


class _ProgressBar:
    """tqdm bars on stderr (on a terminal, or when forced): loading pairs, then the search or cross-validation.

    Called as ``on_pair(pair, reason)`` while pairs load; :meth:`stage` is ``on_progress(stage, done, total)``.
    """

    def __init__(self, progress: bool | None):
        self.enabled = sys.stderr.isatty() if progress is None else progress
        self.bar = None
        self.name = ""
        if self.enabled:
            self._open("loading", None, "pair")

    def _open(self, name: str, total: int | None, unit: str) -> None:
        from tqdm import tqdm

        self.close()
        self.name = name
        self.bar = tqdm(total=total, unit=unit, desc=f"imgenh fit: {name}", file=sys.stderr)

    def __call__(self, pair, reason) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def stage(self, name: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if name != self.name:
            self._open(name, total, "eval" if name == "searching" else "fit")
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
