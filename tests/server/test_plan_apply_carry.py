"""The scheduler's cached node usage (`usage.cached_base`) across every kind of write.

Random writes of every kind that changes what a node's allocs hold (plans from evaluations
on current and older snapshots, client status reports, stops committed directly, garbage
collection, node status/eligibility/drain writes, re-registrations, write batches) are
replayed on a state store. After each one:

- every cached base of a node at a version that a kept snapshot shows must equal a fresh
  recount of the node's allocs in that snapshot;
- a node that had a cached base before the write still has one after it (the write carried
  it over) unless the node's resources changed or its allocs clash.

And an evaluation on a snapshot a commit or two older than the newest state finds its
nodes' bases instead of recounting them.
"""

from __future__ import annotations

from random import Random

from yurt.scheduler import new_scheduler
from yurt.scheduler import usage as usage_mod
from yurt.server.endpoints.allocs import AllocUpdateBatcher
from yurt.server.plan_apply import PlanApplier
from yurt.state import (
    AllocClientUpdate,
    AllocDesiredTransition,
    AllocUpdate,
    EvalDelete,
    JobRegister,
    NodeRegister,
    NodeUpdateDrain,
    NodeUpdateEligibility,
    NodeUpdateStatus,
    PlanApply,
    StateError,
    StateStore,
)
from yurt.structs import DesiredTransition, DrainStrategy, Evaluation, evolve
from yurt.testing.mock import mock_batch_job, mock_job, mock_node

from .test_plan_apply_usage import _content, _Recorder, _uuid

NOW = 1_700_000_000 * 10**9


class _Server:
    def __init__(self, state) -> None:
        self.state = state


def _schedule(snap, job, rng: Random) -> list:
    planner = _Recorder()
    ev = Evaluation(id=_uuid(rng), namespace=job.namespace, priority=job.priority, type=job.type,
                    triggered_by="job-register", job_id=job.id, status="pending")
    new_scheduler(job.type, snap, planner, now_ns=NOW).process(ev)
    return planner.plans


def _cached(snap) -> dict[str, object]:
    out = {}
    for node in snap.nodes():
        base = usage_mod.cached_base(node, snap.node_allocs_index(node.id))
        if base is not None:
            out[node.id] = base
    return out


def _assert_recounts(snaps: list) -> int:
    checked = 0
    for snap in snaps:
        for node_id, base in _cached(snap).items():
            fresh = usage_mod.NodeBase(snap.node_by_id(node_id), snap.allocs_by_node(node_id), ())
            assert _content(base) == _content(fresh), (snap.index, node_id)
            checked += 1
    return checked


class _World:
    def __init__(self, seed: int) -> None:
        self.rng = Random(seed)
        self.store = StateStore.open(None)
        self.nodes = [mock_node(id=_uuid(self.rng)) for _ in range(6)]
        self.store.apply_batch([NodeRegister(node=n) for n in self.nodes])
        self.applier = PlanApplier(self.store, now_ns=lambda: NOW)
        self.batcher = AllocUpdateBatcher(_Server(self.store), 0.0, now_ns=lambda: NOW)
        # services with dynamic ports, batch jobs without
        self.jobs = [mock_job(id=f"web-{i}") for i in range(2)] + [mock_batch_job(id=f"batch-{i}") for i in range(2)]
        self.snaps = [self.store.snapshot()]

    def live(self) -> list:
        return [a for a in self.store.snapshot().allocs() if not a.terminal]

    def some(self, allocs: list, share: float) -> list:
        return [a for a in allocs if self.rng.random() < share]

    # -- the writes ------------------------------------------------------------
    def plan(self) -> None:
        rng = self.rng
        k = rng.randrange(len(self.jobs))
        job = self.jobs[k]
        tg = job.task_groups[0]
        job = self.jobs[k] = evolve(job, task_groups=[evolve(tg, count=max(0, tg.count + rng.randint(-4, 6)))])
        self.store.apply(JobRegister(job=job))
        # the eval runs on the newest snapshot or one a few writes older (two workers)
        snap = self.snaps[-1 - rng.randrange(min(3, len(self.snaps)))]
        if snap.job_by_id(job.namespace, job.id) is None:
            snap = self.store.snapshot()
        try:
            for plan in _schedule(snap, snap.job_by_id(job.namespace, job.id), rng):
                self.applier.apply(plan)
        except StateError:
            # the older snapshot's eval updated an alloc that garbage collection deleted
            # since (the state refuses such a plan); the worker would retry on a newer one
            snap = self.store.snapshot()
            for plan in _schedule(snap, snap.job_by_id(job.namespace, job.id), rng):
                self.applier.apply(plan)

    def report(self) -> None:
        allocs = self.store.snapshot().allocs()
        statuses = ("running", "running", "complete", "failed", "lost")
        self.batcher._pending = {a.id: AllocUpdate(id=a.id, client_status=self.rng.choice(statuses))
                                 for a in self.some(allocs, 0.3)}
        self.batcher.flush()

    def stop_directly(self) -> None:
        stops: dict[str, list] = {}
        for alloc in self.some(self.live(), 0.2):
            stops.setdefault(alloc.node_id, []).append(evolve(alloc, desired_status="stop",
                                                              desired_description="test stop"))
        self.store.apply(PlanApply(node_update=stops, updated_at=1))

    def gc(self) -> None:
        allocs = self.store.snapshot().allocs()
        terminal = [a for a in allocs if a.terminal]
        doomed = self.some(terminal, 0.5) + self.some([a for a in allocs if not a.terminal], 0.05)
        self.store.apply(EvalDelete(eval_ids=[], alloc_ids=[a.id for a in doomed]))

    def node_write(self) -> None:
        rng = self.rng
        node = rng.choice(self.store.snapshot().nodes())
        choice = rng.randrange(5)
        if choice == 0:
            cmd = NodeUpdateStatus(node_id=node.id, status=rng.choice(("down", "ready")), updated_at=NOW)
        elif choice == 1:
            cmd = NodeUpdateEligibility(node_id=node.id, eligibility=rng.choice(("eligible", "ineligible")),
                                        updated_at=NOW)
        elif choice == 2:
            cmd = NodeUpdateDrain(node_id=node.id, drain_strategy=rng.choice((None, DrainStrategy())),
                                  mark_eligible=True, updated_at=NOW)
        elif choice == 3:  # re-registration with the same resources
            cmd = NodeRegister(node=node)
        else:  # with more memory
            res = node.node_resources
            cmd = NodeRegister(node=evolve(node, node_resources=evolve(
                res, memory=evolve(res.memory, memory_mb=res.memory.memory_mb + 1024))))
        try:
            self.store.apply(cmd)
        except StateError:  # refused (eligible while draining): nothing written
            pass

    def transition(self) -> None:
        self.store.apply(AllocDesiredTransition(
            transitions={a.id: DesiredTransition(migrate=True) for a in self.some(self.live(), 0.2)}))

    def batch(self) -> None:
        allocs = self.store.snapshot().allocs()
        node = self.rng.choice(self.store.snapshot().nodes())
        self.store.apply_batch([
            AllocClientUpdate(allocs=[AllocUpdate(id=a.id, client_status="complete") for a in self.some(allocs, 0.2)]),
            EvalDelete(eval_ids=[], alloc_ids=[a.id for a in self.some([a for a in allocs if a.terminal], 0.3)]),
            NodeUpdateStatus(node_id=node.id, status="ready", updated_at=NOW),
        ])


