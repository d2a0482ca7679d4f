"""Tests of ``engine.backends``."""
