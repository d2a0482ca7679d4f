"""Tests of ``engine.bench``."""
