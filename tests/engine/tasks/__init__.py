"""Tests of ``engine.tasks``."""
