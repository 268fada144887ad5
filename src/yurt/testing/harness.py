"""A scheduler test harness: an in-memory state with the StateSnapshot read methods,
and a Planner that records what the scheduler asks for and commits it like the plan
applier does (re-checking fit per node, committing partially when a node no longer fits,
evicting preempted allocs and creating `preemption` evals for their jobs).

    h = Harness()
    node = h.add_node(mock_node())
    ev = h.register_job(mock_job())
    h.process(ev)
    h.plans[-1].node_allocation, h.updated_evals[-1].status
"""

from __future__ import annotations

from typing import Callable

from yurt.scheduler import new_scheduler
from yurt.scheduler.node_class import computed_class
from yurt.server.plan_apply import evaluate_node, preemption_evals
from yurt.structs import (
    Allocation,
    Evaluation,
    Job,
    Node,
    Plan,
    PlanResult,
    SchedulerConfiguration,
    evolve,
    generate_uuid,
)


class InMemoryState:
    """Tables indexed the way the scheduler reads them. `snapshot()` is a frozen copy."""

    def __init__(self) -> None:
        self.index = 1
        self._jobs: dict[tuple[str, str], Job] = {}
        self._nodes: dict[str, Node] = {}
        self._allocs: dict[str, Allocation] = {}
        self._by_node: dict[str, dict[str, Allocation]] = {}
        self._by_job: dict[tuple[str, str], dict[str, Allocation]] = {}
        self._evals: dict[str, Evaluation] = {}
        self._versions: dict[tuple[str, str], dict[int, Job]] = {}
        self._config = SchedulerConfiguration()

    # --- reads (the StateSnapshot contract) ---------------------------------------------
    def table_index(self, name: str) -> int:
        return self.index

    def job_by_id(self, namespace: str, job_id: str) -> Job | None:
        return self._jobs.get((namespace, job_id))

    def jobs(self, namespace: str | None = None) -> list[Job]:
        return [j for (ns, _), j in self._jobs.items() if namespace in (None, "*", ns)]

    def job_versions(self, namespace: str, job_id: str) -> list[Job]:
        versions = self._versions.get((namespace, job_id), {})
        return [versions[v] for v in sorted(versions, reverse=True)]

    def job_version(self, namespace: str, job_id: str, version: int) -> Job | None:
        return self._versions.get((namespace, job_id), {}).get(version)

    def node_by_id(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def nodes(self) -> list[Node]:
        return list(self._nodes.values())

    def alloc_by_id(self, alloc_id: str) -> Allocation | None:
        return self._allocs.get(alloc_id)

    def allocs(self, namespace: str | None = None) -> list[Allocation]:
        return [a for a in self._allocs.values() if namespace in (None, "*", a.namespace)]

    def allocs_by_job(self, namespace: str, job_id: str) -> list[Allocation]:
        return list(self._by_job.get((namespace, job_id), {}).values())

    def allocs_by_node(self, node_id: str) -> list[Allocation]:
        return list(self._by_node.get(node_id, {}).values())

    def allocs_by_eval(self, eval_id: str) -> list[Allocation]:
        return [a for a in self._allocs.values() if a.eval_id == eval_id]

    def eval_by_id(self, eval_id: str) -> Evaluation | None:
        return self._evals.get(eval_id)

    def evals(self, namespace: str | None = None) -> list[Evaluation]:
        return [e for e in self._evals.values() if namespace in (None, "*", e.namespace)]

    def evals_by_job(self, namespace: str, job_id: str) -> list[Evaluation]:
        return [e for e in self._evals.values() if e.namespace == namespace and e.job_id == job_id]

    def scheduler_config(self) -> SchedulerConfiguration:
        return self._config

    # --- writes ----------------------------------------------------------------------------
    def _bump(self) -> int:
        self.index += 1
        return self.index

    def upsert_node(self, node: Node) -> Node:
        idx = self._bump()
        node = evolve(node, modify_index=idx, create_index=node.create_index or idx, computed_class="")
        node = evolve(node, computed_class=computed_class(node))
        self._nodes[node.id] = node
        return node

    def upsert_job(self, job: Job) -> Job:
        idx = self._bump()
        old = self._jobs.get((job.namespace, job.id))
        version = (old.version + 1) if old is not None else job.version
        job = evolve(job, version=version, modify_index=idx, job_modify_index=idx,
                     create_index=old.create_index if old else idx)
        self._jobs[(job.namespace, job.id)] = job
        self._versions.setdefault((job.namespace, job.id), {})[job.version] = job
        return job

    def delete_job(self, namespace: str, job_id: str) -> None:
        self._bump()
        self._jobs.pop((namespace, job_id), None)

    def upsert_alloc(self, alloc: Allocation, index: int | None = None) -> Allocation:
        idx = index or self._bump()
        old = self._allocs.get(alloc.id)
        alloc = evolve(alloc, modify_index=idx, create_index=old.create_index if old else (alloc.create_index or idx))
        self._allocs[alloc.id] = alloc
        self._by_node.setdefault(alloc.node_id, {})[alloc.id] = alloc
        self._by_job.setdefault((alloc.namespace, alloc.job_id), {})[alloc.id] = alloc
        return alloc

    def upsert_eval(self, ev: Evaluation) -> None:
        self._bump()
        self._evals[ev.id] = ev

    def set_scheduler_config(self, config: SchedulerConfiguration) -> None:
        self._config = config

    def snapshot(self) -> "InMemoryState":
        snap = InMemoryState.__new__(InMemoryState)
        snap.index = self.index
        snap._jobs = dict(self._jobs)
        snap._nodes = dict(self._nodes)
        snap._allocs = dict(self._allocs)
        snap._by_node = {k: dict(v) for k, v in self._by_node.items()}
        snap._by_job = {k: dict(v) for k, v in self._by_job.items()}
        snap._evals = dict(self._evals)
        snap._versions = {k: dict(v) for k, v in self._versions.items()}
        snap._config = self._config
        return snap


PlanHook = Callable[["Harness", Plan], set[str]]


class Harness:
    """A Planner that records plans and evals and commits plans into `state`.

    `reject_nodes(harness, plan) -> node ids` (optional) lets a test force a partial
    commit, as if another scheduler had filled those nodes first."""

    def __init__(self, state: InMemoryState | None = None, now_ns: int = 1_700_000_000 * 10**9) -> None:
        self.state = state or InMemoryState()
        self.now_ns = now_ns
        self.plans: list[Plan] = []
        self.results: list[PlanResult] = []
        self.updated_evals: list[Evaluation] = []
        self.created_evals: list[Evaluation] = []
        self.reblocked_evals: list[Evaluation] = []
        self.preemption_evals: list[Evaluation] = []  # created by "the plan applier"
        self.reject_nodes: PlanHook | None = None
        self.verify_fit = True
        self.last_scheduler = None

    # --- helpers -----------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        return self.state.upsert_node(node)

    def add_alloc(self, alloc: Allocation) -> Allocation:
        return self.state.upsert_alloc(alloc)

    def register_job(self, job: Job, triggered_by: str = "job-register") -> Evaluation:
        """Store the job (a new version if it exists) and return a pending eval for it."""
        job = self.state.upsert_job(job)
        return self.new_eval(job, triggered_by)

    def new_eval(self, job: Job, triggered_by: str = "job-register", **fields) -> Evaluation:
        ev = Evaluation(
            id=fields.pop("id", None) or generate_uuid(), namespace=job.namespace, priority=job.priority,
            type=job.type, triggered_by=triggered_by, job_id=job.id, job_modify_index=job.job_modify_index,
            status="pending", **fields,
        )
        self.state.upsert_eval(ev)
        return ev

    def process(self, ev: Evaluation, config: SchedulerConfiguration | None = None, eval_type: str | None = None):
        sched = new_scheduler(eval_type or ev.type, self.state.snapshot(), self, self.now_ns,
                              config or self.state.scheduler_config())
        self.last_scheduler = sched
        sched.process(ev)
        return sched

    def job_allocs(self, job: Job, live_only: bool = True) -> list[Allocation]:
        allocs = self.state.allocs_by_job(job.namespace, job.id)
        return [a for a in allocs if not a.terminal] if live_only else allocs

    # --- Planner ----------------------------------------------------------------------------
    def submit_plan(self, plan: Plan) -> tuple[PlanResult, InMemoryState | None]:
        self.plans.append(plan)
        rejected = set(self.reject_nodes(self, plan)) if self.reject_nodes else set()
        if self.verify_fit:
            rejected |= self._nodes_that_do_not_fit(plan)
        if plan.all_at_once and rejected:
            rejected = set(plan.node_allocation) | set(plan.node_update)
        result = self._commit(plan, rejected)
        self.results.append(result)
        return result, (self.state.snapshot() if rejected else None)

    def _nodes_that_do_not_fit(self, plan: Plan) -> set[str]:
        """The plan applier's own per-node check (placements, stops and evictions counted)."""
        return {node_id for node_id in plan.node_allocation
                if not evaluate_node(self.state, plan, node_id).fits}

    def _commit(self, plan: Plan, rejected: set[str]) -> PlanResult:
        idx = self.state._bump()
        result = PlanResult(alloc_index=idx, rejected_nodes=sorted(rejected) or None,
                            refresh_index=idx if rejected else 0)
        for node_id, stops in plan.node_update.items():
            if node_id in rejected:
                continue
            for stop in stops:
                self._commit_stop(stop, idx)
            result.node_update[node_id] = stops
        for node_id, evicted in plan.node_preemptions.items():
            if node_id in rejected:
                continue
            result.node_preemptions[node_id] = evicted
        evals = preemption_evals(self.state, result, self.now_ns)
        for evicted in result.node_preemptions.values():
            for victim in evicted:
                self._commit_eviction(victim, idx)
        for node_id, allocs in plan.node_allocation.items():
            if node_id in rejected:
                continue
            for alloc in allocs:
                self._commit_alloc(plan, alloc, idx)
            result.node_allocation[node_id] = allocs
        for ev in evals:
            self.preemption_evals.append(ev)
            self.state.upsert_eval(ev)
        return result

    def _commit_eviction(self, victim: Allocation, idx: int) -> None:
        cur = self.state.alloc_by_id(victim.id)
        if cur is None or cur.terminal:
            return
        self.state.upsert_alloc(evolve(cur, desired_status=victim.desired_status,
                                       desired_description=victim.desired_description,
                                       preempted_by_allocation=victim.preempted_by_allocation,
                                       modify_time=self.now_ns), idx)

    def _commit_stop(self, stop: Allocation, idx: int) -> None:
        cur = self.state.alloc_by_id(stop.id)
        if cur is None:
            return
        self.state.upsert_alloc(evolve(cur, desired_status=stop.desired_status,
                                       desired_description=stop.desired_description,
                                       client_status=stop.client_status, modify_time=self.now_ns), idx)

    def _commit_alloc(self, plan: Plan, alloc: Allocation, idx: int) -> None:
        self.state.upsert_alloc(evolve(alloc, job=plan.job), idx)
        if alloc.previous_allocation:
            prev = self.state.alloc_by_id(alloc.previous_allocation)
            if prev is not None:
                self.state.upsert_alloc(evolve(prev, next_allocation=alloc.id), idx)

    def update_eval(self, ev: Evaluation) -> None:
        self.updated_evals.append(ev)
        self.state.upsert_eval(ev)

    def create_eval(self, ev: Evaluation) -> None:
        self.created_evals.append(ev)
        self.state.upsert_eval(ev)

    def reblock_eval(self, ev: Evaluation) -> None:
        self.reblocked_evals.append(ev)
        self.state.upsert_eval(ev)
