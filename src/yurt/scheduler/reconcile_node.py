"""The node reconciler for system and sysbatch jobs: one alloc per (node, group).

Pure, like the cluster reconciler: allocs and candidate nodes in, buckets out.
Allocs on down or missing nodes are lost (on a disconnected node, groups with a `disconnect`
block follow its rules instead: see `_disconnected`); allocs on nodes that left the job's
datacenters or pool, or marked to migrate off draining nodes, are stopped; allocs on ready but
ineligible nodes keep running. A sysbatch alloc that completed at the current job
version is not run again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import attrgetter

from yurt.structs import Allocation, DesiredUpdates, Evaluation, Job, Node
from yurt.structs.alloc import (
    ALLOC_CLIENT_COMPLETE,
    ALLOC_CLIENT_LOST,
    ALLOC_CLIENT_PENDING,
    ALLOC_CLIENT_RUNNING,
    ALLOC_CLIENT_UNKNOWN,
    ALLOC_DESIRED_EVICT,
    ALLOC_DESIRED_STOP,
    CLIENT_TERMINAL_STATUSES,
    alloc_name,
)
from yurt.structs.base import evolve
from yurt.structs.eval import TRIGGER_MAX_DISCONNECT_TIMEOUT
from yurt.structs.ids import generate_uuid
from yurt.structs.node import NODE_STATUS_DISCONNECTED, NODE_STATUS_DOWN, NODE_STATUS_READY

from .disconnect import ALLOC_UNKNOWN, disconnect_policy, expired, needs_reconnect, with_client_status

from .feasible import datacenter_matches, pool_matches
from .reconcile import (
    ALLOC_JOB_STOPPED,
    ALLOC_LOST,
    ALLOC_NOT_NEEDED,
    ALLOC_UPDATING,
    UPDATE_IGNORE,
    UPDATE_INPLACE,
    PlacementRequest,
    StopRequest,
    UpdateFn,
    default_update_fn,
)

ALLOC_NODE_TAINTED = "alloc not needed as node is tainted"
_CREATED = attrgetter("create_index", "id")  # the order allocs are reconciled in
_SERVER_TERMINAL = (ALLOC_DESIRED_STOP, ALLOC_DESIRED_EVICT)


@dataclass
class NodeReconcileResult:
    place: list[tuple[Node, PlacementRequest]] = field(default_factory=list)
    stop: list[StopRequest] = field(default_factory=list)
    inplace: list[Allocation] = field(default_factory=list)
    desired_tg_updates: dict[str, DesiredUpdates] = field(default_factory=dict)
    attribute_updates: list[Allocation] = field(default_factory=list)  # unknown / reconnected marks
    followup_evals: list[Evaluation] = field(default_factory=list)  # at `lost_after` of new unknowns


class NodeReconciler:
    def __init__(
        self,
        job: Job | None,
        allocs: list[Allocation],
        candidates: list[Node],
        node_lookup,
        sysbatch: bool,
        update_fn: UpdateFn = default_update_fn,
        now_ns: int = 0,
        eval_id: str = "",
        priority: int = 50,
    ) -> None:
        self.job = job
        self.allocs = allocs
        self.candidates = candidates
        self.node_lookup = node_lookup
        self.sysbatch = sysbatch
        self.update_fn = update_fn
        self.now = now_ns
        self.eval_id = eval_id
        self.priority = priority
        self.result = NodeReconcileResult()
        # the first group of each name, as Job.lookup_task_group finds it
        self._groups: dict[str, object] = {}
        for tg in (job.task_groups or ()) if job is not None else ():
            self._groups.setdefault(tg.name, tg)
        self._policies: dict[str, object] = {}  # group -> disconnect_policy(group), set by compute

    def _du(self, group: str) -> DesiredUpdates:
        updates = self.result.desired_tg_updates
        du = updates.get(group)
        if du is None:
            du = updates[group] = DesiredUpdates()
        return du

    def _stop(self, alloc: Allocation, desc: str, client_status: str = "") -> None:
        self.result.stop.append(StopRequest(alloc, desc, client_status))
        self._du(alloc.task_group).stop += 1

    def compute(self) -> NodeReconcileResult:
        job = self.job
        if job is None or job.stop or job.is_periodic or job.is_parameterized:
            for alloc in self.allocs:
                if not alloc.terminal:
                    self._stop(alloc, ALLOC_JOB_STOPPED)
            return self.result
        candidate_ids = {n.id for n in self.candidates}
        # group -> the nodes where it has an alloc kept (or one that ran to completion)
        covered: dict[str, set[str]] = {name: set() for name in self._groups}
        groups, policies = self._groups, self._policies
        for name, tg in groups.items():
            policies[name] = disconnect_policy(tg)
        version, modify_index = job.version, job.job_modify_index
        dus: dict[str, DesiredUpdates] = {}
        for alloc in sorted(self.allocs, key=_CREATED):
            # the common case inlined: a live alloc of a group without disconnect rules, on a
            # candidate node, the first of its group there, of this job version (what
            # `_classify` and `_update` do with it)
            name = alloc.task_group
            tg = groups.get(name)
            if (tg is not None and policies[name] is None and alloc.node_id in candidate_ids
                    and alloc.desired_status not in _SERVER_TERMINAL
                    and alloc.client_status not in CLIENT_TERMINAL_STATUSES):
                nodes = covered[name]
                if alloc.node_id not in nodes:
                    nodes.add(alloc.node_id)
                    old = alloc.job
                    if (old.job_modify_index == modify_index and old.version == version if old is not None
                            else alloc.job_version == version):
                        du = dus.get(name)
                        if du is None:
                            du = dus[name] = self._du(name)
                        du.ignore += 1
                    else:
                        self._update(alloc, tg)
                    continue
            self._classify(alloc, candidate_ids, covered)
        # one (read-only) request per group serves every node
        requests = [(tg, PlacementRequest(alloc_name(job.id, tg.name, 0), tg)) for tg in job.task_groups or ()]
        place = self.result.place
        if len(requests) == 1:
            tg, req = requests[0]
            taken = covered[tg.name]
            before = len(place)
            place.extend([(node, req) for node in self.candidates if node.id not in taken])
            if len(place) > before:
                self._du(tg.name).place += len(place) - before
            return self.result
        for node in self.candidates:
            node_id = node.id
            for tg, req in requests:
                if node_id in covered[tg.name]:
                    continue
                place.append((node, req))
                du = dus.get(tg.name)
                if du is None:
                    du = dus[tg.name] = self._du(tg.name)
                du.place += 1
        return self.result

    def _classify(self, alloc: Allocation, candidate_ids: set[str], covered: dict[str, set[str]]) -> None:
        job = self.job
        tg = self._groups.get(alloc.task_group)
        if alloc.terminal:
            if (self.sysbatch and alloc.client_status == ALLOC_CLIENT_COMPLETE
                    and alloc.job_version == job.version and tg is not None):
                covered[tg.name].add(alloc.node_id)  # ran to completion at this version: do not run again
                self._du(alloc.task_group).ignore += 1
            return
        if tg is None:
            self._stop(alloc, ALLOC_NOT_NEEDED)
            return
        nodes = covered[tg.name]
        if self._disconnect_rules(alloc, tg, nodes):
            return
        if alloc.node_id not in candidate_ids:
            self._off_candidate(alloc, nodes)
            return
        if alloc.node_id in nodes:
            self._stop(alloc, ALLOC_NOT_NEEDED)  # a duplicate on this node
            return
        nodes.add(alloc.node_id)
        self._update(alloc, tg)

    def _disconnect_rules(self, alloc: Allocation, tg, covered: set[str]) -> bool:
        """Nomad's disconnect rules for system jobs: an alloc on a disconnected node becomes
        `unknown` (until `lost_after`, then lost) and is never replaced elsewhere (one per node);
        an unknown alloc on a node that is back waits for its client; a reconnected one is kept.
        False when none applies (groups without a `disconnect` block are lost as before)."""
        policy = self._policies[tg.name]
        if policy is None:
            return False
        node = self.node_lookup(alloc.node_id)
        du = self._du(alloc.task_group)
        if node is not None and node.status == NODE_STATUS_DISCONNECTED:
            if alloc.client_status != ALLOC_CLIENT_UNKNOWN:
                self.result.attribute_updates.append(
                    with_client_status(alloc, ALLOC_CLIENT_UNKNOWN, self.now, ALLOC_UNKNOWN))
                du.disconnect += 1
                self._followup(self.now + policy.lost_after)
            elif expired(alloc, policy, self.now):
                self._stop(alloc, ALLOC_LOST, ALLOC_CLIENT_LOST)
                return True
            else:
                du.ignore += 1
            covered.add(alloc.node_id)
            return True
        if node is None or node.status != NODE_STATUS_READY:
            return False
        if alloc.client_status == ALLOC_CLIENT_UNKNOWN:
            covered.add(alloc.node_id)  # the node is back; its client has not reported the alloc yet
            du.ignore += 1
            return True
        if needs_reconnect(alloc) and alloc.client_status in (ALLOC_CLIENT_RUNNING, ALLOC_CLIENT_PENDING):
            self.result.attribute_updates.append(with_client_status(alloc, alloc.client_status, self.now))
            du.reconnect += 1
            covered.add(alloc.node_id)
            return True
        return False

    def _followup(self, wait_until: int) -> None:
        """One follow-up eval at the earliest `lost_after` of the allocs marked unknown now."""
        if self.result.followup_evals:
            first = self.result.followup_evals[0]
            self.result.followup_evals[0] = evolve(first, wait_until=min(first.wait_until, wait_until))
            return
        job = self.job
        self.result.followup_evals.append(Evaluation(
            id=generate_uuid(), namespace=job.namespace, priority=self.priority, type=job.type,
            triggered_by=TRIGGER_MAX_DISCONNECT_TIMEOUT, job_id=job.id, job_modify_index=job.job_modify_index,
            status="pending", status_description="created for delayed disconnect timeout", wait_until=wait_until,
            previous_eval=self.eval_id, create_time=self.now, modify_time=self.now,
        ))

    def _off_candidate(self, alloc: Allocation, covered: set[str]) -> None:
        node = self.node_lookup(alloc.node_id)
        if node is None or node.status in (NODE_STATUS_DOWN, NODE_STATUS_DISCONNECTED):
            self._stop(alloc, ALLOC_LOST, ALLOC_CLIENT_LOST)
        elif (node.status == NODE_STATUS_READY and not self._left_job(node)
              and (node.drain_strategy is None or not alloc.desired_transition.migrate)):
            # Ready but ineligible, or draining while the drainer has not yet marked this
            # alloc (system allocs go last): keep what runs there.
            covered.add(alloc.node_id)
            self._du(alloc.task_group).ignore += 1
        else:
            self._stop(alloc, ALLOC_NODE_TAINTED if node.drain_strategy is not None else ALLOC_NOT_NEEDED)

    def _left_job(self, node: Node) -> bool:
        return not (datacenter_matches(self.job.datacenters, node.datacenter)
                    and pool_matches(self.job.node_pool, node.node_pool))

    def _update(self, alloc: Allocation, tg) -> None:
        du = self._du(tg.name)
        job = self.job
        same = (alloc.job.job_modify_index == job.job_modify_index and alloc.job.version == job.version
                if alloc.job is not None else alloc.job_version == job.version)
        if same:
            du.ignore += 1
            return
        kind = self.update_fn(alloc, job, tg)
        if kind == UPDATE_IGNORE:
            du.ignore += 1
        elif kind == UPDATE_INPLACE:
            self.result.inplace.append(alloc)
            du.in_place_update += 1
        else:
            node = self.node_lookup(alloc.node_id)
            req = PlacementRequest(alloc.name, tg, alloc, False, "destructive", ALLOC_UPDATING)
            self.result.place.append((node, req))
            du.destructive_update += 1
