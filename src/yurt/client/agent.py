"""The client agent: fingerprint and register the node, heartbeat, watch the node's
allocations with a blocking query, run them, and report their status in batches."""

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
import logging
import weakref
from typing import Any

import httpx
import msgspec

from yurt.api import APIError, AsyncClient
from yurt.api import ClientConfig as APIConfig
from yurt.drivers import builtin_drivers
from yurt.drivers.base import Driver
from yurt.structs.alloc import Allocation
from yurt.structs.codec import from_wire, to_wire
from yurt.structs.base import evolve
from yurt.structs.node import NODE_STATUS_READY, Node

from .allocrunner import AllocRunner
from .config import ClientConfig
from .disconnect import note_server_contact, stop_after_lost_contact
from .fingerprint import build_node
from .gc import AllocGarbageCollector
from .lifecycle import diff_allocs
from .localstate import LocalState

log = logging.getLogger(__name__)
RETRY_DELAY = 1.0
HEARTBEAT_FRACTION = 0.5
FINAL_FLUSH_TIMEOUT = 2.0
URGENT_GAP_DIVISOR = 10  # urgent updates: one batch per update_interval / 10 on average,
URGENT_BURST = 3  # after up to 3 at once
PULL_BATCH = 500  # alloc IDs per /v1/internal/allocs/get request


DRIVER_THREADS = 64  # blocking driver calls (e.g. Docker's create + start) run this wide
_widened: "weakref.WeakSet[asyncio.AbstractEventLoop]" = weakref.WeakSet()


def _widen_default_executor(loop: asyncio.AbstractEventLoop) -> None:
    """Drivers make blocking calls through `asyncio.to_thread`; the stock pool (cores + 4
    threads, 6 here) made 50 Docker containers start 6 at a time, each create + start
    taking seconds inside dockerd. Threads are only made when needed."""
    if loop not in _widened:
        _widened.add(loop)
        loop.set_default_executor(ThreadPoolExecutor(max_workers=DRIVER_THREADS, thread_name_prefix="client"))


class FlushAllowance:
    """A token bucket for urgent batches: `burst` may go at once, then one per `gap` seconds.
    A lone alloc's `running` right after another alloc's `complete` (a job replaced, W5) is
    not held back, while a node whose allocs change all the time still sends at most
    1 / `gap` batches a second. Every batch sent takes a token."""

    def __init__(self, gap: float, burst: int):
        self.gap, self.burst = gap, burst
        self._tokens, self._at = float(burst), float("-inf")

    def _tokens_at(self, now: float) -> float:
        if self.gap <= 0:  # no batching interval: nothing to hold back
            return float(self.burst)
        return min(float(self.burst), self._tokens + (now - self._at) / self.gap)

    def due(self, now: float) -> float:
        """When the next urgent batch may go."""
        tokens = self._tokens_at(now)
        return now if tokens >= 1 else now + (1 - tokens) * self.gap

    def take(self, now: float) -> None:
        self._tokens, self._at = max(0.0, self._tokens_at(now) - 1), now


