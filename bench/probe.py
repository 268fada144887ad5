"""An API latency probe in its own process, so that a busy fleet in the bench process does
not inflate the figure: `GET url` every `interval` s until SIGTERM/SIGINT, then one JSON
line `{"latencies": [...seconds], "errors": n}` on stdout.

    python -m bench.probe http://127.0.0.1:4646/v1/jobs 0.25
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time

import aiohttp


async def probe(url: str, interval: float) -> dict:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    latencies, errors = [], 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with http.get(url) as resp:
                    await resp.read()
                    errors += resp.status != 200
                latencies.append(time.perf_counter() - started)
            except (aiohttp.ClientError, asyncio.TimeoutError):
                errors += 1
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except asyncio.TimeoutError:
                pass
    return {"latencies": latencies, "errors": errors}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(probe(sys.argv[1], float(sys.argv[2])))), flush=True)
