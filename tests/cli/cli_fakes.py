"""A fake Nomad HTTP API (Nomad-shaped JSON over httpx.MockTransport) and sample objects."""

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx

NOW = 1_700_000_000.0  # the fake clock: 2023-11-14T22:13:20Z
SEC = 1_000_000_000


def ns_ago(seconds: float) -> int:
    return int((NOW - seconds) * SEC)


@dataclass
class Recorded:
    method: str
    path: str
    params: dict[str, str]
    body: Any
    headers: dict[str, str]


@dataclass
class FakeNomad:
    """Routes keyed by (METHOD, path). A value is JSON, a `(status, text)` error, a list of
    values served in turn (the last one repeats), or a callable(Recorded) returning one."""

    routes: dict[tuple[str, str], Any] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    def on(self, method: str, path: str, value: Any) -> "FakeNomad":
        self.routes[(method, path)] = value
        return self

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        params = {k: v[-1] for k, v in parse_qs(request.url.query.decode(), keep_blank_values=True).items()}
        body = json.loads(request.content) if request.content else None
        rec = Recorded(request.method, request.url.path, params, body, dict(request.headers))
        self.requests.append(rec)
        value = self.routes.get((request.method, request.url.path))
        if value is None:
            return httpx.Response(404, text="Not Found", headers={"content-type": "text/plain"})
        if isinstance(value, list) and value and isinstance(value[0], _Seq):
            value = value[0].next()
        if callable(value):
            value = value(rec)
        if isinstance(value, tuple):
            status, text = value
            return httpx.Response(status, text=text, headers={"content-type": "text/plain"})
        if isinstance(value, _Text):
            return httpx.Response(200, text=value.text, headers={"content-type": "text/plain"})
        return httpx.Response(200, json=value, headers={"X-Nomad-Index": "10"})


class _Seq:
    def __init__(self, values: list[Any]):
        self.values = list(values)

    def next(self) -> Any:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def sequence(*values: Any) -> list:
    """Serve these values on successive calls (the last one repeats)."""
    return [_Seq(list(values))]


@dataclass
class _Text:
    text: str


def text(body: str) -> _Text:
    return _Text(body)


@dataclass
class Result:
    code: int
    out: str
    err: str




# ---------------------------------------------------------------- Nomad-shaped sample objects
JOB_ID = "example"
EVAL_ID = "8e7c3b4a-5e31-9c2d-7a4b-1f2e3d4c5b6a"
ALLOC_ID = "5a6b7c8d-1111-2222-3333-444455556666"
ALLOC2_ID = "5a6b9999-1111-2222-3333-444455556666"
NODE_ID = "f1e2d3c4-aaaa-bbbb-cccc-ddddeeeeffff"


def job_stub(job_id: str = JOB_ID, **over: Any) -> dict:
    stub = {
        "ID": job_id, "ParentID": "", "Name": job_id, "Namespace": "default", "Datacenters": ["*"],
        "Type": "service", "Priority": 50, "Periodic": False, "ParameterizedJob": False, "Stop": False,
        "Status": "running", "StatusDescription": "", "NodePool": "default",
        "JobSummary": {"JobID": job_id, "Namespace": "default", "Summary": {}},
        "CreateIndex": 7, "ModifyIndex": 9, "JobModifyIndex": 7, "SubmitTime": ns_ago(60),
    }
    stub.update(over)
    return stub


def job(job_id: str = JOB_ID, **over: Any) -> dict:
    data = {
        "Region": "global", "Namespace": "default", "ID": job_id, "Name": job_id, "Type": "service",
        "Priority": 50, "AllAtOnce": False, "Datacenters": ["*"], "NodePool": "default",
        "TaskGroups": [{"Name": "cache", "Count": 1, "Tasks": [
            {"Name": "redis", "Driver": "docker", "Config": {"image": "redis:7"},
             "Resources": {"CPU": 100, "MemoryMB": 300}}]}],
        "Periodic": None, "ParameterizedJob": None, "Dispatched": False, "Stop": False,
        "Status": "running", "StatusDescription": "", "Stable": False, "Version": 0,
        "SubmitTime": ns_ago(60), "CreateIndex": 7, "ModifyIndex": 9, "JobModifyIndex": 7,
    }
    data.update(over)
    return data


def summary(job_id: str = JOB_ID, **counts: int) -> dict:
    group = {"Queued": 0, "Complete": 0, "Failed": 0, "Running": 1, "Starting": 0, "Lost": 0, "Unknown": 0}
    group.update(counts)
    return {"JobID": job_id, "Namespace": "default", "Summary": {"cache": group},
            "Children": {"Pending": 0, "Running": 0, "Dead": 0}, "CreateIndex": 7, "ModifyIndex": 9}


