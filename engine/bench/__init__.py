"""``writ bench``: the real run pipeline on N tasks, timed, each config in its own process."""

from engine.bench.cli import BenchError, bench
from engine.bench.report import BenchReport, Projection, RoleFigures, RunFigures, format_report

__all__ = ["BenchError", "BenchReport", "Projection", "RoleFigures", "RunFigures", "bench", "format_report"]
