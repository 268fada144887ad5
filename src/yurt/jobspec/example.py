"""The job file `job init` writes (`example.nomad.hcl`, or the short one with `-short`)."""

from __future__ import annotations

from importlib import resources

EXAMPLE_FILENAME = "example.nomad.hcl"


def example_job(short: bool = False) -> str:
    name = "example-short.nomad.hcl" if short else "example.nomad.hcl"
    return resources.files("yurt.jobspec").joinpath("assets", name).read_text(encoding="utf-8")
