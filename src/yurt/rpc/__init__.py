"""Client <-> server RPC on the agent's rpc port (Nomad's 4647), as Nomad's clients reach
their servers: one TCP connection per client, many requests outstanding on it at once (the
blocking alloc watch, heartbeats and status updates share it).

Frames are a 4-byte big-endian length, then a msgpack array (msgspec):
  request  `[seq, method, path, params, body]`
  response `[seq, status, index, body]`  (status as HTTP's; on an error the body is the
  error text Nomad's HTTP API would send; `index` is what X-Nomad-Index would say).
Only the internal routes of `yurt.agent.local_server.internal_route` (and `INFO_PATH`) are
served; the server answers `USE_HTTP` for a request the client must send over HTTP instead
(a write on an HA follower: the HTTP layer forwards it to the leader)."""

from __future__ import annotations

import struct
from typing import Any

import msgspec

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024 * 1024  # as the HTTP API's largest body
INFO_PATH = "/v1/internal/rpc"  # {"Port": rpc port, "ID": listener instance}: over HTTP and RPC
USE_HTTP = 307  # status: send this request over HTTP instead


class FrameError(ValueError):
    """A frame over MAX_FRAME, or one that is not a request/response array."""


class Request(msgspec.Struct, array_like=True):
    """A request as the server decodes it: the body stays msgpack bytes (nil: `b"\\xc0"`),
    for the route to decode (`yurt.rpc.server`: the status updates straight into structs)."""

    seq: int
    method: str
    path: str
    params: dict[str, Any] | None = None
    body: msgspec.Raw = msgspec.Raw(b"\xc0")


class Reply(msgspec.Struct, array_like=True):
    seq: int
    status: int
    index: int = 0
    body: Any = None


_encoder = msgspec.msgpack.Encoder()


_encode = _encoder.encode
_pack_size = HEADER.pack


def frame(obj: Any) -> bytes:
    """`obj` msgpack-encoded behind its length."""
    payload = _encode(obj)
    size = len(payload)
    if size > MAX_FRAME:
        raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
    return _pack_size(size) + payload  # a third less CPU than encode_into a bytearray (small frames)


class FrameBuffer:
    """Bytes in, whole frame payloads out."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.buf
        if buf:
            buf += data
            src = buf
        else:  # the common case, whole frames: read them from `data`, no copy through `buf`
            src = data
        out: list[bytes] = []
        pos, end = 0, len(src)
        while end - pos >= 4:
            (size,) = HEADER.unpack_from(src, pos)
            if size > MAX_FRAME:
                raise FrameError(f"frame of {size} bytes exceeds {MAX_FRAME}")
            if end - pos - 4 < size:
                break
            out.append(bytes(src[pos + 4 : pos + 4 + size]) if src is buf else src[pos + 4 : pos + 4 + size])
            pos += 4 + size
        if src is buf:
            if pos:
                del buf[:pos]
        elif pos < end:
            buf += src[pos:]
        return out


decode_request = msgspec.msgpack.Decoder(Request).decode
decode_reply = msgspec.msgpack.Decoder(Reply).decode


class RawReply(msgspec.Struct, array_like=True):
    """A reply whose body stays msgpack bytes, for a caller with its own typed decoder."""

    seq: int
    status: int
    index: int = 0
    body: msgspec.Raw = msgspec.Raw(b"\xc0")


decode_reply_raw = msgspec.msgpack.Decoder(RawReply).decode
