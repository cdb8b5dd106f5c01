"""``imgenh run``: flags -> RunOptions -> run_batch; the summary, the reports, the exit code."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from imgenh.cli import EXIT_LOCKED, fail, load_or_exit, log, main
from imgenh.console import ConsoleReporter, print_plan, setup_logging
from imgenh.discover import EXCLUDE_HELP, INCLUDE_HELP, read_path_list
from imgenh.errors import ConfigError, UsageError
from imgenh.executors import BACKENDS
from imgenh.io import DEFAULT_FAIL_ON, DEFAULT_MAX_PIXELS, FAIL_ON, OutputError
from imgenh.pipeline import Pipeline
from imgenh.plan import Status
from imgenh.report import Summary, html_target_problem, report_document, report_target_problem, write_report
from imgenh.runner import RunOptions, make_plan, run_batch
from imgenh.shard import parse_shard
from imgenh.state import LockedError


@main.command()
@click.argument("inputs", metavar="[PIPELINE] INPUT...", nargs=-1)
@click.option(
    "-s",
    "--step",
    "steps",
    multiple=True,
    metavar="'OP K=V...'",
    help="Add a step after PIPELINE's, e.g. 'gamma value=1.2' (repeatable; PIPELINE is then optional).",
)
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
@click.option("--backend", type=click.Choice(BACKENDS), default="loky", help="Where images run [loky].")
@click.option("--scheduler", envvar="IMGENH_SCHEDULER", help="Dask scheduler address [$IMGENH_SCHEDULER].")
@click.option("--batch-size", type=click.IntRange(min=1), help="Images per Dask task [auto: ~1 s].")
@click.option("--shard", type=parse_shard, metavar="K/N", help="Only shard K of N (by output name).")
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
@click.option(
    "--overwrite",
    is_flag=True,
    help="Process every image again and replace its output: up to date, changed by hand or not imgenh's.",
)
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
    inputs,
    steps,
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

    PIPELINE is a YAML file or a built-in name (see `imgenh configs`); -s adds steps after its
    own. With -s, PIPELINE is optional: the first word is the pipeline only if it ends in
    .yaml/.yml or is a built-in name (and no file or folder has that name).

    Outputs mirror each input's path relative to the folder it was found in. A re-run skips
    an output whose input and pipeline are unchanged since imgenh wrote it (a manifest in
    OUT/.imgenh records that) and processes the others again, except that an output imgenh
    did not write, or one changed since it wrote it, is left alone (a warning names them).
    --overwrite processes every image again and replaces whatever output is there.

    \b
    Examples:
      imgenh run default sample_images -o out
      imgenh run -s 'gamma value=1.2' -s 'resize long_side=1600 upscale=false' photos -o out
      imgenh run low.yaml 'shots/**/*.JPG' -o out -j 4 --format jpg --quality 90
      find shots -name '*.png' | imgenh run p.yaml --files-from - -o out --report -
    """
    setup_logging(log_level or ("error" if quiet else "info" if verbose else "warning"))
    pipeline, inputs = load_or_exit(inputs, steps)
    try:
        pipeline = pipeline.with_output(format=fmt, quality=quality, suffix=suffix, metadata=metadata)
    except ConfigError as exc:
        fail(exc)
    listed = _listed_inputs(files_from, null)
    if not inputs and not listed:
        fail("no INPUT given (files, folders or glob patterns; or --files-from)")
    in_place = run_flags["in_place"]
    if in_place and out:
        fail("--in-place writes over the inputs; leave out -o/--output")
    if not in_place and not out:
        fail("missing -o/--output folder (or --in-place to replace the inputs)")
    options = RunOptions(**run_flags, listed=tuple(listed), thumbnails=bool(html))
    out_path = Path(out) if out else None
    for problem in (report_target_problem(report, out_path), html_target_problem(html, out_path)):
        if problem:
            fail(problem)
    if dry_run:
        _dry_run(pipeline, inputs, out_path, options, report)
    console = ConsoleReporter((sys.stderr.isatty() if progress is None else progress) and not quiet)
    try:
        summary = run_batch(
            pipeline, inputs, out_path, options, on_plan=console.on_plan, on_result=console.on_result
        )
    except UsageError as exc:
        fail(exc)
    except LockedError as exc:
        fail(str(exc), EXIT_LOCKED)
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
        fail(f"--files-from {files_from}: {exc.strerror or exc}")
    except ValueError as exc:
        fail(f"--files-from {files_from}: {exc}")


def _dry_run(pipeline: Pipeline, inputs: list[str], out: Path | None, options: RunOptions, report) -> None:
    """Print the plan (and write its report); exit 1 when images are already known to fail, as a run would."""
    try:
        plan = make_plan(pipeline, inputs, out, options)
    except UsageError as exc:
        fail(exc)
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
