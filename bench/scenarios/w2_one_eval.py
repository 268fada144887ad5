"""W2: one evaluation of a count=1,000 service job on 5,000 nodes, with and without a
`spread` block. Wraps `bench/sched_one_eval.py` (the scheduler package's benchmark) in a
subprocess and reports its JSON. Goal: <= 100 ms without spread."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from ..agentproc import REPO

SCRIPT = REPO / "bench" / "sched_one_eval.py"


async def _run_script(*args: str) -> dict:
    proc = await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), *args, cwd=REPO,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"sched_one_eval.py {' '.join(args)} exited {proc.returncode}: {err.decode()[-500:]}")
    lines = [line for line in out.decode().splitlines() if line.strip().startswith("{")]
    return json.loads(lines[-1])


async def run(short: bool = False) -> dict:
    if not SCRIPT.exists():
        return {"scenario": "W2", "skipped": f"{os.path.relpath(SCRIPT, REPO)} does not exist"}
    runs = "3" if short else "5"
    help_text = (await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), "--help",
                                                      stdout=asyncio.subprocess.PIPE)).stdout
    supports_spread = b"spread" in (await help_text.read())
    plain = await _run_script("--runs", runs)
    figures = {"scenario": "W2", "without_spread": plain}
    if supports_spread:
        figures["with_spread"] = await _run_script("--runs", runs, "--spread")
    else:
        figures["with_spread"] = "skipped: sched_one_eval.py has no --spread option"
    median = next((v for k, v in plain.items() if "median" in k and "ms" in k), None)
    figures.update(goal="<= 100 ms without spread; nodes scored per placement as Nomad's limits",
                   met=bool(median is not None and median <= 100))
    return figures
