"""Tables several commands print: job lists, allocation lists, eval lists, placement metrics."""

from .format import format_list, format_unix_nano, limit, pretty_nano_diff, q


def job_type_string(job: dict) -> str:
    text = job.get("Type", "")
    if job.get("Periodic"):
        text += "/periodic"
    if job.get("ParameterizedJob"):
        text += "/parameterized"
    return text


def job_status_string(status: str, stop: bool | None) -> str:
    return f"{status} (stopped)" if stop else status


def job_list_table(jobs: list[dict], display_ns: bool, now: float) -> str:
    """`job status` without a job: `ID Type Priority Status Submit Date`."""
    del now  # submit dates are absolute in this table
    rows = ["ID|Namespace|Type|Priority|Status|Submit Date" if display_ns else "ID|Type|Priority|Status|Submit Date"]
    for job in jobs:
        cells = [job.get("ID", "")]
        if display_ns:
            cells.append(job.get("Namespace") or (job.get("JobSummary") or {}).get("Namespace", ""))
        cells += [
            job_type_string(job),
            str(job.get("Priority", 0)),
            job_status_string(job.get("Status", ""), job.get("Stop")),
            format_unix_nano(job.get("SubmitTime")),
        ]
        rows.append("|".join(cells))
    return format_list(rows)


def alloc_stub_table(stubs: list[dict], verbose: bool, length: int, now: float) -> str:
    """Nomad's `formatAllocListStubs` (job status, prefix matches, eval status)."""
    if not stubs:
        return "No allocations placed"
    if verbose:
        rows = ["ID|Eval ID|Node ID|Node Name|Task Group|Version|Desired|Status|Created|Modified"]
        for a in stubs:
            rows.append("|".join([
                limit(a.get("ID", ""), length), limit(a.get("EvalID", ""), length),
                limit(a.get("NodeID", ""), length), a.get("NodeName", ""), a.get("TaskGroup", ""),
                str(a.get("JobVersion", 0)), a.get("DesiredStatus", ""), a.get("ClientStatus", ""),
                format_unix_nano(a.get("CreateTime")), format_unix_nano(a.get("ModifyTime")),
            ]))
        return format_list(rows)
    rows = ["ID|Node ID|Task Group|Version|Desired|Status|Created|Modified"]
    for a in stubs:
        rows.append("|".join([
            limit(a.get("ID", ""), length), limit(a.get("NodeID", ""), length), a.get("TaskGroup", ""),
            str(a.get("JobVersion", 0)), a.get("DesiredStatus", ""), a.get("ClientStatus", ""),
            pretty_nano_diff(a.get("CreateTime"), now), pretty_nano_diff(a.get("ModifyTime"), now),
        ]))
    return format_list(rows)


def alloc_list_table(allocs: list[dict], verbose: bool, length: int, now: float) -> str:
    """Nomad's `formatAllocList` (full allocations, e.g. `node status`): no Node Name column."""
    if not allocs:
        return "No allocations placed"
    rows = []
    for a in allocs:
        version = (a.get("Job") or {}).get("Version", a.get("JobVersion", 0))
        head = [limit(a.get("ID", ""), length)]
        if verbose:
            head.append(limit(a.get("EvalID", ""), length))
        cells = head + [
            limit(a.get("NodeID", ""), length), a.get("TaskGroup", ""), str(version),
            a.get("DesiredStatus", ""), a.get("ClientStatus", ""),
        ]
        if verbose:
            cells += [format_unix_nano(a.get("CreateTime")), format_unix_nano(a.get("ModifyTime"))]
        else:
            cells += [pretty_nano_diff(a.get("CreateTime"), now), pretty_nano_diff(a.get("ModifyTime"), now)]
        rows.append("|".join(cells))
    header = "ID|Eval ID|" if verbose else "ID|"
    return format_list([header + "Node ID|Task Group|Version|Desired|Status|Created|Modified", *rows])


def eval_failure_status(ev: dict) -> tuple[str, bool]:
    failures = bool(ev.get("FailedTGAllocs"))
    text = "true" if failures else "false"
    if ev.get("Status") == "blocked":
        text = "N/A - In Progress"
    return text, failures


def eval_list_table(evals: list[dict], length: int) -> str:
    rows = ["ID|Priority|Triggered By|Job ID|Namespace|Node ID|Status|Placement Failures"]
    for ev in evals:
        rows.append("|".join([
            limit(ev.get("ID", ""), length), str(ev.get("Priority", 0)), ev.get("TriggeredBy", ""),
            ev.get("JobID", ""), ev.get("Namespace", ""), limit(ev.get("NodeID", ""), length),
            ev.get("Status", ""), eval_failure_status(ev)[0],
        ]))
    return format_list(rows)


def alloc_metrics(metrics: dict | None, prefix: str = "  ", scores: bool = False) -> str:
    """Nomad's `formatAllocMetrics`: why nodes were filtered or exhausted, one `* ...` per line."""
    m = metrics or {}
    lines: list[str] = []
    if not m.get("NodesEvaluated"):
        lines.append(f"{prefix}* No nodes were eligible for evaluation")
    for dc, available in sorted((m.get("NodesAvailable") or {}).items()):
        if available == 0:
            lines.append(f"{prefix}* No nodes are available in datacenter {q(dc)}")
    for cls, num in sorted((m.get("ClassFiltered") or {}).items()):
        lines.append(f"{prefix}* Class {q(cls)}: {num} nodes excluded by filter")
    for cons, num in sorted((m.get("ConstraintFiltered") or {}).items()):
        lines.append(f"{prefix}* Constraint {q(cons)}: {num} nodes excluded by filter")
    if m.get("NodesExhausted"):
        lines.append(f"{prefix}* Resources exhausted on {m['NodesExhausted']} nodes")
    for cls, num in sorted((m.get("ClassExhausted") or {}).items()):
        lines.append(f"{prefix}* Class {q(cls)} exhausted on {num} nodes")
    for dim, num in sorted((m.get("DimensionExhausted") or {}).items()):
        lines.append(f"{prefix}* Dimension {q(dim)} exhausted on {num} nodes")
    for dim in m.get("QuotaExhausted") or []:
        lines.append(f"{prefix}* Quota limit hit {q(dim)}")
    for reason in m.get("FailureReasons") or []:
        lines.append(f"{prefix}* {reason}")
    text = "\n".join(lines)
    if scores:
        text = _append_scores(text, m, prefix)
    return text


def _append_scores(text: str, m: dict, prefix: str) -> str:
    metas = m.get("ScoreMetaData") or []
    if not metas:
        extra = [f"{prefix}* Score {q(name)} = {score:f}" for name, score in sorted((m.get("Scores") or {}).items())]
        return "\n".join(x for x in [text, *extra] if x)
    names = sorted({name for meta in metas for name in (meta.get("Scores") or {})})
    rows = ["Node|" + "|".join(names) + "|final score"]
    for meta in metas:
        vals = [f"{(meta.get('Scores') or {}).get(n, 0):.3g}" for n in names]
        rows.append("|".join([meta.get("NodeID", ""), *vals, f"{meta.get('NormScore', 0):.3g}"]))
    table = format_list(rows)
    return f"{text}\n{table}" if text else table


def cpu_shares(cpu: dict | None) -> int:
    """`Cpu.CpuShares` (Nomad's name); also reads `CPUShares`, which some encoders emit."""
    cpu = cpu or {}
    return cpu.get("CpuShares", cpu.get("CPUShares", 0)) or 0
