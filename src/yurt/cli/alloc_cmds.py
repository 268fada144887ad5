"""`alloc logs` and `alloc stop`."""

from .alloc_status import find_alloc, task_group_of
from .command import Command, CommandError, interruptible
from .format import format_list, limit, q
from .monitor import EvalMonitor

BYTES_TO_LINES = 120
DEFAULT_TAIL_LINES = 10


def alloc_task(alloc: dict) -> str:
    """The only task of the alloc's group, or Nomad's "Please specify the task." error."""
    group = task_group_of(alloc)
    if group is None:
        raise CommandError(f"Failed to validate task: Could not find allocation task group: {alloc.get('TaskGroup', '')}")
    tasks = group.get("Tasks") or []
    if len(tasks) == 1:
        return tasks[0]["Name"]
    listing = "".join(f"  * {t.get('Name', '')}\n" for t in tasks)
    raise CommandError(
        f"Failed to validate task: Allocation {q(limit(alloc.get('ID', ''), 8))} is running the following tasks:\n"
        f"{listing}\nPlease specify the task."
    )


def check_task(alloc: dict, task: str) -> None:
    group = task_group_of(alloc)
    if group is None:
        raise CommandError(f"Failed to validate task: Could not find allocation task group: {alloc.get('TaskGroup', '')}")
    names = [t.get("Name", "") for t in group.get("Tasks") or []]
    if task not in names:
        raise CommandError(f"Failed to validate task: Could not find task named: {task}, found:\n{format_list(names)}")


def last_lines(text: str, count: int) -> str:
    """The last `count` lines (a trailing newline does not start a new line)."""
    lines = text.splitlines(keepends=True)
    return "".join(lines[-count:]) if count > 0 else ""


class AllocLogsCommand(Command):
    name = "alloc logs"
    synopsis = "Streams the logs of a task."
    help = """
Usage: yurt alloc logs [options] <allocation> <task>
Alias: yurt logs

  Streams the stdout/stderr of the given allocation and task.

{general}

Logs Specific Options:

  -stdout
    Display stdout logs. This is used as the default value in all commands
    except when using the "-f" flag where both stdout and stderr are used as
    default.

  -stderr
    Display stderr logs.

  -task <task-name>
    Sets the task to view the logs. If task name is given with both an argument
    and the '-task' option, preference is given to the '-task' option.

  -verbose
    Show full information.

  -f
    Causes the output to not stop when the end of the logs are reached, but
    rather to wait for additional output.

  -tail
    Show the logs contents with offsets relative to the end of the logs. If no
    offset is given, -n is defaulted to 10.

  -n
    Sets the tail location in best-efforted number of lines relative to the end
    of the logs.

  -c
    Sets the tail location in number of bytes relative to the end of the logs.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        for name in ("verbose", "job", "tail", "f", "stderr", "stdout"):
            self.flags.bool(name)
        self.flags.int("n", -1).int("c", -1).string("task").string("group")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not rest:
            return self.usage_error("A job ID is required" if self.flag("job") else "An allocation ID is required")
        if len(rest) > 2:
            return self.usage_error("This command takes one or two arguments")
        alloc = find_alloc(self, rest[0], multiple_is_error=True)
        assert alloc is not None
        task = self.flag("task")
        if task:
            check_task(alloc, task)
        elif len(rest) == 2:
            task = rest[1]
            if not task:
                raise CommandError("Task name required")
        else:
            task = alloc_task(alloc)
        if self.flag("stderr") and self.flag("stdout"):
            raise CommandError("Unable to support both stdout and stderr")
        log_type = "stderr" if self.flag("stderr") else "stdout"
        try:
            self._read(alloc, task, log_type)
        except CommandError as exc:
            raise CommandError(f"Failed to read {log_type} file: {exc}") from exc
        return 0

    def _params(self, task: str, log_type: str) -> tuple[dict, int]:
        params = {"task": task, "type": log_type, "plain": True, "origin": "start", "offset": 0}
        lines = -1
        if self.flag("tail"):
            n, c = self.flag("n"), self.flag("c")
            if n != -1 and c != -1:
                raise CommandError("both -n and -c set")
            params["origin"] = "end"
            if n != -1:
                params["offset"], lines = n * BYTES_TO_LINES, n
            elif c != -1:
                params["offset"] = c
            else:
                params["offset"], lines = DEFAULT_TAIL_LINES * BYTES_TO_LINES, DEFAULT_TAIL_LINES
        return params, lines

    def _read(self, alloc: dict, task: str, log_type: str) -> None:
        params, lines = self._params(task, log_type)
        path = f"/v1/client/fs/logs/{alloc['ID']}"
        if self.flag("f"):
            params["follow"] = True
            self._follow(path, params, lines)
            return
        text = self.call("error reading file", "GET", path, **params)
        if isinstance(text, (dict, list)):
            text = str(text)
        text = text or ""
        self.ctx.out.write(last_lines(text, lines) if lines >= 0 else text)

    def _follow(self, path: str, params: dict, lines: int) -> None:
        pending = lines >= 0
        buffered = ""
        try:
            with interruptible(), self.client().stream(path, **params) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise CommandError(f"Unexpected response code: {resp.status_code} ({resp.text.strip()})")
                for chunk in resp.iter_text():
                    if pending:
                        buffered += chunk
                        continue
                    self.ctx.out.write(chunk)
                    self.ctx.out.flush()
        except KeyboardInterrupt:
            pass
        if pending:
            self.ctx.out.write(last_lines(buffered, lines))


class AllocStopCommand(Command):
    name = "alloc stop"
    synopsis = "Stop and reschedule a running allocation"
    help = """
Usage: yurt alloc stop [options] <allocation>

  Stop an existing allocation. This command is used to signal a specific alloc
  to shut down. When the allocation has been shut down, it will then be
  rescheduled. An interactive monitoring session will display log lines as the
  allocation completes shutting down.

{general}

Stop Specific Options:

  -detach
    Return immediately instead of entering monitor mode. After the
    stop command is submitted, a new evaluation ID is printed to the
    screen.

  -verbose
    Show full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose").bool("no-shutdown-delay")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <alloc-id>")
        alloc = find_alloc(self, rest[0], multiple_is_error=True)
        assert alloc is not None
        params = {"namespace": alloc.get("Namespace") or "default"}
        if self.flag("no-shutdown-delay"):
            params["no_shutdown_delay"] = True
        resp = self.call("Error stopping allocation", "POST", f"/v1/allocation/{alloc['ID']}/stop", **params) or {}
        if self.flag("detach"):
            self.output(resp.get("EvalID", ""))
            return 0
        return EvalMonitor(self, self.id_length).monitor(resp.get("EvalID", ""))
