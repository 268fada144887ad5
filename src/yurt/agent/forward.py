"""Forward API requests from a client-only agent to one of its servers (streaming both ways)."""

import itertools

import aiohttp
from aiohttp import web

from ..http.client_proxy import relay_request


def forward_to_servers(servers: list[str]):
    addresses = [s if "://" in s else f"http://{s}" for s in servers]
    rotation = itertools.cycle(addresses)
    session_holder: dict[str, aiohttp.ClientSession] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        session = session_holder.get("s")
        if session is None or session.closed:
            session = session_holder["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        last_error = ""
        for _ in addresses:
            try:
                return await relay_request(request, session, next(rotation) + request.rel_url.path_qs)
            except aiohttp.ClientConnectionError as exc:
                last_error = str(exc)
        return web.Response(status=500, text=f"No servers reachable: {last_error}", content_type="text/plain")

    return handler
