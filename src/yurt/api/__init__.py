"""HTTP client for yurt's (and Nomad's) /v1 API, used by the CLI, client agents and SDK users."""

from .client import APIError, AsyncClient, Client, ClientConfig, QueryMeta  # noqa: F401
