"""A small client for etcd's v3 JSON gRPC gateway (`/v3/kv/...`, `/v3/lease/...`, `/v3/watch`)
over HTTP with httpx: no gRPC stack, works with etcd 3.4 and later.

Keys and values travel base64-encoded; 64-bit numbers travel as strings. A request that cannot
reach a member (refused, timed out) is retried on the next endpoint, and so is a 503 (no etcd
leader during an etcd election), for a few rounds; etcd's other errors (an HTTP error status with
a JSON `error`/`message`) raise `EtcdError`.
"""

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator

import httpx

log = logging.getLogger(__name__)


class EtcdError(Exception):
    """etcd answered with an error, or no endpoint could be reached."""


class EtcdUnavailable(EtcdError):
    """No endpoint could be reached."""


class EtcdBusy(EtcdUnavailable):
    """A member answered 503 (no etcd leader, leader changed, request timed out): try again."""


BUSY_ROUNDS = 3  # rounds over the endpoints while members answer 503 (an etcd election)
BUSY_PAUSE = 0.3


class WatchCompacted(EtcdError):
    """The watch's start revision was compacted away: re-read, then watch again."""


def b64(data: str | bytes) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def unb64(data: str | None) -> bytes:
    return base64.b64decode(data) if data else b""


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with `prefix` (ASCII keys)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _check(path: str, resp: httpx.Response) -> dict:
    try:
        body = resp.json()
    except ValueError:
        body = {"error": resp.text}
    if resp.status_code != 200:
        message = body.get("message") or body.get("error") or resp.text
        raise (EtcdBusy if resp.status_code == 503 else EtcdError)(f"etcd {path}: {message}")
    return body


class _Endpoints:
    def __init__(self, endpoints: list[str]):
        if not endpoints:
            raise ValueError("etcd_endpoints must name at least one etcd member")
        self.endpoints = [e.rstrip("/") if "://" in e else f"http://{e.rstrip('/')}" for e in endpoints]
        self.current = 0

    def order(self) -> list[str]:
        n = len(self.endpoints)
        return [self.endpoints[(self.current + i) % n] for i in range(n)]

    def failed(self, endpoint: str) -> None:
        if self.endpoints[self.current] == endpoint:
            self.current = (self.current + 1) % len(self.endpoints)

    def _failed(self, endpoint: str, exc: Exception, errors: list[str]) -> None:
        errors.append(f"busy {endpoint}: {exc}" if isinstance(exc, EtcdBusy) else f"{endpoint}: {exc!r}")
        self.failed(endpoint)


class Gateway(_Endpoints):
    """Blocking calls (the log backend runs on the store's thread)."""

    def __init__(self, endpoints: list[str], timeout: float = 5.0):
        super().__init__(endpoints)
        self._http = httpx.Client(timeout=timeout)

    def call(self, path: str, body: dict) -> dict:
        errors: list[str] = []
        for attempt in range(BUSY_ROUNDS):
            if attempt:
                time.sleep(BUSY_PAUSE)
            for endpoint in self.order():
                try:
                    return _check(path, self._http.post(endpoint + path, json=body))
                except (httpx.TransportError, EtcdBusy) as exc:
                    self._failed(endpoint, exc, errors)
            if not errors[-1].startswith("busy"):
                break
        raise EtcdUnavailable(f"etcd {path}: no endpoint reachable ({'; '.join(errors)})")

    def close(self) -> None:
        self._http.close()


class AsyncGateway(_Endpoints):
    """Calls from the event loop (leadership, replication)."""

    def __init__(self, endpoints: list[str], timeout: float = 5.0):
        super().__init__(endpoints)
        self._http = httpx.AsyncClient(timeout=timeout)

    async def call(self, path: str, body: dict, timeout: float | None = None) -> dict:
        errors: list[str] = []
        kwargs = {} if timeout is None else {"timeout": timeout}
        for attempt in range(BUSY_ROUNDS):
            if attempt:
                await asyncio.sleep(BUSY_PAUSE)
            for endpoint in self.order():
                try:
                    return _check(path, await self._http.post(endpoint + path, json=body, **kwargs))
                except (httpx.TransportError, EtcdBusy) as exc:
                    self._failed(endpoint, exc, errors)
            if not errors[-1].startswith("busy"):
                break
        raise EtcdUnavailable(f"etcd {path}: no endpoint reachable ({'; '.join(errors)})")

    async def watch(self, key: str, range_end: str, start_revision: int,
                    progress_timeout: float = 30.0) -> AsyncIterator[list[dict]]:
        """Yield the event lists of a watch on [key, range_end) from `start_revision`; ends (or
        raises) when the stream breaks, so callers re-read and watch again."""
        endpoint = self.order()[0]
        body = {"create_request": {"key": b64(key), "range_end": b64(range_end),
                                   "start_revision": str(start_revision), "progress_notify": True}}
        timeout = httpx.Timeout(5.0, read=progress_timeout)
        try:
            async with self._http.stream("POST", endpoint + "/v3/watch", json=body, timeout=timeout) as resp:
                if resp.status_code != 200:
                    raise EtcdError(f"etcd watch: HTTP {resp.status_code}")
                async for line in resp.aiter_lines():
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result") or {}
                    if result.get("canceled"):
                        if result.get("compact_revision"):
                            raise WatchCompacted(f"etcd watch: revision {start_revision} compacted")
                        raise EtcdError(f"etcd watch canceled: {result.get('cancel_reason', '')}")
                    if result.get("events"):
                        yield result["events"]
        except httpx.TransportError as exc:
            self.failed(endpoint)
            raise EtcdUnavailable(f"etcd watch at {endpoint}: {exc!r}") from None

    async def aclose(self) -> None:
        await self._http.aclose()
