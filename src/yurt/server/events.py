"""The event stream: every applied command becomes Nomad-style events (`Topic`, `Type`,
`Key`, `Namespace`, `FilterKeys`, `Index`, `Payload`), kept in a bounded buffer that
`/v1/event/stream` subscribers read from (and wait on)."""

import asyncio
import bisect
from dataclasses import dataclass, field
from typing import Any

import msgspec

from yurt.structs import evolve, to_wire

_encoder = msgspec.json.Encoder()


@dataclass
class Event:
    topic: str
    type: str
    key: str
    namespace: str
    index: int
    payload: dict[str, Any]
    filter_keys: list[str] | None = None
    _encoded: bytes | None = field(default=None, repr=False, compare=False)

    def wire(self) -> dict[str, Any]:
        return {"Topic": self.topic, "Type": self.type, "Key": self.key, "Namespace": self.namespace,
                "FilterKeys": self.filter_keys, "Index": self.index, "Payload": to_wire(self.payload)}

    def encoded(self) -> bytes:
        """`wire()` as JSON, encoded once however many subscribers send it (a payload may
        hold structs: they encode as their `to_wire`, without building it first)."""
        if self._encoded is None:
            self._encoded = _encoder.encode({
                "Topic": self.topic, "Type": self.type, "Key": self.key, "Namespace": self.namespace,
                "FilterKeys": self.filter_keys, "Index": self.index, "Payload": self.payload})
        return self._encoded


def _alloc_events(snapshot, index: int, alloc_ids, typ: str) -> list[Event]:
    out = []
    for alloc_id in alloc_ids:
        alloc = snapshot.alloc_by_id(alloc_id)
        if alloc is not None:
            data = to_wire(alloc)
            data["Job"] = None
            out.append(Event("Allocation", typ, alloc.id, alloc.namespace, index, {"Allocation": data},
                             [alloc.job_id, alloc.deployment_id] if alloc.deployment_id else [alloc.job_id]))
    return out


def _eval_events(snapshot, index: int, evals) -> list[Event]:
    out = []
    for ev in evals or ():
        stored = snapshot.eval_by_id(ev.id) or ev
        out.append(Event("Evaluation", "EvaluationUpdated", stored.id, stored.namespace, index,
                         {"Evaluation": to_wire(stored)}, [stored.job_id, stored.deployment_id]))
    return out


def _node_event(snapshot, index: int, node_id: str, typ: str) -> list[Event]:
    node = snapshot.node_by_id(node_id)
    payload = evolve(node, secret_id="") if node is not None else {"ID": node_id}
    return [Event("Node", typ, node_id, "", index, {"Node": payload})]


def events_for(snapshot, index: int, command) -> list[Event]:
    """The events one applied command produces (read back from the state at `index`)."""
    kind = type(command).__name__
    out: list[Event] = []
    if kind in ("JobRegister", "JobDeregister"):
        ns = command.job.namespace if kind == "JobRegister" else command.namespace
        job_id = command.job.id if kind == "JobRegister" else command.job_id
        job = snapshot.job_by_id(ns, job_id)
        typ = "JobRegistered" if kind == "JobRegister" else "JobDeregistered"
        out.append(Event("Job", typ, job_id, ns, index, {"Job": to_wire(job) if job else {"ID": job_id}}))
        out += _eval_events(snapshot, index, [command.eval] if command.eval else [])
    elif kind == "PlanApply":
        ids = [a.id for allocs in (*command.node_allocation.values(), *command.node_update.values(),
                                   *command.node_preemptions.values()) for a in allocs]
        out += _alloc_events(snapshot, index, ids, "PlanResult")
    elif kind == "AllocClientUpdate":
        out += _alloc_events(snapshot, index, [a.id for a in command.allocs], "AllocationUpdated")
    elif kind == "AllocDesiredTransition":
        out += _alloc_events(snapshot, index, list(command.transitions), "AllocationUpdateDesiredStatus")
    elif kind == "NodeRegister":
        out += _node_event(snapshot, index, command.node.id, "NodeRegistration")
    elif kind == "NodeDeregister":
        for node_id in command.node_ids:
            out.append(Event("Node", "NodeDeregistration", node_id, "", index, {"Node": {"ID": node_id}}))
    elif kind in ("NodeUpdateStatus", "NodeUpdateEligibility", "NodeUpdateDrain"):
        typ = {"NodeUpdateStatus": "NodeStreamEvent", "NodeUpdateEligibility": "NodeEligibility",
               "NodeUpdateDrain": "NodeDrain"}[kind]
        out += _node_event(snapshot, index, command.node_id, typ)
    if kind not in ("JobRegister", "JobDeregister"):
        out += _eval_events(snapshot, index, getattr(command, "evals", None))
    out += _deployment_events(snapshot, index, command, kind)
    if kind == "SchedulerConfigSet":
        out.append(Event("Operator", "SchedulerConfigurationUpdated", "", "", index,
                         {"SchedulerConfig": to_wire(command.config)}))
    return out


