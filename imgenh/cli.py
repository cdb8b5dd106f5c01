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

from imgenh import __version__
from imgenh.config import ConfigError, Pipeline, load_pipeline, pipeline_schema
from imgenh.errors import UsageError
from imgenh.io import DEFAULT_MAX_PIXELS, FAIL_ON, OutputError, atomic_write
from imgenh.manifest import LockedError
from imgenh.ops import REGISTRY, get_op
from imgenh.plan import Plan, PlanError
from imgenh.report import Result, Summary, write_report
from imgenh.runner import RunOptions, make_plan, run_batch

EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: try again later
log = logging.getLogger("imgenh")


class _TqdmAwareHandler(logging.Handler):
    """Log lines to stderr without breaking a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


class _Formatter(logging.Formatter):
    """``imgenh: warning: ...``: lower-case levels, like the ``imgenh: error:`` usage lines."""

    def format(self, record: logging.LogRecord) -> str:
        record = logging.makeLogRecord(record.__dict__)
        record.levelname = record.levelname.lower()
        return super().format(record)


def _setup_logging(level: str) -> None:
    handler = _TqdmAwareHandler()
    handler.setFormatter(_Formatter("imgenh: %(levelname)s: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def _fail(lines: list[str] | str | UsageError, code: int = 2) -> None:
    if isinstance(lines, UsageError):
        for warning in lines.warnings:  # they often say why, e.g. a pattern that matched nothing
            click.echo(f"imgenh: warning: {warning}", err=True)
        lines = lines.errors
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(f"imgenh: error: {line}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="imgenh")
def main() -> None:
    """Batch image enhancement from versioned YAML pipelines.

    \b
    Example:
      imgenh run configs/default.yaml photos/ -o enhanced/ --recursive
      imgenh validate configs/*.yaml
      imgenh ops gamma
    """


def _read_list(source: str) -> list[str]:
    """Paths from a file or stdin, one per line; blank lines and # comments are skipped.

    Bytes that are not UTF-8 are kept as they are (surrogateescape), the way Python names
    such files, so any name the file system holds can be listed.
    """
    if source == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    lines = [line.strip() for line in data.decode("utf-8", "surrogateescape").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def _check_report_target(report: str | None, out: Path | None) -> None:
    """Refuse, before any work, a report path that cannot be written (a folder, or in a missing folder)."""
    if not report or report == "-":
        return
    target = Path(report)
    if target.is_dir():
        _fail(f"--report {report} is a folder; give a file name such as {target / 'report.json'}")
    folder = target.parent
    will_exist = out is not None and (
        folder.resolve() == out.resolve() or out.resolve() in folder.resolve().parents
    )
    if not folder.is_dir() and not will_exist:
        _fail(f"--report {report}: folder {folder} does not exist")


@main.command()
@click.argument("pipeline_file", metavar="PIPELINE", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT...", nargs=-1)
@click.option(
    "-o", "--output", "out", type=click.Path(file_okay=False), help="Output folder (mirrors the inputs)."
)
@click.option("-r", "--recursive", is_flag=True, help="Walk folders recursively.")
@click.option(
    "--include",
    multiple=True,
    metavar="GLOB",
    help="Only inputs whose relative path or name matches (case-insensitive).",
)
@click.option(
    "--exclude", multiple=True, metavar="GLOB", help="Leave out inputs whose relative path or name matches."
)
@click.option(
    "--files-from", metavar="FILE", help="Read more inputs, one per line, from FILE ('-' for stdin)."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Worker processes [default: all cores; small batches run in-process].",
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
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse images whose header claims more pixels (checked before decoding).",
)
@click.option(
    "--fail-on",
    type=click.Choice(FAIL_ON),
    default="truncated",
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
    recursive,
    include,
    exclude,
    files_from,
    jobs,
    fmt,
    quality,
    suffix,
    metadata,
    overwrite,
    in_place,
    dry_run,
    report,
    max_pixels,
    fail_on,
    max_failures,
    progress,
    quiet,
    verbose,
    log_level,
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
    _setup_logging(log_level or ("error" if quiet else "info" if verbose else "warning"))
    pipeline = _load_or_exit(pipeline_file)
    try:
        pipeline = pipeline.with_output(format=fmt, quality=quality, suffix=suffix, metadata=metadata)
    except ConfigError as exc:
        _fail(exc)
    inputs = list(inputs)
    listed: list[str] = []
    if files_from:
        try:
            listed = _read_list(files_from)
        except OSError as exc:
            _fail(f"--files-from {files_from}: {exc.strerror or exc}")
    if not inputs and not listed:
        _fail("no INPUT given (files, folders or glob patterns; or --files-from)")
    if in_place and out:
        _fail("--in-place writes over the inputs; leave out -o/--output")
    if not in_place and not out:
        _fail("missing -o/--output folder (or --in-place to replace the inputs)")
    options = RunOptions(
        recursive=recursive,
        include=include,
        exclude=exclude,
        jobs=jobs,
        overwrite=overwrite,
        in_place=in_place,
        max_pixels=max_pixels,
        fail_on=fail_on,
        max_failures=max_failures,
        listed=tuple(listed),
    )
    out_path = Path(out) if out else None
    _check_report_target(report, out_path)
    if not pipeline.steps:
        log.warning("%s has no steps: images are only re-encoded", pipeline_file)

    if dry_run:
        try:
            plan = make_plan(pipeline, inputs, out_path, options)
        except PlanError as exc:
            _fail(exc)
        _print_plan(plan, to_stdout=report != "-")
        if report:
            _write_report_or_log(report, plan_summary(pipeline, plan))
        # As the real run would: 1 when some images are already known to fail.
        sys.exit(1 if any(job.error for job in plan.jobs) else 0)

    show_bar = (sys.stderr.isatty() if progress is None else progress) and not quiet
    bar = None
    seen_notes: set[str] = set()

    def on_plan(plan: Plan, n_workers: int) -> None:
        nonlocal bar
        for warning in plan.warnings:
            log.warning(warning)
        todo = len(plan.to_process)
        log.info(
            "%d images: %d to process with %d worker%s, %d to skip",
            len(plan.jobs),
            todo,
            n_workers,
            "s" * (n_workers != 1),
            len(plan.jobs) - todo,
        )
        if in_place:
            log.warning("--in-place: the inputs themselves are being replaced")
        if show_bar:
            from tqdm import tqdm

            # No monitor thread: its writes to stderr could land in a decode's captured output.
            tqdm.monitor_interval = 0
            bar = tqdm(total=todo, unit="img", file=sys.stderr, dynamic_ncols=True, desc="imgenh")

    def on_result(result: Result) -> None:
        if result.status == "failed":
            log.error("%s: %s", result.source, result.reason)
        elif result.status == "ok":
            log.info("%s -> %s (%.2f s)", result.source, result.output, result.seconds)
        else:
            log.debug("%s: skipped: %s", result.source, result.reason)
        for note in result.notes:
            if note.startswith("EXIF orientation"):
                log.debug("%s: %s", result.source, note)
            elif note.startswith(("truncated", "decoder warning")):  # about this file: say which
                log.warning("%s: %s", result.source, note)
            elif note not in seen_notes:
                seen_notes.add(note)
                log.warning("%s (first: %s)", note, result.source)
        if bar is not None and result.status != "skipped":
            bar.update(1)

    try:
        summary = run_batch(pipeline, inputs, out_path, options, on_plan=on_plan, on_result=on_result)
    except PlanError as exc:
        _fail(exc)
    except LockedError as exc:
        _fail(str(exc), EXIT_LOCKED)
    finally:
        if bar is not None:
            bar.close()
    code = summary.exit_code
    if report and not _write_report_or_log(report, summary):
        code = max(code, 1)  # a report was asked for and is missing: not a clean run
    if not quiet:
        click.echo(f"imgenh: {summary.line()}", err=True)
    sys.exit(code)


def _write_report_or_log(report: str, summary: Summary) -> bool:
    try:
        write_report(report, summary)
    except (OSError, OutputError) as exc:
        log.error("cannot write report %s: %s", report, exc)
        return False
    return True


def plan_summary(pipeline: Pipeline, plan: Plan) -> Summary:
    """A dry run's plan in report form: status ``planned``, ``skipped`` or ``failed`` per image."""
    results = []
    for job in plan.jobs:
        status, reason = (
            ("failed", job.error)
            if job.error
            else ("skipped", job.skip)
            if job.skip
            else ("planned", job.why)
        )
        results.append(Result(str(job.source), str(job.output), job.key, status, reason=reason))
    return Summary(pipeline.hash(), pipeline.name, results, warnings=plan.warnings)


def _load_or_exit(path: str) -> Pipeline:
    try:
        return load_pipeline(path)
    except ConfigError as exc:
        _fail(exc)


def _print_plan(plan: Plan, to_stdout: bool = True) -> None:
    """The plan, one line per image (on stderr when stdout carries the JSON report)."""
    for warning in plan.warnings:
        log.warning(warning)
    for job in plan.jobs:
        if job.error:
            line = f"fail     {job.source}  ({job.error})"
        elif job.skip:
            line = f"skip     {job.source}  ({job.skip})"
        else:
            line = f"process  {job.source} -> {job.output}  ({job.why})"
        click.echo(line, err=not to_stdout)
    failing = sum(1 for job in plan.jobs if job.error)
    todo = len(plan.to_process) - failing
    skip = len(plan.jobs) - todo - failing
    click.echo(f"dry run: {todo} to process, {skip} to skip, {failing} failing; nothing written", err=True)


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
        names = ", ".join(s.op.name for s in pipeline.steps) or "no steps"
        count = len(pipeline.steps)
        click.echo(f"ok: {path} ({count} step{'s' * (count != 1)}: {names})")
        if not count:
            click.echo(f"imgenh: warning: {path} has no steps: images would only be re-encoded", err=True)
    sys.exit(2 if bad else 0)


def _format_param_line(name, param) -> str:
    default = "required" if param.required else f"default {param.default!r}"
    allowed = param.range_text()
    allowed = f"; {allowed}" if allowed else ""
    return f"  {name:<14} {param.type_name():<18} {default}{allowed}\n      {param.help}"


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
        click.echo(operator_table())
        return
    if name is None:
        width = max(len(n) for n in REGISTRY)
        for op_name, spec in sorted(REGISTRY.items()):
            click.echo(f"{op_name:<{width}}  {spec.kind:<9}  {spec.summary}")
        return
    try:
        spec = get_op(name)
    except KeyError as exc:
        _fail(exc.args[0])
    click.echo(f"{spec.name} ({spec.kind}): {spec.summary}")
    if spec.formula:
        click.echo(f"formula:   {spec.formula}")
    if spec.reference:
        click.echo(f"reference: {spec.reference}")
    click.echo("parameters:" if spec.params else "parameters: none")
    for pname, param in spec.params.items():
        click.echo(_format_param_line(pname, param))
    click.echo("example step:")
    step = spec.example_step()
    click.echo(f"  - op: {step.pop('op')}")
    for key, value in step.items():  # JSON is valid YAML and keeps lists on one line
        click.echo(f"    {key}: {json.dumps(value)}")


def operator_table() -> str:
    """The Markdown operator table for README.md, generated from the registry."""
    rows = ["| operator | kind | what it does | reference |", "|---|---|---|---|"]
    for name, spec in sorted(REGISTRY.items()):
        rows.append(f"| `{name}` | {spec.kind} | {spec.summary} | {spec.reference or '-'} |")
    return "\n".join(rows)


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
def preview(pipeline_file, image_path, out, width, split):
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


if __name__ == "__main__":  # pragma: no cover
    main()
