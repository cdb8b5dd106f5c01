"""``imgenh fit``: learn a look from before/after folders and write it as a pipeline file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from imgenh.cli import fail, main
from imgenh.errors import UsageError
from imgenh.io import OutputError, atomic_write


@main.command()
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
@click.option("--report", metavar="FILE", help="Write the errors per pair as JSON.")
@click.option(
    "--adaptive",
    is_flag=True,
    help="Per-image parameters (white balance, levels, saturation) predicted from image statistics.",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
def fit(before, after, out, cube, holdout, seed, report, progress, adaptive):
    """Learn an edit from before/after pairs and write it as a pipeline `imgenh run` applies.

    Pairs are matched by relative path and file stem (a/IMG_1.CR2.jpg pairs a/IMG_1.png); an
    after at another size is resized, one that is cropped, rotated or another picture is
    refused with its reason. The look model is tone curves, a colour matrix and a small 3D
    colour table, as complex as cross-validation over the pairs supports. The file starts
    with the measured mean CIEDE2000: doing nothing vs fitted, on fitted and held-out pairs.

    \b
    Examples:
      imgenh fit --before edits/before --after edits/after -o look.yaml --cube look.cube
      imgenh run look.yaml shoot/ -o shoot_edited -r
      imgenh fit --adaptive --before edits/before --after edits/after -o tuned.yaml
    """
    from imgenh.fit.folders import fit_folders

    if Path(out).suffix.lower() not in (".yaml", ".yml"):
        fail(f"-o {out}: name the pipeline file .yaml")
    if adaptive and cube:
        fail("--cube: an adaptive look differs per image; a .cube file holds one fixed look")
    bar = _ProgressBar(progress)
    try:
        fitted = fit_folders(before, after, holdout=holdout, seed=seed, on_pair=bar, adaptive=adaptive)
    except UsageError as exc:
        fail(exc)
    finally:
        bar.close()
    for line in fitted.unmatched + list(fitted.match.ambiguous):
        click.echo(f"imgenh: warning: no pair for {line}", err=True)
    for pair, why in fitted.refused:
        click.echo(f"imgenh: warning: refused {pair.key}: {why}", err=True)
    try:
        atomic_write(Path(out), fitted.pipeline_text().encode("utf-8"))
        if cube:
            from imgenh.cube import write_cube
            from imgenh.fit.render import look_to_cube

            write_cube(cube, look_to_cube(fitted.result.steps))
        if report:
            atomic_write(Path(report), (json.dumps(fitted.report(), indent=2) + "\n").encode("utf-8"))
    except (OSError, OutputError) as exc:
        fail(str(exc), code=1)
    click.echo(f"imgenh: {_summary_line(fitted.result)}; wrote {out}", err=True)


def _summary_line(result) -> str:
    def error(role: str) -> str:
        fitted, nothing = result.mean_error(role), result.mean_error(role, fitted=False)
        return "-" if fitted is None else f"{fitted:.2f} (nothing done {nothing:.2f})"

    counts = {role: sum(e.role == role for e in result.errors) for role in ("train", "held-out")}
    return (
        f"fitted {counts['train']} pairs, {counts['held-out']} held out; {result.complexity}; "
        f"mean CIEDE2000 train {error('train')}, held-out {error('held-out')}"
    )


class _ProgressBar:
    """``on_pair`` callback drawing a tqdm bar on stderr (on a terminal, or when forced)."""

    def __init__(self, progress: bool | None):
        self.bar = None
        if sys.stderr.isatty() if progress is None else progress:
            from tqdm import tqdm

            self.bar = tqdm(unit="pair", desc="imgenh fit: loading", file=sys.stderr)

    def __call__(self, pair, reason) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