def _replay(seed: int, steps: int) -> dict[str, int]:
    world = _World(seed)
    writes = [world.plan] * 4 + [world.report] * 2 + [world.stop_directly, world.gc, world.node_write,
                                                       world.node_write, world.transition, world.batch]
    carried: dict[str, int] = {}
    checked = 0
    for step in range(steps):
        before = world.store.snapshot()
        if step % 3 == 0:  # an evaluation reads (and caches) every node's base now and then
            _schedule(before, before.job_by_id("default", world.jobs[0].id) or world.jobs[0], world.rng)
        had = _cached(before)
        write = world.rng.choice(writes)
        write()
        after = world.store.snapshot()
        world.snaps.append(after)
        now = _cached(after)
        for node_id, base in had.items():
            node, old = after.node_by_id(node_id), before.node_by_id(node_id)
            if node is None or base.conflict or node.node_resources is not old.node_resources:
                continue
            assert node_id in now, (step, write.__name__, node_id)  # carried over (or untouched)
            if after.node_allocs_index(node_id) != before.node_allocs_index(node_id) or node is not old:
                carried[write.__name__] = carried.get(write.__name__, 0) + 1
        checked += _assert_recounts(world.snaps[-4:])  # the kept versions of the newest snapshots
    _assert_recounts(world.snaps)  # and whatever is kept for older ones
    assert checked > 3 * steps
    return carried


def test_every_write_keeps_each_nodes_cached_base_and_it_equals_a_recount():
    carried: dict[str, int] = {}
    for seed in (1, 2, 3):
        for name, n in _replay(seed, 60).items():
            carried[name] = carried.get(name, 0) + n
    # every kind of write changed some node that had a cached base, and carried it over
    for name in ("plan", "report", "stop_directly", "gc", "node_write", "batch"):
        assert carried.get(name, 0) > 0, (name, carried)


def test_an_eval_on_a_slightly_older_snapshot_does_not_recount(monkeypatch):
    rng = Random(9)
    store = StateStore.open(None)
    nodes = [mock_node(id=_uuid(rng)) for _ in range(20)]
    store.apply_batch([NodeRegister(node=n) for n in nodes])
    applier = PlanApplier(store, now_ns=lambda: NOW)
    recounts = []
    original = usage_mod.NodeBase._count_allocs
    monkeypatch.setattr(usage_mod.NodeBase, "_count_allocs",
                        lambda self, *args: (recounts.append(1), original(self, *args))[1])
    jobs = [evolve(mock_batch_job(id=f"b-{i}"), task_groups=[evolve(mock_batch_job().task_groups[0], count=15)])
            for i in range(6)]
    snaps = []
    for i, job in enumerate(jobs):
        store.apply(JobRegister(job=job))
        snaps.append(store.snapshot())
        if i == 0:
            continue
        # two workers: the eval of the previous job started before this job's register
        # and the previous plan's commit; it runs now on that older snapshot
        older = snaps[-2]
        prev = older.job_by_id("default", jobs[i - 1].id)
        recounts.clear()
        for plan in _schedule(older, prev, rng):
            applier.apply(plan)
        if i >= 2:
            assert not recounts, i  # its nodes' bases at that snapshot's versions were kept
