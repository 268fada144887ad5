"""The `connect` block of a service (Consul service mesh): sidecar service and task,
upstreams, expose paths, transparent proxy and gateways (Nomad's `api/consul.go`)."""

from __future__ import annotations

from .schema import (
    ANY, BOOL, DURATION, FREEFORM, INT, STRING, STRING_MAP, STRINGMAP, STRINGS, Blk, Schema,
    attrs,
)

MESH_GATEWAY = Schema("mesh_gateway", attrs(mode=STRING))
UPSTREAM = Schema(
    "upstreams",
    attrs(destination_name=STRING, destination_namespace=STRING, destination_peer=STRING,
          destination_partition=STRING, destination_type=STRING, local_bind_port=INT,
          local_bind_address=STRING, local_bind_socket_path=STRING, local_bind_socket_mode=STRING,
          datacenter=STRING, config=("Config", ANY)),
    {"mesh_gateway": Blk("MeshGateway", MESH_GATEWAY), "config": Blk("Config", FREEFORM)},
)
EXPOSE_PATH = Schema("path", attrs(path=STRING, protocol=STRING, local_path_port=INT,
                                   listener_port=STRING))
EXPOSE = Schema("expose", blocks={"path": Blk("Paths", EXPOSE_PATH, repeat=True)})
TRANSPARENT_PROXY = Schema(
    "transparent_proxy",
    attrs(uid=("UID", STRING), outbound_port=INT, exclude_inbound_ports=STRINGS,
          exclude_outbound_ports=("ExcludeOutboundPorts", ANY),
          exclude_outbound_cidrs=("ExcludeOutboundCIDRs", STRINGS),
          exclude_uids=("ExcludeUIDs", STRINGS), no_dns=("NoDNS", BOOL)),
)
PROXY = Schema(
    "proxy",
    attrs(local_service_address=STRING, local_service_port=INT, config=("Config", ANY)),
    {"upstreams": Blk("Upstreams", UPSTREAM, repeat=True), "expose": Blk("Expose", EXPOSE),
     "transparent_proxy": Blk("TransparentProxy", TRANSPARENT_PROXY),
     "config": Blk("Config", FREEFORM)},
)
SIDECAR_SERVICE = Schema(
    "sidecar_service",
    attrs(tags=STRINGS, port=STRING, disable_default_tcp_check=BOOL, meta=STRINGMAP),
    {"proxy": Blk("Proxy", PROXY), "meta": Blk("Meta", STRING_MAP)},
)


def sidecar_task_schema(task_blocks: dict[str, Blk]) -> Schema:
    keep = ("config", "env", "resources", "meta", "logs", "volume_mount", "identity")
    return Schema(
        "sidecar_task",
        attrs(name=STRING, driver=STRING, user=STRING, kill_timeout=DURATION,
              shutdown_delay=DURATION, kill_signal=STRING, config=("Config", ANY),
              env=STRINGMAP, meta=STRINGMAP),
        {name: spec for name, spec in task_blocks.items() if name in keep},
    )


SDS = Schema("sds", attrs(cluster_name=STRING, cert_resource=STRING))
GATEWAY_TLS = Schema("tls", attrs(enabled=BOOL, tls_min_version=("TLSMinVersion", STRING),
                                  tls_max_version=("TLSMaxVersion", STRING), cipher_suites=STRINGS),
                     {"sds": Blk("SDS", SDS)})
HEADERS = Schema("headers", attrs(add=STRINGMAP, set=STRINGMAP, remove=STRINGS))
INGRESS_SERVICE = Schema("service", attrs(name=STRING, hosts=STRINGS,
                                          max_connections=INT, max_pending_requests=INT,
                                          max_concurrent_requests=INT),
                         {"tls": Blk("TLS", GATEWAY_TLS), "request_headers": Blk("RequestHeaders", HEADERS),
                          "response_headers": Blk("ResponseHeaders", HEADERS)})
LISTENER = Schema("listener", attrs(port=INT, protocol=STRING),
                  {"service": Blk("Services", INGRESS_SERVICE, repeat=True)})
INGRESS = Schema("ingress", blocks={"tls": Blk("TLS", GATEWAY_TLS),
                                    "listener": Blk("Listeners", LISTENER, repeat=True)})
BIND_ADDRESS = Schema("envoy_gateway_bind_addresses", attrs(address=STRING, port=INT))
GATEWAY_PROXY = Schema(
    "proxy",
    attrs(connect_timeout=DURATION, envoy_gateway_bind_tagged_addresses=BOOL,
          envoy_gateway_no_default_bind=BOOL, envoy_dns_discovery_type=("EnvoyDNSDiscoveryType", STRING),
          config=("Config", ANY)),
    {"envoy_gateway_bind_addresses": Blk("EnvoyGatewayBindAddresses", BIND_ADDRESS, label="Name", repeat=True,
                                         keyed=True),
     "config": Blk("Config", FREEFORM)},
)
LINKED_SERVICE = Schema("service", attrs(name=STRING, ca_file=("CAFile", STRING), cert_file=STRING,
                                         key_file=STRING, sni=("SNI", STRING)))
TERMINATING = Schema("terminating", blocks={"service": Blk("Services", LINKED_SERVICE, repeat=True)})
GATEWAY = Schema(
    "gateway",
    blocks={"proxy": Blk("Proxy", GATEWAY_PROXY), "ingress": Blk("Ingress", INGRESS),
            "terminating": Blk("Terminating", TERMINATING), "mesh": Blk("Mesh", Schema("mesh"))},
)


def connect_schema(task_blocks: dict[str, Blk]) -> Schema:
    return Schema(
        "connect",
        attrs(native=BOOL),
        {"sidecar_service": Blk("SidecarService", SIDECAR_SERVICE),
         "sidecar_task": Blk("SidecarTask", sidecar_task_schema(task_blocks)),
         "gateway": Blk("Gateway", GATEWAY)},
    )
