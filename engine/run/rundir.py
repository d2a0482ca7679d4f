"""A run directory: resolved config, tasks, DB, append-only results, trajectories and a manifest.

``run.log`` records the decisions made on the user's behalf (threads, prompt format, retries).
``results.jsonl`` is the source of truth: one fsynced line per finished conversation, appended
and never rewritten except to drop a line cut short by a crash. ``trajectories.jsonl`` holds the
passing conversations as SFT records; each session starts by rebuilding it from the results
(sorted by task and attempt), so the two always agree after a crash. Re-opening a directory
resumes it: finished conversations are not run again.

``check`` only reads: it refuses a directory of another config (naming both DB digests when only the
DB file changed), a non-run directory and a corrupt manifest, so a start that fails leaves nothing
behind. ``claim`` then creates the directory, takes its lock (``run.lock``, ``fcntl.flock``: a second
``writ run`` on the same directory stops with one line) and writes the config. Every whole file is
replaced atomically and every append fsynced (``engine.files``). ``manifest.json`` only summarizes:
deleted, the next run rebuilds it from the other files.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any, BinaryIO

from engine.export import encode_trajectory, read_results, write_trajectory_records
from engine.files import append_file, append_synced, write_atomic
from engine.records import ConversationResult, encode_result

__all__ = ["RunDir", "RunDirError"]

MANIFEST_VERSION = 1
LOCK_NAME = "run.lock"


class RunDirError(ValueError):
    """The run directory cannot be used (e.g. it belongs to a different config)."""


def _config_text(resolved_config: dict[str, Any]) -> str:
    return json.dumps(resolved_config, sort_keys=True, indent=2) + "\n"


def _db_digest(config: Any) -> str | None:
    db = config.get("db") if isinstance(config, dict) else None
    digest = db.get("sha256") if isinstance(db, dict) else None
    return digest if isinstance(digest, str) else None


def _without_digest(config: dict[str, Any]) -> dict[str, Any]:
    plain = json.loads(json.dumps(config))
    if isinstance(plain.get("db"), dict):
        plain["db"].pop("sha256", None)
    return plain  # type: ignore[no-any-return]


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
        self._lock_fd: int | None = None

    # -- setup ---------------------------------------------------------------------------------
    def check(self, resolved_config: dict[str, Any]) -> bool:
        """Whether this config may use the directory, without writing anything; True if it resumes."""
        text = _config_text(resolved_config)
        if not self.config.exists():
            if self.path.exists() and not self.path.is_dir():
                raise RunDirError(f"{self.path} exists and is not a directory")
            if self.path.exists() and any(p.name != LOCK_NAME for p in self.path.iterdir()):
                raise RunDirError(f"{self.path} exists and is not a writ run directory")
            return False
        stored_text = self.config.read_text(encoding="utf-8")
        if stored_text != text:
            try:
                stored = json.loads(stored_text)
            except ValueError:
                stored = None
            old, new = _db_digest(stored), _db_digest(resolved_config)
            if old and new and old != new and _without_digest(stored) == _without_digest(resolved_config):
                raise RunDirError(
                    f"{self.path} was run on a DB with sha256 {old}, but {resolved_config['db']['path']} now has "
                    f"sha256 {new}; put the original DB back or use a new --out directory"
                )
            raise RunDirError(f"{self.path} holds a run with a different config; use a new --out directory")
        self.read_manifest()
        return True

    def claim(self, resolved_config: dict[str, Any]) -> bool:
        """Create the directory for this config (or check an existing one matches), lock it and write
        the config; True if resuming. A second claim of a locked directory raises ``RunDirError``."""
        self.check(resolved_config)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            resumed = self.check(resolved_config)  # again, under the lock
            if not resumed:
                write_atomic(self.config, _config_text(resolved_config).encode())
        except BaseException:
            self.close()
            raise
        return resumed

    def _lock(self) -> None:
        lock = self.path / LOCK_NAME
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise RunDirError(
                f"{self.path} is in use by another writ run{who}; wait for it to end or use another --out directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def read_manifest(self) -> dict[str, Any]:
        """What manifest.json holds ({} if there is none); a corrupt one is a one-line ``RunDirError``."""
        try:
            data = json.loads(self.manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as exc:
            data = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        if not isinstance(data, dict):
            detail = data if isinstance(data, str) else f"a JSON {type(data).__name__}, not an object"
            raise RunDirError(
                f"{self.manifest} is corrupt ({detail}); delete it and run the same command again: "
                f"it is rebuilt from results.jsonl"
            )
        return data

    def write_manifest(self, **fields: Any) -> None:
        """Write manifest.json (atomically), merging ``fields`` into what is there."""
        data: dict[str, Any] = {"version": MANIFEST_VERSION}
        data.update(self.read_manifest())
        data.update(fields)
        write_atomic(self.manifest, (json.dumps(data, sort_keys=True, indent=2) + "\n").encode())

    def log(self, message: str) -> None:
        """Append one timestamped line to run.log (decisions a user should be able to look up)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        append_file(self.log_file, f"{stamp} {' '.join(message.split())}\n".encode(), sync=False)

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
        append_synced(self._results_handle, encode_result(result) + b"\n")
        if result.passed:
            append_synced(self._traj_handle, encode_trajectory(result) + b"\n")

    def close(self) -> None:
        """Close the append handles and release the directory's lock."""
        for handle in (self._results_handle, self._traj_handle):
            if handle is not None:
                with contextlib.suppress(OSError):  # a failed append has already raised its one line
                    handle.close()
        self._results_handle = self._traj_handle = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
