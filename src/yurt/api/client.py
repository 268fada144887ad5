"""A small client for the /v1 API.

`Client` (sync, for the CLI) and `AsyncClient` (for client agents) share one config and
one error type. Responses are decoded JSON builtins in Nomad's shape; callers convert to
`yurt.structs` types where they need them.
"""

import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import httpx

# httpcore tries `import sniffio` several times per request; without sniffio installed every
# try searched sys.path again (~110 us each). A None entry makes the miss immediate.
if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]

DEFAULT_ADDRESS = "http://127.0.0.1:4646"


class APIError(Exception):
    """A non-2xx answer: `status` is the HTTP code and `text` Nomad's text/plain body."""

    def __init__(self, status: int, text: str, method: str = "", path: str = ""):
        super().__init__(f"Unexpected response code: {status} ({text.strip()})")
        self.status = status
        self.text = text.strip()
        self.method = method
        self.path = path


@dataclass
class QueryMeta:
    last_index: int = 0
    known_leader: bool = False
    last_contact: int = 0


@dataclass
class ClientConfig:
    address: str = DEFAULT_ADDRESS
    region: str = ""
    namespace: str = ""
    token: str = ""
    timeout: float = 330.0
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: Any) -> "ClientConfig":
        """Nomad's environment variables, then explicit (flag) values on top."""
        cfg = cls(
            address=os.environ.get("NOMAD_ADDR") or DEFAULT_ADDRESS,
            region=os.environ.get("NOMAD_REGION", ""),
            namespace=os.environ.get("NOMAD_NAMESPACE", ""),
            token=os.environ.get("NOMAD_TOKEN", ""),
        )
        for key, value in overrides.items():
            if value not in (None, ""):
                setattr(cfg, key, value)
        if "://" not in cfg.address:
            cfg.address = "http://" + cfg.address
        return cfg

    def request_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.token:
            headers["X-Nomad-Token"] = self.token
        return headers

    def request_params(self, params: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.region:
            out["region"] = self.region
        if self.namespace:
            out["namespace"] = self.namespace
        for key, value in (params or {}).items():
            if value is None:
                continue
            out[key] = ("true" if value else "false") if isinstance(value, bool) else value
        return out


def _meta(resp: httpx.Response) -> QueryMeta:
    return QueryMeta(
        last_index=int(resp.headers.get("X-Nomad-Index", "0") or 0),
        known_leader=resp.headers.get("X-Nomad-KnownLeader", "false") == "true",
        last_contact=int(resp.headers.get("X-Nomad-LastContact", "0") or 0),
    )


def _result(resp: httpx.Response, method: str, path: str) -> Any:
    if resp.status_code >= 400:
        raise APIError(resp.status_code, resp.text, method, path)
    if not resp.content:
        return None
    if resp.headers.get("content-type", "").startswith("application/json"):
        return resp.json()
    return resp.text


class Client:
    """Synchronous client (the CLI)."""

    def __init__(self, config: ClientConfig | None = None, transport: httpx.BaseTransport | None = None):
        self.config = config or ClientConfig.from_env()
        self._http = httpx.Client(base_url=self.config.address, timeout=self.config.timeout, transport=transport)

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> tuple[Any, QueryMeta]:
        resp = self._http.request(
            method,
            path,
            params=self.config.request_params(params),
            json=body,
            headers=self.config.request_headers(),
        )
        return _result(resp, method, path), _meta(resp)

    def get(self, path: str, /, **params: Any) -> Any:  # positional-only: `path` may be a query parameter
        return self.request("GET", path, params)[0]

    def put(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("PUT", path, params, body)[0]

    def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", path, params, body)[0]

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params)[0]

    def stream(self, path: str, /, **params: Any):
        """A streaming GET (logs -f, fs stream); use as a context manager."""
        return self._http.stream(
            "GET", path, params=self.config.request_params(params), headers=self.config.request_headers(), timeout=None
        )

    def close(self) -> None:
        self._http.close()


class AsyncClient:
    """Asynchronous client (client agents, the simulated fleet)."""

    def __init__(self, config: ClientConfig | None = None, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config or ClientConfig.from_env()
        self._http = httpx.AsyncClient(
            base_url=self.config.address, timeout=self.config.timeout, transport=transport
        )

    async def request(
        self, method: str, path: str, params: dict | None = None, body: Any = None
    ) -> tuple[Any, QueryMeta]:
        resp = await self._http.request(
            method,
            path,
            params=self.config.request_params(params),
            json=body,
            headers=self.config.request_headers(),
        )
        return _result(resp, method, path), _meta(resp)

    async def get(self, path: str, **params: Any) -> Any:
        return (await self.request("GET", path, params))[0]

    async def put(self, path: str, body: Any = None, **params: Any) -> Any:
        return (await self.request("PUT", path, params, body))[0]

    async def post(self, path: str, body: Any = None, **params: Any) -> Any:
        return (await self.request("POST", path, params, body))[0]

    async def delete(self, path: str, **params: Any) -> Any:
        return (await self.request("DELETE", path, params))[0]

    async def aclose(self) -> None:
        await self._http.aclose()
