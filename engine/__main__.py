"""``python -m engine`` runs the ``writ`` command line."""

from engine.cli import main

if __name__ == "__main__":  # vLLM's CPU build spawns worker processes that re-import __main__
    main()
