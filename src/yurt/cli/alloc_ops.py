"""`alloc signal` and `alloc restart`: lifecycle requests to the client running an allocation."""

from .alloc_status import find_alloc, task_group_of
from .command import Command, CommandError
from .format import format_list


def validate_task_exists(task: str, alloc: dict) -> None:
    """Nomad's `validateTaskExistsInAllocation`."""
    group = task_group_of(alloc)
    if group is None:
        raise CommandError(f"Could not find allocation task group: {alloc.get('TaskGroup', '')}")
    names = [t.get("Name", "") for t in group.get("Tasks") or []]
    if task not in names:
        raise CommandError(f"Could not find task named: {task}, found:\n{format_list(names)}")


def _task_argument(cmd: Command, rest: list[str]) -> str:
    """`-task` wins over the second argument, as in Nomad."""
    return cmd.flag("task") or (rest[1] if len(rest) >= 2 else "")


class AllocSignalCommand(Command):
    name = "alloc signal"
    synopsis = "Signal a running allocation"
    help = """
Usage: yurt alloc signal [options] <allocation> <task>

  Signal an existing allocation. This command is used to signal a specific alloc
  and its subtasks. If no task is provided then all of the allocations subtasks
  will receive the signal.

  When ACLs are enabled, this command requires a token with the
  'alloc-lifecycle', 'read-job', and 'list-jobs' capabilities for the
  allocation's namespace.

{general}

Signal Specific Options:

  -s
    Specify the signal that the selected tasks should receive. Defaults to SIGKILL.

  -task <task-name>
    Specify the individual task that will receive the signal. If task name is given
    with both an argument and the '-task' option, preference is given to the '-task'
    option.

  -verbose
    Show full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("verbose").string("s", "SIGKILL").string("task")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not 1 <= len(rest) <= 2:
            return self.usage_error("This command takes up to two arguments: <alloc-id> <task>")
        alloc = find_alloc(self, rest[0], multiple_is_error=True)
        assert alloc is not None
        task = _task_argument(self, rest)
        if task:
            validate_task_exists(task, alloc)
        self.call("Error signalling allocation", "PUT", f"/v1/client/allocation/{alloc['ID']}/signal",
                  {"Task": task, "Signal": self.flag("s")}, namespace=alloc.get("Namespace") or "default")
        return 0


class AllocRestartCommand(Command):
    name = "alloc restart"
    synopsis = "Restart a running allocation"
    help = """
Usage: yurt alloc restart [options] <allocation> <task>

  Restart an existing allocation. This command is used to restart a specific alloc
  and its tasks. If no task is provided then all of the allocation's tasks that
  are currently running will be restarted.

  Use the option '-all-tasks' to restart tasks that have already run, such as
  non-sidecar prestart and poststart tasks.

  When ACLs are enabled, this command requires a token with the
  'alloc-lifecycle', 'read-job', and 'list-jobs' capabilities for the
  allocation's namespace.

{general}

Restart Specific Options:

  -all-tasks
    If set, all tasks in the allocation will be restarted, even the ones that
    already ran. This option cannot be used with '-task' or the '<task>'
    argument.

  -task <task-name>
    Specify the individual task to restart. If task name is given with both an
    argument and the '-task' option, preference is given to the '-task' option.
    This option cannot be used with '-all-tasks'.

  -verbose
    Show full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("all-tasks").bool("verbose").string("task")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not 1 <= len(rest) <= 2:
            return self.usage_error("This command takes one or two arguments: <alloc-id> <task-name>")
        task = _task_argument(self, rest)
        all_tasks = bool(self.flag("all-tasks"))
        if all_tasks and task:
            raise CommandError("The -all-tasks option is not allowed when restarting a specific task.")
        alloc = find_alloc(self, rest[0], multiple_is_error=True)
        assert alloc is not None
        if task:
            validate_task_exists(task, alloc)
        body = {"AllTasks": True} if all_tasks else {"TaskName": task}
        try:
            self.call("", "PUT", f"/v1/client/allocation/{alloc['ID']}/restart", body,
                      namespace=alloc.get("Namespace") or "default")
        except CommandError as exc:
            reason = str(exc).removeprefix(": ")
            raise CommandError(f"Failed to restart {'task' if task else 'allocation'}:\n\n{reason}") from exc
        return 0
