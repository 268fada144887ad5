"""`/v1/metrics`: a go-metrics style JSON summary, or Prometheus text with `?format=prometheus`."""

import time

from aiohttp import web

from .context import server_of
from .wire import json_response


def server_gauges(server) -> dict[str, float]:
    stats = server.broker.stats()
    gauges = {
        "nomad.nomad.broker.total_ready": stats.total_ready,
        "nomad.nomad.broker.total_unacked": stats.total_unacked,
        "nomad.nomad.broker.total_pending": stats.total_pending,
        "nomad.nomad.broker.total_waiting": stats.total_waiting,
        "nomad.nomad.blocked_evals.total_blocked": len(server.blocked),
        "nomad.nomad.heartbeat.active": len(server.heartbeats),
    }
    for typ, count in stats.by_scheduler.items():
        gauges[f"nomad.nomad.broker.{typ}_ready"] = count
    if server.state is not None:
        summary: dict[str, int] = {}
        snapshot = server.state.snapshot()
        for job in snapshot.jobs(None):
            js = snapshot.job_summary(job.namespace, job.id)
            for tg in (js.summary.values() if js else ()):
                for field in ("queued", "complete", "failed", "running", "starting", "lost", "unknown"):
                    summary[field] = summary.get(field, 0) + getattr(tg, field)
        for field, value in summary.items():
            gauges[f"nomad.nomad.job_summary.{field}"] = value
    return gauges


def prometheus_text(gauges: dict[str, float]) -> str:
    lines = []
    for name, value in sorted(gauges.items()):
        metric = name.replace(".", "_").replace("-", "_")
        lines.append(f"# TYPE {metric} gauge")
        lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"


async def metrics(request: web.Request) -> web.Response:
    gauges = server_gauges(server_of(request))
    if request.query.get("format") == "prometheus":
        return web.Response(text=prometheus_text(gauges), content_type="text/plain")
    body = {
        "Timestamp": time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC", time.gmtime()),
        "Gauges": [{"Name": n, "Value": v, "Labels": {}} for n, v in sorted(gauges.items())],
        "Counters": [],
        "Samples": [],
        "Points": [],
    }
    return json_response(request, body)


routes = [web.get("/v1/metrics", metrics)]
