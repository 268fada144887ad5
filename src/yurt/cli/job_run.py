"""`job run` and `job validate`: parse a job file locally, then register or validate it."""

import os
import re
from typing import Any

from yurt.structs import to_wire

from .command import Command, CommandError
from .format import next_launch_text, q, to_json
from .monitor import EvalMonitor

_ENFORCE_INDEX = re.compile(r"\((Enforcing job modify index.*)\)")


def _var_flags(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, _, value = item.partition("=")
        out[key] = value
    return out


def load_job(cmd: Command, path: str) -> Any:
    """Read and parse a job file (`-` = stdin) with the command's `-var`/`-var-file` flags."""
    from yurt.jobspec import JobspecError, parse

    if path == "-":
        text, name = cmd.ctx.stdin.read(), "stdin"
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CommandError(f"Error getting job struct: Error getting jobfile from {q(path)}: {reason}") from exc
        name = os.path.basename(path)
    try:
        return parse(text, name, _var_flags(cmd.flag("var")), list(cmd.flag("var-file")),
                     strict=bool(cmd.flag("hcl2-strict")), checks=not _printing_only(cmd))
    except JobspecError as exc:
        if exc.validation:  # the file parsed; Job.Validate-style problems, each with its line
            raise CommandError("Job validation errors:\n"
                               + multierror_text([str(d) for d in exc.diagnostics]).rstrip("\n")) from exc
        raise CommandError(f"Error getting job struct: Error parsing job file from {path}:\n{exc}") from exc


def _printing_only(cmd: Command) -> bool:
    """`job run -output` prints the parsed job as it is, without validating it (as Nomad)."""
    try:
        return bool(cmd.flag("output"))
    except KeyError:
        return False


def multierror_text(errors: list[str]) -> str:
    """hashicorp/go-multierror's list format."""
    if len(errors) == 1:
        return f"1 error occurred:\n\t* {errors[0]}\n\n"
    points = "\n\t".join(f"* {e}" for e in errors)
    return f"{len(errors)} errors occurred:\n\t{points}\n\n"


def _job_flags(cmd: Command) -> None:
    cmd.flags.bool("json").bool("hcl2-strict", True).string("vault-namespace")
    cmd.flags.list("var").list("var-file")


class JobRunCommand(Command):
    name = "job run"
    synopsis = "Run a new job or update an existing job"
    help = """
Usage: yurt job run [options] <path>
Alias: yurt run

  Starts running a new job or updates an existing job using the specification
  located at <path>. This is the main command used to interact with Nomad.

  If the supplied path is "-", the jobfile is read from stdin.

  Upon successful job submission, this command will immediately enter an
  interactive monitor. The monitor will exit with a zero exit status if the
  evaluation places every allocation; exit code 2 means some could not be placed;
  exit code 1 means the job could not be submitted or read.

{general}

Run Options:

  -check-index
    If set, the job is only registered or updated if the passed job modify index
    matches the server side version. 0 means the job must not exist yet.

  -detach
    Return immediately instead of entering monitor mode.

  -eval-priority
    Override the priority of the evaluations produced as a result of this job
    submission. By default, this is set to the priority of the job.

  -output
    Output the JSON that would be submitted to the HTTP API without submitting
    the job.

  -var 'key=value'
    Variable for template, can be used multiple times.

  -var-file=path
    Path to HCL2 file containing user variables.

  -verbose
    Display full information.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        _job_flags(self)
        for name in ("detach", "verbose", "output", "policy-override", "preserve-counts", "preserve-resources", "ui"):
            self.flags.bool(name)
        self.flags.string("check-index").string("consul-namespace").int("eval-priority")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <path>")
        job = load_job(self, rest[0])
        job = self._apply_scope(job)
        wire = to_wire(job)
        if self.flag("output"):
            self.output(to_json({"Job": wire}))
            return 0
        body = self._register_body(wire)
        resp = self._submit(body)
        if resp is None:
            return 1
        if resp.get("Warnings"):
            self.output(f"Job Warnings:\n{resp['Warnings']}\n")
        eval_id = resp.get("EvalID", "")
        if self.flag("detach") or job.is_periodic or job.is_parameterized:
            self.output("Job registration successful")
            if job.is_periodic and not job.is_parameterized:
                launch = next_launch_text(wire.get("Periodic"), self.ctx.now())
                if launch:
                    self.output(f"Approximate next launch time: {launch}")
            elif not job.is_parameterized:
                self.output("Evaluation ID: " + eval_id)
            return 0
        return EvalMonitor(self, self.id_length).monitor(eval_id)

    def _apply_scope(self, job: Any) -> Any:
        """The job's own region/namespace win; else the flag/env namespace applies to the job."""
        from yurt.structs import evolve

        cfg = self.client_config()
        namespace = job.namespace if job.namespace and job.namespace != "default" else (cfg.namespace or "default")
        if namespace == "*":
            namespace = "default"
        self.client().config.namespace = namespace
        if job.region and job.region != "global":
            self.client().config.region = job.region
        changes: dict[str, Any] = {"namespace": namespace}
        if self.flag("vault-namespace"):
            changes["vault_namespace"] = self.flag("vault-namespace")
        return evolve(job, **changes)

    def _register_body(self, wire: dict) -> dict:
        body: dict[str, Any] = {"Job": wire}
        check = self.flag("check-index")
        if check:
            try:
                index = int(check)
                if index < 0:
                    raise ValueError("negative")
            except ValueError:
                raise CommandError(
                    f"Error parsing check-index value {q(check)}: strconv.ParseUint: parsing {q(check)}: invalid syntax"
                ) from None
            body["EnforceIndex"] = True
            body["JobModifyIndex"] = index
        for flag, key in (("policy-override", "PolicyOverride"), ("preserve-counts", "PreserveCounts"),
                          ("preserve-resources", "PreserveResources")):
            if self.flag(flag):
                body[key] = True
        if self.flag("eval-priority"):
            body["EvalPriority"] = self.flag("eval-priority")
        return body

    def _submit(self, body: dict) -> dict | None:
        try:
            return self.call("Error submitting job", "PUT", "/v1/jobs", body) or {}
        except CommandError as exc:
            match = _ENFORCE_INDEX.search(str(exc))
            if match:
                self.error(match.group(1))
                self.error("Job not updated")
                return None
            raise


class JobValidateCommand(Command):
    name = "job validate"
    synopsis = "Checks if a given job specification is valid"
    help = """
Usage: yurt job validate [options] <path>
Alias: yurt validate

  Checks if a given HCL job file has a valid specification. This can be used to
  check for any syntax errors or validation problems with a job.

  If the supplied path is "-", the jobfile is read from stdin.

{general}

Validate Options:

  -var 'key=value'
    Variable for template, can be used multiple times.

  -var-file=path
    Path to HCL2 file containing user variables.
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        _job_flags(self)

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <path>")
        job = load_job(self, rest[0])
        if self.flag("vault-namespace"):
            from yurt.structs import evolve

            job = evolve(job, vault_namespace=self.flag("vault-namespace"))
        try:
            result = self.client().put("/v1/validate/job", {"Job": to_wire(job)}) or {}
        except Exception:  # noqa: BLE001 - Nomad falls back to a local validation on any error
            result = self._validate_locally(job)
        if not result.get("DriverConfigValidated"):
            self.output(
                "Driver configuration not validated since connection to Nomad agent couldn't be established.\n"
            )
        if result.get("Error"):
            self.error("Job validation errors:")
            self.error(result["Error"])
            return 1
        if result.get("Warnings"):
            self.output(f"Job Warnings:\n{result['Warnings']}\n")
        self.output("Job validation successful")
        return 0

    @staticmethod
    def _validate_locally(job: Any) -> dict:
        from yurt.jobspec import validate

        try:
            from yurt.structs.defaults import canonicalize

            job = canonicalize(job)
        except ImportError:
            pass
        errors = validate(job)
        return {"DriverConfigValidated": False, "ValidationErrors": errors,
                "Error": multierror_text(errors) if errors else "", "Warnings": ""}
