"""Whole-state snapshots for the log backends: `Tables` <-> a stream of msgpack chunks.

Secondary indexes are not stored; they are rebuilt on restore, so a restored state
has the same tables, objects, create/modify indexes and table indexes as the one that
was saved. Allocations do not carry their job in the snapshot: each distinct job
object is written once and the allocs refer to it by position, so a million allocs of
a few jobs stay small (and share one job object again after the restore).
"""

from collections.abc import Iterable, Iterator

import msgspec

from yurt.structs import Allocation, Evaluation, Job, JobSummary, Node, SchedulerConfiguration, evolve
from yurt.structs.alloc import share_restored_alloc

from yurt.structs.deployment import Deployment

from .periodic_launch import PeriodicLaunch
from .scaling_events import JobScalingEvents
from .tables import Tables
from .txn import Txn

CHUNK_SIZE = 2000  # objects per chunk: small enough that a background encode rarely holds the GIL long


class MetaChunk(msgspec.Struct, tag=True):
    index: int
    indexes: dict[str, int]
    scheduler_config: SchedulerConfiguration | None = None


class JobsChunk(msgspec.Struct, tag=True):
    jobs: list[Job]


class VersionsChunk(msgspec.Struct, tag=True):
    versions: list[list[Job]]


class SummariesChunk(msgspec.Struct, tag=True):
    summaries: list[JobSummary]


class NodesChunk(msgspec.Struct, tag=True):
    nodes: list[Node]


class EvalsChunk(msgspec.Struct, tag=True):
    evals: list[Evaluation]


class AllocJobsChunk(msgspec.Struct, tag=True):
    """Job objects referenced by allocs, numbered in the order written."""

    jobs: list[Job]


class AllocsChunk(msgspec.Struct, tag=True):
    job_refs: list[int]  # -1 = no job
    allocs: list[Allocation]


class LaunchesChunk(msgspec.Struct, tag=True):
    launches: list[PeriodicLaunch]


class ScalingEventsChunk(msgspec.Struct, tag=True):
    jobs: list[JobScalingEvents]


class DeploymentsChunk(msgspec.Struct, tag=True):
    deployments: list[Deployment]


Chunk = (
    MetaChunk | JobsChunk | VersionsChunk | SummariesChunk | NodesChunk | EvalsChunk | AllocJobsChunk | AllocsChunk
    | LaunchesChunk | ScalingEventsChunk | DeploymentsChunk
)

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Chunk)


def _batches(items: Iterable, size: int = CHUNK_SIZE) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_tables(t: Tables) -> Iterator[bytes]:
    """The chunks of a snapshot of `t` (a committed, immutable `Tables`)."""
    yield _encoder.encode(MetaChunk(index=t.index, indexes=dict(t.indexes), scheduler_config=t.scheduler_config))
    for batch in _batches(t.jobs.values()):
        yield _encoder.encode(JobsChunk(batch))
    for batch in _batches(list(v) for v in t.job_versions.values()):
        yield _encoder.encode(VersionsChunk(batch))
    for batch in _batches(t.job_summary.values()):
        yield _encoder.encode(SummariesChunk(batch))
    for batch in _batches(t.nodes.values()):
        yield _encoder.encode(NodesChunk(batch))
    for batch in _batches(t.evals.values()):
        yield _encoder.encode(EvalsChunk(batch))
    yield from _encode_allocs(t)
    for batch in _batches(t.periodic_launch.values()):
        yield _encoder.encode(LaunchesChunk(batch))
    for batch in _batches(t.scaling_event.values()):
        yield _encoder.encode(ScalingEventsChunk(batch))
    for batch in _batches(t.deployment.values()):
        yield _encoder.encode(DeploymentsChunk(batch))


def _encode_allocs(t: Tables) -> Iterator[bytes]:
    job_numbers: dict[int, int] = {}
    for batch in _batches(t.allocs.values()):
        new_jobs: list[Job] = []
        refs: list[int] = []
        for alloc in batch:
            job = alloc.job
            if job is None:
                refs.append(-1)
                continue
            number = job_numbers.get(id(job))
            if number is None:
                number = job_numbers[id(job)] = len(job_numbers)
                new_jobs.append(job)
            refs.append(number)
        if new_jobs:
            yield _encoder.encode(AllocJobsChunk(new_jobs))
        yield _encoder.encode(AllocsChunk(refs, [evolve(a, job=None) if a.job is not None else a for a in batch]))


def decode_tables(chunks: Iterable[bytes]) -> Tables:
    """Rebuild tables and every secondary index from snapshot chunks."""
    txn = Txn(Tables(), gen=1, index=0)
    txn.batch_new_allocs()  # the alloc indexes are written a bucket at a time, at commit
    meta: MetaChunk | None = None
    alloc_jobs: list[Job] = []
    shared: dict = {}  # what the restored allocs repeat, one object each (share_restored_alloc)
    for data in chunks:
        chunk = _decoder.decode(data)
        if isinstance(chunk, MetaChunk):
            meta = chunk
        elif isinstance(chunk, JobsChunk):
            for job in chunk.jobs:
                txn.put_job(job)
        elif isinstance(chunk, VersionsChunk):
            for versions in chunk.versions:
                txn.put_job_versions(versions[0].namespace, versions[0].id, tuple(versions))
        elif isinstance(chunk, SummariesChunk):
            for summary in chunk.summaries:
                txn.put_summary(summary)
        elif isinstance(chunk, NodesChunk):
            for node in chunk.nodes:
                txn.put_node(node)
        elif isinstance(chunk, EvalsChunk):
            for ev in chunk.evals:
                txn.put_eval(ev)
        elif isinstance(chunk, LaunchesChunk):
            for launch in chunk.launches:
                txn.put_periodic_launch(launch)
        elif isinstance(chunk, ScalingEventsChunk):
            for events in chunk.jobs:
                txn.put_scaling_events(events)
        elif isinstance(chunk, DeploymentsChunk):
            for deployment in chunk.deployments:
                txn.put_deployment(deployment)
        elif isinstance(chunk, AllocJobsChunk):
            alloc_jobs.extend(chunk.jobs)
        elif isinstance(chunk, AllocsChunk):
            for ref, alloc in zip(chunk.job_refs, chunk.allocs):
                share_restored_alloc(alloc, shared)
                txn.put_alloc(evolve(alloc, job=alloc_jobs[ref]) if ref >= 0 else alloc)
    if meta is None:
        raise ValueError("state snapshot has no meta chunk")
    tables = txn.commit()
    tables.index = meta.index
    tables.indexes = dict(meta.indexes)
    tables.scheduler_config = meta.scheduler_config
    return tables
