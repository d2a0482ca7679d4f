"""Tests of ``envs.kernel``."""
