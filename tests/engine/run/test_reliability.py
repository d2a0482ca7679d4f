"""Reliability of runs and writers: signals, concurrent runs, the run directory's checks, atomic files.

Real ``writ run`` processes on the tiny test model are stopped with SIGINT and SIGTERM at start-up and
mid-run; every stop must print one line with the documented status (130, 143), and resuming must end
with exactly the results of a run that was never stopped.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from engine.files import FileWriteError, append_file, append_synced, write_atomic
from engine.run.config import load_run_config
from engine.run.runner import plan_run
from engine.tasks.model import encode_task
from engine.tasks.synthesis import read_report, synthesize, write_tasks
from envs import get_domain
from tests.engine.run.runs import cache as cache  # the module's WRIT_CACHE fixture
from tests.engine.run.runs import results_of, signature, start_writ, writ, write_config

pytest.importorskip("llama_cpp", reason="the llamacpp extra is needed: pip install -e '.[llamacpp]'")

STOP_LINE = re.compile(
    r"writ: interrupted; (\d+) of (\d+) conversations recorded; resume with: writ run (\S+) --out (\S+)"
)


# -- helpers ---------------------------------------------------------------------------------------


def _wait_for(predicate: object, timeout: float = 120.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _recorded(run_dir: Path) -> int:
    try:
        return (run_dir / "results.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _children(pid: int) -> list[int]:
    """The live child processes of ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler installed for ``signum`` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(re.search(r"^SigCgt:\s*([0-9a-f]+)$", status, re.M)[1], 16)  # type: ignore[index]
    return bool(mask >> (signum - 1) & 1)


def _stop(child: subprocess.Popen[str], *signums: int) -> tuple[int, str]:
    for signum in signums:
        child.send_signal(signum)
    _, err = child.communicate(timeout=120)
    return child.returncode, err


