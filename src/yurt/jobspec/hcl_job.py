"""An HCL2 job file -> the job's JSON (API) dict: variables, locals, then the job block."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .diagnostics import DiagnosticCollector, Position, did_you_mean
from .file_checks import check_job_file
from .hcl_decode import Decoder
from .hcl_eval import Evaluator
from .hcl_functions import function_table
from .hcl_syntax import Block, Body
from .scaling_rules import apply_scaling_rules
from .schema import JOB
from .variables import check_validations, declarations, environment, evaluate_locals, read_var_file, resolve_variables

_TOP_LEVEL_BLOCKS = ("job", "variable", "variables", "locals")


@dataclass
class ParseOptions:
    variables: dict[str, str] | None = None
    var_files: list[str] | None = None
    allow_fs: bool = True
    env: dict[str, str] | None = None
    strict: bool = True
    checks: bool = False  # also run the positional Job.Validate checks (file_checks)


def job_dict_from_body(body: Body, text: str, filename: str, options: ParseOptions) -> dict[str, Any]:
    """Variables, locals and the job block of a parsed file (HCL or HCL-JSON) -> the job dict."""
    diags = DiagnosticCollector(filename)
    base_dir = (os.path.dirname(os.path.abspath(filename))
                if options.allow_fs and not filename.startswith("<") else ".")
    functions = function_table(options.allow_fs, base_dir)
    by_type = _top_level_blocks(body, diags)

    setup = Evaluator(text, {}, None, functions)
    declared = declarations(by_type["variable"], setup, diags)
    _declare_variables_blocks(by_type["variables"], declared, setup, diags)
    file_values: dict = {}
    for path in options.var_files or ():
        file_values.update(read_var_file(path, functions, diags))
    env = environment() if options.env is None else options.env
    values = resolve_variables(declared, dict(options.variables or {}), file_values, env, diags,
                               strict=options.strict)

    evaluator = Evaluator(text, values, None, functions)
    check_validations(declared, evaluator, diags)
    evaluate_locals(by_type["locals"], evaluator, diags)

    jobs = by_type["job"]
    if not jobs:
        diags.add(Position(1, 1), "Missing job block", "A job block is required.")
        diags.raise_if_any()
    for extra in jobs[1:]:
        diags.add(extra.pos, "Duplicate job block",
                  f"Only one job block is allowed. Another was defined at {jobs[0].pos.describe(filename)}.")
    decoder = Decoder(evaluator, diags, strict=options.strict)
    job = _job_block(jobs[0], decoder, diags)
    diags.raise_if_any()
    if options.checks:
        check_job_file(job, decoder.positions, diags)
        diags.raise_if_any(validation=True)
    return job


def _top_level_blocks(body: Body, diags: DiagnosticCollector) -> dict[str, list[Block]]:
    by_type: dict[str, list[Block]] = {name: [] for name in _TOP_LEVEL_BLOCKS}
    for attr in body.attributes:
        diags.add(attr.pos, "Unsupported argument",
                  f'An argument named "{attr.name}" is not expected here.')
    for block in body.blocks:
        if block.type in by_type:
            by_type[block.type].append(block)
        else:
            diags.add(block.pos, "Unsupported block type",
                      f'Blocks of type "{block.type}" are not expected here.'
                      + did_you_mean(block.type, _TOP_LEVEL_BLOCKS))
    return by_type


def _declare_variables_blocks(blocks: list[Block], declared: dict, setup: Evaluator,
                              diags: DiagnosticCollector) -> None:
    """`variables { a = 1 }`: each attribute declares a variable with a default."""
    from .variables import Declaration

    for block in blocks:
        for attr in block.body.attributes:
            try:
                default = setup.evaluate(attr.expr)
            except Exception:  # references are not allowed in defaults
                diags.add(attr.value_pos, "Invalid default value for variable",
                          "Variables may not be used here.")
                continue
            declared[attr.name] = Declaration(attr.name, "", default, True, attr.pos)


def _job_block(block: Block, decoder: Decoder, diags: DiagnosticCollector) -> dict[str, Any]:
    if len(block.labels) != 1:
        diags.add(block.pos, "Missing name for job" if not block.labels else "Extraneous label for job",
                  "All job blocks must have 1 labels (id).")
        return {}
    job = decoder.block_body(block, JOB)
    job["ID"] = job.get("ID") or block.labels[0]
    job.setdefault("Name", block.labels[0])
    alone = [{"Name": task["Name"], "Tasks": [task]} for task in job.pop("_Tasks", [])]
    if alone:  # a job-level task is a group of its own (placed first, as Nomad does)
        job["TaskGroups"] = alone + job.get("TaskGroups", [])
    apply_scaling_rules(job, decoder.positions, diags)
    _inherit_vault_and_secrets(job)
    return job


def _inherit_vault_and_secrets(job: dict[str, Any]) -> None:
    """Job- and group-level `vault` and `secret` blocks apply to every task below them."""
    job_vault, job_secrets = job.pop("Vault", None), job.pop("Secrets", [])
    for group in job.get("TaskGroups") or ():
        vault = group.pop("_Vault", None) or job_vault
        secrets = group.pop("_Secrets", []) + job_secrets
        for task in group.get("Tasks") or ():
            if vault is not None and "Vault" not in task:
                task["Vault"] = dict(vault)
            if secrets:
                task["Secrets"] = task.get("Secrets", []) + [dict(s) for s in secrets]