_DEPLOYMENT_EVENT_TYPES = {"DeploymentStatusSet": "DeploymentStatusUpdate", "DeploymentPromote": "DeploymentPromotion",
                           "DeploymentAllocHealth": "DeploymentAllocHealth", "PlanApply": "DeploymentStatusUpdate"}


def _deployment_events(snapshot, index: int, command, kind: str) -> list[Event]:
    ids = [command.deployment_id] if hasattr(command, "deployment_id") else []
    if kind == "PlanApply":
        ids = ([command.deployment.id] if command.deployment is not None else [])
        ids += [u.deployment_id for u in command.deployment_updates or ()]
    out = []
    for d in filter(None, (snapshot.deployment_by_id(i) for i in dict.fromkeys(ids))):
        out.append(Event("Deployment", _DEPLOYMENT_EVENT_TYPES[kind], d.id, d.namespace, index, {"Deployment": to_wire(d)}))
    return out


class EventBuffer:
    """The newest `size` events (at least; trimmed in halves); subscribers read the events
    after an index (`after`), told of new ones by `listeners`. Events are only built while
    someone subscribes (building them costs an encode per object). A subscriber that falls
    more than the buffer behind misses the oldest events (`missed` says whether it did)."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._events: list[Event] = []
        self.subscribers = 0
        self.latest_index = 0
        self.dropped = 0  # events trimmed from the buffer so far
        self.dropped_index = 0  # index of the newest trimmed event
        self.listeners: list = []  # called with no argument after each publish
        self.fanout = None  # the HTTP layer's sender to the stream's subscribers (`http.routes_events`)

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        self._events.extend(events)
        if len(self._events) > 2 * self.size:
            cut = len(self._events) - self.size
            self.dropped += cut
            self.dropped_index = self._events[cut - 1].index
            del self._events[:cut]
        self.latest_index = events[-1].index
        for listener in self.listeners:
            listener()

    def after(self, index: int) -> list[Event]:
        return self._events[bisect.bisect_right(self._events, index, key=_index_of):]

    async def wait(self, index: int, timeout: float) -> list[Event]:
        """Events after `index`, waiting up to `timeout` seconds for the first (on the loop
        that publishes; `/v1/event/stream` is written by its fan-out instead)."""
        if self.latest_index <= index:
            fut = asyncio.get_running_loop().create_future()

            def wake() -> None:
                if not fut.done():
                    fut.set_result(None)

            self.listeners.append(wake)
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                pass
            finally:
                self.listeners.remove(wake)
        return self.after(index)

    def missed(self, index: int) -> bool:
        """Whether events after `index` were trimmed before a subscriber at `index` read them."""
        return index < self.dropped_index


def _index_of(event: Event) -> int:
    return event.index
