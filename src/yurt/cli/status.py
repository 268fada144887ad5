"""`status [ID]`: find what an ID prefix names (job, alloc, eval, node) and show it."""

from .command import Command, CommandError
from .flags import FlagError, HelpRequested
from .format import q

_CONTEXTS = (
    ("jobs", "/v1/jobs"),
    ("allocs", "/v1/allocations"),
    ("evals", "/v1/evaluations"),
    ("nodes", "/v1/nodes"),
)


class StatusCommand(Command):
    name = "status"
    synopsis = "Display the status output for a resource"
    help = """
Usage: yurt status [options] <identifier>

  Display the status output for any Nomad resource matching the given
  identifier (a job, allocation, evaluation or node ID or ID prefix). With no
  identifier, the list of jobs is shown.

{general}

Status Options:

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("verbose").bool("ui")

    def run(self, args: list[str]) -> int:
        try:
            rest = self.flags.parse(args)
        except HelpRequested:
            self.output(self.help_text())
            return 0
        except FlagError as exc:
            self.error(f"Error parsing arguments: {q(str(exc))}")
            return 1
        if not rest:
            return self._delegate("jobs", args)
        ident = rest[-1]
        matches = self._search(ident)
        context = self._resolve(ident, matches)
        if context is None:
            return 1
        return self._delegate(context, args)

    def _search(self, ident: str) -> dict[str, list[str]]:
        matches: dict[str, list[str]] = {}
        for context, path in _CONTEXTS:
            found = self.lookup_by_prefix("Error querying search with id", path, ident)
            matches[context] = sorted({item["ID"] for item in found})
        return matches

    def _resolve(self, ident: str, matches: dict[str, list[str]]) -> str | None:
        exact = [ctx for ctx, ids in matches.items() if ids and ids[0] == ident]
        if len(exact) > 1:
            self._multi_match(ident, matches)
            return None
        if exact:
            return exact[0]
        found = [ctx for ctx, ids in matches.items() if ids]
        if len(found) > 1 or any(len(matches[ctx]) > 1 for ctx in found):
            self._multi_match(ident, matches)
            return None
        if not found:
            raise CommandError(f"Unable to resolve ID: {q(ident)}")
        return found[0]

    def _multi_match(self, ident: str, matches: dict[str, list[str]]) -> None:
        self.error(f"Multiple matches found for id {q(ident)}")
        for context, ids in matches.items():
            if ids:
                self.error(f"\n{context.title()}:")
                self.error(", ".join(ids))

    def _delegate(self, context: str, args: list[str]) -> int:
        from .alloc_status import AllocStatusCommand
        from .eval_cmds import EvalStatusCommand
        from .job_status import JobStatusCommand
        from .node_status import NodeStatusCommand

        command_class = {"jobs": JobStatusCommand, "allocs": AllocStatusCommand,
                         "evals": EvalStatusCommand, "nodes": NodeStatusCommand}[context]
        return command_class(self.ctx).run(args)
