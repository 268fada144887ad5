"""The `periodic_launch` table: the last launch time of every periodic job (Nomad's
PeriodicLaunch), so a restarted or newly elected leader knows whether it missed a launch.

Rows are written by the FSM as Nomad's does: when an active periodic job is first
registered its insertion time (the command's `submit_time`) counts as a launch; when a
child `<parent>/periodic-<unix seconds>` of a periodic parent is registered, its launch
time is parsed from the ID. `PeriodicLaunchUpsert` sets a row directly. Purging the
parent deletes its row. Times are unix nanoseconds; the FSM never reads the clock.
"""

from yurt.structs import Job, NomadStruct

from .txn import Txn

PERIODIC_LAUNCH_SUFFIX = "/periodic-"
NS_PER_SECOND = 1_000_000_000


class PeriodicLaunch(NomadStruct):
    id: str = ""
    namespace: str = "default"
    launch: int = 0  # unix nanoseconds
    create_index: int = 0
    modify_index: int = 0


def launch_time_from_child_id(child_id: str) -> int | None:
    """Unix nanoseconds encoded in a periodic child's ID, or None when it has none."""
    at = child_id.rfind(PERIODIC_LAUNCH_SUFFIX)
    if at < 0:
        return None
    try:
        return int(child_id[at + len(PERIODIC_LAUNCH_SUFFIX):]) * NS_PER_SECOND
    except ValueError:
        return None


def is_periodic_active(job: Job) -> bool:
    """Nomad's Job.IsPeriodicActive: periodic, enabled, not stopped, not a parameterized template."""
    return job.periodic is not None and job.periodic.enabled and not job.stop and not job.is_parameterized


def upsert_launch(txn: Txn, namespace: str, job_id: str, launch: int) -> None:
    existing = txn.periodic_launch(namespace, job_id)
    create_index = existing.create_index if existing is not None else txn.index
    txn.put_periodic_launch(PeriodicLaunch(id=job_id, namespace=namespace, launch=launch,
                                           create_index=create_index, modify_index=txn.index))


def record_launch_on_register(txn: Txn, job: Job, submit_time: int) -> None:
    """After a JobRegister: the first-insertion row of an active periodic job, and the
    launch row of the parent when `job` is a periodic child."""
    if is_periodic_active(job) and txn.periodic_launch(job.namespace, job.id) is None:
        upsert_launch(txn, job.namespace, job.id, submit_time)
    if not job.parent_id:
        return
    parent = txn.job_by_id(job.namespace, job.parent_id)
    if parent is None or parent.periodic is None or parent.is_parameterized:
        return
    launch = launch_time_from_child_id(job.id)
    if launch is not None:
        upsert_launch(txn, job.namespace, parent.id, launch)
