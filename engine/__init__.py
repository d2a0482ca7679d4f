"""writ pipeline: tasks, simulation, verification, export, backends and the CLI."""
