"""``python -m engine`` runs the ``writ`` command line."""

from engine import interrupt

if __name__ == "__main__":  # a signal while the modules below load ends the program with one line
    interrupt.install(early=True)

from engine.cli import main

if __name__ == "__main__":  # vLLM's CPU build spawns worker processes that re-import __main__
    main()
