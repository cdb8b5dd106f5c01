"""The ``imgenh`` command line: run, validate, ops, schema.

Exit codes: 0 all images processed or skipped; 1 some images failed; 2 bad usage or
pipeline; 75 the output folder is locked by another run; 130/143 interrupted by
SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from imgenh import __version__, augment
from imgenh.console import ConsoleReporter, print_plan, setup_logging
from imgenh.discover import EXCLUDE_HELP, INCLUDE_HELP, read_path_list
from imgenh.errors import UsageError
from imgenh.io import DEFAULT_FAIL_ON, DEFAULT_MAX_PIXELS, FAIL_ON, OutputError, atomic_write
from imgenh.ops import describe, get_op
from imgenh.pipeline import Pipeline
from imgenh.pipeline_file import ConfigError, load_pipeline, pipeline_schema
from imgenh.plan import Status
from imgenh.report import Summary, html_target_problem, report_document, report_target_problem, write_report
from imgenh.runner import RunOptions, make_plan, run_batch
from imgenh.state import LockedError

EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: try again later
log = logging.getLogger("imgenh")


def _fail(lines: list[str] | str | UsageError, code: int = 2) -> None:
    if isinstance(lines, UsageError):
        for warning in lines.warnings:  # they often say why, e.g. a pattern that matched nothing
            click.echo(f"imgenh: warning: {warning}", err=True)
        lines = lines.errors
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(f"imgenh: error: {line}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """A command group whose ``--help`` lists each command's whole first sentence (wrapped, not cut)."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [
            (name, self.get_command(ctx, name).get_short_help_str(limit=1000))
            for name in self.list_commands(ctx)
            if not self.get_command(ctx, name).hidden
        ]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="imgenh")
def main() -> None:
    """Batch image enhancement from versioned YAML pipelines.

    \b
    Example:
      imgenh run configs/default.yaml photos/ -o enhanced/ --recursive
      imgenh validate configs/*.yaml
      imgenh ops gamma
    """


