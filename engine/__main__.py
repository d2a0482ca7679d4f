"""``python -m engine`` runs the ``writ`` command line."""

from engine.cli import main

main()
