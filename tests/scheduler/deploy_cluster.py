"""A scheduler test cluster with deployments: the real state store, the plan applier run
synchronously, and the generic scheduler as the worker runs it (tests move `now` by hand)."""


from yurt.scheduler import new_scheduler
from yurt.scheduler.node_class import computed_class
from yurt.server.plan_apply import PlanApplier
from yurt.state import StateStore
from yurt.state.commands import (
    AllocClientUpdate,
    AllocUpdate,
    EvalUpsert,
    JobRegister,
    NodeRegister,
)
from yurt.structs import (
    SECOND,
    AllocDeploymentStatus,
    UpdateStrategy,
    evolve,
)
from yurt.structs.defaults import canonicalize
from yurt.testing.mock import mock_eval, mock_job, mock_node

NOW = 1_700_000_000 * SECOND


class Cluster:
    def __init__(self, nodes: int = 3) -> None:
        self.store = StateStore.open(None)
        self.now = NOW
        self.applier = PlanApplier(self.store, lambda: self.now)
        self.evals = []
        for _ in range(nodes):
            node = mock_node()
            self.store.apply(NodeRegister(node=evolve(node, computed_class=computed_class(node))))

    # the Planner protocol
    def submit_plan(self, plan):
        return self.applier.apply(plan), self.store.snapshot()

    def update_eval(self, ev):
        self.evals.append(ev)
        self.store.apply(EvalUpsert(evals=[ev]))

    def create_eval(self, ev):
        self.store.apply(EvalUpsert(evals=[ev]))

    def reblock_eval(self, ev):
        self.store.apply(EvalUpsert(evals=[ev]))

    # helpers
    def register(self, job, strip_update=False):
        job = canonicalize(job)
        if strip_update:
            job = evolve(job, update=None, task_groups=[evolve(tg, update=None) for tg in job.task_groups])
        ev = mock_eval(job)
        self.store.apply(JobRegister(job=job, eval=ev, submit_time=self.now))
        self.run(ev)
        return self.job(job.id)

    def job(self, job_id):
        return self.store.snapshot().job_by_id("default", job_id)

    def run(self, ev=None, job_id=None):
        if ev is None:
            ev = mock_eval(self.job(job_id), triggered_by="deployment-watcher")
        snap = self.store.snapshot()
        new_scheduler(ev.type, snap, self, now_ns=self.now).process(ev)
        return self.evals[-1]

    def live(self, job_id):
        return [a for a in self.store.snapshot().allocs_by_job("default", job_id) if not a.terminal]

    def deployment(self, job_id):
        return self.store.snapshot().latest_deployment_by_job("default", job_id)

    def report(self, allocs, healthy=True):
        self.now += SECOND
        ups = [AllocUpdate(id=a.id, client_status="running",
                           deployment_status=AllocDeploymentStatus(healthy=healthy)) for a in allocs]
        self.store.apply(AllocClientUpdate(allocs=ups, updated_at=self.now))

    def settle(self, job_id):
        """Every live alloc reports running and healthy."""
        self.report([a for a in self.live(job_id)
                     if a.deployment_status is None or a.deployment_status.healthy is None])


def service(count=3, **update):
    strategy = UpdateStrategy(max_parallel=update.pop("max_parallel", 1), health_check="task_states",
                              min_healthy_time=1 * SECOND, healthy_deadline=60 * SECOND,
                              progress_deadline=120 * SECOND, **update)
    job = mock_job(id="web-svc", create_index=0, modify_index=0, job_modify_index=0)
    tg = evolve(job.task_groups[0], count=count, update=strategy, networks=None)
    return evolve(job, task_groups=[tg])


def changed(job, value="v2"):
    tg = job.task_groups[0]
    task = evolve(tg.tasks[0], env={"VERSION": value})
    return evolve(job, task_groups=[evolve(tg, tasks=[task])])


def versions(c, job_id="web-svc"):
    return sorted(a.job_version for a in c.live(job_id))