class ClientAgent:
    def __init__(
        self,
        config: ClientConfig,
        drivers: dict[str, Driver] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        node_builder: Callable[[ClientConfig, dict[str, Driver]], Node] = build_node,
        wrap_api: Callable[[AsyncClient], Any] | None = None,
    ):
        """`node_builder` fingerprints the node; a simulated fleet passes one that reuses a
        single host fingerprint for thousands of agents. `wrap_api` may replace the API
        client of a server address (an agent that runs the server too talks to it in
        process: `yurt.agent.local_server`)."""
        self.config = config
        self._node_builder = node_builder
        self._wrap_api = wrap_api
        if drivers is None:
            drivers = builtin_drivers(config.raw_exec_enabled, config.mock_driver_enabled)
        self.drivers = {name: d for name, d in drivers.items() if config.driver_allowed(name)}
        self._transport = transport
        self.node: Node = Node()
        self.state: LocalState | None = None
        self._apis: list[AsyncClient] = []
        self._api_index = 0
        self.alloc_runners: dict[str, AllocRunner] = {}
        self._pending_updates: dict[str, dict[str, Any]] = {}
        self._updates_ready = asyncio.Event()
        self._urgent_update = asyncio.Event()
        self._allowance = FlushAllowance(config.update_interval / URGENT_GAP_DIVISOR, URGENT_BURST)
        self._loops: list[asyncio.Task] = []
        self._ops: set[asyncio.Task] = set()
        self.registered = asyncio.Event()
        self.heartbeat_ttl: float = 0.0
        self.alloc_index = 0
        self._ignored: dict[str, int] = {}  # alloc ID -> AllocModifyIndex of terminal allocs not run here
        self._legacy_watch = False
        self._server_allocs: set[str] | None = None  # the node's alloc IDs on the server at alloc_index
        self._stopped = False

    # --- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        _widen_default_executor(asyncio.get_running_loop())
        self.config.load_identity()
        self.node = evolve(self._node_builder(self.config, self.drivers), status=NODE_STATUS_READY)
        self.state = LocalState(self.config.state_db_path)
        self._apis = [
            AsyncClient(APIConfig(address=address, token=self.config.token), transport=self._transport)
            for address in self.config.server_addresses
        ]
        if self._wrap_api is not None:
            self._apis = [self._wrap_api(api) for api in self._apis]
        self._restore()
        self.gc = AllocGarbageCollector(self)
        self._loops = [
            asyncio.create_task(self.gc.run(), name="client gc"),
            asyncio.create_task(self._heartbeat_loop(), name="client heartbeat"),
            asyncio.create_task(self._watch_allocs(), name="client alloc watch"),
            asyncio.create_task(self._update_loop(), name="client alloc updates"),
        ]

    async def stop(self) -> None:
        """Stop the agent; tasks keep running under their supervisors."""
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        for op in list(self._ops):
            op.cancel()
        await asyncio.gather(*self._ops, return_exceptions=True)
        await asyncio.gather(*(r.detach() for r in self.alloc_runners.values()), return_exceptions=True)
        try:
            await asyncio.wait_for(self._flush_updates(), FINAL_FLUSH_TIMEOUT)
        except asyncio.TimeoutError:
            log.warning("alloc updates: server did not take the final batch")
        for api in self._apis:
            await api.aclose()
        if self.state is not None:
            self.state.close()
        self._stopped = True

    async def destroy_all_allocs(self) -> None:
        """Kill every task and remove every alloc dir and record (dev mode shutdown).
        Works before or after `stop()`."""
        reopened = self.state is None or self._stopped
        if reopened:
            self.state = LocalState(self.config.state_db_path)
        for runner in list(self.alloc_runners.values()):
            runner.ctx = self
            await runner.kill_detached()
            self.state.delete_alloc(runner.id)
            runner.alloc_dir.destroy()
        self.alloc_runners.clear()
        if reopened:
            self.state.close()

    def _restore(self) -> None:
        assert self.state is not None
        for alloc in self.state.allocs():
            runner = AllocRunner(self, alloc, restored=True)
            self.alloc_runners[alloc.id] = runner
            runner.start()
            if alloc.server_terminal and not runner.terminal:
                self._spawn(runner.stop())  # it was being stopped when the agent went away

    @property
    def api(self) -> AsyncClient | None:
        """The client for the server in use; `_next_server` fails over to the next one."""
        return self._apis[self._api_index % len(self._apis)] if self._apis else None

    def _next_server(self, exc: Exception) -> None:
        if len(self._apis) > 1:
            self._api_index += 1
            log.warning("server unreachable (%s); trying %s", exc, self.api.config.address)

    # --- node registration and heartbeats --------------------------------------------

    async def _register(self) -> None:
        assert self.api is not None
        resp = await self.api.put("/v1/internal/node/register", {"Node": to_wire(self.node)})
        self._set_ttl(resp)
        self.registered.set()

    def _set_ttl(self, resp: Any) -> None:
        if isinstance(resp, dict) and resp.get("HeartbeatTTL"):
            self.heartbeat_ttl = resp["HeartbeatTTL"] / 1e9

    def _heartbeat_interval(self) -> float:
        if self.config.heartbeat_interval is not None:
            return self.config.heartbeat_interval
        return max(self.heartbeat_ttl * HEARTBEAT_FRACTION, 0.5) if self.heartbeat_ttl else 5.0

    async def _heartbeat_loop(self) -> None:
        assert self.api is not None
        while True:
            try:
                if not self.registered.is_set():
                    await self._register()
                else:
                    resp = await self.api.put(f"/v1/internal/node/{self.node.id}/heartbeat", {"Status": "ready"})
                    self._set_ttl(resp)
                note_server_contact(self)
            except APIError as exc:
                if exc.status == 404:
                    self.registered.clear()
                    continue
                log.warning("heartbeat: %s", exc)
            except httpx.HTTPError as exc:
                log.warning("heartbeat: server unreachable: %s", exc)
                stop_after_lost_contact(self)
                self._next_server(exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            await asyncio.sleep(self._heartbeat_interval())

    # --- allocations --------------------------------------------------------------

    async def _watch_allocs(self) -> None:
        """Nomad's client loop (GetClientAllocs + GetAllocs), in its delta form
        (`yurt.http.alloc_delta`): block until the node's allocs change, receiving the ones
        new or changed since `alloc_index` in full with the node's alloc count. A count that
        does not add up (an alloc removed that we did not see) or an index that went back
        falls back to the full {alloc ID: AllocModifyIndex} map, pulling what changed."""
        assert self.api is not None
        await self.registered.wait()
        while True:
            try:
                got = await self._next_allocs()
            except APIError as exc:
                if exc.status == 404 and not self._legacy_watch:
                    self._legacy_watch = True
                    continue
                log.warning("watch allocations: %s", exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            except httpx.HTTPError as exc:
                log.warning("watch allocations: %s", exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            except msgspec.ValidationError as exc:
                log.error("watch allocations: bad response: %s", exc)
                await asyncio.sleep(RETRY_DELAY)
                continue
            if got is None:
                continue
            allocs, self.alloc_index, complete = got
            self._apply_allocs(allocs, complete)

    def _watch_path(self) -> str:
        if self._legacy_watch:
            return f"/v1/node/{self.node.id}/allocations"
        return f"/v1/internal/node/{self.node.id}/allocs"

    async def _next_allocs(self) -> tuple[list[Allocation], int, bool] | None:
        """One wake of the watch: (allocs, the answer's index, whether the allocs are all of
        the node's: else only the new or changed ones, none removed), None when nothing new."""
        since, known = self.alloc_index, self._server_allocs
        params: dict[str, Any] = {"index": since, "wait": self.config.alloc_wait}
        if not self._legacy_watch and (known is not None or since <= 0):  # else the full map
            params["delta"] = 1
            if known is not None:
                params["known"] = len(known)
        data, meta = await self.api.request("GET", self._watch_path(), params)
        if meta.last_index and meta.last_index == since:
            return None
        if self._legacy_watch:  # a server without the internal routes: full allocs each time
            return from_wire(data or [], list[Allocation]), meta.last_index, True
        data = data or {}
        if "Changed" not in data:  # a server without the delta form: the full map
            return await self._full_map(data.get("Allocs") or {}, meta.last_index)
        changed = from_wire(data["Changed"] or [], list[Allocation])
        if known is None:  # asked at index 0: everything on the node
            self._server_allocs = {a.id for a in changed}
            return changed, meta.last_index, True
        added = {a.id for a in changed if a.id not in known}
        if meta.last_index < since or len(known) + len(added) != data.get("Total"):
            # an alloc left the node since `since`, or the server's index went back
            data, meta = await self.api.request("GET", self._watch_path(), {"index": 0})
            return await self._full_map((data or {}).get("Allocs") or {}, meta.last_index)
        known |= added
        return changed, meta.last_index, False

    async def _full_map(self, versions: dict[str, int], index: int) -> tuple[list[Allocation], int, bool]:
        allocs = await self._pull_changed(versions)
        self._server_allocs = set(versions)
        return allocs, index, True

    async def _pull_changed(self, versions: dict[str, int]) -> list[Allocation]:
        """The node's allocs: pulled when new or changed, else the copy we hold."""
        held = {aid: r.alloc for aid, r in self.alloc_runners.items()}
        pull = [aid for aid, index in versions.items()
                if index > (held[aid].alloc_modify_index if aid in held else self._ignored.get(aid, -1))]
        pulled: list[Allocation] = []
        for start in range(0, len(pull), PULL_BATCH):
            data = await self.api.put("/v1/internal/allocs/get", {"AllocIDs": pull[start:start + PULL_BATCH]})
            pulled.extend(from_wire(data or [], list[Allocation]))
        fresh = {a.id for a in pulled}
        self._ignored = {aid: i for aid, i in self._ignored.items() if aid in versions}
        return pulled + [held[aid] for aid in versions if aid in held and aid not in fresh]

    def _apply_allocs(self, allocs: list[Allocation], complete: bool = True) -> None:
        """`complete`: `allocs` are all of the node's (runners not among them were removed);
        else only new or changed ones, and the runners of the others stay as they are."""
        runners = self.alloc_runners
        if complete:
            running = {aid: r.alloc.alloc_modify_index for aid, r in runners.items()}
        else:
            running = {a.id: runners[a.id].alloc.alloc_modify_index for a in allocs if a.id in runners}
        diff = diff_allocs(running, allocs)
        for alloc in diff.ignored:  # terminal allocs we never ran: not pulled again unless changed
            self._ignored[alloc.id] = alloc.alloc_modify_index
        if diff.added:
            self._spawn(self.gc.make_room(len(diff.added)))
        for alloc in diff.added:
            runner = AllocRunner(self, alloc)
            self.alloc_runners[alloc.id] = runner
            runner.start()
        for alloc in diff.updated:
            self.alloc_runners[alloc.id].update(alloc)
        for alloc in diff.stopped:
            runner = self.alloc_runners[alloc.id]
            if runner.alloc.server_terminal and alloc.alloc_modify_index <= runner.alloc.alloc_modify_index:
                continue  # a stop handled on an earlier wake (else every wake re-stored it)
            runner.update(alloc)
            if not runner.terminal:
                self._spawn(runner.stop())
        for alloc_id in diff.removed:
            runner = self.alloc_runners.pop(alloc_id)
            self._spawn(runner.destroy())

    def _spawn(self, coro) -> None:
        op = asyncio.create_task(coro)
        self._ops.add(op)
        op.add_done_callback(self._ops.discard)

    # --- status updates -------------------------------------------------------------

    def queue_update(self, update: dict[str, Any], urgent: bool = False) -> None:
        """Coalesce per alloc. A batch goes out `update_interval` after its first update
        (Nomad's batching); an `urgent` update (an alloc's client status changed) goes out
        at once while `FlushAllowance` lets it, so a lone alloc's `running` is not held back
        200 ms while a node whose allocs change all the time still coalesces them (at most
        50 batches/s on average at the default interval)."""
        self._pending_updates[update["ID"]] = update
        self._updates_ready.set()
        if urgent:
            self._urgent_update.set()

    async def _update_loop(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.update_interval
        while True:
            await self._updates_ready.wait()
            await self.registered.wait()
            due = loop.time() + interval
            while True:
                if self._urgent_update.is_set():
                    due = min(due, self._allowance.due(loop.time()))
                wait = due - loop.time()
                if wait <= 0:
                    break
                if self._urgent_update.is_set():
                    await asyncio.sleep(wait)
                    break
                try:
                    await asyncio.wait_for(self._urgent_update.wait(), wait)
                except asyncio.TimeoutError:
                    break
            await self._flush_updates()

    async def _flush_updates(self) -> None:
        self._urgent_update.clear()
        if not self._pending_updates or self.api is None:
            self._updates_ready.clear()
            return
        batch, self._pending_updates = self._pending_updates, {}
        self._updates_ready.clear()
        self._allowance.take(asyncio.get_running_loop().time())
        try:
            await self.api.put("/v1/internal/allocs/update", {"Allocs": list(batch.values())})
        except APIError as exc:
            if 400 <= exc.status < 500:
                log.error("alloc updates rejected, dropping %d: %s", len(batch), exc)
                return
            self._requeue(batch, exc)
            await asyncio.sleep(RETRY_DELAY)
        except httpx.HTTPError as exc:
            self._requeue(batch, exc)
            await asyncio.sleep(RETRY_DELAY)

    def _requeue(self, batch: dict[str, dict[str, Any]], exc: Exception) -> None:
        log.warning("alloc updates: %s; retrying", exc)
        for alloc_id, update in batch.items():
            self._pending_updates.setdefault(alloc_id, update)
        self._updates_ready.set()

    # --- queries used by the HTTP routes ----------------------------------------------

    def alloc_runner(self, alloc_id: str) -> AllocRunner | None:
        runner = self.alloc_runners.get(alloc_id)
        if runner is None:
            matches = [r for aid, r in self.alloc_runners.items() if aid.startswith(alloc_id)]
            runner = matches[0] if len(matches) == 1 else None
        return runner
