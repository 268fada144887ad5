"""Conversion at the HTTP edge: lenient request decoding, JSON responses, Nomad's list stubs."""

import json
import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

from yurt.server.endpoints import EndpointError
from yurt.structs import to_wire

T = TypeVar("T")


def drop_nulls(value: Any) -> Any:
    """Remove `null` members recursively so struct defaults apply (Nomad's clients send them).
    Recurses only into containers: a call per scalar was 40% of the walk (a 4 KB node: 106 -> 67 us)."""
    if isinstance(value, dict):
        return {k: (drop_nulls(v) if isinstance(v, _CONTAINERS) else v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [(drop_nulls(v) if isinstance(v, _CONTAINERS) else v) for v in value if v is not None]
    return value


_CONTAINERS = (dict, list)


def convert(data: Any, typ: type[T], what: str = "request") -> T:
    try:
        return msgspec.convert(drop_nulls(data), typ)
    except msgspec.ValidationError as exc:
        raise EndpointError(400, f"Failed to decode {what}: {exc}") from None


_json_encoder = msgspec.json.Encoder()
_json_decoder = msgspec.json.Decoder()


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return _json_decoder.decode(raw)
    except msgspec.DecodeError:
        pass  # the stdlib's parser says what is wrong in its usual words (and takes NaN)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise EndpointError(400, f"Failed to parse JSON input: {exc}") from None




_FORBIDDEN_IN_HEADERS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what aiohttp refuses to send
_ADDED_HEADERS = frozenset(("content-length", "transfer-encoding", "date", "server", "connection"))
_SERVER_LINE = ("Server: " + SERVER_SOFTWARE + "\r\n\r\n").encode()


def serialize_headers(headers) -> bytes | None:
    """`headers` as HTTP/1.1 header lines, or None if aiohttp's own path must send them (a
    header it adds or checks itself, or a character it would refuse)."""
    lines = []
    for name, value in headers.items():
        if name.lower() in _ADDED_HEADERS or _FORBIDDEN_IN_HEADERS.search(name) or _FORBIDDEN_IN_HEADERS.search(value):
            return None
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()


def ok_bytes(head: bytes, body: bytes, date: str | None = None) -> bytes:
    """A whole HTTP/1.1 200 answer as aiohttp sends it: status line, `head` (from
    `serialize_headers`), then Content-Length, Date (`date`, else now), Server, and the body."""
    return b"".join((b"HTTP/1.1 200 OK\r\n", head, b"Content-Length: %d\r\nDate: %s\r\n" % (
        len(body), (date or rfc822_formatted_time()).encode()), _SERVER_LINE, body))


class FastResponse(web.Response):
    """A 200 answer whose whole body is in hand. When aiohttp's general path would add
    nothing to it (HTTP/1.1 keep-alive, not HEAD, no compression, cookies or
    on_response_prepare hooks), `prepare` sends status line, headers and body in one
    transport write: the bytes aiohttp's `prepare` + `write_eof` send (headers in the same
    order, then Content-Length, Date, Server), for about half of aiohttp's CPU per answer
    (blocking-query wakes are thousands of these a second). Otherwise aiohttp sends it."""

    _head: bytes | None = None  # `serialize_headers(self.headers)`, when known in advance
    _sent = False

    async def prepare(self, request: web.BaseRequest):
        if self._payload_writer is None and not self._eof_sent and self._can_send_at_once(request):
            head = self._head if self._head is not None else serialize_headers(self._headers)
            transport = request.transport
            if head is not None and transport is not None and not transport.is_closing():
                body = self._body
                transport.write(ok_bytes(head, body))
                self._sent = self._eof_sent = self._keep_alive = True
                self._body_length = len(body)
                await request.writer.drain()  # as write_eof would: the transport's buffer is full
                return None
        return await super().prepare(request)

    async def write_eof(self, data: bytes = b"") -> None:
        if not self._sent:
            await super().write_eof(data)

    def _can_send_at_once(self, request: web.BaseRequest) -> bool:
        if (self._status != 200 or self._reason != "OK" or request.method == "HEAD" or request.version != HttpVersion11
                or not request.keep_alive or self._keep_alive is not None or self._cookies
                or self._compression or self._chunked or type(self._body) is not bytes):
            return False
        match_info = getattr(request, "_match_info", None)
        return match_info is None or not any(app.on_response_prepare for app in match_info.apps)


def json_response(request: web.Request, body: Any, index: int | None = None) -> web.Response:
    if "pretty" in request.query and request.query.get("pretty") not in ("0", "false"):
        payload = (json.dumps(to_wire(body), indent=4) + "\n").encode()
    else:
        payload = _json_encoder.encode(body)
    return _json_answer(payload, index)


def json_answer(body: Any, index: int | None = None) -> "FastResponse":
    """`json_response` of a request without `?pretty`."""
    return _json_answer(_json_encoder.encode(body), index)


def _json_answer(payload: bytes, index: int | None) -> "FastResponse":
    resp = FastResponse(body=payload, content_type="application/json")
    if index is not None:
        set_index_headers(resp, index)
    return resp


def set_index_headers(resp: web.StreamResponse, index: int) -> None:
    """Nomad's query meta headers."""
    resp.headers["X-Nomad-Index"] = str(max(index, 1))
    resp.headers["X-Nomad-KnownLeader"] = "true"
    resp.headers["X-Nomad-LastContact"] = "0"


def error_response(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message, content_type="text/plain")


# -- list stubs (Nomad's JobListStub, AllocListStub, NodeListStub, EvalListStub) -----------


def job_list_stub(job, summary) -> dict[str, Any]:
    return {
        "ID": job.id,
        "ParentID": job.parent_id,
        "Name": job.name,
        "Namespace": job.namespace,
        "Datacenters": job.datacenters,
        "Multiregion": job.multiregion,
        "Type": job.type,
        "Priority": job.priority,
        "Periodic": job.periodic is not None,
        "ParameterizedJob": job.parameterized_job is not None,
        "Stop": job.stop,
        "Status": job.status,
        "StatusDescription": job.status_description,
        "JobSummary": to_wire(summary) if summary is not None else None,
        "CreateIndex": job.create_index,
        "ModifyIndex": job.modify_index,
        "JobModifyIndex": job.job_modify_index,
        "SubmitTime": job.submit_time,
        "Meta": job.meta,
        "NodePool": job.node_pool,
        "Version": job.version,
    }


def alloc_list_stub(alloc, with_resources: bool = False, with_task_states: bool = True) -> dict[str, Any]:
    job = alloc.job
    return {
        "ID": alloc.id,
        "EvalID": alloc.eval_id,
        "Name": alloc.name,
        "Namespace": alloc.namespace,
        "NodeID": alloc.node_id,
        "NodeName": alloc.node_name,
        "JobID": alloc.job_id,
        "JobType": job.type if job else "",
        "JobVersion": job.version if job else alloc.job_version,
        "TaskGroup": alloc.task_group,
        "AllocatedResources": to_wire(alloc.allocated_resources) if with_resources else None,
        "DesiredStatus": alloc.desired_status,
        "DesiredDescription": alloc.desired_description,
        "ClientStatus": alloc.client_status,
        "ClientDescription": alloc.client_description,
        "DesiredTransition": to_wire(alloc.desired_transition),
        "TaskStates": to_wire(alloc.task_states) if with_task_states else None,
        "DeploymentStatus": to_wire(alloc.deployment_status),
        "FollowupEvalID": alloc.followup_eval_id,
        "NextAllocation": alloc.next_allocation,
        "RescheduleTracker": to_wire(alloc.reschedule_tracker),
        "PreemptedAllocations": alloc.preempted_allocations,
        "PreemptedByAllocation": alloc.preempted_by_allocation,
        "NetworkStatus": alloc.network_status,
        "CreateIndex": alloc.create_index,
        "ModifyIndex": alloc.modify_index,
        "CreateTime": alloc.create_time,
        "ModifyTime": alloc.modify_time,
    }


def node_address(node) -> str:
    addr = (node.attributes or {}).get("unique.network.ip-address", "")
    if not addr and node.http_addr:
        addr = node.http_addr.rsplit(":", 1)[0]
    return addr


def node_wire(node) -> dict[str, Any]:
    """The full node as Nomad returns it (with the legacy `Drain` flag)."""
    data = to_wire(node)
    data["Drain"] = node.drain_strategy is not None
    return data


def node_list_stub(node, with_resources: bool = False) -> dict[str, Any]:
    return {
        "Address": node_address(node),
        "ID": node.id,
        "Attributes": node.attributes if with_resources else _os_attributes(node),
        "Datacenter": node.datacenter,
        "Name": node.name,
        "NodeClass": node.node_class,
        "NodePool": node.node_pool,
        "Version": (node.attributes or {}).get("nomad.version", ""),
        "Drain": node.drain_strategy is not None,
        "SchedulingEligibility": node.scheduling_eligibility,
        "Status": node.status,
        "StatusDescription": node.status_description,
        "Drivers": to_wire(node.drivers),
        "HostVolumes": node.host_volumes,
        "NodeResources": to_wire(node.node_resources) if with_resources else None,
        "ReservedResources": to_wire(node.reserved_resources) if with_resources else None,
        "LastDrain": node.last_drain,
        "CreateIndex": node.create_index,
        "ModifyIndex": node.modify_index,
    }


def _os_attributes(node) -> dict[str, str] | None:
    attrs = node.attributes or {}
    picked = {k: attrs[k] for k in ("os.name", "os.version") if k in attrs}
    return picked or None
