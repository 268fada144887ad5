"""Microbench of W3's register path in one process: 10 system jobs, then N node registers
through the register route's decode and `register_node` on a real Server (SQLite log, no
scheduler workers; `--batch` registers at a time, as the route's batcher writes what
arrives in one loop turn), then the broker's collapse of the node-update evals (one dequeue + ack
per job, then the leader's timer pass that cancels the superseded evals). CPU seconds
(`time.process_time`) per phase.

    PYTHONPATH=$PWD/src python -m bench.micro_register --nodes 5000
"""

import argparse
import asyncio
import tempfile
import time
import uuid

import msgspec


async def run(nodes: int, memory: bool, batch: int) -> dict:
    from bench.fleet import sim_node_template
    from bench.jobs import mock_job
    from yurt.http.wire import convert
    from yurt.server.config import ServerConfig
    from yurt.server.endpoints.jobs import register_job
    from yurt.server.endpoints.nodes import register_node
    from yurt.server.server import Server
    from yurt.structs import Job, Node

    server = Server(ServerConfig(data_dir=None if memory else tempfile.mkdtemp(prefix="yurt-micro-reg-"),
                                 num_schedulers=0))
    if hasattr(server.broker, "cancel_hold"):  # the collapse below: the cancels at once, busy or not
        server.broker.cancel_hold = 0
    await server.start()
    for i in range(10):
        register_job(server, msgspec.convert(mock_job(f"sys-{i}", 0, job_type="system")["Job"], Job))
    template = sim_node_template()
    bodies = [msgspec.json.encode({"Node": dict(template, ID=str(uuid.uuid4()), SecretID=str(uuid.uuid4()),
                                                Name=f"sim-{i}", Status="ready")}) for i in range(nodes)]
    try:
        from yurt.http.node_decode import decode_node_register as decode
    except ImportError:  # before the direct decode
        decode = None
    out = {}
    start = time.process_time()
    decoded = []
    for raw in bodies:
        node = decode(raw) if decode is not None else None
        if node is not None:
            decoded.append(node)
        else:
            decoded.append(convert(msgspec.json.decode(raw)["Node"], Node, "node"))
    out["decode_s"] = time.process_time() - start
    try:
        from yurt.server.endpoints.nodes import register_nodes
    except ImportError:  # before the batched registers
        register_nodes = None
    start = time.process_time()
    if register_nodes is not None and batch > 1:  # as the route's batcher writes a loop turn's registers
        for first in range(0, len(decoded), batch):
            register_nodes(server, decoded[first:first + batch])
    else:
        for node in decoded:
            register_node(server, node)
    out["register_s"] = time.process_time() - start
    start = time.process_time()
    # the broker: the first eval of each system job is in flight; the acks release the rest
    # (the newest becomes ready, the others cancelable), then the timer pass cancels them.
    for _ in range(2):
        while (got := server.broker.try_dequeue(["system"])) is not None:
            server.broker.ack(got[0].id, got[1])
        server.run_timers()
        while getattr(server, "_cancel_next", None) is not None:  # the cancel chunks, one per loop turn
            await asyncio.sleep(0)
    out["collapse_s"] = time.process_time() - start
    snap = server.state.snapshot()
    evals = list(snap.evals(None))
    out["evals"] = len(evals)
    out["canceled"] = sum(e.status == "canceled" for e in evals)
    out["nodes"] = len(list(snap.nodes()))
    out["total_s"] = out["decode_s"] + out["register_s"] + out["collapse_s"]
    await server.stop()
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--batch", type=int, default=50, help="registers written together")
    args = parser.parse_args(argv)
    out = asyncio.run(run(args.nodes, args.memory, args.batch))
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in out.items()))


if __name__ == "__main__":
    main()
