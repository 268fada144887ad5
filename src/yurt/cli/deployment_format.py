"""Nomad's deployment tables (`formatDeployment`, `formatDeploymentGroups`,
`formatDeployments`), shared by `deployment *`, `job status` and the run monitor."""

from .format import format_kv, format_list, format_time_string, limit


def deployment_groups_table(d: dict, length: int) -> str:
    groups = d.get("TaskGroups") or {}
    autorevert = any(s.get("AutoRevert") for s in groups.values())
    canaries = any((s.get("DesiredCanaries") or 0) > 0 for s in groups.values())
    deadline = any(s.get("ProgressDeadline") for s in groups.values())
    header = ["Task Group"] + (["Auto Revert"] if autorevert else []) + (["Promoted"] if canaries else [])
    header += ["Desired"] + (["Canaries"] if canaries else []) + ["Placed", "Healthy", "Unhealthy"]
    header += ["Progress Deadline"] if deadline else []
    rows = ["|".join(header)]
    for name in sorted(groups):
        s = groups[name]
        cells = [name]
        if autorevert:
            cells.append(str(bool(s.get("AutoRevert"))).lower())
        if canaries:
            cells.append(str(bool(s.get("Promoted"))).lower() if (s.get("DesiredCanaries") or 0) > 0 else "N/A")
        cells.append(str(s.get("DesiredTotal", 0)))
        if canaries:
            cells.append(str(s.get("DesiredCanaries", 0)))
        cells += [str(s.get("PlacedAllocs", 0)), str(s.get("HealthyAllocs", 0)), str(s.get("UnhealthyAllocs", 0))]
        if deadline:
            cells.append(format_time_string(s.get("RequireProgressBy")) or "N/A")
        rows.append("|".join(cells))
    return format_list(rows)


def format_deployment(d: dict, length: int, with_job: bool = True) -> str:
    """`deployment status` (with the job rows) or `job status`'s Latest Deployment."""
    rows = [f"ID|{limit(d.get('ID', ''), length)}"]
    if with_job:
        rows += [f"Job ID|{d.get('JobID', '')}", f"Job Version|{d.get('JobVersion', 0)}"]
    rows += [f"Status|{d.get('Status', '')}", f"Description|{d.get('StatusDescription', '')}"]
    out = format_kv(rows)
    if not d.get("TaskGroups"):
        return out
    return out + "\n\nDeployed\n" + deployment_groups_table(d, length)


def deployments_table(deployments: list[dict], length: int) -> str:
    rows = ["ID|Job ID|Job Version|Status|Description"]
    for d in sorted(deployments, key=lambda d: -(d.get("CreateIndex") or 0)):
        rows.append("|".join([limit(d.get("ID", ""), length), d.get("JobID", ""), str(d.get("JobVersion", 0)),
                              d.get("Status", ""), d.get("StatusDescription", "")]))
    return format_list(rows)
