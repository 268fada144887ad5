"""The job files `job init` writes: the commented example, the short one (`-short`) and
the Consul Connect ones (`-connect`, `-connect -short`)."""

from __future__ import annotations

from importlib import resources

EXAMPLE_FILENAME = "example.nomad.hcl"


def example_job(short: bool = False, connect: bool = False) -> str:
    base = "connect" if connect else "example"
    name = f"{base}-short.nomad.hcl" if short else f"{base}.nomad.hcl"
    return resources.files("yurt.jobspec").joinpath("assets", name).read_text(encoding="utf-8")
