"""A class window's first classes in an evaluation (`window.ClassWindow`): every candidate's
class id, worked out once per eval before its first placement. With a node table
(`nodetable.Columns`) the class of each distinct usage key is worked out once, and the
node-by-node signature (`ClassWindow._class_of`) is built only for the nodes the key does
not decide."""

from __future__ import annotations

from itertools import compress
from operator import or_

from yurt.structs.resources import DIM_CPU, DIM_DISK, DIM_MEMORY

# class kinds
_SCORED, _FILTERED, _EXHAUSTED, _SLOW = 0, 1, 2, 3

_OWN, _TOUCHED = 1, 2  # `keyed_classes`' marks of nodes
_NEGATIVE = (-1).__eq__  # a class id of -1: `keyed_classes`' mark of a node its key does not decide


def initial_classes(win) -> list[int]:
    """`_class_of` of every node, with the common case inlined: a node the plan has not
    touched, of a node class known feasible, with room, for a group without affinities,
    spreads or static ports (the signature `_signature` would build, built directly)."""
    placer, tracker = win.placer, win.tracker
    if placer.affinities or placer.spreads is not None or placer.static_ports:
        return [win._class_of(node) for node in win.nodes]
    if win.layout is not None:
        return keyed_classes(win)
    by_node, stopped, placed, base_of = tracker.by_node, tracker.stopped, tracker.placed, tracker._base
    job_key = (tracker.namespace, tracker.job_id)
    class_cache = placer.checker.class_cache
    cpu, mem, disk, group = placer.cpu, placer.mem, placer.disk, placer.tg.name
    networks, dynamic = bool(placer.networks), placer.dynamic_ports
    ids, class_of = win.ids, win._class_of
    out = []
    for node in win.nodes:
        node_id = node.id
        if (not node.computed_class or class_cache.get(node.computed_class) != ""
                or node_id in by_node or node_id in stopped or node_id in placed):
            out.append(class_of(node))
            continue
        u = base_of(node)[0]
        if (u.free_cpu < cpu or u.free_mem < mem or u.free_disk < disk
                or (networks and len(u.ports) + dynamic > u.max_port - u.min_port + 1)):
            out.append(class_of(node))
            continue
        groups = u.jobs.get(job_key)
        sig = (_SCORED, u.cap_cpu, u.cap_mem, u.free_cpu, u.free_mem, groups.get(group, 0) if groups else 0,
               0.0, None)
        c = ids.get(sig)
        out.append(win._new_class(sig) if c is None else c)
    return out


def key_classes(win) -> tuple[list[int], dict[int, int]]:
    """Per position, the class of its node's usage key (the NodeTable's keys for the
    tracker's snapshot; `win.bases` set from them), or -1 where the key does not decide
    (a node class not known feasible, scarce ports); and that key -> class map. The
    class of each distinct key is worked out once, first seen first, as the node-by-node
    pass numbers them."""
    perm, columns = win.layout
    tracker, placer = win.tracker, win.placer
    keys, key_list, bases = columns.usage_keys(tracker.snapshot)
    win.bases = bases
    ordered = list(map(keys.__getitem__, perm))
    checker = placer.checker
    class_cache = checker.class_cache
    cpu, mem, disk = placer.cpu, placer.mem, placer.disk
    networks, dynamic = bool(placer.networks), placer.dynamic_ports
    sorted_nodes, ids = columns.nodes, win.ids
    cmap: dict[int, int] = {}  # key int -> class id, or -1: the node decides
    for k in dict.fromkeys(ordered):  # first seen first, as the node-by-node pass
        (computed, node_class, cap_cpu, cap_mem, free_cpu, free_mem, free_disk, ports, lo, hi), j = key_list[k]
        reason = class_cache.get(computed) if computed else None
        if reason is None and computed:
            checker.static_reason(sorted_nodes[j])
            reason = class_cache.get(computed)
        if reason != "":
            cmap[k] = -1
            continue
        if free_cpu < cpu or free_mem < mem or free_disk < disk:
            if free_cpu < cpu:
                sig = (_EXHAUSTED, node_class, DIM_CPU, free_cpu, cpu)
            elif free_mem < mem:
                sig = (_EXHAUSTED, node_class, DIM_MEMORY, free_mem, mem)
            else:
                sig = (_EXHAUSTED, node_class, DIM_DISK, free_disk, disk)
        elif networks and ports + dynamic > hi - lo + 1:
            cmap[k] = -1
            continue
        else:
            sig = (_SCORED, cap_cpu, cap_mem, free_cpu, free_mem, 0, 0.0, None)
        c = ids.get(sig)
        cmap[k] = win._new_class(sig) if c is None else c
    return list(map(cmap.__getitem__, ordered)), cmap


def keyed_classes(win) -> list[int]:
    """`initial_classes` from the usage keys the NodeTable keeps across evaluations:
    the class of each distinct key is worked out once; a node holding allocs of the job
    gets its key's class with them counted (a retry after a partial commit: ~count/2
    such nodes), and only the nodes the key does not decide (touched by the plan, a node
    class not known feasible, scarce ports) go through `_class_of`."""
    perm, columns = win.layout
    tracker, placer = win.tracker, win.placer
    out, cmap = key_classes(win)
    bases = win.bases
    job_allocs = tracker.job_allocs
    if job_allocs is None:
        job_allocs = tracker.snapshot.allocs_by_job(tracker.namespace, tracker.job_id)
    touched = tracker.by_node or tracker.stopped or tracker.placed
    if job_allocs or touched:  # their positions in one C-level pass over the permutation (no inverse built)
        index = columns.index
        marks = bytearray(len(perm))  # by sorted index: 1 the job has allocs there, 2 the plan touched it
        for j in map(index.get, {a.node_id for a in job_allocs}):
            if j is not None:
                marks[j] = _OWN
        if touched:
            for node_ids in (tracker.by_node, tracker.stopped, tracker.placed):
                for j in map(index.get, node_ids):
                    if j is not None:
                        marks[j] = _TOUCHED
        if -1 in cmap.values():
            slow = compress(range(len(out)), map(or_, map(marks.__getitem__, perm), map(_NEGATIVE, out)))
        else:
            slow = compress(range(len(out)), map(marks.__getitem__, perm))
    elif -1 in cmap.values():
        marks = None
        slow = compress(range(len(out)), map(_NEGATIVE, out))
    else:
        return out
    nodes, class_of, kind, info, ids = win.nodes, win._class_of, win.kind, win.info, win.ids
    job_key, group = (tracker.namespace, tracker.job_id), placer.tg.name
    for p in slow:  # in position order (new classes numbered as the node-by-node pass numbers them)
        j = perm[p]
        c = out[p]
        if c >= 0 and marks[j] == _OWN:
            # a node the key decides, untouched by the plan, holding allocs of the job: the
            # key's class, with the group's allocs there as collisions when it is scored
            # (`_signature` of the node: no affinities, spreads or static ports here)
            if kind[c] == _SCORED:
                groups = bases[j].jobs.get(job_key)
                n = groups.get(group, 0) if groups else 0
                if n:
                    _, cap_cpu, cap_mem, free_cpu, free_mem, _, _, _ = info[c]
                    sig = (_SCORED, cap_cpu, cap_mem, free_cpu, free_mem, n, 0.0, None)
                    c = ids.get(sig)
                    out[p] = win._new_class(sig) if c is None else c
            continue
        out[p] = class_of(nodes[p], bases[j])  # the node's base as the columns read it: no second lookup
    return out
