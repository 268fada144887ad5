"""Scheduler A/B between source trees on one late-W1-like state, by fork.

The parent builds the state of `sched_one_eval.py --sequence --binpack --prefill K` (5,000 sim
nodes, K allocs a node on average, many nodes full) with the first tree's code; per rep and
tree (alternating order) a forked child re-imports `yurt.scheduler` and `yurt.server` from its
tree (`yurt.state` and `yurt.structs` stay the first tree's: a change there is not compared),
warms the usage cache and node table, runs `--warm` evals, then times `--evals` evals of
count-1,000 tiny jobs (`process(eval)` CPU, each plan committed by the PlanApplier) and digests
the plans (`sched_one_eval.plan_digest`: equal digests = the same placements and metrics).
`--profile F` writes a cProfile of each child's timed evals to F.<tree name>.

    PYTHONPATH=src .venv/bin/python bench/micro_sched_ab.py --trees /work/wt/base . [--reps 4]

Children of one tree vary by +-15-20% on a shared machine: compare medians of several reps.
"""
import argparse, gc, hashlib, json, os, statistics, sys, time
ap = argparse.ArgumentParser()
ap.add_argument("--trees", nargs="+", required=True)
ap.add_argument("--parent", default="", help="the tree whose yurt.state builds the state (default: the first of --trees)")
ap.add_argument("--reps", type=int, default=3)
ap.add_argument("--prefill", type=int, default=130)
ap.add_argument("--evals", type=int, default=20)
ap.add_argument("--warm", type=int, default=3)
ap.add_argument("--nodes", type=int, default=5000)
ap.add_argument("--profile", default="")
args = ap.parse_args()
args.trees = [os.path.abspath(t) for t in args.trees]
sys.path.insert(0, os.path.abspath(args.parent or args.trees[0]) + "/src")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import bench.sched_one_eval as b
from yurt.state import JobRegister, NodeRegister, StateStore
from yurt.state.store import relax_gc
store = StateStore.open(None)
sim_nodes = [b._sim_node(i) for i in range(args.nodes)]
store.apply_batch([NodeRegister(node=n) for n in sim_nodes])
t0 = time.time()
b.prefill(store, sim_nodes, args.prefill, True)
print(f"prefill {time.time()-t0:.1f}s", file=sys.stderr)
relax_gc()
rng_state = b._SEQ_RNG.getstate()

def child(tree, wfd):
    for m in [m for m in sys.modules if m.startswith(("yurt.scheduler", "yurt.server", "bench.sched_one_eval"))]:
        del sys.modules[m]
    sys.path.insert(0, tree + "/src")
    sys.modules["yurt"].__path__.insert(0, tree + "/src/yurt")
    import importlib
    bb = importlib.import_module("bench.sched_one_eval")
    assert bb.new_scheduler.__module__ and sys.modules["yurt.scheduler.window"].__file__.startswith(tree), sys.modules["yurt.scheduler.window"].__file__
    bb._SEQ_RNG.setstate(rng_state)
    from yurt.scheduler.usage import node_base
    snap = store.snapshot()
    for n in sim_nodes:
        node_base(snap.node_by_id(n.id), snap.allocs_by_node(n.id), snap.node_allocs_index(n.id))
    h = hashlib.sha256()
    bb._DIGEST = h
    cpu = []
    prof = None
    for j in range(args.warm + args.evals):
        store.apply(JobRegister(job=bb._tiny_job(f"job-{j}", 1000)))
        job = store.snapshot().job_by_id("default", f"job-{j}")
        c = []
        if j == args.warm and args.profile:
            import cProfile; prof = cProfile.Profile(); prof.enable()
        bb._process(store, job, c)
        if j >= args.warm:
            cpu.append(c[0])
    if prof:
        prof.disable(); prof.dump_stats(args.profile + "." + os.path.basename(tree))
    os.write(wfd, json.dumps({"tree": tree, "median_ms": statistics.median(cpu) * 1000, "sum_s": sum(cpu),
                              "digest": h.hexdigest()[:16]}).encode())
    os._exit(0)

res = {t: [] for t in args.trees}
for rep in range(args.reps):
    order = args.trees if rep % 2 == 0 else args.trees[::-1]
    for tree in order:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r); child(tree, w)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk: break
            data += chunk
        os.waitpid(pid, 0)
        d = json.loads(data)
        res[tree].append(d)
        print(json.dumps(d), file=sys.stderr, flush=True)
for t, rs in res.items():
    print(os.path.basename(t), "median of medians %.2f ms" % statistics.median(r["median_ms"] for r in rs),
          "min %.2f" % min(r["median_ms"] for r in rs), "sums", [round(r["sum_s"], 3) for r in rs], {r["digest"] for r in rs})
