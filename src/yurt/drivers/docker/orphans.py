"""Reaping containers yurt started for allocations the client no longer knows."""

import time
from collections.abc import Callable, Iterable

from .spec import LABEL_ALLOC_ID, LABEL_ALLOC_ROOT, LABEL_TASK_NAME

CREATION_GRACE_S = 300.0  # Nomad's dangling_containers.creation_grace


def yurt_containers(client) -> list[dict]:
    """Every container (running or not) carrying the alloc ID label."""
    return client.containers(all=True, filters={"label": [LABEL_ALLOC_ID]})


def reap_orphans(
    client,
    known_alloc_ids: Iterable[str] | Callable[[str], bool],
    alloc_root: str | None = None,
    creation_grace_s: float = CREATION_GRACE_S,
    dry_run: bool = False,
) -> list[str]:
    """Remove (force) containers labelled with an alloc ID that is not known; returns their IDs.

    `known_alloc_ids` is a collection of alloc IDs or a predicate `is_known(alloc_id)`.
    With `alloc_root` (the client's `<data_dir>/alloc`), only containers started by that client
    are candidates, so clients sharing one engine leave each other's containers alone.
    Containers younger than `creation_grace_s` are left alone (a start may be in progress).
    With `dry_run` the candidates are returned but not removed.
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
        if alloc_root is not None and labels.get(LABEL_ALLOC_ROOT) != alloc_root:
            continue
        if time.time() - float(container.get("Created") or 0) < creation_grace_s:
            continue
        if dry_run:
            removed.append(container["Id"])
            continue
        try:
            client.remove_container(container["Id"], force=True, v=True)
            removed.append(container["Id"])
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:  # 409: already being removed
                raise
    return removed