@main.command()
@click.argument("pipeline_file", metavar="PIPELINE", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT...", nargs=-1)
@click.option(
    "-o", "--output", "out", type=click.Path(file_okay=False), help="Output folder (mirrors the inputs)."
)
@click.option("-r", "--recursive", is_flag=True, help="Walk folders recursively.")
@click.option("--include", multiple=True, metavar="GLOB", help=INCLUDE_HELP)
@click.option("--exclude", multiple=True, metavar="GLOB", help=EXCLUDE_HELP)
@click.option("--hidden", is_flag=True, help="Walk hidden files and folders too (names starting with '.').")
@click.option(
    "--files-from", metavar="FILE", help="Read more inputs, one per line, from FILE ('-' for stdin)."
)
@click.option("-0", "--null", is_flag=True, help="--files-from is NUL-separated (find -print0, xargs -0).")
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes [default: all cores; small batches run in-process].",
)
@click.option(
    "--variants",
    type=click.IntRange(min=1),
    help="Augment: write N variants of each image, drawn from the pipeline's random parameters.",
)
@click.option("--seed", type=int, help="Augment: seed of the random draws [0]; alone: one variant per image.")
@click.option(
    "--variant-name",
    default="{stem}_v{i}{ext}",
    show_default=True,
    help="Augment: how variants are named ({stem}, {i}, {ext}).",
)
@click.option("--format", "fmt", help="Override output.format: keep, jpg, png, tiff, webp.")
@click.option("--quality", type=int, help="Override output.quality (1-100).")
@click.option("--suffix", help="Override output.suffix, e.g. _enh.")
@click.option("--metadata", help="Override output.metadata: keep or strip.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs, even up-to-date ones.")
@click.option("--in-place", is_flag=True, help="Replace the INPUT FILES THEMSELVES (atomically). No undo.")
@click.option(
    "-n", "--dry-run", is_flag=True, help="Print the plan (input -> output, or why skipped); touch nothing."
)
@click.option(
    "--report", metavar="FILE", help="Write a JSON report (.jsonl: one line per image; '-': stdout)."
)
@click.option(
    "--html",
    metavar="FILE",
    help="Write a self-contained HTML report: before/after thumbnails and quality figures, sortable.",
)
@click.option(
    "--figures", is_flag=True, help="Measure quality figures before/after into --report (see `imgenh stats`)."
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse images whose header claims more pixels (checked before decoding).",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default=DEFAULT_FAIL_ON,
    show_default=True,
    help="Decoding strictness: none accepts truncated files; error also refuses trailing data and any decoder warning.",
)
@click.option(
    "--max-failures", type=click.IntRange(min=0), default=0, help="Stop after N failed images (0: never)."
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Force the progress bar on or off [default: on a terminal].",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors; no progress bar or summary.")
@click.option("-v", "--verbose", is_flag=True, help="Log every image.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log level [default: warning].",
)
def run(
    pipeline_file,
    inputs,
    out,
    files_from,
    null,
    fmt,
    quality,
    suffix,
    metadata,
    dry_run,
    report,
    html,
    progress,
    quiet,
    verbose,
    log_level,
    **run_flags,  # the RunOptions fields, by the same names
):
    """Run PIPELINE over images: files, folders and quoted glob patterns.

    Outputs mirror each input's path relative to the folder it was found in. An existing
    output is skipped when its input and the pipeline are unchanged since imgenh wrote it
    (a manifest in OUT/.imgenh records that), or when imgenh did not write it; --overwrite
    replaces it.

    \b
    Examples:
      imgenh run configs/default.yaml sample_images -o out
      imgenh run low.yaml 'shots/**/*.JPG' -o out -j 4 --format jpg --quality 90
      find shots -name '*.png' | imgenh run p.yaml --files-from - -o out --report -
    """
    setup_logging(log_level or ("error" if quiet else "info" if verbose else "warning"))
    pipeline = _load_or_exit(pipeline_file)
    try:
        pipeline = pipeline.with_output(format=fmt, quality=quality, suffix=suffix, metadata=metadata)
    except ConfigError as exc:
        _fail(exc)
    inputs = list(inputs)
    listed = _listed_inputs(files_from, null)
    if not inputs and not listed:
        _fail("no INPUT given (files, folders or glob patterns; or --files-from)")
    in_place = run_flags["in_place"]
    if in_place and out:
        _fail("--in-place writes over the inputs; leave out -o/--output")
    if not in_place and not out:
        _fail("missing -o/--output folder (or --in-place to replace the inputs)")
    options = RunOptions(**run_flags, listed=tuple(listed), thumbnails=bool(html))
    out_path = Path(out) if out else None
    for problem in (report_target_problem(report, out_path), html_target_problem(html, out_path)):
        if problem:
            _fail(problem)
    if dry_run:
        _dry_run(pipeline, inputs, out_path, options, report)
    console = ConsoleReporter((sys.stderr.isatty() if progress is None else progress) and not quiet)
    try:
        summary = run_batch(
            pipeline, inputs, out_path, options, on_plan=console.on_plan, on_result=console.on_result
        )
    except UsageError as exc:
        _fail(exc)
    except LockedError as exc:
        _fail(str(exc), EXIT_LOCKED)
    finally:
        console.close()
    code = summary.exit_code
    if report and not _write_report_or_log(report, summary):
        code = max(code, 1)  # a report was asked for and is missing: not a clean run
    if html and not _write_report_or_log(html, summary, html=True):
        code = max(code, 1)
    if not quiet:
        click.echo(f"imgenh: {summary.line()}", err=True)
    sys.exit(code)


def _listed_inputs(files_from: str | None, null: bool) -> list[str]:
    if not files_from:
        return []
    try:
        return read_path_list(files_from, null)
    except OSError as exc:
        _fail(f"--files-from {files_from}: {exc.strerror or exc}")
    except ValueError as exc:
        _fail(f"--files-from {files_from}: {exc}")


def _dry_run(pipeline: Pipeline, inputs: list[str], out: Path | None, options: RunOptions, report) -> None:
    """Print the plan (and write its report); exit 1 when images are already known to fail, as a run would."""
    try:
        plan = make_plan(pipeline, inputs, out, options)
    except UsageError as exc:
        _fail(exc)
    to_stdout = report != "-"  # stdout carries the JSON report otherwise
    print_plan(plan, lambda line, err=False: click.echo(line, err=err or not to_stdout))
    if report:
        _write_report_or_log(report, Summary.from_plan(plan, pipeline.hash(), pipeline.name))
    sys.exit(1 if plan.counts[Status.FAILED] else 0)


