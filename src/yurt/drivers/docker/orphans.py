"""Reaping containers yurt started for allocations the client no longer knows."""

from collections.abc import Callable, Iterable

from .spec import LABEL_ALLOC_ID, LABEL_TASK_NAME


def yurt_containers(client) -> list[dict]:
    """Every container (running or not) carrying the alloc ID label."""
    return client.containers(all=True, filters={"label": [LABEL_ALLOC_ID]})


def reap_orphans(client, known_alloc_ids: Iterable[str] | Callable[[str], bool]) -> list[str]:
    """Remove (force) containers labelled with an alloc ID that is not known; returns their IDs.

    `known_alloc_ids` is a collection of alloc IDs or a predicate `is_known(alloc_id)`.
    """
    import docker.errors

    if callable(known_alloc_ids):
        is_known = known_alloc_ids
    else:
        known = set(known_alloc_ids)
        is_known = known.__contains__
    removed = []
    for container in yurt_containers(client):
        labels = container.get("Labels") or {}
        alloc_id = labels.get(LABEL_ALLOC_ID, "")
        if not alloc_id or not labels.get(LABEL_TASK_NAME) or is_known(alloc_id):
            continue
        try:
            client.remove_container(container["Id"], force=True, v=True)
            removed.append(container["Id"])
        except docker.errors.NotFound:
            pass
    return removed
