"""`job dispatch` (a child of a parameterized job) and `job periodic force` (a child of a
periodic job now), with Nomad's output: the IDs, then the evaluation monitor."""

import base64
from urllib.parse import quote

from .command import Command, CommandError
from .format import format_kv, format_list, format_seconds, limit, q
from .monitor import EvalMonitor

DETACH_VERBOSE_HELP = """  -detach
    Print the evaluation ID and return instead of monitoring it.

  -verbose
    Display full information.
"""
WAIT_TIMEOUT = 300  # seconds, as Nomad's -wait


def job_path(job_id: str, *rest: str) -> str:
    """`/v1/job/<id>/...` with the ID escaped (children IDs contain `/`)."""
    return "/".join(["/v1/job", quote(job_id, safe=""), *rest])


class JobDispatchCommand(Command):
    name = "job dispatch"
    synopsis = "Dispatch an instance of a parameterized job"
    help = """
Usage: yurt job dispatch [options] <parameterized job> [input source]

  Dispatch starts a new instance (a child job) of a parameterized job. Its
  payload is read from the file named as the input source, or from stdin when
  the input source is "-". Metadata is given with -meta, once per key.

  With -idempotency-token, a second dispatch carrying the same token returns
  the child already dispatched instead of creating another one.

  The dispatched job ID is printed and, unless -detach is given, the
  evaluation it triggered is monitored.

{general}

Dispatch Options:

  -meta <key>=<value>
    A metadata key and value merged into the child job's meta. Repeat the
    flag for several keys. Only keys the parameterized block lists in
    meta_required or meta_optional are accepted.

  -detach
    Print the evaluation ID and return instead of monitoring it.

  -idempotency-token
    A token that makes the dispatch happen at most once.

  -id-prefix-template
    A prefix placed in the dispatched job's ID after "/dispatch-".

  -priority
    The priority of the dispatched job (default: the parent's).

  -verbose
    Display full information.

  -wait
    After the evaluation, wait until the dispatched job is dead and print its
    task group summary (exit code 2 if an allocation failed).
"""

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose").bool("wait")
        self.flags.string("idempotency-token").string("id-prefix-template").list("meta").int("priority")

    def _payload(self, source: str) -> bytes:
        try:
            if source == "-":
                stream = getattr(self.ctx.stdin, "buffer", None)
                return stream.read() if stream is not None else self.ctx.stdin.read().encode()
            with open(source, "rb") as f:
                return f.read()
        except OSError as exc:
            raise CommandError(f"Error reading input data: {exc}") from None

    def _meta(self) -> dict[str, str]:
        meta = {}
        for item in self.flag("meta"):
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"Error parsing meta value: {item}")
            meta[key] = value
        return meta

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if not 1 <= len(rest) <= 2:
            return self.usage_error("This command takes one or two argument: <parameterized job> [input source]")
        payload = self._payload(rest[1]) if len(rest) == 2 else b""
        meta = self._meta()
        job_id, ns = self.job_id_by_prefix(
            rest[0].strip(), keep=lambda j: not j.get("ParentID") and bool(j.get("ParameterizedJob")),
            kind="parameterized")
        body = {"JobID": job_id, "Meta": meta, "Payload": base64.b64encode(payload).decode() if payload else None,
                "IdPrefixTemplate": self.flag("id-prefix-template"), "Priority": self.flag("priority")}
        params = {"namespace": ns}
        if self.flag("idempotency-token"):
            params["idempotency_token"] = self.flag("idempotency-token")
        resp = self.call("Failed to dispatch job", "PUT", job_path(job_id, "dispatch"), body, **params) or {}
        eval_id = resp.get("EvalID", "")
        rows = [f"Dispatched Job ID|{resp.get('DispatchedJobID', '')}"]
        if eval_id:
            rows.append(f"Evaluation ID|{limit(eval_id, self.id_length)}")
        self.output(format_kv(rows))
        if self.flag("detach") or not eval_id:
            return 0
        self.output("")
        if EvalMonitor(self, self.id_length).monitor(eval_id) != 0:
            return 1
        return self._wait_dead(resp["DispatchedJobID"], ns) if self.flag("wait") else 0

    def _wait_dead(self, job_id: str, ns: str) -> int:
        """-wait: poll the child until it is dead (at most 5 minutes); print its summary."""
        self.output(f"\n==> {format_seconds(self.ctx.now())}: Monitoring allocations for job {q(limit(job_id, self.id_length))}")
        deadline = self.ctx.now() + WAIT_TIMEOUT
        while True:
            job = self.query("Error querying allocations", job_path(job_id), namespace=ns) or {}
            if job.get("Status") == "dead":
                break
            if self.ctx.now() > deadline:
                self.output(f"Timeout reached after {WAIT_TIMEOUT // 60}m0s")
                return 1
            self.ctx.sleep(self.ctx.poll_interval)
        summary = self.query("Error querying allocations", job_path(job_id, "summary"), namespace=ns) or {}
        groups = summary.get("Summary") or {}
        keys = ("Queued", "Complete", "Failed", "Running", "Starting", "Lost", "Unknown")
        rows = ["Task Group|" + "|".join(keys)]
        rows += [name + "|" + "|".join(str(groups[name].get(k, 0)) for k in keys) for name in sorted(groups)]
        self.output(format_list(rows))
        return 2 if any(g.get("Failed", 0) for g in groups.values()) else 0


class JobPeriodicForceCommand(Command):
    name = "job periodic force"
    synopsis = "Force the launch of a periodic job"
    help = """
Usage: yurt job periodic force [options] <job id>

  Launch a new instance (a child job) of a periodic job now, whether or not
  its prohibit_overlap setting would allow it.

{general}

Periodic Force Options:

""" + DETACH_VERBOSE_HELP

    def __init__(self, ctx):
        super().__init__(ctx)
        self.flags.bool("detach").bool("verbose")

    def run(self, args: list[str]) -> int:
        rest = self.parse(args)
        if rest is None:
            return 1
        if len(rest) != 1:
            return self.usage_error("This command takes one argument: <job id>")
        job_id, ns = self.job_id_by_prefix(rest[0].strip(), keep=lambda j: bool(j.get("Periodic")), kind="periodic")
        resp = self.call(f"Error forcing periodic job {q(job_id)}", "PUT", job_path(job_id, "periodic", "force"),
                         namespace=ns) or {}
        eval_id = resp.get("EvalID", "")
        if self.flag("detach"):
            self.output("Force periodic successful")
            self.output("Evaluation ID: " + eval_id)
            return 0
        return EvalMonitor(self, self.id_length).monitor(eval_id)
