"""Benchmark: parse a generated 2,000-line HCL jobspec (variables, locals, functions,
services, templates, constraints) and print one JSON line with the median time.

    .venv/bin/python bench/jobspec_parse.py [--lines 2000] [--runs 7] [--short]

Goal: median under 0.5 s for 2,000 lines.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from yurt.jobspec import parse

HEADER = '''variable "image" {
  type    = string
  default = "example/app:1"
}

variable "replicas" {
  type    = number
  default = 2
}

locals {
  labels = { team = "bench", tier = "backend" }
  ports  = ["http", "metrics"]
}

job "bench" {
  datacenters = ["dc1", "dc2"]
  type        = "service"

  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
'''

GROUP = '''
  group "group-{i}" {{
    count = var.replicas

    network {{
      port "http" {{
        to = 8080
      }}

      port "metrics" {{}}
    }}

    update {{
      max_parallel     = 1
      min_healthy_time = "10s"
    }}

    service {{
      name = "svc-{i}"
      port = "http"
      tags = [for l in local.ports : "${{l}}-{i}"]

      check {{
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }}
    }}

    task "app-{i}" {{
      driver = "docker"

      config {{
        image = var.image
        ports = local.ports
        args  = ["--id", "{i}", "--alloc", "${{NOMAD_ALLOC_ID}}"]
      }}

      env {{
        INDEX = "{i}"
        NAME  = upper("app-{i}")
      }}

      meta = merge(local.labels, {{ index = "{i}" }})

      template {{
        destination = "local/app.conf"
        data        = <<-EOT
          name = app-{i}
          addr = {{{{ env "NOMAD_IP_http" }}}}
        EOT
      }}

      resources {{
        cpu    = 100
        memory = 128
      }}
    }}
  }}
'''


def jobspec(lines: int) -> str:
    parts = [HEADER]
    i = 0
    while sum(p.count("\n") for p in parts) < lines - 2:
        parts.append(GROUP.format(i=i))
        i += 1
    parts.append("}\n")
    return "".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--short", action="store_true", help="CI mode: 200 lines, 3 runs")
    args = parser.parse_args()
    lines, runs = (200, 3) if args.short else (args.lines, args.runs)
    text = jobspec(lines)
    parse(text, "bench.nomad.hcl", env={})  # warm up: grammar load, caches
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        job = parse(text, "bench.nomad.hcl", env={})
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    print(json.dumps({"benchmark": "jobspec_parse", "lines": text.count("\n"), "groups": len(job.task_groups),
                      "runs": runs, "median_s": round(statistics.median(wall), 4),
                      "min_s": round(min(wall), 4), "median_cpu_s": round(statistics.median(cpu), 4),
                      "goal_s": 0.5}))


if __name__ == "__main__":
    main()