def _one_writ_line(stderr: str) -> str:
    """The stop line: the last one, the only one starting with ``writ:``; no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("writ:")]
    assert len(lines) == 1 and stderr.rstrip("\n").endswith(lines[0]), stderr
    return lines[0]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


# -- signals ---------------------------------------------------------------------------------------


def test_sigint_and_sigterm_mid_run_stop_cleanly_and_resume_to_the_uninterrupted_results(
    tmp_path: Path, cache: Path
) -> None:
    config = write_config(tmp_path, "signals", n=8, steps=8, live=2)
    reference = tmp_path / "reference"
    proc = writ(["run", str(config), "--out", str(reference), "--quiet"], cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = signature(reference)
    assert len(expected) == 8

    out = tmp_path / "stopped"
    args = ["run", str(config), "--out", str(out), "--quiet"]
    stops = [(signal.SIGINT,), (signal.SIGTERM,), (signal.SIGINT, signal.SIGINT)]  # the last: Ctrl-C twice
    for signums in stops:
        before = _recorded(out)
        child = start_writ(args, cache)
        _wait_for(lambda: _recorded(out) > before or child.poll() is not None, what="a new result")  # noqa: B023
        assert child.poll() is None, "the run ended before it could be stopped"
        status, err = _stop(child, *signums)
        assert status == 128 + signums[0], err
        line = _one_writ_line(err)
        results = results_of(out)  # every line complete: nothing recorded half
        assert len({r["conversation_id"] for r in results}) == len(results) < 8
        kept = (out / "trajectories.jsonl").read_text().splitlines()
        assert len(kept) == sum(r["passed"] for r in results)
        if len(signums) == 1:
            match = STOP_LINE.fullmatch(line)
            assert match is not None, line
            assert (int(match[1]), int(match[2])) == (len(results), 8)
            assert (match[3], match[4]) == (str(config), str(out))
            manifest = json.loads((out / "manifest.json").read_text())
            assert manifest["status"] == "interrupted" and manifest["finished"] == len(results)
    final = writ(args, cache)
    assert final.returncode == 0, final.stderr[-2000:]
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
    assert signature(out) == expected
    assert len((out / "results.jsonl").read_text().splitlines()) == 8


def test_signals_at_start_up_print_one_line_and_leave_no_run_directory(tmp_path: Path, cache: Path) -> None:
    config = write_config(tmp_path, "start", n=8, users=3000)  # a large DB: generating it takes a while
    out = tmp_path / "run"
    args = ["run", str(config), "--out", str(out), "--quiet"]

    # 1) While the modules load: the handler is there from the start (SigCgt), and nothing happens yet.
    child = start_writ(args, cache)
    _wait_for(lambda: _catches(child.pid, signal.SIGTERM), what="the SIGTERM handler")
    status, err = _stop(child, signal.SIGTERM)
    assert (status, err) == (143, "writ: interrupted while starting; nothing was done\n")

    # 2) While the model is preflighted in a child process: that child is stopped too.
    child = start_writ(args, cache)
    _wait_for(lambda: bool(_children(child.pid)) or child.poll() is not None, what="the preflight child")
    preflight = _children(child.pid)
    status, err = _stop(child, signal.SIGINT)
    assert status == 130
    assert _one_writ_line(err) == f"writ: interrupted while starting; start again with: writ run {config} --out {out}"
    assert preflight and not [pid for pid in preflight if Path(f"/proc/{pid}").exists()]  # killed, not orphaned
    assert not out.exists()

    # 3) After the preflight, while the DB and the tasks are generated (before the directory is claimed).
    child = start_writ(args, cache)
    _wait_for(lambda: bool(_children(child.pid)) or child.poll() is not None, what="the preflight child")
    _wait_for(lambda: not _children(child.pid), what="the preflight's end")
    status, err = _stop(child, signal.SIGTERM)
    assert status == 143
    assert _one_writ_line(err) == f"writ: interrupted while starting; start again with: writ run {config} --out {out}"
    assert not out.exists()


# -- concurrency -----------------------------------------------------------------------------------


def test_three_runs_at_once_with_an_empty_shared_cache_all_complete(tmp_path: Path) -> None:
    shared = tmp_path / "empty-cache"
    shared.mkdir()
    config = write_config(tmp_path, "three", n=3)
    outs = [tmp_path / f"run{i}" for i in range(3)]
    children = [start_writ(["run", str(config), "--out", str(out), "--quiet"], shared) for out in outs]
    for child in children:
        _, err = child.communicate(timeout=600)
        assert child.returncode == 0, err[-2000:]
    signatures = [signature(out) for out in outs]
    assert len(signatures[0]) == 3 and signatures[1] == signatures[0] and signatures[2] == signatures[0]
    assert not [p for p in shared.rglob("*") if p.name.endswith(".tmp")]


def test_a_second_run_on_a_directory_in_use_is_refused_in_one_line(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRIT_CACHE", str(cache))
    config = write_config(tmp_path, "locked", n=2)
    out = tmp_path / "run"
    plan = plan_run(load_run_config(config), out, base_dir=tmp_path)  # holds the directory
    try:
        proc = writ(["run", str(config), "--out", str(out)], cache, cwd=tmp_path)
    finally:
        plan.rundir.close()
    assert proc.returncode == 2
    assert proc.stderr == (
        f"writ: error: {out} is in use by another writ run (pid {os.getpid()}); "
        f"wait for it to end or use another --out directory\n"
    )
    again = plan_run(load_run_config(config), out, base_dir=tmp_path)  # released: usable again
    again.rundir.close()
    assert again.resumed


# -- the run directory -----------------------------------------------------------------------------


def test_resume_with_a_replaced_db_file_is_refused_naming_both_digests(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setenv("WRIT_CACHE", str(cache))
    db_file = tmp_path / "db.json"
    first = writ(["env", "generate", "-d", "airline", "--users", "40", "--seed", "1", "--out", str(db_file)], cache)
    assert first.returncode == 0, first.stderr
    original = db_file.read_bytes()
    config = write_config(tmp_path, "dbfile", n=2)
    config.write_text(config.read_text().replace("users = 60\n", f'path = "{db_file.name}"\n'))
    out = tmp_path / "run"
    plan = plan_run(load_run_config(config), out, base_dir=tmp_path)
    plan.rundir.close()
    stored = json.loads((out / "config.json").read_text())["db"]
    assert stored["sha256"] == hashlib.sha256(original).hexdigest()

    db_file.write_bytes(json.dumps(json.loads(original) | {"flights": {}}).encode())  # another DB, same path
    before = _snapshot(out)
    proc = writ(["run", str(config), "--out", str(out)], cache, cwd=tmp_path)
    assert proc.returncode == 2
    new = hashlib.sha256(db_file.read_bytes()).hexdigest()
    assert proc.stderr == (
        f"writ: error: {out} was run on a DB with sha256 {stored['sha256']}, but {db_file} now has sha256 {new}; "
        f"put the original DB back or use a new --out directory\n"
    )
    assert _snapshot(out) == before
    db_file.write_bytes(original)
    again = plan_run(load_run_config(config), out, base_dir=tmp_path)
    again.rundir.close()
    assert again.resumed


def test_a_corrupt_manifest_is_one_line_and_deleting_it_rebuilds_it(tmp_path: Path, cache: Path) -> None:
    config = write_config(tmp_path, "manifest", n=2)
    out = tmp_path / "run"
    args = ["run", str(config), "--out", str(out), "--quiet"]
    assert writ(args, cache).returncode == 0
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text('{"status": "comp')  # cut short
    before = _snapshot(out)
    proc = writ(args, cache)
    assert proc.returncode == 2
    assert proc.stderr == (
        f"writ: error: {out / 'manifest.json'} is corrupt (JSONDecodeError: Unterminated string starting at: "
        f"line 1 column 12 (char 11)); delete it and run the same command again: it is rebuilt from results.jsonl\n"
    )
    assert _snapshot(out) == before
    (out / "manifest.json").unlink()
    proc = writ(args, cache)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rebuilt = json.loads((out / "manifest.json").read_text())
    assert rebuilt.pop("last_session_seconds") >= 0 and manifest.pop("last_session_seconds") >= 0
    assert rebuilt == manifest and rebuilt["status"] == "complete" and rebuilt["finished"] == 2


@pytest.mark.parametrize("broken", ["db", "task-file", "policy", "tasks-config", "foreign-task"])
def test_a_failed_start_claims_nothing_and_the_corrected_config_runs(
    broken: str, tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRIT_CACHE", str(cache))
    base = get_domain("airline").from_struct(get_domain("airline").generate_db(users=60, seed=1))
    tasks, _ = synthesize("airline", base, 3, 5)
    good_tasks = tmp_path / "tasks.jsonl"
    write_tasks(good_tasks, tasks)
    retail_base = get_domain("retail").from_struct(get_domain("retail").generate_db(users=30, seed=1))
    retail, _ = synthesize("retail", retail_base, 1, 5)
    config = write_config(tmp_path, "broken", n=3)
    text = config.read_text()
    bad_tasks = tmp_path / "bad.jsonl"
    fixes = {
        "db": ("users = 60\n", 'path = "missing-db.json"\n'),
        "task-file": ("n = 3\n", f'file = "{bad_tasks.name}"\n'),
        "foreign-task": ("n = 3\n", f'file = "{bad_tasks.name}"\n'),
        "policy": ("seed = 3\n", 'seed = 3\npolicy = "missing-policy.md"\n'),
        "tasks-config": ("n = 3\n", 'n = 3\nconfig = "missing-tasks.toml"\n'),
    }
    old, new = fixes[broken]
    config.write_text(text.replace(old, new, 1))
    lines = good_tasks.read_text().splitlines(keepends=True)
    if broken == "task-file":
        bad_tasks.write_text(lines[0] + lines[1].replace('"task_id":', '"task":') + lines[2])
    elif broken == "foreign-task":
        write_tasks(bad_tasks, [*tasks[:2], retail[0]])
    out = tmp_path / "run"
    proc = writ(["run", str(config), "--out", str(out)], cache, cwd=tmp_path)
    assert proc.returncode == 2
    expected = {
        "db": f"writ: error: cannot read airline DB {tmp_path / 'missing-db.json'}: No such file or directory",
        "task-file": f"writ: error: {bad_tasks}:2: not a task: Object missing required field `task_id`",
        "foreign-task": f"writ: error: {bad_tasks}:3: task {retail[0].task_id} is a retail task, but the config's "
        f"domain is airline",
        "policy": f"writ: error: cannot read policy file {tmp_path / 'missing-policy.md'}: No such file or directory",
        "tasks-config": f"writ: error: cannot read config {tmp_path / 'missing-tasks.toml'}: No such file or directory",
    }[broken]
    assert proc.stderr.startswith(expected) and proc.stderr.count("\n") == 1, proc.stderr
    assert not out.exists()
    # the corrected config starts (it was not refused as "a different config")
    config.write_text(text if broken != "task-file" else text.replace("n = 3\n", f'file = "{good_tasks.name}"\n'))
    plan = plan_run(load_run_config(config), out, base_dir=tmp_path)
    plan.rundir.close()
    assert not plan.resumed and len(plan.tasks) == 3


# -- writers ---------------------------------------------------------------------------------------


def test_write_atomic_replaces_whole_files_and_never_shares_a_temp_path(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_bytes(b"old")
    payloads = [bytes([65 + i]) * (200_000 + i) for i in range(6)]

    def writer(data: bytes) -> None:
        for _ in range(15):
            write_atomic(target, [data[:1000], data[1000:]])

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert target.read_bytes() in payloads
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_append_to_a_full_device_is_one_line() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    with pytest.raises(FileWriteError) as info:
        append_file("/dev/full", b"x" * 10_000)
    assert str(info.value) == "cannot write /dev/full: No space left on device"
    with open("/dev/full", "ab") as handle, pytest.raises(FileWriteError) as info2:
        append_synced(handle, b"one result line\n")
    assert str(info2.value) == "cannot write /dev/full: No space left on device"


_FSIZE = """
import resource, signal, sys
from engine.files import write_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
try:
    write_atomic(sys.argv[1], b"new" * 100_000)
