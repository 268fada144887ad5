"""The simulated node's transport: the real client's RPC (`yurt.rpc`), one multiplexed
connection per node that its watch, pulls, registration, heartbeats and status updates
share, as a real client's `yurt.rpc.client.RPCConnection` does. `RPCChannel.request` keeps
`bench.simhttp.Channel`'s interface (path with its query string, request body as bytes,
`Response` with the body's bytes), but both bodies are msgpack: the node's codecs decode the
reply body straight into their structs.

A request outside the client-internal routes (the legacy full-alloc watch) goes over HTTP
(`Channel`); its JSON answer is handed on as msgpack, so the node has one codec."""

from __future__ import annotations

import asyncio

import msgspec

from yurt.agent.local_server import internal_route
from yurt.rpc import INFO_PATH, decode_reply_raw
from yurt.rpc.client import RPCConnection, connect

from .simhttp import READ_TIMEOUT, Channel, ChannelStats, Response


async def listener_of(host: str, http_port: int) -> tuple[int, str]:
    """(rpc port, listener ID) of the server at host:http_port; RuntimeError if it has none."""
    resp = await Channel(host, http_port).request("GET", INFO_PATH)
    if not resp.ok():
        raise RuntimeError(f"the server at {host}:{http_port} has no RPC listener "
                           f"(GET {INFO_PATH}: {resp.status} {resp.body[:200]!r})")
    info = msgspec.json.decode(resp.body)
    return int(info["Port"]), str(info["ID"])


class RPCChannel:
    """One node's RPC connection to `host:rpc[0]` (listener ID `rpc[1]`), reopened on the next
    request after it is lost. Any number of requests at once."""

    __slots__ = ("_connecting", "_conn", "_http", "host", "http_port", "listener", "stats", "timeout")

    def __init__(self, host: str, http_port: int, listener: tuple[int, str], stats: ChannelStats | None = None,
                 timeout: float = READ_TIMEOUT):
        self.host, self.http_port, self.listener = host, http_port, listener
        self.stats = stats if stats is not None else ChannelStats()
        self.timeout = timeout
        self._conn: RPCConnection | None = None
        self._connecting: asyncio.Future | None = None
        self._http: Channel | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        path, _, query = path.partition("?")
        if internal_route(method, path) is None:
            return await self._over_http(method, path + ("?" + query if query else ""), body)
        params = dict(part.split("=", 1) for part in query.split("&")) if query else None
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        self.stats.requests += 1
        try:
            rep = await conn.call(method, path, params, None if body is None else msgspec.Raw(body), self.timeout)
        except ConnectionError:
            if self._conn is conn:
                self._conn = None
            raise
        return Response(rep.status, rep.index, bytes(rep.body))

    async def _connect(self) -> RPCConnection:
        if self._connecting is not None:  # the node's other loop is connecting: share it
            return await asyncio.shield(self._connecting)
        self._connecting = asyncio.get_running_loop().create_future()
        try:
            self.stats.connects += 1
            self._conn = await connect(self.host, self.listener[0], self.listener[1], decode_reply_raw)
            self._connecting.set_result(self._conn)
            return self._conn
        except BaseException as exc:
            self._connecting.set_exception(exc)
            self._connecting.exception()  # retrieved: a lone connect has no other waiter
            raise
        finally:
            self._connecting = None

    async def _over_http(self, method: str, path: str, body: bytes | None) -> Response:
        if self._http is None:
            self._http = Channel(self.host, self.http_port, self.stats, self.timeout)
        json_body = None if body is None else msgspec.json.encode(msgspec.msgpack.decode(body))
        resp = await self._http.request(method, path, json_body)
        if resp.ok() and resp.body:
            return Response(resp.status, resp.index, msgspec.msgpack.encode(msgspec.json.decode(resp.body)))
        return resp

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._http is not None:
            self._http.close()
