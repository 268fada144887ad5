"""Whole-state snapshots for the log backends: `Tables` <-> a stream of msgpack chunks.

Secondary indexes are not stored; they are rebuilt on restore, so a restored state
has the same tables, objects, create/modify indexes and table indexes as the one that
was saved. Allocations do not carry their job in the snapshot: each distinct job
object is written once and the allocs refer to it by position, so a million allocs of
a few jobs stay small (and share one job object again after the restore).

`ForkedSnapshot` runs `encode_tables` in a forked child process (Linux), the way Redis's
BGSAVE does: the child sees the committed `Tables` as they were at the fork (copy-on-write
memory), encodes them with its own interpreter lock on another core, at low CPU priority, and
streams the chunks zlib-compressed through a pipe; the serving process only reads the pipe and
stores the chunks. `decode_tables` reads compressed and plain chunks alike.
"""

import fcntl
import gc
import os
import signal
import struct
import time
import zlib
from collections.abc import Iterable, Iterator

import msgspec

from yurt.structs import Allocation, Evaluation, Job, JobSummary, Node, SchedulerConfiguration, evolve
from yurt.structs.alloc import share_restored_alloc

from yurt.structs.deployment import Deployment

from .cow import new_generation
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
# The forked child stores its chunks zlib-compressed (level 1: W1's allocs shrink ~10x at
# ~250 MB/s of the child's CPU), so the serving process reads, writes and checkpoints a tenth
# of the bytes. A zlib stream starts with 0x78; an encoded chunk (a msgpack map) never does.
_ZLIB_LEVEL = 1
COMPRESS_CHUNKS = True  # False: the child sends the chunks as encoded (for benchmarks' comparisons)
_ZLIB_FIRST = 0x78


def _batches(items: Iterable, size: int = CHUNK_SIZE) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def encode_tables(t: Tables, private: bool = False) -> Iterator[bytes]:
    """The chunks of a snapshot of `t` (a committed, immutable `Tables`).

    `private`: `t` is this process's own copy that nobody reads after (a forked child's):
    the allocs' `job` is then cleared in place instead of copying each alloc without it."""
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
    yield from _encode_allocs(t, private)
    for batch in _batches(t.periodic_launch.values()):
        yield _encoder.encode(LaunchesChunk(batch))
    for batch in _batches(t.scaling_event.values()):
        yield _encoder.encode(ScalingEventsChunk(batch))
    for batch in _batches(t.deployment.values()):
        yield _encoder.encode(DeploymentsChunk(batch))


def _encode_allocs(t: Tables, private: bool) -> Iterator[bytes]:
    job_numbers: dict[int, int] = {}
    numbered: list[Job] = []  # keeps every numbered job alive: its id() must not be reused
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
                numbered.append(job)
            refs.append(number)
        if new_jobs:
            yield _encoder.encode(AllocJobsChunk(new_jobs))
        if private:
            for alloc in batch:
                alloc.job = None
            yield _encoder.encode(AllocsChunk(refs, batch))
        else:
            yield _encoder.encode(AllocsChunk(refs, [evolve(a, job=None) if a.job is not None else a for a in batch]))


def decode_tables(chunks: Iterable[bytes]) -> Tables:
    """Rebuild tables and every secondary index from snapshot chunks."""
    txn = Txn(Tables(), gen=new_generation(), index=0)
    txn.batch_new_allocs()  # the alloc indexes are written a bucket at a time, at commit
    meta: MetaChunk | None = None
    alloc_jobs: list[Job] = []
    shared: dict = {}  # what the restored allocs repeat, one object each (share_restored_alloc)
    for data in chunks:
        if data[0] == _ZLIB_FIRST:
            data = zlib.decompress(data)
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
                if ref >= 0:
                    alloc.job = alloc_jobs[ref]  # a fresh decoded object, not stored yet: edit in place
                txn.put_alloc(alloc)
    if meta is None:
        raise ValueError("state snapshot has no meta chunk")
    tables = txn.commit()
    tables.index = meta.index
    tables.indexes = dict(meta.indexes)
    tables.scheduler_config = meta.scheduler_config
    return tables


# -- snapshots encoded in a forked child ---------------------------------------
_FRAME = struct.Struct("<Q")  # each chunk: its length, then its bytes
_END = (1 << 64) - 1  # then this "length" and the number of chunks sent
_PIPE_BUFFER = 1 << 20
_MAX_FD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536
# The child's CPU priority: "low" (SCHED_BATCH and `CHILD_NICE` more than the parent: where the
# serving process or a neighbour such as W1's fleet wants the CPU, the child gets ~1/10 of it; it
# still finishes on a saturated machine, where a SCHED_IDLE child starved: ~1.5% of a core, minutes
# for a W1 snapshot); "normal" keeps the parent's priority.
DEFAULT_CHILD_PRIORITY = "low"
CHILD_PRIORITY = DEFAULT_CHILD_PRIORITY
CHILD_NICE = 10


