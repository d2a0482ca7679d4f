"""Tests of ``engine.tasks.domains``."""
