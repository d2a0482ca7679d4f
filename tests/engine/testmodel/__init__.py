"""Tests of ``engine.testmodel``."""
