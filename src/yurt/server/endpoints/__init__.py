"""The logic behind the API routes: validate, build commands (with their evals), apply.

Routes in `yurt.http` decode requests and call these; errors are `EndpointError` with
Nomad's status code and text."""

from .allocs import AllocUpdateBatcher, stop_alloc  # noqa: F401
from .errors import EndpointError, multi_error  # noqa: F401
from .job_ops import ScaleRequest, scale_job  # noqa: F401
from .jobs import RegisterResult, deregister_job, evaluate_job, register_job, revert_job  # noqa: F401
from .node_ops import drain_node, evaluate_node, purge_node, set_node_eligibility  # noqa: F401
from .nodes import heartbeat_node, mark_node_down, node_update_evals, register_node  # noqa: F401
from .operator import set_scheduler_config  # noqa: F401
