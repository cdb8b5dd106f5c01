"""Looking at images: ``stats`` (quality figures) and ``preview`` (a before/after sheet)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from imgenh import augment
from imgenh.cli import fail, load_or_exit, main
from imgenh.io import OutputError, atomic_write


def _stats_help() -> str:
    from imgenh.quality import FIGURES

    lines = "\n".join(f"  {name:<19} {text}" for name, text in FIGURES)
    return (
        "Quality figures of images: files, folders and quoted glob patterns.\n\n"
        "With --compare OUT, each image is measured beside its output of an earlier run into\n"
        "OUT (found through OUT's manifest, or by its relative path and stem), with the change.\n"
        "An unreadable image is an error line; the others are still listed (exit 1).\n\n"
        f"\b\nFigures:\n{lines}\n\n"
        "\b\nExamples:\n"
        "  imgenh stats sample_images\n"
        "  imgenh stats photos -r --format csv > figures.csv\n"
        "  imgenh stats photos -r --compare enhanced --format json | jq '.[].delta.brightness'"
    )


@main.command(help=_stats_help())
@click.argument("paths", metavar="PATH...", nargs=-1, required=True)
@click.option("-r", "--recursive", is_flag=True, help="Walk folders recursively.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--compare",
    metavar="OUT",
    type=click.Path(file_okay=False, exists=True),
    help="Output folder of an earlier run: show each image's output and the change.",
)
def stats(paths, recursive, fmt, compare):
    from imgenh.stats import collect, render

    rows, failed = [], 0
    for row, message in collect(list(paths), recursive=recursive, compare=compare):
        if row is not None:
            rows.append(row)
        elif message.startswith("warning: "):
            click.echo(f"imgenh: {message}", err=True)
        else:
            failed += 1
            click.echo(f"imgenh: error: {message}", err=True)
    if not rows and not failed:
        fail("no images found (files, folders or glob patterns; -r to walk subfolders)")
    if rows or fmt == "json":
        click.echo(render(rows, fmt))
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("pipeline_file", metavar="PIPELINE", type=click.Path(dir_okay=False))
@click.argument("image_path", metavar="IMAGE")
@click.option(
    "-o",
    "--output",
    "out",
    metavar="FILE",
    help="Sheet to write: .png, .jpg or .webp ('-': PNG on stdout) [default: IMAGE-stem.preview.png here].",
)
@click.option("--width", type=click.IntRange(min=200, max=16000), default=1600, show_default=True)
@click.option("--split", is_flag=True, help="One half-and-half wipe (input left, output right) instead.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random parameters: the seed to draw with."
)
@click.option(
    "--variant",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Random parameters: which variant.",
)
def preview(pipeline_file, image_path, out, width, split, seed, variant):
    """Show what PIPELINE does to IMAGE: input, each step and the output on one sheet.

    Each panel is labelled with its step, key parameters and the values the step reported
    (e.g. the white-balance illuminant), with a luma/RGB histogram below. Intermediate
    panels are computed on a downscaled copy; the last panel is the real output.

    \b
    Examples:
      imgenh preview configs/default.yaml sample_images/astronaut.jpg
      imgenh preview configs/low_light.yaml dim.jpg -o sheet.png --width 2400
      imgenh preview configs/default.yaml photo.jpg --split -o wipe.jpg
    """
    from imgenh.io import ImageError, read_image
    from imgenh.pipeline import StepError
    from imgenh.preview import SHEET_FORMATS, default_sheet_path, encode_sheet, render_sheet

    if out and out != "-" and Path(out).suffix.lower() not in SHEET_FORMATS:
        fail(f"-o {out}: the sheet is written as {', '.join(SHEET_FORMATS)}; give one of those extensions")
    pipeline, _ = load_or_exit([pipeline_file], ())
    if pipeline.is_random:  # augmentation: the variant `run --seed/--variants` writes for IMAGE named alone
        seeded, _ = augment.for_run(pipeline, None, seed)
        try:
            pipeline, _ = augment.draw(seeded, Path(image_path).name, variant)
        except StepError as exc:
            fail(str(exc), code=1)
    try:
        sheet = render_sheet(pipeline, read_image(image_path), width=width, split=split)
    except (ImageError, StepError, OSError) as exc:
        fail(f"{image_path}: {exc}", code=1)
    target = Path(out) if out and out != "-" else default_sheet_path(image_path)
    data = encode_sheet(sheet, ".png" if out == "-" else target.suffix)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        atomic_write(target, data)
    except OutputError as exc:
        fail(str(exc), code=1)
    h, w = sheet.pixels.shape[:2]
    click.echo(f"imgenh: preview ({len(sheet.panels)} panels, {w}x{h}) written to {target}", err=True)