except OSError as exc:
    print(exc)
"""


def test_write_atomic_that_fails_midway_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "db.json"
    target.write_bytes(b"old contents")
    proc = subprocess.run([sys.executable, "-c", _FSIZE, str(target)], capture_output=True, text=True, check=False)
    assert proc.stdout == f"cannot write {target}: File too large\n", proc.stderr
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["db.json"]
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # the limit applied to the child only


def test_env_generate_on_a_full_filesystem_is_one_line_and_leaves_no_temp(tmp_path: Path, cache: Path) -> None:
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-rm", "true"], capture_output=True, check=False).returncode:
        pytest.skip("no user and mount namespaces here to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    script = (
        f"mount -t tmpfs -o size=256k tmpfs {mnt} && cd {Path.cwd()} && "
        f"{sys.executable} -m engine env generate -d airline --users 2 --out {mnt}/db.json && "
        f"{sys.executable} -m engine env generate -d airline --users 400 --out {mnt}/db.json; "
        f"echo rc=$?; ls -a {mnt}; head -c 20 {mnt}/db.json"
    )
    proc = subprocess.run([unshare, "-rm", "sh", "-c", script], capture_output=True, text=True, check=False,
                          env={**os.environ, "WRIT_CACHE": str(cache)})  # fmt: skip
    assert proc.stderr == f"writ: error: cannot write {mnt}/db.json: No space left on device\n", proc.stderr
    assert proc.stdout.splitlines()[1:5] == ["rc=2", ".", "..", "db.json"], proc.stdout
    assert proc.stdout.splitlines()[5].startswith('{"flights":'), proc.stdout


def test_env_generate_into_a_directory_writes_db_json_and_leaves_no_temp(tmp_path: Path, cache: Path) -> None:
    target = tmp_path / "dbs"
    target.mkdir()
    proc = writ(["env", "generate", "-d", "retail", "--users", "20", "--out", str(target)], cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {target / 'db.json'} (")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dbs"]
    assert sorted(p.name for p in target.iterdir()) == ["db.json"]
    get_domain("retail").load(target / "db.json")


def test_a_report_left_beside_other_tasks_is_not_shown(tmp_path: Path, cache: Path) -> None:
    base = get_domain("retail").from_struct(get_domain("retail").generate_db(users=40, seed=1))
    old, old_report = synthesize("retail", base, 4, 1)
    new, new_report = synthesize("retail", base, 3, 2)
    path = tmp_path / "tasks.jsonl"
    write_tasks(path, old, old_report)
    assert read_report(path) == old_report
    # a kill between write_tasks' two renames: the new tasks are in place, the old report beside them
    write_atomic(path, b"".join(encode_task(t) + b"\n" for t in new))
    assert read_report(path) is None
    proc = writ(["tasks", "stats", str(path)], cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("3 tasks") and "attempts:" not in proc.stdout
    assert proc.stderr == f"note: {path}.report.json does not describe these tasks (stale); its counts are not shown\n"
    write_tasks(path, new, new_report)
    assert read_report(path) == new_report
    write_tasks(path, old)  # tasks without a report: the old report goes
    assert read_report(path) is None and not Path(f"{path}.report.json").exists()


def test_parquet_hint_keeps_its_brackets(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.run.cli import _write_parquet

    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` fails, as without the extra
    buffer = io.StringIO()
    _write_parquet(Path("unused.jsonl"), Console(file=buffer, width=200))
    assert buffer.getvalue() == "parquet not written: it needs the train extra (pip install -e '.[train]')\n"
