"""yurt.state: the FSM of typed commands, in-memory indexed tables, snapshots, watchers.

    store = StateStore.open(data_dir)          # None = in memory
    index = store.apply(JobRegister(job=job, eval=ev, submit_time=now))
    snap = store.snapshot()                    # O(1), immutable
    await store.wait_for_change(["allocs"], min_index, timeout)
"""

from .commands import (  # noqa: F401
    AllocClientUpdate,
    AllocDesiredTransition,
    AllocUpdate,
    Command,
    EvalDelete,
    EvalUpsert,
    JobDeregister,
    JobRegister,
    JobStabilitySet,
    NodeDeregister,
    NodeRegister,
    NodeUpdateDrain,
    NodeUpdateEligibility,
    NodeUpdateStatus,
    PlanApply,
    SchedulerConfigSet,
    decode_command,
    encode_command,
)
from .fsm_jobs import JOB_TRACKED_VERSIONS  # noqa: F401
from .store import DEFAULT_SNAPSHOT_EVERY, StateStore, relax_gc  # noqa: F401
from .tables import TABLES, StateSnapshot  # noqa: F401
from .txn import StateError  # noqa: F401
