"""Nomad's job diff text (`job history -p`, `job plan`): markers and the field/object lines."""

from .format import q

MARKERS = {"Added": "+ ", "Deleted": "- ", "Edited": "+/- "}


def fields_and_objects(diff: dict, indent: int) -> list[str]:
    """The `Fields` and nested `Objects` of a job, group or task diff, indented by `indent`."""
    pad = " " * indent
    out = []
    for field in diff.get("Fields") or []:
        kind = field.get("Type", "")
        if kind == "None":
            continue
        value = {"Added": q(field.get("New", "")), "Deleted": q(field.get("Old", ""))}.get(
            kind, f"{q(field.get('Old', ''))} => {q(field.get('New', ''))}"
        )
        out.append(f"{pad}{MARKERS.get(kind, '')}{field.get('Name', '')}: {value}")
    for obj in diff.get("Objects") or []:
        if obj.get("Type") == "None":
            continue
        out.append(f"{pad}{MARKERS.get(obj.get('Type', ''), '')}{obj.get('Name', '')} {{")
        out += fields_and_objects(obj, indent + 2)
        out.append(f"{pad}}}")
    return out
