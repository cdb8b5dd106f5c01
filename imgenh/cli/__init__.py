"""The ``imgenh`` command line: Click wiring only, one module per family of commands.

- :mod:`imgenh.cli.run`: ``run``;
- :mod:`imgenh.cli.pipelines`: ``validate``, ``ops``, ``schema``, ``configs``;
- :mod:`imgenh.cli.looks`: ``stats``, ``preview``;
- :mod:`imgenh.cli.fit`: ``fit``.

Exit codes: 0 all images processed or skipped; 1 some images failed; 2 bad usage or
pipeline; 75 the output folder is locked by another run; 130/143 interrupted by
SIGINT/SIGTERM.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING

import click

from imgenh import __version__
from imgenh.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from imgenh.pipeline import Pipeline

EXIT_LOCKED = 75  # sysexits EX_TEMPFAIL: try again later
log = logging.getLogger("imgenh")


def fail(lines: list[str] | str | UsageError, code: int = 2) -> None:
    if isinstance(lines, UsageError):
        for warning in lines.warnings:  # they often say why, e.g. a pattern that matched nothing
            click.echo(f"imgenh: warning: {warning}", err=True)
        lines = lines.errors
    for line in [lines] if isinstance(lines, str) else lines:
        click.echo(f"imgenh: error: {line}", err=True)
    sys.exit(code)


def load_or_exit(words: tuple[str, ...] | list[str], steps: tuple[str, ...]) -> tuple[Pipeline, list[str]]:
    """The pipeline named by the first of ``words`` plus ``--step`` steps, and the remaining words; exit 2 on errors."""
    from imgenh.pipeline_file import load_for_run

    try:
        return load_for_run(words, steps)
    except ConfigError as exc:
        fail(exc)


class _Group(click.Group):
    """Commands loaded on first use; ``--help`` lists each one's whole first sentence (wrapped, not cut).

    Loading a command's module only when it runs keeps ``imgenh --version`` and a Ctrl-C at
    start-up free of numpy and OpenCV.
    """

    # command -> module that registers it on `main`
    MODULES = {
        "run": "imgenh.cli.run",
        "validate": "imgenh.cli.pipelines",
        "ops": "imgenh.cli.pipelines",
        "schema": "imgenh.cli.pipelines",
        "configs": "imgenh.cli.pipelines",
        "stats": "imgenh.cli.looks",
        "preview": "imgenh.cli.looks",
        "fit": "imgenh.cli.fit",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.MODULES and name not in self.commands:
            importlib.import_module(self.MODULES[name])
        return super().get_command(ctx, name)

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
      imgenh run default photos/ -o enhanced/ --recursive
      imgenh validate configs/*.yaml
      imgenh ops gamma
    """


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
