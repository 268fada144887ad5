"""The RPC listener's socket writes without the GIL.

Each reply is one small write to its client's TCP socket, and on loopback the kernel does
the receiver's side of the transfer inside that `send()`: ~15-30 us of CPU a write on this
machine (W1: ~25 us a watch answer, ~20 us an ack, ~10% of the server's CPU), which uvloop's
`transport.write` spends holding the GIL, while the scheduler threads wait for it.

`BatchWriter` hands each loop turn's replies to one thread, which sends them with a single
`lio_listio(LIO_WAIT)` call (glibc's POSIX AIO, through ctypes, which releases the GIL for
the call): one GIL release for the whole batch, however many sockets it writes to, and the
kernel's work runs beside the GIL holder instead of inside it. (A thread calling
`socket.send` per reply would need the GIL back after every send: up to the 5 ms switch
interval each while the scheduler runs, ~200 sends/s.)

Order per connection is kept: a connection's bytes go either all through the writer or all
through its transport. A connection starts on the writer; a write the socket did not take
whole (its send buffer full: EAGAIN, a short write) sends what is left through the transport
(which waits for the socket), and the writer then returns that connection's later bytes
unwritten, to be written after it, until none is in flight; while the transport holds unsent
bytes, new bytes go to the transport too. The writer writes to its own `dup` of the socket
(`Outlet.fd`), closed when no bytes of it are in flight, so that a closed connection's
descriptor number, reused by a new one, never receives another's bytes.

Where glibc's AIO is not there (another libc, another OS), with `YURT_RPC_WRITER=0` in the
environment (for A/B runs), or when a transport has no socket (the tests' stubs), replies go to
the transport as before.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import queue
import struct
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

_LIO_WRITE = 1
_LIO_WAIT = 0
_SIGEV_NONE = 1
_AIOCB_SIZE = 168  # sizeof(struct aiocb), glibc x86_64/aarch64 (64-bit off_t)
# aio_fildes, aio_lio_opcode, aio_reqprio, (pad), aio_buf, aio_nbytes, sigev_value, sigev_signo, sigev_notify
_AIOCB_HEAD = struct.Struct("=iii4xQQ8xii")
_AIOCB_BUF = struct.Struct("=QQ")  # aio_buf, aio_nbytes
_BUF_AT = 16
_AIOCB_RESULT = struct.Struct("=i4xq")  # __error_code, __return_value
_RESULT_AT = 112
_BYTES_DATA = bytes.__basicsize__ - 1  # offset of a bytes object's data (CPython's PyBytesObject.ob_sval)
MAX_BATCH = 1024  # aiocbs per lio_listio call

_lio_listio = None
_aio_checked = False


def _aio():
    """glibc's lio_listio (GIL released during the call), set up for one helper thread; None
    where it is not available."""
    global _lio_listio, _aio_checked
    if _aio_checked:
        return _lio_listio
    _aio_checked = True
    if sys.platform != "linux" or sys.implementation.name != "cpython" or struct.calcsize("P") != 8:
        return None
    if os.environ.get("YURT_RPC_WRITER", "1") in ("0", "false", "off"):
        return None
    try:
        import platform

        if platform.libc_ver()[0] != "glibc":
            return None
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        lio_listio = libc.lio_listio
        lio_listio.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
        lio_listio.restype = ctypes.c_int

        class AioInit(ctypes.Structure):  # struct aioinit
            _fields_ = [(name, ctypes.c_int) for name in (
                "aio_threads", "aio_num", "aio_locks", "aio_usedba", "aio_debug", "aio_numusers",
                "aio_idle_time", "aio_reserved")]

        # one helper thread: the writes are ordered per descriptor anyway, and more threads would
        # contend for the machine's cores with the GIL holder
        libc.aio_init(ctypes.byref(AioInit(1, 64, 0, 0, 0, 0, 60, 0)))
    except (OSError, AttributeError):
        return None
    _lio_listio = lio_listio
    return _lio_listio


def available() -> bool:
    return _aio() is not None


class Outlet:
    """A connection's side of the writer: its socket's dup, and its bytes in flight."""

    __slots__ = ("cb", "cb_addr", "cb_view", "fd", "inflight", "refused", "transport")

    def __init__(self, transport, fd: int):
        self.transport = transport
        self.fd = fd
        self.inflight = 0  # writes handed to the writer, not yet done (loop thread only)
        self.refused = False  # a write of it was not taken whole: the writer returns its later ones (writer thread sets)
        # its `struct aiocb`, reused by each write (one at a time: the writer's calls are sequential)
        self.cb = ctypes.create_string_buffer(_AIOCB_SIZE)
        self.cb_addr = ctypes.addressof(self.cb)
        self.cb_view = memoryview(self.cb).cast("B")
        _AIOCB_HEAD.pack_into(self.cb_view, 0, fd, _LIO_WRITE, 0, 0, 0, 0, _SIGEV_NONE)

    def close(self) -> None:
        """The connection is gone: its dup is closed once nothing of it is in flight."""
        self.transport = None
        if not self.inflight:
            self._close_fd()

    def _close_fd(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def outlet_for(transport) -> Outlet | None:
    """An `Outlet` for a transport with a real socket, when the writer is available."""
    if _aio() is None:
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        fd = os.dup(sock.fileno())
    except (OSError, AttributeError, ValueError):
        return None
    os.set_inheritable(fd, False)
    return Outlet(transport, fd)


class BatchWriter:
    """Sends the loop's replies from one thread, a loop turn's at once (see the module)."""

    def __init__(self, loop):
        self.loop = loop
        self.pending: list[tuple[Outlet, bytes]] = []
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.closed = False

    def write(self, outlet: Outlet, data: bytes) -> None:
        """Send `data` on `outlet`'s connection after its earlier bytes (loop thread)."""
        transport = outlet.transport
        if transport is None:
            return
        if not outlet.inflight and transport.get_write_buffer_size():
            transport.write(data)  # the transport holds unsent bytes: these go after them
            return
        if data.__class__ is not bytes:  # the writer reads a bytes object's buffer in place
            data = bytes(data)
        outlet.inflight += 1
        pending = self.pending
        if not pending:
            self.loop.call_soon(self._flush)
        pending.append((outlet, data))

    def _flush(self) -> None:
        batch, self.pending = self.pending, []
        if not batch:
            return
        if self.thread is None:
            if self.closed:
                self._done([(outlet, data, 1, 0) for outlet, data in batch])
                return
            self.thread = threading.Thread(target=self._run, name="rpc-writer", daemon=True)
            self.thread.start()
        self.queue.put(batch)

    def close(self) -> None:
        self.closed = True
        if self.thread is not None:
            self.queue.put(None)
            self.thread = None

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        get, get_nowait = self.queue.get, self.queue.get_nowait
        while True:
            batch = get()
            if batch is None:
                return
            while True:  # what else is there: one call for all of it
                try:
                    more = get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._send(batch)
                    return
                batch += more
            self._send(batch)

    def _send(self, batch: list) -> None:
        try:
            results = self._write(batch)
        except Exception:  # noqa: BLE001 - the loop writes them instead
            log.exception("rpc writer: batch of %d failed", len(batch))
            results = [(outlet, data, 1, 0) for outlet, data in batch]
        try:
            self.loop.call_soon_threadsafe(self._done, results)
        except RuntimeError:  # the loop is closed: nobody to answer
            pass

    @staticmethod
    def _write(batch: list) -> list[tuple[Outlet, Any, int, int]]:
        """Write `batch` [(outlet, bytes)] in order; [(outlet, bytes, writes in it, bytes written)]."""
        results: list = []
        if len({outlet for outlet, _ in batch}) == len(batch):  # the common case: one write a connection
            sending = [(outlet, data, 1) for outlet, data in batch]
        else:
            grouped: dict[Outlet, list] = {}
            for outlet, data in batch:
                parts = grouped.get(outlet)
                if parts is None:
                    grouped[outlet] = [data]
                else:
                    parts.append(data)
            sending = [(outlet, parts[0] if len(parts) == 1 else b"".join(parts), len(parts))
                       for outlet, parts in grouped.items()]
        pack_buf, read_result = _AIOCB_BUF.pack_into, _AIOCB_RESULT.unpack_from
        for start in range(0, len(sending), MAX_BATCH):
            chunk = sending[start:start + MAX_BATCH]
            addrs = []
            for outlet, data, count in chunk:
                if outlet.refused or outlet.fd < 0:
                    results.append((outlet, data, count, 0))  # after the bytes the loop is writing
                else:
                    pack_buf(outlet.cb_view, _BUF_AT, id(data) + _BYTES_DATA, len(data))
                    addrs.append(outlet.cb_addr)
            if not addrs:
                continue
            pointers = (ctypes.c_void_p * len(addrs))(*addrs)
            _lio_listio(_LIO_WAIT, pointers, len(addrs), None)  # the GIL is released here
            for outlet, data, count in chunk:
                if outlet.refused or outlet.fd < 0:
                    continue
                error, written = read_result(outlet.cb_view, _RESULT_AT)
                if error or written < 0:
                    written = 0
                if written < len(data):
                    outlet.refused = True
                results.append((outlet, data, count, written))
        return results

    # -- back on the loop -------------------------------------------------------------------

    @staticmethod
    def _done(results: list) -> None:
        for outlet, data, count, written in results:
            outlet.inflight -= count
            if written < len(data):
                transport = outlet.transport
                if transport is not None:
                    transport.write(memoryview(data)[written:] if written else data)
            if not outlet.inflight:
                outlet.refused = False
                if outlet.transport is None:
                    outlet._close_fd()
