"""The RPC listener's watch answer for allocations as the scheduler places them: CPU to build
and frame one delta answer (`_Handlers.watch_reply` + `yurt.rpc.frame`, what `_Watch._answer`
does before its write), on W1's allocs.

Runs W1's state writes at a small size (`bench/micro_log.capture`: the real scheduler, so the
allocs carry the scheduler's placement metrics, node scores included), applies the last
1,000-alloc plan to a fresh store, then answers every node of it in turn, `--per-answer`
allocs an answer (W1 full: ~2), as a woken delta watch does. `reply_us`: CPU per answer
(`time.process_time`, the best of `--rounds` passes), `reply_bytes`: its frame's size.

    PYTHONPATH=src .venv/bin/python bench/micro_watch_reply.py [--per-answer 2] [--rounds 9]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--per-answer", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)

    from bench.micro_log import _allocs, capture
    from yurt.http.alloc_delta import NodeAllocsAnswer
    from yurt.rpc import frame
    from yurt.rpc.server import _Handlers
    from yurt.state.commands import JobRegister, NodeRegister, PlanApply
    from yurt.state.store import StateStore

    logged = capture(args.nodes, args.jobs)
    plan = [c for c in logged if isinstance(c, PlanApply) and _allocs(c) >= 1000][-1]
    store = StateStore.open(None)
    for command in logged:  # the nodes and the plan's job, then the plan
        if isinstance(command, (NodeRegister, JobRegister)):
            store.apply(command)
    store.apply(plan)
    snap = store.snapshot()
    ids = [a.id for allocs in plan.node_allocation.values() for a in allocs]
    per = args.per_answer
    answers = [ids[i:i + per] for i in range(0, len(ids) - per + 1, per)]
    api = _Handlers(None, None)

    def answer_all() -> int:
        size = 0
        for seq, changed in enumerate(answers):
            answer = NodeAllocsAnswer(snap, snap.index, "", {}, changed)
            body, meta = api.watch_reply(answer, 1, True)
            size += len(frame((seq, 200, meta.last_index, body)))
        return size

    size = answer_all()
    best = float("inf")
    for _ in range(args.rounds):
        t0 = time.process_time()
        answer_all()
        best = min(best, time.process_time() - t0)
    out = {"answers": len(answers), "per_answer": per, "reply_us": round(best / len(answers) * 1e6, 2),
           "reply_bytes": round(size / len(answers)), "rounds": args.rounds}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
