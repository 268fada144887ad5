"""The `yurt` command tree: Nomad's command names, aliases, help and exit codes.

`main(argv)` finds the longest registered command name at the front of argv (e.g.
`operator scheduler get-config`), handles `-h/-help/--help`, runs it, and turns
failures worded for users into exit code 1. `yurt agent ...` goes to
`yurt.agent.command.main`.
"""

import os
import sys

import httpx

from yurt.api import APIError

from .alloc_cmds import AllocLogsCommand, AllocStopCommand
from .alloc_exec import AllocExecCommand
from .alloc_fs import AllocFSCommand
from .alloc_ops import AllocRestartCommand, AllocSignalCommand
from .alloc_status import AllocStatusCommand
from .command import Command, CommandError, Context
from .deployment_cmds import DEPLOYMENT_COMMANDS
from .eval_cmds import EvalListCommand, EvalStatusCommand
from .flags import CLIENT_FLAGS, TLS_FLAGS
from .fmt_cmd import FmtCommand
from .format import FormatError
from .job_cmds import JobHistoryCommand, JobInspectCommand, JobStopCommand
from .job_dispatch import JobDispatchCommand, JobPeriodicForceCommand
from .job_init import JobInitCommand
from .job_lifecycle import (
    JobRevertCommand,
    JobScaleCommand,
    JobScalingEventsCommand,
    JobStartCommand,
)
from .job_plan import JobPlanCommand
from .job_restart import JobRestartCommand
from .job_run import JobRunCommand, JobValidateCommand
from .job_status import JobStatusCommand
from .misc_cmds import (
    SchedulerGetConfigCommand,
    SchedulerSetConfigCommand,
    ServerMembersCommand,
    VersionCommand,
)
from .node_drain import NodeDrainCommand, NodeEligibilityCommand
from .node_status import NodeStatusCommand
from .status import StatusCommand
from .system_cmds import SystemGCCommand, SystemReconcileSummariesCommand

COMMANDS: dict[str, type[Command]] = {
    cls.name: cls
    for cls in (
        JobRunCommand, JobStatusCommand, JobInspectCommand, JobHistoryCommand, JobStopCommand, JobInitCommand,
        JobValidateCommand, AllocStatusCommand, AllocLogsCommand, AllocStopCommand, NodeStatusCommand,
        EvalStatusCommand, EvalListCommand, StatusCommand, ServerMembersCommand, VersionCommand,
        SchedulerGetConfigCommand, SchedulerSetConfigCommand, FmtCommand, JobPlanCommand,
        AllocFSCommand, AllocSignalCommand, AllocRestartCommand,
        AllocExecCommand,
        JobDispatchCommand, JobPeriodicForceCommand, JobRevertCommand, JobScaleCommand, JobStartCommand,
        JobRestartCommand, JobScalingEventsCommand,
        NodeDrainCommand, NodeEligibilityCommand,
        SystemGCCommand, SystemReconcileSummariesCommand,
        *DEPLOYMENT_COMMANDS,
    )
}

ALIASES = {
    "run": "job run", "plan": "job plan", "stop": "job stop", "init": "job init", "inspect": "job inspect",
    "start": "job start",
    "validate": "job validate", "logs": "alloc logs", "exec": "alloc exec",
    "alloc-status": "alloc status", "eval-status": "eval status", "node-status": "node status",
    "server-members": "server members", "node-drain": "node drain",
    "fs": "alloc fs",
}

GROUPS = {
    "job": "Interact with jobs",
    "job periodic": "Interact with periodic jobs",
    "alloc": "Interact with allocations",
    "node": "Interact with nodes",
    "eval": "Interact with evaluations",
    "deployment": "Interact with deployments",
    "server": "Interact with servers",
    "operator": "Provides cluster-level tools for Nomad operators",
    "operator scheduler": "Provides access to the scheduler configuration",
    "system": "Interact with the system API",
    "system reconcile": "Performs reconciliation tasks",
}

COMMON = ("run", "stop", "status", "node", "job", "alloc", "agent", "init", "inspect", "logs", "validate")

_HELP_FLAGS = ("-h", "-help", "--help")


