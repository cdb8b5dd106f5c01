"""The ``imgenh`` command: ``python -m imgenh`` and the installed script both start here.

Nothing but the standard library is imported before the Ctrl-C guard is in place, so an
interrupt at any moment, even while the modules load, ends with exit code 130 and no traceback.
"""

import sys


def main() -> None:
    """Run the command line; exit 130 on Ctrl-C at any point."""
    try:
        from imgenh.cli import run_cli

        run_cli()
    except KeyboardInterrupt:
        sys.stderr.write("imgenh: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
