"""The RPC listener's writer (`yurt.rpc.writer`): replies sent from a thread, a loop turn's in one
`lio_listio` call, in order per connection, also when a socket does not take them whole."""

import asyncio
import socket

import pytest
import uvloop

from yurt.rpc import INFO_PATH
from yurt.rpc import writer as rpc_writer
from yurt.rpc.client import connect
from yurt.rpc.server import RPCServer
from yurt.rpc.writer import BatchWriter, outlet_for
from yurt.server import Server, ServerConfig

pytestmark = pytest.mark.skipif(not rpc_writer.available(), reason="no glibc AIO here")

LOOPS = {"asyncio": asyncio.run, "uvloop": uvloop.run}


class _Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(None)


async def _pair(server_sndbuf: int | None = None, client_rcvbuf: int | None = None):
    """(server-side protocol, client socket, listener): a TCP connection on loopback."""
    loop = asyncio.get_running_loop()
    accepted: asyncio.Future = loop.create_future()

    def factory():
        proto = _Sink()
        loop.call_soon(lambda: accepted.done() or accepted.set_result(proto))
        return proto

    listener = await loop.create_server(factory, "127.0.0.1", 0)
    client = socket.socket()
    if client_rcvbuf:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, client_rcvbuf)
    client.setblocking(False)
    await loop.sock_connect(client, listener.sockets[0].getsockname())
    proto = await accepted
    if server_sndbuf:
        proto.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, server_sndbuf)
    return proto, client, listener


async def _read(client: socket.socket, size: int, step: int = 1 << 16, pause: float = 0.0) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    while len(got) < size:
        chunk = await asyncio.wait_for(loop.sock_recv(client, step), 10)
        if not chunk:
            break
        got += chunk
        if pause:
            await asyncio.sleep(pause)
    return bytes(got)


def _chunks(n: int, size: int) -> list[bytes]:
    return [i.to_bytes(4, "big") + bytes([i % 251]) * (size - 4) for i in range(n)]


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_bytes_arrive_in_order_when_the_socket_refuses_some(loop_name, monkeypatch):
    """A client that does not read: the socket's buffers fill, writes come back short or
    refused (EAGAIN) and go through the transport; every later write of the connection goes
    after them, whichever path it takes, and the client reads exactly what was sent, in order."""
    refused = []
    real_write = BatchWriter._write

    def counting(batch):
        results = real_write(batch)
        refused.extend(r for r in results if r[3] < len(r[1]))
        return results

    monkeypatch.setattr(BatchWriter, "_write", staticmethod(counting))

    async def main():
        proto, client, listener = await _pair(server_sndbuf=4096, client_rcvbuf=4096)
        writer = BatchWriter(asyncio.get_running_loop())
        outlet = outlet_for(proto.transport)
        assert outlet is not None
        sent = _chunks(600, 3000)
        # a slow reader: the socket drains a little at a time while writes come back refused
        reader = asyncio.ensure_future(_read(client, sum(map(len, sent)), 1500, 0.0005))
        for i, data in enumerate(sent):
            writer.write(outlet, data)
            if i % 3 == 0:
                await asyncio.sleep(0)  # a loop turn: the writer sends what it has
            if i % 40 == 0:
                await asyncio.sleep(0.003)
        got = await reader
        assert got == b"".join(sent)
        for _ in range(100):  # the last results come back to the loop
            if not outlet.inflight:
                break
            await asyncio.sleep(0.01)
        assert outlet.inflight == 0 and not outlet.refused
        writer.close()
        client.close()
        proto.transport.close()
        listener.close()

    LOOPS[loop_name](main())
    assert refused, "the socket took every write whole: the refusal path was not exercised"


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_a_gone_connection_keeps_its_descriptor_until_nothing_of_it_is_in_flight(loop_name):
    async def main():
        proto, client, listener = await _pair()
        writer = BatchWriter(asyncio.get_running_loop())
        outlet = outlet_for(proto.transport)
        fd = outlet.fd
        writer.write(outlet, b"x" * 100)
        proto.transport.close()
        outlet.close()  # as `_Connection.connection_lost`: the write is still in flight
        assert outlet.fd == fd and outlet.inflight == 1
        for _ in range(200):
            if outlet.fd < 0:
                break
            await asyncio.sleep(0.01)
        assert outlet.fd == -1 and outlet.inflight == 0
        writer.write(outlet, b"after")  # a gone connection: dropped
        assert outlet.inflight == 0
        writer.close()
        client.close()
        listener.close()

    LOOPS[loop_name](main())


@pytest.mark.parametrize("loop_name", sorted(LOOPS))
def test_the_listener_answers_many_connections_through_the_writer(loop_name):
    """Many clients' requests at once over real sockets: every reply comes back to its
    caller, through the writer's thread."""

    async def main():
        server = Server(ServerConfig(num_schedulers=1))
        await server.start()
        rpc = RPCServer(server)
        await rpc.start("127.0.0.1", 0)
        try:
            conns = [await connect("127.0.0.1", rpc.port, rpc.id) for _ in range(30)]
            replies = await asyncio.gather(*(c.call("GET", INFO_PATH, None, None, 10) for c in conns
                                             for _ in range(20)))
            assert len(replies) == 600
            assert all(r.status == 200 and r.body == {"Port": rpc.port, "ID": rpc.id} for r in replies)
            assert rpc.writer is not None and rpc.writer.thread is not None
            assert all(c.outlet is not None for c in rpc.connections)
            for c in conns:
                c.close()
        finally:
            await rpc.stop()
            await server.stop()

    LOOPS[loop_name](main())
