"""A run directory: resolved config, tasks, DB, append-only results, trajectories and a manifest.

``run.log`` records the decisions made on the user's behalf (threads, prompt format, retries).
``results.jsonl`` is the source of truth: one fsynced line per finished conversation, appended
and never rewritten except to drop a line cut short by a crash. ``trajectories.jsonl`` holds the
passing conversations as SFT records; each session starts by rebuilding it from the results
(sorted by task and attempt), so the two always agree after a crash. Re-opening a directory
resumes it: finished conversations are not run again.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from engine.export import encode_trajectory, read_results, write_trajectory_records
from engine.run.records import ConversationResult, encode_result

__all__ = ["RunDir", "RunDirError"]

MANIFEST_VERSION = 1


class RunDirError(ValueError):
    """The run directory cannot be used (e.g. it belongs to a different config)."""


def _fsync_append(handle: BinaryIO, data: bytes) -> None:
    handle.write(data)
    handle.flush()
    os.fsync(handle.fileno())


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


class RunDir:
    """Files of one run, and the append-only writer of its results."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.json"
        self.tasks = self.path / "tasks.jsonl"
        self.db = self.path / "db.json"
        self.results = self.path / "results.jsonl"
        self.trajectories = self.path / "trajectories.jsonl"
        self.manifest = self.path / "manifest.json"
        self.log_file = self.path / "run.log"
        self._results_handle: BinaryIO | None = None
        self._traj_handle: BinaryIO | None = None

    # -- setup ---------------------------------------------------------------------------------
    def claim(self, resolved_config: dict[str, Any]) -> bool:
        """Create the directory for this config, or check an existing one matches; True if resuming."""
        text = json.dumps(resolved_config, sort_keys=True, indent=2) + "\n"
        if self.config.exists():
            if self.config.read_text(encoding="utf-8") != text:
                raise RunDirError(
                    f"{self.path} holds a run with a different config; use a new --out directory"
                )
            return True
        if self.path.exists() and any(self.path.iterdir()):
            raise RunDirError(f"{self.path} exists and is not a writ run directory")
        self.path.mkdir(parents=True, exist_ok=True)
        _write_atomic(self.config, text.encode())
        return False

    def write_manifest(self, **fields: Any) -> None:
        """Write manifest.json (atomically), merging ``fields`` into what is there."""
        data: dict[str, Any] = {"version": MANIFEST_VERSION}
        if self.manifest.exists():
            data.update(json.loads(self.manifest.read_text(encoding="utf-8")))
        data.update(fields)
        _write_atomic(self.manifest, (json.dumps(data, sort_keys=True, indent=2) + "\n").encode())

    def log(self, message: str) -> None:
        """Append one timestamped line to run.log (decisions a user should be able to look up)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with self.log_file.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {' '.join(message.split())}\n")

    # -- results ---------------------------------------------------------------------------------
    def _repair_tail(self, path: Path) -> None:
        """Drop a last line left unterminated by a crash (it was never acknowledged)."""
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with path.open("r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())

    def read_results(self) -> list[ConversationResult]:
        """Every finished conversation recorded so far (a crash-cut last line is skipped)."""
        return read_results(self.results) if self.results.exists() else []

    def open_for_append(self) -> set[str]:
        """Prepare to append: repair a cut line, rebuild trajectories; return finished ids."""
        self._repair_tail(self.results)
        results = self.read_results()
        done: set[str] = set()
        for result in results:
            if result.conversation_id in done:
                raise RunDirError(f"{self.results}: {result.conversation_id} recorded twice")
            done.add(result.conversation_id)
        write_trajectory_records(results, self.trajectories)
        self._results_handle = self.results.open("ab")
        self._traj_handle = self.trajectories.open("ab")
        return done

    def append(self, result: ConversationResult) -> None:
        """Record a finished conversation: its result line first, then its trajectory if kept."""
        if self._results_handle is None or self._traj_handle is None:
            raise RuntimeError("RunDir.append before open_for_append")
        _fsync_append(self._results_handle, encode_result(result) + b"\n")
        if result.passed:
            _fsync_append(self._traj_handle, encode_trajectory(result) + b"\n")

    def close(self) -> None:
        """Close the append handles."""
        for handle in (self._results_handle, self._traj_handle):
            if handle is not None:
                handle.close()
        self._results_handle = self._traj_handle = None
