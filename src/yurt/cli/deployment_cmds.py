"""`deployment list|status|promote|fail|pause|resume|unblock` and `job promote`, with
Nomad's output and errors."""

from .command import Command, CommandError
from .deployment_format import deployments_table, format_deployment
from .format import format_output, limit, q
from .job_dispatch import job_path
from .job_tables import alloc_stub_table
from .monitor import EvalMonitor

DETACH_HELP = """  -detach
    Return immediately instead of entering monitor mode. After deployment
    resume, the evaluation ID will be printed to the screen, which can be used
    to examine the evaluation using the eval-status command.

  -verbose
    Display full information.
"""

PROMOTE_HELP = """Promote Options:

  -group
    Group may be specified many times and is used to promote that particular
    group. If no specific groups are specified, all groups are promoted.

""" + DETACH_HELP


class _DeploymentCommand(Command):
    """Shared: find one deployment by ID or prefix, as Nomad's getDeployment."""

    def _find(self, given: str) -> dict:
        if len(given) == 36:
            return self.query("Error retrieving deployment", f"/v1/deployment/{given}")
        prefix = given.replace("-", "")
        if len(prefix) == 1:
            raise CommandError("Error retrieving deployment: Identifier must contain at least two characters.")
        prefix = prefix[: len(prefix) - len(prefix) % 2]
        found = self.lookup_by_prefix("Error retrieving deployment", "/v1/deployments", prefix)
        found = [d for d in found if d.get("ID", "").replace("-", "").startswith(prefix)] or found
        if len(found) > 1:
            raise CommandError(f"Prefix matched multiple deployments\n\n{deployments_table(found, self.id_length)}")
        if not found:
            raise CommandError(f"Deployment ID {q(given)} not found")
        return found[0]

    def _one_arg(self, args: list[str]) -> str | None:
        rest = self.parse(args)
        if rest is None:
            return None
        if len(rest) != 1:
            self.usage_error("This command takes one argument: <deployment id>")
            return None
        return rest[0]

    def _target(self, args: list[str]) -> dict | None:
        given = self._one_arg(args)
        return None if given is None else self._find(given)

    def _monitor(self, resp: dict) -> int:
        eval_id = (resp or {}).get("EvalID", "")
        if self.flag("detach") or not eval_id:
            return 0
        return EvalMonitor(self, self.id_length).monitor(eval_id)


class DeploymentListCommand(Command):
    name = "deployment list"
    synopsis = "List all deployments"
    help = """
Usage: yurt deployment list [options]

  List is used to list the set of deployments tracked by Nomad.

{general}

List Options:

  -json
    Output the deployments in a JSON format.

  -t
    Format and display the deployments using a Go template.

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("json").string("t").bool("verbose")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if rest:
            return self.usage_error("This command takes no arguments")
        deployments = self.query("Error retrieving deployments", "/v1/deployments") or []
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), deployments))
            return 0
        if not deployments:
            self.output("No deployments found")
            return 0
        self.output(deployments_table(deployments, self.id_length))
        return 0


class DeploymentStatusCommand(_DeploymentCommand):
    name = "deployment status"
    synopsis = "Display the status of a deployment"
    help = """
Usage: yurt deployment status [options] <deployment id>

  Status is used to display the status of a deployment. The status will display
  the number of desired changes as well as the currently applied changes.

{general}

Status Options:

  -verbose
    Display full information.

  -json
    Output the deployment in its JSON format.

  -monitor
    Enter monitor mode directly without modifying the deployment status.

  -t
    Format and display deployment using a Go template.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("verbose").bool("json").string("t").bool("monitor")

    def run(self, args: list[str]) -> int:
        given = self._one_arg(args)
        if given is None:
            return 1
        if self.flag("json") and self.flag("t"):
            raise CommandError("Both json and template formatting are not allowed")
        d = self._find(given)
        if self.flag("json") or self.flag("t"):
            self.output(format_output(self.flag("json"), self.flag("t"), d))
            return 0
        if self.flag("monitor"):
            return EvalMonitor(self, self.id_length).monitor_deployment(d["ID"])
        self.output(format_deployment(d, self.id_length))
        if self.flag("verbose"):
            allocs = self.query("Error retrieving deployment allocations",
                                f"/v1/deployment/allocations/{d['ID']}") or []
            self.output("\nAllocations")
            self.output(alloc_stub_table(allocs, True, self.id_length, self.ctx.now()))
        return 0


class DeploymentPromoteCommand(_DeploymentCommand):
    name = "deployment promote"
    synopsis = "Promote canaries in a deployment"
    help = """
Usage: yurt deployment promote [options] <deployment id>

  Promote is used to promote task groups in a deployment. Promotion should occur
  when the deployment has placed canaries for a task group and those canaries have
  been deemed healthy. When a task group is promoted, the rolling upgrade of the
  remaining allocations is unblocked. If the canaries are found to be unhealthy,
  the deployment may either be failed using the "yurt deployment fail" command,
  the job can be failed forward by submitting a new version or failed backwards by
  reverting to an older version using the "yurt job revert" command.

{general}

""" + PROMOTE_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.list("group").bool("detach").bool("verbose")

    def run(self, args: list[str]) -> int:
        d = self._target(args)
        if d is None:
            return 1
        return self._monitor(promote(self, d["ID"], self.flag("group") or [], "Error promoting deployment"))


def promote(cmd: Command, deployment_id: str, groups: list[str], what: str) -> dict:
    body = {"DeploymentID": deployment_id, "All": not groups, "Groups": groups or None}
    return cmd.call(what, "PUT", f"/v1/deployment/promote/{deployment_id}", body)


