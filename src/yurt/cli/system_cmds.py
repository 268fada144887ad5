"""`system gc` and `system reconcile summaries` (Nomad's system commands)."""

from .command import Command


class _SystemPut(Command):
    route = ""
    failure = ""

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if rest:
            return self.usage_error("This command takes no arguments")
        self.call(self.failure, "PUT", self.route)
        return 0


class SystemGCCommand(_SystemPut):
    name = "system gc"
    synopsis = "Run the system garbage collection process"
    route = "/v1/system/gc"
    failure = "Error running system garbage-collection"
    help = """
Usage: yurt system gc [options]

  Initializes a garbage collection of jobs, evaluations, allocations, and nodes.

  If ACLs are enabled, this option requires a management token.

{general}
"""


class SystemReconcileSummariesCommand(_SystemPut):
    name = "system reconcile summaries"
    synopsis = "Reconciles the summaries of all registered jobs"
    route = "/v1/system/reconcile/summaries"
    failure = "Error running system summary reconciliation"
    help = """
Usage: yurt system reconcile summaries [options]

  Reconciles the summaries of all registered jobs.

  If ACLs are enabled, this option requires a management token.

{general}
"""
