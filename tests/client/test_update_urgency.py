"""Which client status changes go to the server at once (urgent) and which take the normal
batching: a server-stopped alloc's `complete` waits, everything else new goes at once."""

from yurt.client.allocrunner import AllocRunner
from yurt.client.config import ClientConfig
from yurt.structs.alloc import TaskState
from yurt.structs.base import evolve
from yurt.testing.mock import mock_alloc


class _Ctx:
    def __init__(self, tmp_path):
        self.config = ClientConfig(data_dir=str(tmp_path))
        self.sent: list[tuple[str, bool]] = []

    def queue_update(self, update, urgent=False):
        self.sent.append((update["ClientStatus"], urgent))


def _report(runner: AllocRunner, state: str, failed: bool = False) -> None:
    runner.task_states = {"web": TaskState(state=state, failed=failed)}
    runner._report()


def test_a_stop_the_server_asked_for_is_batched_other_changes_are_urgent(tmp_path):
    ctx = _Ctx(tmp_path)
    runner = AllocRunner(ctx, mock_alloc())
    _report(runner, "pending")
    _report(runner, "running")
    _report(runner, "running")
    assert ctx.sent == [("pending", False), ("running", True), ("running", False)]
    runner.alloc = evolve(runner.alloc, desired_status="stop")
    _report(runner, "dead")
    assert ctx.sent[-1] == ("complete", False)  # the server asked for it: normal batching


def test_complete_on_its_own_and_failures_stay_urgent(tmp_path):
    ctx = _Ctx(tmp_path)
    finished = AllocRunner(ctx, mock_alloc())
    _report(finished, "running")
    _report(finished, "dead")  # a batch job that ended by itself
    assert ctx.sent[-1] == ("complete", True)
    stopped = AllocRunner(ctx, evolve(mock_alloc(), desired_status="stop"))
    _report(stopped, "running")
    _report(stopped, "dead", failed=True)
    assert ctx.sent[-1] == ("failed", True)
