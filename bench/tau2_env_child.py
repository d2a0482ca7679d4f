"""Time tau2-bench's own ``Environment.get_response`` on given replays (run under a Python with tau2).

Started by ``bench/env_kernel.py --tau2 PYTHON``; never imports writ. Reads one JSON object from
stdin: ``{"domain", "db", "repeats", "tasks": [[{"name", "arguments", "requestor", "write"}]]}``,
and prints ``{"read_s": [...], "write_s": [...], "tau2": "<version>"}``: seconds per call, each
task replayed ``repeats`` times on a fresh copy of the DB (the copy is not timed). tau2's
DEBUG logging of every response is switched off, so only the call itself is timed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import sys
import time


def main() -> None:
    job = json.load(sys.stdin)
    domain = job["domain"]
    env_module = importlib.import_module(f"tau2.domains.{domain}.environment")
    model_module = importlib.import_module(f"tau2.domains.{domain}.data_model")
    db_type = model_module.FlightDB if domain == "airline" else model_module.RetailDB
    from loguru import logger
    from tau2.data_model.message import ToolCall

    logger.remove()  # tau2 logs every response at DEBUG to stderr; time the call, not the logging

    loaded = db_type.load(job["db"])
    reads: list[float] = []
    writes: list[float] = []
    clock = time.perf_counter
    for _ in range(job["repeats"]):
        for calls in job["tasks"]:
            env = env_module.get_environment(db=loaded.model_copy(deep=True))
            for i, call in enumerate(calls):
                message = ToolCall(
                    id=f"call_{i}", name=call["name"], arguments=call["arguments"], requestor=call["requestor"]
                )
                t0 = clock()
                env.get_response(message)
                (writes if call["write"] else reads).append(clock() - t0)
    versions = [d.version for d in importlib.metadata.distributions() if (d.metadata["Name"] or "").endswith("tau2")]
    json.dump({"read_s": reads, "write_s": writes, "tau2": versions[0] if versions else "?"}, sys.stdout)


if __name__ == "__main__":
    main()
