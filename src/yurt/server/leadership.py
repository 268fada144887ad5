"""HA servers over etcd: leader election with a lease, log replication to followers, and the
cluster view behind /v1/status/leader, /v1/status/peers, /v1/agent/members and the raft
configuration route.

Every server:
- holds an etcd lease (TTL `etcd_lease_ttl` seconds, kept alive every third of it) and
  registers itself under `<prefix>/members/<node name>` with that lease;
- campaigns: a transaction creates `<prefix>/leader` (its record: name, addresses, HTTP URL)
  with its lease only if the key does not exist. The winner sets the log backend's guard to the
  key's ModRevision, applies whatever log it has not applied yet, then runs the leader loops
  (`Server.establish_leadership`). When its lease cannot be renewed before it runs out (etcd
  unreachable, partitioned) or the key changes, it revokes leadership at once; its appends are
  refused by etcd anyway once the key is gone;
- applies the log from a watch on `<prefix>/log/` (the leader's own entries are already
  applied and skipped), re-reading after a broken watch and reloading the newest snapshot when
  it fell behind the log's truncation.
Followers serve reads from their state; writes are forwarded to the leader's HTTP address by
`yurt.http.leader_forward`.
"""

import asyncio
import json
import logging
from types import SimpleNamespace

from yurt.state.etcd import EtcdLog
from yurt.state.etcd.gateway import AsyncGateway, b64, prefix_end, unb64
from yurt.state.store import LogGap, StateStore

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
RETRY_DELAY = 0.5
RENEW_MARGIN = 0.5  # give up leadership this long before the lease would run out


