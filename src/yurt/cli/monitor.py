"""Follow an evaluation to the end, printing what changes, as Nomad's `monitor.go` does.

Exit codes: 0 = the eval finished and placed everything, 2 = it finished with placement
failures, 1 = the API could not be read or the eval's deployment did not succeed.

When the eval belongs to a deployment, the monitor then follows the deployment until it
is terminal and prints its final state (Nomad 1.x's deployment monitor), following an
auto-revert rollback. Unlike Nomad, an eval with placement failures returns 2 at once
instead of waiting on a deployment that cannot finish.
"""

from dataclasses import dataclass, field

from .command import Command, CommandError
from .deployment_format import format_deployment
from .format import FULL_ID, format_seconds, go_duration, limit, q
from .job_tables import alloc_metrics


@dataclass
class _AllocState:
    id: str
    group: str
    node: str
    desired: str
    client: str
    client_desc: str
    index: int


@dataclass
class _EvalState:
    status: str = "pending"
    node: str = ""
    job: str = ""
    deployment: str = ""
    wait: int = 0
    index: int = 0
    allocs: dict[str, _AllocState] = field(default_factory=dict)


class EvalMonitor:
    def __init__(self, cmd: Command, length: int):
        self.cmd = cmd
        self.length = length
        self.state = _EvalState()

    def _stamp(self) -> str:
        return format_seconds(self.cmd.ctx.now())

    def info(self, text: str) -> None:
        self.cmd.output("==> " + text)

    def out(self, text: str) -> None:
        self.cmd.output("    " + text if text else "")

    def update(self, new: _EvalState) -> None:
        old, now = self.state, self._stamp()
        self.state = new
        if not old.node and new.node:
            self.out(f"{now}: Evaluation triggered by node {q(limit(new.node, self.length))}")
        if not old.job and new.job:
            self.out(f"{now}: Evaluation triggered by job {q(new.job)}")
        if not old.deployment and new.deployment:
            self.out(f"{now}: Evaluation within deployment: {q(limit(new.deployment, self.length))}")
        for alloc_id, alloc in new.allocs.items():
            before = old.allocs.get(alloc_id)
            short, node = q(limit(alloc.id, self.length)), q(limit(alloc.node, self.length))
            if before is None:
                if alloc.index < new.index:
                    self.out(f"{now}: Allocation {short} modified: node {node}, group {q(alloc.group)}")
                elif alloc.desired == "run":
                    self.out(f"{now}: Allocation {short} created: node {node}, group {q(alloc.group)}")
            elif before.client != alloc.client:
                desc = f" ({alloc.client_desc})" if alloc.client_desc else ""
                self.out(f"{now}: Allocation {short} status changed: {q(before.client)} -> {q(alloc.client)}{desc}")
        if old.status and new.status != "pending" and old.status != new.status:
            self.out(f"{now}: Evaluation status changed: {q(old.status)} -> {q(new.status)}")

    def _poll(self, eval_id: str) -> tuple[dict, _EvalState]:
        try:
            ev = self.cmd.get(f"/v1/evaluation/{eval_id}")
        except Exception as exc:  # noqa: BLE001 - Nomad words every read failure the same way
            raise CommandError(f"==> No evaluation with id {q(eval_id)} found") from exc
        try:
            allocs = self.cmd.get(f"/v1/evaluation/{ev['ID']}/allocations") or []
        except Exception as exc:  # noqa: BLE001
            raise CommandError(f"==> {self._stamp()}: Error reading allocations: {exc}") from exc
        state = _EvalState(
            status=ev.get("Status", ""), node=ev.get("NodeID", ""), job=ev.get("JobID", ""),
            deployment=ev.get("DeploymentID", ""), wait=ev.get("Wait", 0) or 0, index=ev.get("CreateIndex", 0),
        )
        for a in allocs:
            state.allocs[a["ID"]] = _AllocState(
                a["ID"], a.get("TaskGroup", ""), a.get("NodeID", ""), a.get("DesiredStatus", ""),
                a.get("ClientStatus", ""), a.get("ClientDescription", ""), a.get("CreateIndex", 0),
            )
        return ev, state

    def monitor(self, eval_id: str) -> int:
        """Poll until the eval is terminal; follow `NextEval`; return the exit code."""
        self.info(f"{self._stamp()}: Monitoring evaluation {q(limit(eval_id, self.length))}")
        while True:
            try:
                ev, state = self._poll(eval_id)
            except CommandError as exc:
                self.cmd.error(str(exc))
                return 1
            self.update(state)
            if ev.get("Status") in ("complete", "failed", "canceled", "cancelled"):
                break
            self.cmd.ctx.sleep(self.cmd.ctx.poll_interval)
        failed = self._report_finish(ev)
        if ev.get("NextEval"):
            wait = ev.get("Wait") or 0
            if wait:
                self.info(f"{self._stamp()}: Monitoring next evaluation {q(limit(ev['NextEval'], self.length))} in {go_duration(wait)}")
                self.cmd.ctx.sleep(wait / 1e9)
            self.state = _EvalState()
            return self.monitor(ev["NextEval"])
        if ev.get("DeploymentID") and not failed:
            return self.monitor_deployment(ev["DeploymentID"])
        return 2 if failed else 0

    def _deployment(self, deployment_id: str) -> dict | None:
        try:
            return self.cmd.get(f"/v1/deployment/{deployment_id}")
        except Exception:  # noqa: BLE001 - Nomad words every read failure the same way
            self.cmd.error(f"{self._stamp()}: Error fetching deployment")
            return None

    def monitor_deployment(self, deployment_id: str) -> int:
        """Wait for the deployment to end; print its final table. 0 only when it succeeded."""
        short = q(limit(deployment_id, self.length))
        self.info(f"{self._stamp()}: Monitoring deployment {short}")
        while True:
            d = self._deployment(deployment_id)
            if d is None:
                return 1
            status = d.get("Status", "")
            if status in ("successful", "failed", "cancelled", "blocked"):
                break
            self.cmd.ctx.sleep(self.cmd.ctx.poll_interval)
        reverting = status == "failed" and any(s.get("AutoRevert") for s in (d.get("TaskGroups") or {}).values())
        mark = "\u2713" if status == "successful" else "!"
        suffix = ", waiting for rollback..." if reverting else ""
        self.cmd.output(f"  {mark} Deployment {short} {status}{suffix}")
        self.out("")
        self.out(self._stamp())
        for line in format_deployment(d, self.length).split("\n"):
            self.out(line)
        if self.length == FULL_ID:
            self._deployment_allocs(deployment_id)
        if reverting:
            self.cmd.ctx.sleep(self.cmd.ctx.poll_interval)
            rollback = self.cmd.get(f"/v1/job/{d.get('JobID', '')}/deployment", namespace=d.get("Namespace") or "default")
            if rollback and rollback.get("ID") != deployment_id:
                self.monitor_deployment(rollback["ID"])
        return 0 if status == "successful" else 1

    def _deployment_allocs(self, deployment_id: str) -> None:
        from .job_tables import alloc_stub_table

        try:
            allocs = self.cmd.get(f"/v1/deployment/allocations/{deployment_id}") or []
        except Exception:  # noqa: BLE001
            self.out("Error fetching allocations")
            return
        self.out("")
        self.out("Allocations")
        for line in alloc_stub_table(allocs, True, self.length, self.cmd.ctx.now()).split("\n"):
            self.out(line)

    def _report_finish(self, ev: dict) -> bool:
        short, status = q(limit(ev.get("ID", ""), self.length)), q(ev.get("Status", ""))
        failed_groups = ev.get("FailedTGAllocs") or {}
        if not failed_groups:
            self.info(f"{self._stamp()}: Evaluation {short} finished with status {status}")
            return False
        self.info(f"{self._stamp()}: Evaluation {short} finished with status {status} but failed to place all allocations:")
        for group in sorted(failed_groups):
            metrics = failed_groups[group] or {}
            count = (metrics.get("CoalescedFailures") or 0) + 1
            noun = "allocation" if count == 1 else "allocations"
            self.out(f"{self._stamp()}: Task Group {q(group)} (failed to place {count} {noun}):")
            for line in alloc_metrics(metrics, "  ").split("\n"):
                self.out(line)
        if ev.get("BlockedEval"):
            blocked = q(limit(ev["BlockedEval"], self.length))
            self.out(f"{self._stamp()}: Evaluation {blocked} waiting for additional capacity to place remainder")
        return True
