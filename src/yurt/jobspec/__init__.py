"""yurt.jobspec: Nomad job files (HCL2 or JSON) -> `Job`, validation, `job init` text.

    job = parse(text, filename="web.nomad.hcl", variables={"count": "3"})
    problems = validate(canonicalize(job))
"""

from __future__ import annotations

from yurt.structs.job import Job

from .diagnostics import Diagnostic, JobspecError
from .example import example_job
from .hcl_job import hcl_job_dict
from .json_input import job_from_api_dict, json_job_dict, looks_like_json
from .validate import validate

__all__ = ["Diagnostic", "JobspecError", "parse", "parse_file", "validate", "example_job",
           "job_from_api_dict"]


def parse(text: str, filename: str = "<input>", variables: dict[str, str] | None = None,
          var_files: list[str] | None = None, allow_fs: bool = True) -> Job:
    """Parse an HCL2 or JSON jobspec into a `Job` (not canonicalized).

    Raises `JobspecError` listing every problem with its file, line and column.
    """
    if looks_like_json(text):
        return job_from_api_dict(json_job_dict(text, filename), filename)
    data = hcl_job_dict(text, filename, variables, var_files, allow_fs)
    return job_from_api_dict(data, filename)


def parse_file(path: str, variables: dict[str, str] | None = None,
               var_files: list[str] | None = None, allow_fs: bool = True) -> Job:
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(), path, variables, var_files, allow_fs)