class EtcdLeadership:
    def __init__(self, server) -> None:
        cfg = server.config
        self.server = server
        self.ttl = max(2, round(cfg.etcd_lease_ttl))
        # short request timeouts: a hung member must not hold a write (on the event loop) past the lease
        self.backend = EtcdLog(cfg.etcd_endpoints, cfg.etcd_prefix, timeout=max(1.0, self.ttl / 3), guarded=True)
        self.leader_key = self.backend.key("leader")
        self.members_prefix = self.backend.key("members/")
        self.log_prefix = self.backend.key("log/")
        self.gw: AsyncGateway | None = None
        self.leader_info: dict | None = None  # the current leader's record
        self.leader_revision = 0
        self.members: list[dict] = []
        self._lease = 0
        self._lease_deadline = 0.0
        self._tasks: list[asyncio.Task] = []

    def record(self) -> dict:
        cfg = self.server.config
        return {"Name": cfg.node_name, "Region": cfg.region, "Datacenter": cfg.datacenter,
                "Addr": cfg.advertise_addr, "RPCPort": cfg.rpc_port, "SerfPort": cfg.serf_port,
                "HTTP": f"http://{cfg.advertise_addr}:{cfg.http_port}", "Version": cfg.version}

    def open_state(self) -> StateStore:
        """The store restored from etcd's newest snapshot and log."""
        return StateStore.from_backend(self.backend)

    @property
    def leader_http(self) -> str:
        return (self.leader_info or {}).get("HTTP", "")

    # -- lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        self.gw = AsyncGateway(self.backend.endpoints, timeout=max(1.0, self.ttl / 3))
        await self._observe()
        self._tasks = [asyncio.create_task(coro, name=name) for name, coro in (
            ("ha-campaign", self._campaign_loop()), ("ha-replicate", self._replicate_loop()),
            ("ha-observe", self._observe_loop()))]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._step_down()
        await self._revoke_lease()
        if self.gw is not None:
            await self.gw.aclose()

    async def _revoke_lease(self) -> None:
        """Release the leader key and member record now rather than at the lease's expiry."""
        lease, self._lease = self._lease, 0
        if lease and self.gw is not None:
            try:
                await self.gw.call("/v3/lease/revoke", {"ID": str(lease)}, timeout=1.0)
            except Exception as exc:
                log.debug("revoking etcd lease %x: %s", lease, exc)

    # -- election -------------------------------------------------------------------
    async def _campaign_loop(self) -> None:
        failures = 0
        while True:
            keepalive = None
            try:
                sent = asyncio.get_running_loop().time()  # the lease runs from (after) this moment
                resp = await self.gw.call("/v3/lease/grant", {"TTL": str(self.ttl)})
                self._lease = int(resp["ID"])
                self._lease_deadline = sent + int(resp["TTL"]) - RENEW_MARGIN
                keepalive = asyncio.create_task(self._keepalive(), name="ha-keepalive")
                failures = 0
                member_key = self.backend.key("members/" + self.server.config.node_name)
                await self.gw.call("/v3/kv/put", {"key": b64(member_key), "value": b64(json.dumps(self.record())),
                                                  "lease": str(self._lease)})
                while not keepalive.done():
                    revision = await self._try_acquire()
                    if revision:
                        await self._lead(revision, keepalive)
                        break
                    await asyncio.wait({keepalive}, timeout=POLL_INTERVAL)
                log.warning("etcd lease %x lost or leadership ended: campaigning again", self._lease)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                _log_failure("leader election", failures, exc)
            finally:
                if keepalive is not None:
                    keepalive.cancel()
            await self._step_down()
            await self._revoke_lease()
            await asyncio.sleep(RETRY_DELAY)

    async def _keepalive(self) -> None:
        """Renew the lease every third of its TTL; returns when it is (about to be) lost."""
        loop = asyncio.get_running_loop()
        while True:
            remaining = self._lease_deadline - loop.time()
            if remaining <= 0:
                log.warning("etcd lease %x could not be renewed in time", self._lease)
                return
            await asyncio.sleep(min(self.ttl / 3, remaining))
            sent = loop.time()
            try:  # a renewal still pending at the deadline is too late: leadership goes at the deadline
                resp = await asyncio.wait_for(self.gw.call("/v3/lease/keepalive", {"ID": str(self._lease)}),
                                              max(0.01, self._lease_deadline - sent))
            except Exception as exc:
                log.warning("renewing etcd lease %x: %s", self._lease, exc)
                continue
            left = int((resp.get("result") or resp).get("TTL") or 0)
            if left <= 0:
                log.warning("etcd lease %x expired", self._lease)
                return
            self._lease_deadline = sent + left - RENEW_MARGIN

    async def _try_acquire(self) -> int:
        """Create the leader key with our lease if nobody holds it; its ModRevision if we won."""
        resp = await self.gw.call("/v3/kv/txn", {
            "compare": [{"key": b64(self.leader_key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": b64(self.leader_key), "value": b64(json.dumps(self.record())),
                                         "lease": str(self._lease)}}],
        })
        return int(resp["header"]["revision"]) if resp.get("succeeded") else 0

    async def _lead(self, revision: int, keepalive: asyncio.Task) -> None:
        self.backend.set_guard(self.leader_key, revision)
        self.leader_info, self.leader_revision = self.record(), revision
        await self._catch_up()
        log.info("cluster leadership acquired (etcd revision %d, index %d)", revision, self.server.state.latest_index)
        await self.server.establish_leadership()
        while not keepalive.done():
            await asyncio.wait({keepalive}, timeout=POLL_INTERVAL)
            try:
                kvs = (await self.gw.call("/v3/kv/range", {"key": b64(self.leader_key)})).get("kvs") or []
            except Exception:
                continue  # etcd unreachable: the lease deadline decides
            if not kvs or int(kvs[0]["mod_revision"]) != revision:
                log.warning("the leader key changed under this server: stepping down")
                return

    async def _step_down(self) -> None:
        self.backend.clear_guard()
        if self.server.leader:
            log.warning("cluster leadership lost")
            await self.server.revoke_leadership()

    # -- replication ----------------------------------------------------------------
    async def _catch_up(self) -> int:
        """Apply what the log holds beyond our index; the etcd revision it was read at."""
        store = self.server.state
        entries, revision = await asyncio.to_thread(self.backend.read_after, store.latest_index)
        if entries and entries[0][0] > store.latest_index + 1:
            log.warning("state at %d is behind the log's start %d: reloading the snapshot",
                        store.latest_index, entries[0][0])
            await asyncio.to_thread(store.reload)
            entries, revision = await asyncio.to_thread(self.backend.read_after, store.latest_index)
        if entries:
            store.apply_replicated(entries)
        return revision

    async def _replicate_loop(self) -> None:
        cut = len(self.log_prefix)
        failures = 0
        while True:
            try:
                revision = await self._catch_up()
                failures = 0
                async for events in self.gw.watch(self.log_prefix, prefix_end(self.log_prefix), revision + 1):
                    entries = [(int(unb64(ev["kv"]["key"]).decode()[cut:]), unb64(ev["kv"].get("value")))
                               for ev in events if ev.get("type", "PUT") == "PUT"]
                    if entries:
                        self.server.state.apply_replicated(entries)
            except asyncio.CancelledError:
                raise
            except LogGap as exc:
                log.info("log replication: %s: re-reading", exc)
                continue
            except Exception as exc:
                failures += 1
                _log_failure("log replication", failures, exc)
            await asyncio.sleep(RETRY_DELAY)

    # -- cluster view ---------------------------------------------------------------
    async def _observe(self) -> None:
        resp = await self.gw.call("/v3/kv/range", {"key": b64(self.leader_key)})
        kvs = resp.get("kvs") or []
        self.leader_info = json.loads(unb64(kvs[0]["value"])) if kvs else None
        self.leader_revision = int(kvs[0]["mod_revision"]) if kvs else 0
        resp = await self.gw.call("/v3/kv/range", {"key": b64(self.members_prefix),
                                                   "range_end": b64(prefix_end(self.members_prefix))})
        self.members = [json.loads(unb64(kv["value"])) for kv in resp.get("kvs") or []]

    async def _observe_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                await self._observe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.debug("reading the cluster view: %s", exc)


def _log_failure(what: str, failures: int, exc: Exception) -> None:
    """Warn on the first, tenth and every hundredth failure in a row (etcd down: no log flood)."""
    level = logging.WARNING if failures in (1, 10) or failures % 100 == 0 else logging.DEBUG
    log.log(level, "%s (failure %d in a row): %s", what, failures, exc)


# -- the cluster as the status routes show it ----------------------------------------

def _rpc(record: dict) -> str:
    return f"{record['Addr']}:{record['RPCPort']}"


def leader_address(server) -> str:
    """`/v1/status/leader`: the leader's RPC address, "" when there is none."""
    ha = getattr(server, "leadership", None)
    if ha is None:
        return server.config.rpc_address if server.leader else ""
    return _rpc(ha.leader_info) if ha.leader_info else ""


def server_views(server) -> list[SimpleNamespace]:
    """Every live server as `.config` (the ServerConfig fields the routes read) and `.leader`."""
    ha = getattr(server, "leadership", None)
    if ha is None:
        return [server]
    leader = (ha.leader_info or {}).get("Name")
    records = ha.members or [ha.record()]
    return [
        SimpleNamespace(leader=r["Name"] == leader, config=SimpleNamespace(
            node_name=r["Name"], region=r["Region"], datacenter=r["Datacenter"], advertise_addr=r["Addr"],
            rpc_port=r["RPCPort"], serf_port=r["SerfPort"], version=r["Version"], rpc_address=_rpc(r)))
        for r in sorted(records, key=lambda r: r["Name"])
    ]
