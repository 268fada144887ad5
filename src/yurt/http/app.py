"""The /v1 application: routes, Nomad's error conventions, the client routes."""

import logging

from aiohttp import web

from yurt.server.endpoints import EndpointError

from . import (
    routes_agent,
    routes_deployments,
    routes_events,
    routes_internal,
    routes_jobs,
    routes_jobs_ops,
    routes_metrics,
    routes_nodes_ops,
    routes_reads,
    routes_system,
)
from .client_proxy import install_session_holder, proxy_client_request
from .context import CLIENT_AGENT_KEY, SERVER_KEY
from .wire import error_response
from . import leader_forward  # noqa: I001 - HA write forwarding

log = logging.getLogger(__name__)


@web.middleware
async def nomad_errors(request: web.Request, handler):
    """Errors as text/plain with Nomad's status codes; never a traceback. HA followers
    forward writes to the leader (`leader_forward`) from here, not from a middleware of
    their own: each middleware layer costs every request."""
    try:
        server = request.app[SERVER_KEY]
        region = request.query.get("region")
        if region and region != server.config.region:
            raise EndpointError(500, "No path to region")
        if server.state is None and request.path.startswith("/v1/") and not request.path.startswith("/v1/client/"):
            raise EndpointError(500, "No cluster leader")
        if leader_forward.must_forward(request, server):
            return await leader_forward.forward_to_leader(request, handler, server)
        return await handler(request)
    except EndpointError as exc:
        return error_response(exc.status, exc.message)
    except web.HTTPMethodNotAllowed:
        return error_response(405, "Invalid method")
    except web.HTTPNotFound:
        return error_response(404, "404 page not found")
    except web.HTTPException:
        raise
    except Exception as exc:
        if type(exc).__name__ == "StateError":  # the state refused the command as invalid
            return error_response(400, str(exc))
        log.exception("%s %s failed", request.method, request.path)
        return error_response(500, str(exc) or type(exc).__name__)


def _client_routes(app: web.Application, client_agent) -> None:
    """The local client answers for its own allocations; everything else under
    /v1/client/ is forwarded to the node that owns it."""
    if client_agent is not None:
        try:
            from yurt.client.http import client_routes
        except ImportError:
            log.warning("yurt.client.http is not available: /v1/client/* is proxied to nodes")
        else:
            app.add_routes(client_routes(client_agent, fallback=proxy_client_request))
    app.router.add_route("*", "/v1/client/{tail:.*}", proxy_client_request)


def build_app(server, client_agent=None) -> web.Application:
    app = web.Application(middlewares=[nomad_errors], client_max_size=64 * 1024 * 1024)
    leader_forward.install(app)  # the forwarding session (HA followers forward writes to the leader)
    app[SERVER_KEY] = server
    app[CLIENT_AGENT_KEY] = client_agent
    for module in (routes_jobs, routes_jobs_ops, routes_reads, routes_nodes_ops, routes_system, routes_agent,
                   routes_internal, routes_metrics, routes_events, routes_deployments):
        app.add_routes(module.routes)
    app.router.add_route("*", "/v1/job/{rest:.+}", routes_jobs_ops.job_path_with_slashes)  # after all /v1/job routes
    _client_routes(app, client_agent)
    install_session_holder(app)
    return app
