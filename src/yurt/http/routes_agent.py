"""Agent, status, region and operator routes."""

from aiohttp import web

from yurt.server.endpoints import set_scheduler_config
from yurt.server.leadership import leader_address, server_views
from yurt.structs import SchedulerConfiguration, to_wire

from .context import CLIENT_AGENT_KEY, server_of
from .query import blocking_query
from .wire import convert, json_response, read_json

routes = web.RouteTableDef()


def member(server) -> dict:
    cfg = server.config
    return {
        "Name": f"{cfg.node_name}.{cfg.region}",
        "Addr": cfg.advertise_addr,
        "Port": cfg.serf_port,
        "Tags": {
            "role": "nomad",
            "region": cfg.region,
            "dc": cfg.datacenter,
            "build": cfg.version,
            "vsn": "1",
            "mvn": "1",
            "port": str(cfg.rpc_port),
            "rpc_addr": cfg.advertise_addr,
            "bootstrap": "1",
            "expect": "1",
            "raft_vsn": "3",
            "id": cfg.node_name,
        },
        "Status": "alive",
        "ProtocolMin": 1,
        "ProtocolMax": 5,
        "ProtocolCur": 2,
        "DelegateMin": 2,
        "DelegateMax": 5,
        "DelegateCur": 4,
    }


@routes.get("/v1/agent/self")
async def agent_self(request: web.Request) -> web.Response:
    server = server_of(request)
    cfg = server.config
    client = request.app.get(CLIENT_AGENT_KEY)
    config = {
        "Region": cfg.region,
        "Datacenter": cfg.datacenter,
        "NodeName": cfg.node_name,
        "DataDir": cfg.data_dir or "",
        "Version": {"Version": cfg.version, "VersionPrerelease": "", "VersionMetadata": "", "Revision": ""},
        "Server": {"Enabled": True, "NumSchedulers": cfg.num_schedulers, "BootstrapExpect": 1,
                   "HeartbeatGrace": int(cfg.heartbeat_grace * 1e9),
                   "MinHeartbeatTTL": int(cfg.min_heartbeat_ttl * 1e9)},
        "Client": {"Enabled": client is not None},
        "Ports": {"HTTP": cfg.http_port, "RPC": cfg.rpc_port, "Serf": cfg.serf_port},
        "ACL": {"Enabled": False},
    }
    stats = {
        "nomad": {"server": "true", "leader": str(server.leader).lower(), "known_regions": "1",
                  "bootstrap": "true"},
        "runtime": {"arch": "", "os": "linux", "version": "python"},
    }
    if client is not None and getattr(client, "node", None) is not None:
        stats["client"] = {"node_id": client.node.id, "known_servers": cfg.rpc_address}
    return json_response(request, {"config": config, "member": member(server), "stats": stats})


@routes.get("/v1/agent/members")
async def agent_members(request: web.Request) -> web.Response:
    server = server_of(request)
    cfg = server.config
    return json_response(request, {
        "ServerName": cfg.node_name,
        "ServerRegion": cfg.region,
        "ServerDC": cfg.datacenter,
        "Members": [member(view) for view in server_views(server)],
    })


@routes.get("/v1/agent/servers")
async def agent_servers(request: web.Request) -> web.Response:
    return json_response(request, [server_of(request).config.rpc_address])


@routes.get("/v1/agent/health")
async def agent_health(request: web.Request) -> web.Response:
    body = {"server": {"ok": True, "message": "ok"}}
    if request.app.get(CLIENT_AGENT_KEY) is not None:
        body["client"] = {"ok": True, "message": "ok"}
    return json_response(request, body)


@routes.get("/v1/status/leader")
async def status_leader(request: web.Request) -> web.Response:
    server = server_of(request)
    return json_response(request, leader_address(server))


@routes.get("/v1/status/peers")
async def status_peers(request: web.Request) -> web.Response:
    return json_response(request, [view.config.rpc_address for view in server_views(server_of(request))])


@routes.get("/v1/regions")
async def regions(request: web.Request) -> web.Response:
    return json_response(request, [server_of(request).config.region])


@routes.get("/v1/operator/scheduler/configuration")
async def get_scheduler_config(request: web.Request) -> web.Response:
    def compute(snap, opts):
        return {"SchedulerConfig": to_wire(snap.scheduler_config()),
                "Index": snap.table_index("scheduler_config"), "KnownLeader": True, "LastContact": 0}

    return await blocking_query(request, server_of(request), ["scheduler_config"], compute)


@routes.put("/v1/operator/scheduler/configuration")
@routes.post("/v1/operator/scheduler/configuration")
async def put_scheduler_config(request: web.Request) -> web.Response:
    body = await read_json(request)
    config = convert(body, SchedulerConfiguration, "scheduler configuration")
    cas = request.query.get("cas")
    updated, index = set_scheduler_config(server_of(request), config, int(cas) if cas else None)
    return json_response(request, {"Updated": updated, "Index": index}, index)


@routes.get("/v1/operator/raft/configuration")
async def raft_configuration(request: web.Request) -> web.Response:
    """Every server as a voter (one with the SQLite log; the live HA servers with etcd)."""
    servers = [{"ID": v.config.node_name, "Node": f"{v.config.node_name}.{v.config.region}",
                "Address": v.config.rpc_address, "Leader": v.leader, "Voter": True, "RaftProtocol": "3"}
               for v in server_views(server_of(request))]
    return json_response(request, {"Servers": servers, "Index": 0})


@routes.get("/v1/operator/autopilot/health")
async def autopilot_health(request: web.Request) -> web.Response:
    server = server_of(request)
    cfg = server.config
    index = server.state.latest_index if server.state is not None else 0
    member = {"ID": cfg.node_name, "Name": f"{cfg.node_name}.{cfg.region}", "Address": cfg.rpc_address,
              "SerfStatus": "alive", "Version": cfg.version, "Leader": server.leader, "LastContact": "0s",
              "LastTerm": 1, "LastIndex": index, "Healthy": True, "Voter": True,
              "StableSince": "0001-01-01T00:00:00Z"}
    return json_response(request, {"Healthy": True, "FailureTolerance": 0, "Servers": [member]})

