"""The client agent's side of `yurt.rpc`: `RPCConnection` (one multiplexed connection) and
`RPCServerAPI`, an `AsyncClient` look-alike that sends the client-internal requests over
the server's RPC listener and everything else over HTTP.

How the client finds the listener: its `client.servers` stay HTTP addresses; it asks that
address `GET /v1/internal/rpc` (`{"Port", "ID"}`), connects to the same host on `Port` and
checks, over RPC, that the listener answers with the same `ID` (several agents on one host
may share an rpc port setting; only the one that bound it listens). A server without the
route or listener (an older one, or one whose rpc port was taken) is spoken to over HTTP,
asked again every `PROBE_INTERVAL`. A lost connection fails the requests on it with the
httpx errors the client loops already handle (they retry); the next request reconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx

from yurt.agent.local_server import internal_route
from yurt.api import APIError, AsyncClient
from yurt.api.client import QueryMeta

from . import INFO_PATH, USE_HTTP, FrameBuffer, FrameError, Reply, decode_reply, frame

log = logging.getLogger(__name__)
PROBE_INTERVAL = 10.0  # s between looks for a server's RPC listener while it has none
CONNECT_TIMEOUT = 10.0


class ConnectionClosed(ConnectionError):
    """The connection closed before the reply came."""


class RPCConnection(asyncio.Protocol):
    """One connection to an RPC listener; any number of calls outstanding. `decode` reads a
    reply frame (`yurt.rpc.decode_reply`, or one that keeps the body raw)."""

    def __init__(self, decode: Callable[[bytes], Any] = decode_reply):
        self.decode = decode
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.frames = FrameBuffer()
        self.pending: dict[int, asyncio.Future] = {}
        self.seq = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.closed = True
        pending, self.pending = self.pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(ConnectionClosed(str(exc) if exc else "connection closed by the server"))

    def data_received(self, data: bytes) -> None:
        try:
            replies = [self.decode(p) for p in self.frames.feed(data)]
        except (FrameError, ValueError) as exc:  # msgspec's errors are ValueErrors
            log.warning("rpc: bad reply frame: %s", exc)
            self.close()
            return
        pending = self.pending
        for rep in replies:
            fut = pending.pop(rep.seq, None)
            if fut is not None and not fut.done():
                fut.set_result(rep)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True

    async def call(self, method: str, path: str, params: dict | None, body: Any, timeout: float) -> Reply:
        """The reply (`status`, `index`, `body`); ConnectionClosed, or TimeoutError after `timeout`."""
        if self.closed:
            raise ConnectionClosed("not connected")
        self.seq += 1
        seq = self.seq
        loop = asyncio.get_running_loop()
        fut = self.pending[seq] = loop.create_future()
        self.transport.write(frame((seq, method, path, params, body)))
        timer = loop.call_later(timeout, _expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()
            self.pending.pop(seq, None)


def _expire(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


async def connect(host: str, port: int, listener_id: str,
                  decode: Callable[[bytes], Any] = decode_reply) -> RPCConnection:
    """A connection to the listener `listener_id` at host:port (checked: ValueError if another
    listener answers); OSError/TimeoutError when none does."""
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(loop.create_connection(lambda: RPCConnection(decode), host, port),
                                     CONNECT_TIMEOUT)
    try:
        rep = await conn.call("GET", INFO_PATH, None, None, CONNECT_TIMEOUT)
        got = rep.body if isinstance(rep.body, dict) else _decoded(rep.body)
        if rep.status != 200 or not isinstance(got, dict) or got.get("ID") != listener_id:
            raise ValueError(f"{host}:{port} is another server's RPC listener")
    except BaseException:
        conn.close()
        raise
    return conn


def _decoded(body: Any) -> Any:
    import msgspec

    try:
        return msgspec.msgpack.decode(body) if isinstance(body, msgspec.Raw | bytes) else body
    except msgspec.DecodeError:
        return None


def http_host(address: str) -> str:
    """The host of an HTTP address (`http://host:port`, `host:port`, `[v6]:port`)."""
    hostport = address.split("://", 1)[-1].split("/", 1)[0]
    host = hostport.rsplit(":", 1)[0] if hostport.count(":") == 1 or hostport.startswith("[") else hostport
    return host.strip("[]")


class RPCServerAPI:
    """An `AsyncClient` look-alike: the client-internal routes over RPC when the server at
    `http`'s address listens for it, everything else (and all of it otherwise) over `http`."""

    def __init__(self, http: AsyncClient):
        self.http = http
        self.config = http.config
        self._conn: RPCConnection | None = None
        self._probe_at = 0.0  # loop time of the next look for the listener
        self._lock: asyncio.Lock | None = None

    async def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> tuple[Any, QueryMeta]:
        if internal_route(method, path) is None:
            return await self.http.request(method, path, params, body)
        conn = await self._connection()
        if conn is None:
            return await self.http.request(method, path, params, body)
        try:
            rep = await conn.call(method, path, self.config.request_params(params), body, self.config.timeout)
        except ConnectionClosed as exc:
            self._drop(conn)
            raise httpx.ReadError(f"rpc connection to {self.config.address} lost: {exc}") from None
        except TimeoutError:
            raise httpx.ReadTimeout(f"rpc: no reply from {self.config.address} in {self.config.timeout:g}s") from None
        if rep.status == USE_HTTP:
            return await self.http.request(method, path, params, body)
        if rep.status >= 400:
            raise APIError(rep.status, rep.body if isinstance(rep.body, str) else "", method, path)
        return rep.body, QueryMeta(last_index=rep.index, known_leader=True)

    # AsyncClient's shorthands, over this class's `request`
    get, put, post, delete = AsyncClient.get, AsyncClient.put, AsyncClient.post, AsyncClient.delete

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    async def _connection(self) -> RPCConnection | None:
        if self.connected:
            return self._conn
        loop = asyncio.get_running_loop()
        if loop.time() < self._probe_at:
            return None
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.connected:
                return self._conn
            if loop.time() < self._probe_at:
                return None
            try:
                info, _ = await self.http.request("GET", INFO_PATH)
                self._conn = await connect(http_host(self.config.address), int(info["Port"]), str(info["ID"]))
            except (APIError, httpx.HTTPError, OSError, TimeoutError, ValueError, KeyError, TypeError) as exc:
                self._probe_at = loop.time() + PROBE_INTERVAL
                log.debug("rpc: %s: using HTTP (%s)", self.config.address, exc)
                return None
            log.info("rpc: connected to %s's listener on port %s", self.config.address, info["Port"])
            return self._conn

    def _drop(self, conn: RPCConnection) -> None:
        conn.close()
        if self._conn is conn:
            self._conn = None

    async def aclose(self) -> None:
        if self._conn is not None:
            self._drop(self._conn)
        await self.http.aclose()


def rpc_api_wrapper(api: AsyncClient) -> RPCServerAPI:
    """For `ClientAgent(wrap_api=...)`."""
    return RPCServerAPI(api)
