"""W6's load generator reads what the server sends exactly, however the bytes are cut: the
stream's chunk parser (`simhttp._StreamProtocol`) hands on every data byte once and nothing of
the framing, and the event reader (`EventReader.on_data`) sees every frame once."""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from bench.scenarios.w6_watch_fanout import EventReader, Tally  # noqa: E402
from bench.simhttp import _header, _StreamProtocol  # noqa: E402

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Nomad-Index: 9\r\nTransfer-Encoding: chunked\r\n\r\n"


def frames(indexes) -> bytes:
    event = b'{"Topic":"Node","Type":"NodeRegistration","Index":%d,"Payload":{"Node":{"ID":"x"}}}'
    return b"".join(b'{"Index":%d,"Events":[%s]}\n' % (i, event % i) for i in indexes)


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def feed(raw: bytes, cuts) -> tuple[list[bytes], asyncio.Future]:
    got: list[bytes] = []
    proto = _StreamProtocol(got.append)
    waiter = proto.waiter = asyncio.get_running_loop().create_future()
    last = 0
    for cut in list(cuts) + [len(raw)]:
        proto.data_received(raw[last:cut])
        last = cut
    return got, waiter


async def test_chunks_cut_at_every_byte_give_the_body_once():
    body_parts = (frames([1, 2]), b"{}\n", frames([3]))
    raw = HEAD + chunked(*body_parts)
    expected = b"".join(body_parts)
    for cut in range(1, len(raw)):
        got, done = feed(raw, [cut])
        assert b"".join(got) == expected, cut
        assert done.done() and done.result().index == 9, cut
    got, done = feed(raw, range(1, len(raw)))  # one byte at a time
    assert b"".join(got) == expected and done.done()
    got, done = feed(raw[:-2], [])  # the last chunk without its trailer's end: not over yet
    assert b"".join(got) == expected and not done.done()


async def test_the_event_reader_counts_every_frame_once_however_cut():
    raw = frames(range(10, 20)) + b"{}\n" + frames([20])
    for step in (1, 7, 50, 333, len(raw)):
        tally = Tally(readers=1)
        reader = EventReader(0, tally)
        for at in range(0, len(raw), step):
            reader.on_data(raw[at:at + step])
        assert [i for i, _ in tally.event_frames] == list(range(10, 21)), step
        assert tally.events == 11 and tally.reader_index == [20] and reader.partial == b""


def test_heads_are_read_in_any_case():
    head = b"http/1.1 200 ok\r\ncontent-length:  12 \r\nx-nomad-index: 7\r\n"
    assert _header(head, b"\r\ncontent-length:") == b"12" and _header(head, b"\r\nx-nomad-index:") == b"7"
    assert _header(head, b"\r\nconnection:") is None
