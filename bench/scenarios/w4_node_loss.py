"""W4: node loss. A fleet runs a service workload; then 10% of its nodes stop entirely (no
heartbeats, no updates). Measured: time until the server marks every lost node down
(against TTL + grace), and the rate at which their allocations are replaced and running
on the surviving nodes, against this run's own initial placement rate (the W1 rate on the
same cluster). Goal: detected within TTL + grace; replacement rate >= 80% of placement rate.

The replacement rate (`busy_replace_rate_per_s`, the one the goal is judged by) is the
server's replacement throughput while it has replacement work outstanding: the lost allocs
replaced and reported running, divided by the time during which at least one alloc of a
node the server had marked down had no running replacement yet. Each lost node adds its
running allocs to the outstanding work at the moment the server marked it down (the
timestamp of the server's "Node heartbeat missed" node event, read from `/v1/node/:id`
after the run; server and bench share the machine's clock); each running ack of a new alloc
by a surviving node (the time the server answered that status update) takes one away. The
busy time is the union of the per-node intervals from the down-mark until all of that node's
allocs are replaced (an interval is outstanding whenever the total is, since no alloc can be
replaced before its node is down), so time spent waiting for the next node to time out is not
counted, and nothing else is left out: the evals, plans, delivery to the nodes and their
status updates all fall inside it, as they do in the placement rate (from the first job
submission to all running).

Kept for comparison with older results: `replace_rate_per_s` / `replace_vs_place` count
from the 0.5 s poll that saw the last lost node down to the 0.2 s poll that saw all replaced
(nodes go down one by one over up to a TTL, since each node's randomized TTL runs from its
own last heartbeat, so that figure measures the last few nodes and the polls' resolution);
`first_down_s` shows the spread.

Short: 500 nodes, 20 x 1,000 allocs, 50 nodes lost. Full: 5,000 nodes, 100 x 1,000 allocs
(not W1's million: the bench would spend most of its time placing), 500 nodes lost."""

from __future__ import annotations

import time

import aiohttp

from yurt.server.heartbeat import HEARTBEAT_MISSED
from yurt.structs.timefmt import parse_rfc3339_ns

from ..agentproc import AgentProcess
from ..figures import log
from ..fleet import Fleet
from .c1m_common import ProgressSampler, service_jobs, submit_jobs

HEARTBEAT_GRACE_S = 10.0  # the server's default heartbeat_grace
EVENT_LOOP = "uvloop"  # the bench process's loop (bench/eventloop.py)


async def _down_times(http: aiohttp.ClientSession, base: str, node_ids: list[str]) -> dict[str, float]:
    """When the server marked each node down: its latest "Node heartbeat missed" event's
    timestamp (wall clock, seconds)."""
    out = {}
    for node_id in node_ids:
        async with http.get(f"{base}/v1/node/{node_id}") as resp:
            node = await resp.json()
        stamps = [parse_rfc3339_ns(e.get("Timestamp")) for e in node.get("Events") or ()
                  if e.get("Message") == HEARTBEAT_MISSED]
        if stamps and max(stamps):
            out[node_id] = max(stamps) / 1e9
    return out


def busy_time(work: list[tuple[float, int]], done: list[float]) -> float:
    """Seconds during which work was outstanding: `work` adds (time, amount), each time in
    `done` takes one away. The union of the intervals from each piece of work's arrival
    until all work is done again (work never finished counts until the last event)."""
    events = sorted([(t, n) for t, n in work] + [(t, -1) for t in done], key=lambda e: (e[0], -e[1]))
    busy, outstanding, since = 0.0, 0, None
    for t, delta in events:
        before = outstanding
        outstanding = max(0, outstanding + delta)  # a stray ack never pays for later work
        if before <= 0 < outstanding:
            since = t
        elif before > 0 >= outstanding and since is not None:
            busy += t - since
            since = None
    if since is not None:  # never all done: busy at least until the last ack
        busy += events[-1][0] - since
    return busy


async def _down_count(http: aiohttp.ClientSession, base: str, node_ids: set[str]) -> int:
    async with http.get(f"{base}/v1/nodes") as resp:
        nodes = await resp.json()
    return sum(1 for n in nodes if n["ID"] in node_ids and n["Status"] == "down")


