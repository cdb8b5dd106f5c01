"""Pipelines and operators: ``validate``, ``ops``, ``schema``, ``configs``."""

from __future__ import annotations

import json
import sys

import click

from imgenh.cli import fail, main
from imgenh.errors import ConfigError
from imgenh.ops import describe, get_op
from imgenh.pipeline_file import builtin_pipelines, builtin_text, load_pipeline, pipeline_schema


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
            fail(exc.args[0])
        click.echo(describe.operator_text(spec))


@main.command()
def schema():
    """Print the JSON Schema of pipeline files (for editor completion and CI checks).

    \b
    Example:
      imgenh schema > pipeline.schema.json   # then point your editor's YAML plugin at it
    """
    click.echo(json.dumps(pipeline_schema(), indent=2))


@main.group(invoke_without_command=True)
@click.option("--markdown", is_flag=True, help="Print the list as Markdown (as in README.md).")
@click.pass_context
def configs(ctx, markdown):
    """List the built-in pipelines, or print one (`configs show NAME`) to start your own.

    \b
    Examples:
      imgenh run default photos -o out
      imgenh configs show default > my.yaml
    """
    if ctx.invoked_subcommand is None:
        click.echo(describe.pipelines_table(builtin_pipelines(), markdown))


@configs.command()
@click.argument("name")
def show(name):
    """Print the YAML of built-in pipeline NAME."""
    try:
        click.echo(builtin_text(name), nl=False)
    except ConfigError as exc:
        fail(exc)