class SnapshotChildError(Exception):
    """The forked encoder died or its stream ended early: no snapshot must be recorded."""


class ForkedSnapshot:
    """`encode_tables(tables)` in a forked child; `chunks()` yields them in this process.

    Fork at a commit boundary with a committed `Tables`. The child touches no lock another
    thread of this process may hold (no logging, no SQLite, no event loop, no store lock),
    runs no cyclic GC (its writes would copy every page), closes every inherited descriptor
    but the pipe's (sockets, SQLite files, the event loop's), writes raw frames to the pipe and
    leaves by `os._exit` (no atexit handlers, no finalizers, no buffered stdio). The parent's
    reads release the GIL. `chunks()` raises `SnapshotChildError` unless the stream ends with
    its end frame and the right chunk count; `close()` kills and reaps a child still running."""

    def __init__(self, tables: Tables) -> None:
        self.index = tables.index
        self.pid = 0
        self.exit_code: int | None = None
        self.rusage = None  # the child's `resource.struct_rusage` (CPU, ru_maxrss) once reaped
        read_fd, write_fd = os.pipe()
        started = time.perf_counter()
        try:
            pid = os.fork()
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        if pid == 0:  # the child: never returns
            _encode_in_child(tables, read_fd, write_fd, CHILD_PRIORITY, COMPRESS_CHUNKS)
        os.close(write_fd)
        self.fork_s = time.perf_counter() - started  # the parent's stall: fork copies the page tables
        self.pid = pid
        if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux: the child keeps encoding while this thread stores
            try:
                fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, _PIPE_BUFFER)
            except OSError:
                pass
        self._pipe = open(read_fd, "rb", buffering=_PIPE_BUFFER)  # noqa: SIM115 - closed by close()

    def chunks(self) -> Iterator[bytes]:
        read = self._pipe.read
        count = 0
        while True:
            head = read(_FRAME.size)
            if len(head) != _FRAME.size:
                self._reap()
                raise SnapshotChildError(
                    f"the snapshot child (pid {self.pid}, exit {self.exit_code}) stopped after {count} chunks")
            (size,) = _FRAME.unpack(head)
            if size == _END:
                break
            data = read(size)
            if len(data) != size:
                self._reap()
                raise SnapshotChildError(
                    f"the snapshot child (pid {self.pid}, exit {self.exit_code}) stopped within chunk {count}")
            count += 1
            yield data
        trailer = read(_FRAME.size)
        self._reap()
        if len(trailer) != _FRAME.size or _FRAME.unpack(trailer)[0] != count:
            raise SnapshotChildError(f"the snapshot child (pid {self.pid}) sent {count} chunks but ended badly")
        if self.exit_code not in (0, None):  # None: reaped by someone else; the stream is complete
            raise SnapshotChildError(f"the snapshot child (pid {self.pid}) exited with {self.exit_code}")

    def _reap(self) -> None:
        if self.exit_code is not None or not self.pid:
            return
        try:
            _, status, self.rusage = os.wait4(self.pid, 0)
        except ChildProcessError:
            self.pid = 0
            return
        self.exit_code = os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        """Close the pipe; a child still running (the reader gave up) is killed and reaped."""
        self._pipe.close()
        if self.exit_code is None and self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap()


def _lower_priority() -> None:
    """SCHED_BATCH (no wakeup preemption of others; Linux) and `CHILD_NICE` lower. Best
    effort: the encoding is the same at any priority."""
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError):
        pass
    try:
        os.nice(CHILD_NICE)
    except OSError:
        pass


def _encode_in_child(tables: Tables, read_fd: int, write_fd: int, priority: str, compress: bool) -> None:
    code = 1
    try:
        gc.disable()
        if priority == "low":
            _lower_priority()
        # every inherited descriptor but the pipe and stdio: a socket the parent closes must
        # close now (a copy here would keep its connection open, its port bound)
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, _MAX_FD)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)  # the parent's handlers (asyncio's) are not ours
        signal.set_wakeup_fd(-1)  # the parent's event loop must not see our signals
        out = open(write_fd, "wb", buffering=_PIPE_BUFFER)  # noqa: SIM115 - os._exit ends it
        count = 0
        for data in encode_tables(tables, private=True):
            if compress:
                data = zlib.compress(data, _ZLIB_LEVEL)
            out.write(_FRAME.pack(len(data)))
            out.write(data)
            count += 1
        out.write(_FRAME.pack(_END))
        out.write(_FRAME.pack(count))
        out.close()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - reported by the parent from the broken stream
        try:
            os.write(2, f"yurt: the state snapshot child {os.getpid()} failed: {exc!r}\n".encode(errors="replace"))
        except BaseException:  # noqa: BLE001, S110 - nothing left to report to
            pass
    finally:
        os._exit(code)
