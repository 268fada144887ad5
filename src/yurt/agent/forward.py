"""Forward API requests from a client-only agent to one of its servers (streaming both ways)."""

import itertools

import aiohttp
from aiohttp import web

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def forward_to_servers(servers: list[str]):
    addresses = [s if "://" in s else f"http://{s}" for s in servers]
    rotation = itertools.cycle(addresses)
    session_holder: dict[str, aiohttp.ClientSession] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        session = session_holder.get("s")
        if session is None or session.closed:
            session = session_holder["s"] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        last_error = ""
        for _ in addresses:
            base = next(rotation)
            try:
                async with session.request(
                    request.method, base + request.rel_url.path_qs, data=body or None, headers=headers
                ) as upstream:
                    resp = web.StreamResponse(status=upstream.status)
                    for key, value in upstream.headers.items():
                        if key.lower() not in _HOP_HEADERS:
                            resp.headers[key] = value
                    await resp.prepare(request)
                    async for chunk in upstream.content.iter_any():
                        await resp.write(chunk)
                    await resp.write_eof()
                    return resp
            except aiohttp.ClientConnectionError as exc:
                last_error = str(exc)
        return web.Response(status=500, text=f"No servers reachable: {last_error}", content_type="text/plain")

    return handler