async def run_loss(base: str, nodes: int, jobs: int, count: int, lost: int, limit_s: float) -> dict:
    total = jobs * count
    fleet = Fleet(base, nodes, prefix="loss")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        started = time.monotonic()
        try:
            await fleet.start()
            await fleet.wait(lambda: fleet.registered() == nodes, 120, 0.2)
            place_started = time.monotonic()
            await submit_jobs(http, base, service_jobs("loss", jobs, count), 8)
            placed = await fleet.wait(lambda: fleet.running() >= total, limit_s, 0.2)
            place_s = time.monotonic() - place_started
            if not placed:
                raise RuntimeError(f"initial placement: {fleet.running()} of {total} running after {place_s:.0f}s")
            victims = fleet.nodes[:lost]
            lost_by_node = {n.id: sum(1 for s in n.reported.values() if s == "running") for n in victims}
            lost_allocs = sum(lost_by_node.values())
            ttl = max(n.heartbeat_ttl for n in fleet.nodes)
            await fleet.stop_nodes(victims)
            lost_at = time.monotonic()
            log(f"W4: {total} running in {place_s:.1f}s; stopped {lost} nodes with {lost_allocs} allocs (TTL {ttl:.0f}s)")
            victim_ids = {n.id for n in victims}
            detected_s = first_down_s = None
            sampler = ProgressSampler(lambda: fleet.running() - total, lost_at, label="replaced").start()
            while time.monotonic() - lost_at < ttl + HEARTBEAT_GRACE_S + 60:
                down = await _down_count(http, base, victim_ids)
                if down and first_down_s is None:
                    first_down_s = time.monotonic() - lost_at
                if down == lost:
                    detected_s = time.monotonic() - lost_at
                    break
                await fleet.wait(lambda: False, 0.5)
            replaced = await fleet.wait(lambda: fleet.running() >= total + lost_allocs, limit_s, 0.2)
            replaced_s = time.monotonic() - lost_at
            await sampler.stop()
            wall_to_mono = time.monotonic() - time.time()
            down_at = await _down_times(http, base, [n.id for n in victims])
        finally:
            await fleet.stop()
    work = [(down_at[node_id] + wall_to_mono, count) for node_id, count in lost_by_node.items() if node_id in down_at]
    replacements = sorted(fleet.counters.running_times)[total:]  # the acks after the initial placement
    busy_s = busy_time(work, replacements)
    busy_rate = len(replacements) / busy_s if busy_s > 0 else 0.0
    place_rate = total / place_s
    replace_window = replaced_s - (detected_s or 0.0)
    replace_rate = (fleet.running() - total) / max(replace_window, 1e-9)
    return {
        "nodes": nodes, "allocs": total, "nodes_lost": lost, "allocs_lost": lost_allocs,
        "heartbeat_ttl_s": round(ttl, 1), "grace_s": HEARTBEAT_GRACE_S,
        "first_down_s": None if first_down_s is None else round(first_down_s, 1),
        "detected_s": None if detected_s is None else round(detected_s, 1),
        "detected_within_ttl_grace": detected_s is not None and detected_s <= ttl + HEARTBEAT_GRACE_S + 1,
        "all_replaced": replaced, "replaced_s": round(replaced_s, 1),
        "place_rate_per_s": round(place_rate, 1), "replace_rate_per_s": round(replace_rate, 1),
        "replace_vs_place": round(replace_rate / place_rate, 2),
        # all replaced this long after the last lost node was marked down (0.5 s polls): when
        # replacement keeps pace with the detection this lag, not the rate, is the figure
        "replace_lag_s": round(replace_window, 1),
        # the goal's figure: replacements / time with replacement work outstanding (docstring)
        "busy_replace_rate_per_s": round(busy_rate, 1), "busy_replace_vs_place": round(busy_rate / place_rate, 2),
        "replace_busy_s": round(busy_s, 2), "down_marks_found": len(down_at),
        **fleet.counters.figures(),
        "setup_s": round(place_started - started, 1),
    }


async def run(short: bool = False) -> dict:
    nodes, jobs, lost = (500, 20, 50) if short else (5000, 100, 500)
    agent = AgentProcess(mode="server").start()
    try:
        log(f"W4: {nodes} nodes, {jobs} x 1000 allocs, then {lost} nodes lost, on {agent.address}")
        cpu_started = time.process_time()
        figures = await run_loss(agent.address, nodes, jobs, 1000, lost, limit_s=300.0 if short else 1200.0)
        figures["server_peak_rss_mb"] = round(agent.peak_rss / 2**20)
        figures["server_heartbeat_misses"] = agent.heartbeat_misses()
        figures["bench_process_cpu_s"] = round(time.process_time() - cpu_started, 1)
    finally:
        agent.stop()
    figures.update(scenario="W4", goal="lost nodes down within TTL + grace; replacement rate >= 0.8 x placement rate",
                   met=bool(figures["detected_within_ttl_grace"] and figures["all_replaced"]
                            and figures["down_marks_found"] == figures["nodes_lost"]
                            and figures["busy_replace_vs_place"] >= 0.8))
    return figures