class DeploymentFailCommand(_DeploymentCommand):
    name = "deployment fail"
    synopsis = "Manually fail a deployment"
    help = """
Usage: yurt deployment fail [options] <deployment id>

  Fail is used to mark a deployment as failed. Failing a deployment will
  stop the placement of new allocations as part of rolling deployment and
  if the job is configured to auto revert, the job will attempt to roll back to a
  stable version.

{general}

Fail Options:

""" + DETACH_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose")

    def run(self, args: list[str]) -> int:
        d = self._target(args)
        if d is None:
            return 1
        resp = self.call("Error failing deployment", "PUT", f"/v1/deployment/fail/{d['ID']}") or {}
        short = q(limit(d["ID"], self.id_length))
        if resp.get("RevertedJobVersion") is not None:
            self.output(f"Deployment {short} failed. Auto-reverted to job version {resp['RevertedJobVersion']}.\n")
        else:
            self.output(f"Deployment {short} failed\n")
        return self._monitor(resp)


class DeploymentPauseCommand(_DeploymentCommand):
    name = "deployment pause"
    synopsis = "Pause a deployment"
    help = """
Usage: yurt deployment pause [options] <deployment id>

  Pause is used to pause a deployment. Pausing a deployment will pause the
  placement of new allocations as part of rolling deployment.

{general}

Pause Options:

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("verbose")

    def run(self, args: list[str]) -> int:
        d = self._target(args)
        if d is None:
            return 1
        self.call("Error pausing deployment", "PUT", f"/v1/deployment/pause/{d['ID']}",
                  {"DeploymentID": d["ID"], "Pause": True})
        self.output(f"Deployment {q(limit(d['ID'], self.id_length))} paused")
        return 0


class DeploymentResumeCommand(_DeploymentCommand):
    name = "deployment resume"
    synopsis = "Resume a paused deployment"
    help = """
Usage: yurt deployment resume [options] <deployment id>

  Resume is used to unpause a paused deployment. Resuming a deployment will
  resume the placement of new allocations as part of rolling deployment.

{general}

Resume Options:

""" + DETACH_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose")

    def run(self, args: list[str]) -> int:
        d = self._target(args)
        if d is None:
            return 1
        resp = self.call("Error resuming deployment", "PUT", f"/v1/deployment/pause/{d['ID']}",
                         {"DeploymentID": d["ID"], "Pause": False})
        self.output(f"Deployment {q(limit(d['ID'], self.id_length))} resumed")
        return self._monitor(resp)


class DeploymentUnblockCommand(_DeploymentCommand):
    name = "deployment unblock"
    synopsis = "Manually unblock a deployment"
    help = """
Usage: yurt deployment unblock [options] <deployment id>

  Unblock is used to unblock a multiregion deployment that's waiting for
  peer region deployments to complete.

{general}

Unblock Options:

""" + DETACH_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose")

    def run(self, args: list[str]) -> int:
        d = self._target(args)
        if d is None:
            return 1
        resp = self.call("Error unblocking deployment", "PUT", f"/v1/deployment/unblock/{d['ID']}",
                         {"DeploymentID": d["ID"]})
        self.output(f"Deployment {q(limit(d['ID'], self.id_length))} unblocked")
        return self._monitor(resp)


class JobPromoteCommand(_DeploymentCommand):
    name = "job promote"
    synopsis = "Promote a job's canaries"
    help = """
Usage: yurt job promote [options] <job id>

  Promote is used to promote task groups in the most recent deployment for the
  given job. Promotion should occur when the deployment has placed canaries for a
  task group and those canaries have been deemed healthy. When a task group is
  promoted, the rolling upgrade of the remaining allocations is unblocked.

{general}

""" + PROMOTE_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.list("group").bool("detach").bool("verbose")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job id>")
        job_id, ns = self.job_id_by_prefix(rest[0])
        d = self.query("Error retrieving deployment", job_path(job_id, "deployment"), namespace=ns)
        if not d:
            raise CommandError(f"Job {q(job_id)} has no deployment to promote")
        return self._monitor(promote(self, d["ID"], self.flag("group") or [], "Error promoting job"))


class JobDeploymentsCommand(Command):
    name = "job deployments"
    synopsis = "List deployments for a job"
    help = """
Usage: yurt job deployments [options] <job>

  Deployments is used to display the deployments for a particular job.

{general}

Deployments Options:

  -json
    Output the deployments in a JSON format.

  -t
    Format and display deployments using a Go template.

  -latest
    Display the latest deployment only.

  -verbose
    Display full information.

  -all
    Display all deployments matching the job ID, including those
    from an older instance of the job.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("json").string("t").bool("latest").bool("verbose").bool("all")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job>")
        job_id, ns = self.job_id_by_prefix(rest[0])
        structured = self.flag("json") or self.flag("t")
        if self.flag("latest"):
            d = self.query("Error retrieving deployments", job_path(job_id, "deployment"), namespace=ns)
            if structured:
                self.output(format_output(self.flag("json"), self.flag("t"), d))
            elif not d:
                self.output(f"Job {q(job_id)} has no deployment")
            else:
                self.output(format_deployment(d, self.id_length))
            return 0
        params = {"namespace": ns, **({"all": "true"} if self.flag("all") else {})}
        found = self.query("Error retrieving deployments", job_path(job_id, "deployments"), **params) or []
        if structured:
            self.output(format_output(self.flag("json"), self.flag("t"), found))
        else:
            self.output(deployments_table(found, self.id_length) if found else "No deployments found")
        return 0


DEPLOYMENT_COMMANDS = (JobDeploymentsCommand, DeploymentListCommand, DeploymentStatusCommand, DeploymentPromoteCommand,
                       DeploymentFailCommand, DeploymentPauseCommand, DeploymentResumeCommand,
                       DeploymentUnblockCommand, JobPromoteCommand)
