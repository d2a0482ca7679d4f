"""A run: configuration, orchestration of conversations, verification and the run directory."""
