"""The `deployment` table survives a restart (log replay and snapshot), and its commands
refuse what Nomad refuses without changing anything."""

import pytest

from yurt.state import StateStore
from yurt.state.commands import DeploymentDelete, DeploymentPromote, DeploymentStatusSet, JobRegister, PlanApply
from yurt.state.txn import StateError
from yurt.structs import Deployment, DeploymentState
from yurt.structs.defaults import canonicalize
from yurt.testing.mock import mock_job


def _setup(store):
    job = canonicalize(mock_job(id="web"))
    store.apply(JobRegister(job=job, submit_time=1))
    stored = store.snapshot().job_by_id("default", "web")
    d = Deployment(id="dep-1", job_id="web", job_version=stored.version, job_create_index=stored.create_index,
                   task_groups={"web": DeploymentState(desired_total=10, desired_canaries=1)})
    store.apply(PlanApply(job=stored, deployment=d, updated_at=5))
    return d


@pytest.mark.parametrize("snapshot", [False, True])
def test_deployments_survive_reopen(tmp_path, snapshot):
    store = StateStore.open(str(tmp_path), snapshot_every=0)
    _setup(store)
    store.apply(DeploymentStatusSet(deployment_id="dep-1", status="paused", status_description="Deployment is paused"))
    if snapshot:
        store.write_snapshot()
    before = store.snapshot().deployment_by_id("dep-1")
    store.close()
    reopened = StateStore.open(str(tmp_path))
    snap = reopened.snapshot()
    assert snap.deployment_by_id("dep-1") == before
    assert snap.latest_deployment_by_job("default", "web").status == "paused"
    assert snap.table_index("deployment") == before.modify_index
    reopened.close()


def test_invalid_commands_change_nothing():
    store = StateStore.open(None)
    _setup(store)
    before = store.snapshot().deployment_by_id("dep-1")
    with pytest.raises(StateError, match='deployment "nope" not found'):
        store.apply(DeploymentStatusSet(deployment_id="nope", status="failed", status_description="x"))
    with pytest.raises(StateError, match='has 0/1 healthy allocations'):
        store.apply(DeploymentPromote(deployment_id="dep-1", all=True))
    with pytest.raises(StateError, match='deployment has no task group "db"'):
        store.apply(DeploymentPromote(deployment_id="dep-1", groups=["db"]))
    assert store.snapshot().deployment_by_id("dep-1") == before
    store.apply(DeploymentDelete(deployment_ids=["dep-1"]))
    assert store.snapshot().deployments() == []
