"""What every route handler needs: the server (and the local client agent) of the app."""

from aiohttp import web

SERVER_KEY: web.AppKey = web.AppKey("yurt_server", object)
CLIENT_AGENT_KEY: web.AppKey = web.AppKey("yurt_client_agent", object)


def server_of(request: web.Request):
    return request.app[SERVER_KEY]


def request_namespace(request: web.Request) -> str:
    ns = request.query.get("namespace") or "default"
    return "default" if ns == "*" else ns