def _synopses() -> dict[str, str]:
    table = {name: cls.synopsis for name, cls in COMMANDS.items()}
    table.update(GROUPS)
    table["agent"] = "Runs a Nomad agent"
    for alias, target in ALIASES.items():
        if "-" not in alias:
            table[alias] = COMMANDS[target].synopsis
    return table


def top_help() -> str:
    synopses = _synopses()
    top = sorted(name for name in synopses if " " not in name)
    common = [n for n in COMMON if n in synopses]
    other = [n for n in top if n not in common]
    width = max(len(n) for n in top) + 4
    lines = ["Usage: yurt [-version] [-help] <command> [args]", "", "Common commands:"]
    lines += [f"    {n.ljust(width)}{synopses[n]}" for n in common]
    lines += ["", "Other commands:"]
    lines += [f"    {n.ljust(width)}{synopses[n]}" for n in other]
    return "\n".join(lines)


def group_help(group: str) -> str:
    synopses = _synopses()
    depth = group.count(" ") + 1
    subs = sorted(n for n in synopses if n.startswith(group + " ") and n.count(" ") == depth)
    width = max(len(n.split(" ")[-1]) for n in subs) + 4
    lines = [f"Usage: yurt {group} <subcommand> [options] [args]", "", f"  {synopses[group]}", "", "Subcommands:"]
    lines += [f"    {n.split(' ')[-1].ljust(width)}{synopses[n]}" for n in subs]
    return "\n".join(lines)


def _resolve(argv: list[str]) -> tuple[str, list[str]]:
    """(command name, remaining args); the name may be a group or ''."""
    if argv and argv[0] in ALIASES:
        return ALIASES[argv[0]], argv[1:]
    for size in (3, 2, 1):
        name = " ".join(argv[:size])
        if len(argv) >= size and (name in COMMANDS or name in GROUPS):
            return name, argv[size:]
    return "", argv


def _leading_global_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """`yurt -address X job status` (global flags before the command): move them to the command."""
    valued = {f"-{n}" for n in (*CLIENT_FLAGS, *TLS_FLAGS)} | {f"--{n}" for n in (*CLIENT_FLAGS, *TLS_FLAGS)}
    leading: list[str] = []
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in _HELP_FLAGS:
        flag = argv[i].split("=", 1)[0]
        if flag in valued and "=" not in argv[i] and i + 1 < len(argv):
            leading += argv[i : i + 2]
            i += 2
        elif flag in valued:
            leading.append(argv[i])
            i += 1
        else:
            break
    return leading, argv[i:]


def _wants_help(args: list[str]) -> bool:
    for arg in args:
        if arg == "--":
            return False
        if arg in _HELP_FLAGS:
            return True
    return False


def _run_agent(args: list[str]) -> int:
    from yurt.agent.command import main as agent_main

    return agent_main(args)


def main(argv: list[str] | None = None, ctx: Context | None = None) -> int:
    """Run one `yurt` command; returns the process exit code."""
    ctx = ctx or Context()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-v", "-version", "--version"):
        argv = ["version"]
    if not argv or argv[0] in _HELP_FLAGS:
        ctx.out.write(top_help() + "\n")
        return 0 if argv else 1
    if argv[0] == "agent":
        return _run_agent(argv[1:])
    leading, argv = _leading_global_flags(argv)
    name, args = _resolve(argv)
    args = leading + args
    if not name:
        ctx.err.write(top_help() + "\n")
        return 127
    if name in GROUPS:
        ctx.out.write(group_help(name) + "\n")
        return 0 if _wants_help(args) else 1
    command = COMMANDS[name](ctx)
    if _wants_help(args):
        ctx.out.write(command.help_text() + "\n")
        return 0
    return _run_command(command, args)


def _run_command(command: Command, args: list[str]) -> int:
    try:
        return command.run(args)
    except (CommandError, FormatError) as exc:
        command.error(str(exc))
    except APIError as exc:
        command.error(f"Error: {exc}")
    except httpx.HTTPError as exc:
        command.error(f"Error: {exc}")
    except ImportError as exc:
        command.error(f"Error: a part of yurt this command needs is missing: {exc}")
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout(command)
    return 1


def _silence_stdout(command: Command) -> None:
    """The reader went away (`| head`): drop the rest of the output quietly."""
    if command.ctx.out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
