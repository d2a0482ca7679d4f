"""Tests of ``grammars``."""
