"""``python -m imgenh`` runs the command line."""

from imgenh.cli import main

main(prog_name="imgenh")
