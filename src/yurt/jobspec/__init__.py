"""yurt.jobspec: Nomad job files (HCL2, HCL-style JSON or API JSON) -> `Job`, validation,
formatting (`hcl_format.format_hcl`), rendering (`hcl_render.render_job`), `job init` text.

    job = parse(text, filename="web.nomad.hcl", variables={"count": "3"}, checks=True)
    problems = validate(canonicalize(job))
"""

from __future__ import annotations

from yurt.structs.job import Job

from .api_defaults import without_nulls
from .diagnostics import Diagnostic, DiagnosticCollector, JobspecError
from .example import example_job
from .file_checks import check_job_file
from .hcl_job import ParseOptions, job_dict_from_body
from .hcl_syntax import parse_hcl
from .json_input import api_json_positions, job_from_api_dict, json_job_dict, looks_like_json
from .json_syntax import hcl_json_body
from .validate import validate
from .variables import variables_from_text

__all__ = ["Diagnostic", "JobspecError", "parse", "parse_file", "parse_to_dict", "validate",
           "example_job", "job_from_api_dict", "ParseOptions", "variables_from_text"]


def parse(text: str, filename: str = "<input>", variables: dict[str, str] | None = None,
          var_files: list[str] | None = None, allow_fs: bool = True, *, strict: bool = True,
          checks: bool = False, env: dict[str, str] | None = None) -> Job:
    """Parse an HCL2 or JSON jobspec into a `Job` (not canonicalized).

    JSON may be an API body (`{"Job": {"ID": ...}}` or a bare job) or HCL-style JSON
    (`{"job": {"web": {...}}}`). `strict=False` ignores unknown keys and undeclared
    variables; `checks=True` also runs the validation checks that can name a line
    (priority range, duplicate names, port labels, ...). `env` replaces `os.environ`
    as the source of `NOMAD_VAR_*` values. Raises `JobspecError` listing every problem.
    """
    options = ParseOptions(variables, var_files, allow_fs, env, strict, checks)
    return job_from_api_dict(parse_to_dict(text, filename, options), filename)


def parse_to_dict(text: str, filename: str, options: ParseOptions | None = None) -> dict:
    """The job's JSON (API) dict, before partial blocks are completed."""
    options = options or ParseOptions()
    if looks_like_json(text):
        body = hcl_json_body(text, filename)
        if body is None:
            return _api_json_dict(text, filename, options.checks)
        return job_dict_from_body(body, "", filename, options)
    return job_dict_from_body(parse_hcl(text, filename), text, filename, options)


def _api_json_dict(text: str, filename: str, checks: bool) -> dict:
    data = json_job_dict(text, filename)
    if checks:
        diags = DiagnosticCollector(filename)
        present = without_nulls(data)  # in API JSON, null means "not set"
        check_job_file(present, api_json_positions(present), diags)
        diags.raise_if_any(validation=True)
    return data


def parse_file(path: str, variables: dict[str, str] | None = None,
               var_files: list[str] | None = None, allow_fs: bool = True, **options) -> Job:
    with open(path, encoding="utf-8") as handle:
        return parse(handle.read(), path, variables, var_files, allow_fs, **options)
