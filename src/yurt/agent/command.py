"""`yurt agent`: flags, config files, and the process lifetime of a server and/or client agent."""

import argparse
import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile

from .config import AgentConfig, AgentConfigError, dev_config, load_files

USAGE = """Usage: yurt agent [options]

  Starts the yurt agent and runs until an interrupt is received. The agent may be a
  client and/or server. Options are those of `nomad agent`.

General Options:
  -bind=<addr>          The address the agent binds to (default 0.0.0.0; -dev: 127.0.0.1).
  -config=<path>        A config file or directory (HCL or JSON), repeatable.
  -data-dir=<path>      The data directory (dev mode: a temporary directory).
  -dc=<datacenter>      The datacenter of the agent (default dc1).
  -dev                  Development mode: server and client in one process, state in a temp dir.
  -log-level=<level>    TRACE, DEBUG, INFO, WARN or ERROR.
  -node=<name>          The name of this node (default: the hostname).
  -region=<region>      The region of the agent (default global).

Server Options:
  -server               Enable server mode.
  -bootstrap-expect=<n> Accepted for compatibility (a single server is its own leader).

Client Options:
  -client               Enable client mode.
  -servers=<host:port>  Comma-separated list of servers to join.
  -node-class=<class>   The node class.
  -node-pool=<pool>     The node pool (default "default").
  -meta=<key=value>     Client metadata, repeatable.
  -network-interface    Accepted for compatibility.
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="yurt agent", add_help=False, usage=USAGE, allow_abbrev=False)
    add = p.add_argument
    add("-dev", action="store_true")
    add("-server", action="store_true")
    add("-client", action="store_true")
    add("-config", action="append", default=[])
    add("-data-dir", dest="data_dir")
    add("-bind")
    add("-dc")
    add("-region")
    add("-node")
    add("-log-level", dest="log_level")
    add("-servers")
    add("-node-class", dest="node_class")
    add("-node-pool", dest="node_pool")
    add("-meta", action="append", default=[])
    add("-bootstrap-expect", dest="bootstrap_expect", type=int)
    add("-network-interface", dest="network_interface")
    add("-h", "-help", "--help", action="store_true", dest="help")
    return p


def build_config(argv: list[str]) -> AgentConfig:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.help:
        raise SystemExit(_usage_exit())
    if rest:
        raise AgentConfigError(f"unknown flag or argument: {rest[0]}\n\n{USAGE}")
    cfg = dev_config() if args.dev else AgentConfig()
    load_files(cfg, args.config)
    if args.server:
        cfg.server.enabled = True
    if args.client:
        cfg.client.enabled = True
    for flag, attr in (("data_dir", "data_dir"), ("bind", "bind_addr"), ("dc", "datacenter"),
                       ("region", "region"), ("node", "name"), ("log_level", "log_level")):
        value = getattr(args, flag)
        if value:
            setattr(cfg, attr, value)
    if args.servers:
        cfg.client.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    if args.node_class:
        cfg.client.node_class = args.node_class
    if args.node_pool:
        cfg.client.node_pool = args.node_pool
    for item in args.meta:
        key, sep, value = item.partition("=")
        if not sep:
            raise AgentConfigError(f'-meta: expected key=value, got "{item}"')
        cfg.client.meta[key] = value
    if not cfg.server.enabled and not cfg.client.enabled:
        raise AgentConfigError("Must specify either server, client or dev mode for the agent.")
    if not cfg.data_dir and not cfg.dev_mode:
        raise AgentConfigError("Must specify data directory")
    if cfg.client.enabled and not cfg.server.enabled and not cfg.client.servers:
        raise AgentConfigError("client mode needs the servers to join: -servers=host:port or client { servers = [...] }")
    return cfg


def _usage_exit() -> int:
    print(USAGE)
    return 0


def main(argv: list[str]) -> int:
    try:
        cfg = build_config(argv)
    except AgentConfigError as exc:
        print(f"==> Error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, cfg.log_level.upper().replace("WARN", "WARNING").replace("TRACE", "DEBUG"), logging.INFO),
        format="    %(asctime)s [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    temp_dir = None
    if not cfg.data_dir:
        temp_dir = tempfile.mkdtemp(prefix="yurt-dev-")
        cfg.data_dir = temp_dir
    try:
        from .run import run_agent, run_in_loop

        return run_in_loop(run_agent(cfg, _install_signals))
    except KeyboardInterrupt:
        return 0
    except AgentConfigError as exc:
        print(f"==> Error: {exc}", file=sys.stderr)
        return 1
    finally:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _install_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if os.environ.get("YURT_IGNORE_SIGHUP", "1") == "1":
        loop.add_signal_handler(signal.SIGHUP, lambda: None)