def _write_report_or_log(report: str, summary: Summary, html: bool = False) -> bool:
    try:
        if html:
            from imgenh.html_report import make_html_report

            make_html_report(report_document(summary, thumbs=True), report)
        else:
            write_report(report, summary)
    except (OSError, OutputError) as exc:
        log.error("cannot write report %s: %s", report, exc)
        return False
    return True


def _load_or_exit(path: str) -> Pipeline:
    try:
        return load_pipeline(path)
    except ConfigError as exc:
        _fail(exc)


@main.command()
@click.argument("files", metavar="PIPELINE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
def validate(files):
    """Check pipeline files without touching any image.

    Reports YAML syntax errors with line:column, unknown operators and parameters with
    suggestions, and out-of-range values with the allowed range. Exit 0 when all are valid, 2 otherwise.

    \b
    Example:
      imgenh validate configs/*.yaml
    """
    bad = 0
    for path in files:
        try:
            pipeline = load_pipeline(path)
        except ConfigError as exc:
            bad += 1
            for line in exc.errors:
                click.echo(f"imgenh: error: {line}", err=True)
            continue
        click.echo(f"ok: {path} ({describe.steps_text(pipeline)})")
        if not pipeline.steps:
            click.echo(f"imgenh: warning: {path} has no steps: images would only be re-encoded", err=True)
    sys.exit(2 if bad else 0)


@main.command()
@click.argument("name", required=False)
@click.option("--markdown", is_flag=True, help="Print the operator table as Markdown (as in README.md).")
def ops(name, markdown):
    """List operators, or show one operator's parameters and an example step.

    \b
    Examples:
      imgenh ops
      imgenh ops white_balance
    """
    if markdown:
        click.echo(describe.operator_table())
    elif name is None:
        click.echo(describe.operator_list())
    else:
        try:
            spec = get_op(name)
        except KeyError as exc:
            _fail(exc.args[0])
        click.echo(describe.operator_text(spec))


@main.command()
def schema():
    """Print the JSON Schema of pipeline files (for editor completion and CI checks).

    \b
    Example:
      imgenh schema > pipeline.schema.json   # then point your editor's YAML plugin at it
    """
    click.echo(json.dumps(pipeline_schema(), indent=2))


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
        _fail("no images found (files, folders or glob patterns; -r to walk subfolders)")
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
        _fail(f"-o {out}: the sheet is written as {', '.join(SHEET_FORMATS)}; give one of those extensions")
    pipeline = _load_or_exit(pipeline_file)
    if pipeline.is_random:  # augmentation: the variant `run --seed/--variants` writes for IMAGE named alone
        seeded, _ = augment.for_run(pipeline, None, seed)
        try:
            pipeline, _ = augment.draw(seeded, Path(image_path).name, variant)
        except StepError as exc:
            _fail(str(exc), code=1)
    try:
        sheet = render_sheet(pipeline, read_image(image_path), width=width, split=split)
    except (ImageError, StepError, OSError) as exc:
        _fail(f"{image_path}: {exc}", code=1)
    target = Path(out) if out and out != "-" else default_sheet_path(image_path)
    data = encode_sheet(sheet, ".png" if out == "-" else target.suffix)
    if out == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        atomic_write(target, data)
    except OutputError as exc:
        _fail(str(exc), code=1)
    h, w = sheet.pixels.shape[:2]
    click.echo(f"imgenh: preview ({len(sheet.panels)} panels, {w}x{h}) written to {target}", err=True)


def run_cli(args: list[str] | None = None) -> None:
    """Run the command line, with Click's own errors (bad flags, ``-j 0``) in imgenh's style.

    Exits with the command's code: 2 for usage errors, 130 for Ctrl-C outside a run.
    """
    try:
        main.main(args=args, prog_name="imgenh", standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.Abort:  # Ctrl-C (or end of input) outside a run
        click.echo("imgenh: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # plain `imgenh`: the help, as Click prints it
        click.echo(exc.format_message(), err=True)
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "imgenh"
        click.echo(f"imgenh: error: {exc.format_message()} (see '{command} --help')", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"imgenh: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    run_cli()