def alloc_stub(alloc_id: str = ALLOC_ID, **over: Any) -> dict:
    stub = {
        "ID": alloc_id, "EvalID": EVAL_ID, "Name": f"{JOB_ID}.cache[0]", "Namespace": "default",
        "NodeID": NODE_ID, "NodeName": "node-1", "JobID": JOB_ID, "JobType": "service", "JobVersion": 0,
        "TaskGroup": "cache", "DesiredStatus": "run", "DesiredDescription": "", "ClientStatus": "running",
        "ClientDescription": "Tasks are running", "FollowupEvalID": "", "CreateIndex": 11, "ModifyIndex": 13,
        "CreateTime": ns_ago(300), "ModifyTime": ns_ago(5),
    }
    stub.update(over)
    return stub


def task_event(kind: str, seconds_ago: float, **over: Any) -> dict:
    event = {"Type": kind, "Time": ns_ago(seconds_ago), "Message": "", "DisplayMessage": "", "Details": {}}
    event.update(over)
    return event


def alloc(alloc_id: str = ALLOC_ID, **over: Any) -> dict:
    data = alloc_stub(alloc_id)
    data.update({
        "Job": job(),
        "AllocatedResources": {
            "Tasks": {"redis": {"Cpu": {"CpuShares": 100}, "Memory": {"MemoryMB": 300, "MemoryMaxMB": 0},
                                "Networks": None}},
            "Shared": {"DiskMB": 300, "Networks": None, "Ports": None},
        },
        "Metrics": {"NodesEvaluated": 1, "NodesFiltered": 0, "NodesExhausted": 0, "AllocationTime": 52000,
                    "CoalescedFailures": 0},
        "TaskStates": {"redis": {
            "State": "running", "Failed": False, "Restarts": 0, "LastRestart": "0001-01-01T00:00:00Z",
            "StartedAt": "2023-11-14T22:08:25.123456789Z", "FinishedAt": "0001-01-01T00:00:00Z",
            "Events": [
                task_event("Received", 300, DisplayMessage="Task received by client"),
                task_event("Task Setup", 299, Message="Building Task Directory",
                           DisplayMessage="Building Task Directory"),
                task_event("Started", 295),
            ],
        }},
    })
    data.update(over)
    return data


def evaluation(eval_id: str = EVAL_ID, status: str = "complete", **over: Any) -> dict:
    data = {
        "ID": eval_id, "Namespace": "default", "Priority": 50, "Type": "service", "TriggeredBy": "job-register",
        "JobID": JOB_ID, "JobModifyIndex": 7, "NodeID": "", "DeploymentID": "", "Status": status,
        "StatusDescription": "", "Wait": 0, "NextEval": "", "PreviousEval": "", "BlockedEval": "",
        "FailedTGAllocs": None, "QueuedAllocations": {"cache": 0}, "CreateIndex": 10, "ModifyIndex": 12,
        "CreateTime": ns_ago(62), "ModifyTime": ns_ago(61),
    }
    data.update(over)
    return data


def node_stub(node_id: str = NODE_ID, **over: Any) -> dict:
    stub = {
        "ID": node_id, "Datacenter": "dc1", "Name": "node-1", "NodeClass": "", "NodePool": "default",
        "Version": "0.1.0", "Drain": False, "SchedulingEligibility": "eligible", "Status": "ready",
        "StatusDescription": "", "Address": "10.0.0.5", "Attributes": {"os.name": "ubuntu"},
        "CreateIndex": 3, "ModifyIndex": 5,
    }
    stub.update(over)
    return stub


def node(node_id: str = NODE_ID, **over: Any) -> dict:
    data = node_stub(node_id)
    data.update({
        "HTTPAddr": "10.0.0.5:4646",
        "Attributes": {"os.name": "ubuntu", "kernel.name": "linux", "cpu.arch": "amd64"},
        "Meta": {"rack": "r1"},
        "NodeResources": {"Cpu": {"CpuShares": 4000}, "Memory": {"MemoryMB": 8192}, "Disk": {"DiskMB": 10240}},
        "ReservedResources": {"Cpu": {"CpuShares": 0}, "Memory": {"MemoryMB": 192}, "Disk": {"DiskMB": 0}},
        "Drivers": {"docker": {"Detected": True, "Healthy": True, "HealthDescription": "Healthy",
                               "UpdateTime": "2023-11-14T22:00:00Z"},
                    "exec": {"Detected": True, "Healthy": False, "HealthDescription": "no cgroups",
                             "UpdateTime": "2023-11-14T22:00:00Z"},
                    "java": {"Detected": False, "Healthy": False, "HealthDescription": "",
                             "UpdateTime": "2023-11-14T22:00:00Z"}},
        "Events": [{"Message": "Node registered", "Subsystem": "Cluster", "Details": None,
                    "Timestamp": "2023-11-14T22:00:00Z", "CreateIndex": 0}],
        "DrainStrategy": None,
    })
    data.update(over)
    return data
