"""What travels on the wire: dv event packets, the end-of-stream marker, and framing checks.

End-of-stream handshake (why: dv's NetworkReader drops whatever it has not handed out yet as soon
as the writer disconnects, so a writer that simply closes loses the tail of the stream):

1. When the recording ends, the writer sends one extra event packet, the *EOS marker*: 24 events,
   all at the last timestamp sent, on row y = 0 with polarity OFF; the x coordinates of the first 8
   spell the magic nibbles ``E0FE5D01`` and the next 16 carry the total number of events sent, as
   64-bit little-endian nibbles. A DV viewer shows it as a few pixels in the top row; it needs a
   sensor at least 16 pixels wide.
2. The writer then keeps the connection open until every client has disconnected (or a linger
   timeout passes), so nothing queued is cut off.
3. A reader that sees the marker strips it, compares the count with what it received, and
   disconnects, which releases the writer.

Framing (AEDAT4 network stream, as dv-processing writes it): ``uint32`` header size + an
``IOHeader`` flatbuffer (identifier ``IOHE`` at bytes 4..8) whose XML lists the streams; then
packets of ``int32`` stream id + ``int32`` payload size + a size-prefixed payload flatbuffer
(identifier, e.g. ``EVTS``, at payload bytes 8..12 when uncompressed). :class:`FrameChecker` validates exactly this before
dv's reader sees any byte, because dv hangs on absurd sizes and crashes on unknown stream ids.
"""

from __future__ import annotations

import collections
import re
import struct
from dataclasses import dataclass

import numpy as np

from evtrack.errors import FormatError
from evtrack.io.events import EVENT_DTYPE

EOS_MAGIC = np.array([0xE, 0x0, 0xF, 0xE, 0x5, 0xD, 0x0, 0x1], dtype=np.int16)
EOS_LEN = len(EOS_MAGIC) + 16

MAX_HEADER_BYTES = 1 << 20
MAX_PACKET_BYTES = 64 << 20  # 4 M events per packet; dv's own packets are far smaller


def eos_marker(t_us: int, total_events: int) -> np.ndarray:
    """The end-of-stream marker packet (canonical events) announcing ``total_events`` sent."""
    if total_events < 0:
        raise ValueError(f"total_events must be >= 0, got {total_events}")
    ev = np.zeros(EOS_LEN, dtype=EVENT_DTYPE)
    ev["t"] = t_us
    ev["x"][: len(EOS_MAGIC)] = EOS_MAGIC
    ev["x"][len(EOS_MAGIC):] = [(total_events >> (4 * i)) & 0xF for i in range(16)]
    return ev


def split_eos(events: np.ndarray) -> tuple[np.ndarray, int | None]:
    """``(events without the marker, announced total)``; total is None when no marker ends the packet."""
    if len(events) < EOS_LEN:
        return events, None
    tail = events[-EOS_LEN:]
    if (
        tail["t"][0] != tail["t"][-1]
        or tail["y"].any()
        or tail["p"].any()
        or not np.array_equal(tail["x"][: len(EOS_MAGIC)], EOS_MAGIC)
        or (tail["x"][len(EOS_MAGIC):] > 0xF).any()
        or (tail["x"][len(EOS_MAGIC):] < 0).any()
    ):
        return events, None
    nibbles = tail["x"][len(EOS_MAGIC):].astype(np.int64)
    total = int(sum(int(v) << (4 * i) for i, v in enumerate(nibbles)))
    return events[:-EOS_LEN], total


def to_dv_store(events: np.ndarray):
    """Canonical events -> ``dv.EventStore``.

    dv-processing 2.0.4 has no bulk numpy constructor; of the paths it offers, ``push_back`` of
    ``(t, x, y, p)`` tuples driven by ``map`` (no Python loop body) is the fastest: ~2.7 M events/s
    here, against ~0.6 M/s for a loop calling ``push_back(t, x, y, p)`` (benchmarks/live.py).
    """
    import dv_processing as dv

    store = dv.EventStore()
    if len(events):
        cols = (events["t"].tolist(), events["x"].tolist(), events["y"].tolist(), events["p"].astype(bool).tolist())
        collections.deque(map(store.push_back, zip(*cols, strict=True)), maxlen=0)
    return store


def from_dv_array(arr: np.ndarray) -> np.ndarray:
    """dv's ``EventStore.numpy()`` array (timestamp, x, y, polarity; padded) -> canonical events."""
    from evtrack.io.aedat4 import from_dv_events

    return from_dv_events(arr)


@dataclass(frozen=True)
class StreamHeader:
    """What the IOHeader says: stream id -> type identifier, compression, event resolution."""

    streams: dict[int, str]
    compression: str
    resolution: tuple[int, int] | None  # (width, height) of the event stream when given


def parse_header(payload: bytes, source: str) -> StreamHeader:
    """Validate an IOHeader flatbuffer and read the stream table from its XML."""
    if len(payload) < 8 or payload[4:8] != b"IOHE":
        raise FormatError(
            f"{source}: byte offset 4: found {payload[4:8]!r}, expected the dv IOHeader identifier b'IOHE' "
            "(is this a dv-processing NetworkWriter / DV network output?)"
        )
    start = payload.find(b"<dv")
    end = payload.rfind(b"</dv>")
    if start < 0 or end < 0:
        raise FormatError(f"{source}: IOHeader has no <dv> stream description XML")
    xml = payload[start:end].decode("utf-8", "replace")
    streams: dict[int, str] = {}
    for m in re.finditer(r'<node name="(\d+)" path="/outInfo/\d+/">(.*?)(?=<node name="\d+" path="/outInfo/\d+/">|$)',
                         xml, re.S):
        t = re.search(r'key="typeIdentifier" type="string">([^<]*)<', m.group(2))
        if t:
            streams[int(m.group(1))] = t.group(1)
    comp = re.search(r'key="compression" type="string">([^<]*)<', xml)
    sx = re.search(r'key="sizeX" type="int">(\d+)<', xml)
    sy = re.search(r'key="sizeY" type="int">(\d+)<', xml)
    if not streams:
        raise FormatError(f"{source}: IOHeader XML lists no streams (no typeIdentifier under /outInfo/)")
    if "EVTS" not in streams.values():
        raise FormatError(
            f"{source}: stream carries {sorted(set(streams.values()))} packets, expected events ('EVTS')"
        )
    res = (int(sx.group(1)), int(sy.group(1))) if sx and sy else None
    return StreamHeader(streams, comp.group(1) if comp else "NONE", res)


class FrameChecker:
    """Incremental validator of the dv network byte stream.

    ``feed(data)`` returns the bytes that form complete, valid units (header, then whole packets)
    and keeps a partial unit buffered; any violation raises FormatError naming the byte offset,
    the field, what was found and what was expected.
    """

    def __init__(self, source: str, *, max_packet_bytes: int = MAX_PACKET_BYTES) -> None:
        self.source = source
        self.max_packet_bytes = max_packet_bytes
        self.header: StreamHeader | None = None
        self._buf = bytearray()
        self._offset = 0  # stream offset of self._buf[0]
        self.packets = 0

    def feed(self, data: bytes) -> bytes:
        return b"".join(self.feed_units(data))

    def feed_units(self, data: bytes) -> list[bytes]:
        """Like :meth:`feed`, one bytes object per unit (the header, then one per packet)."""
        self._buf += data
        out = []
        while True:
            unit = self._next_unit()
            if unit is None:
                return out
            out.append(unit)

    def _consume(self, n: int) -> bytes:
        unit = bytes(self._buf[:n])
        del self._buf[:n]
        self._offset += n
        return unit

    def _next_unit(self) -> bytes | None:
        buf = self._buf
        if self.header is None:
            if len(buf) < 4:
                return None
            (size,) = struct.unpack_from("<I", buf, 0)
            if not 8 <= size <= MAX_HEADER_BYTES:
                raise FormatError(
                    f"{self.source}: byte offset 0: header size {size}, expected 8..{MAX_HEADER_BYTES} "
                    "(a uint32 followed by a dv IOHeader)"
                )
            if len(buf) >= 12 and buf[8:12] != b"IOHE":
                raise FormatError(
                    f"{self.source}: byte offset 8: found {bytes(buf[8:12])!r}, expected b'IOHE' "
                    "(is this a dv-processing NetworkWriter / DV network output?)"
                )
            if len(buf) < 4 + size:
                return None
            self.header = parse_header(bytes(buf[4:4 + size]), self.source)
            return self._consume(4 + size)
        if len(buf) < 8:
            return None
        stream_id, size = struct.unpack_from("<ii", buf, 0)
        if stream_id not in self.header.streams:
            raise FormatError(
                f"{self.source}: byte offset {self._offset}: packet stream id {stream_id}, "
                f"expected one of {sorted(self.header.streams)} declared in the header"
            )
        if not 8 <= size <= self.max_packet_bytes:
            raise FormatError(
                f"{self.source}: byte offset {self._offset + 4}: packet size {size}, "
                f"expected 8..{self.max_packet_bytes} bytes"
            )
        if self.header.compression == "NONE" and len(buf) >= 20:
            ident = bytes(buf[16:20])  # payload: uint32 size prefix, uint32 root offset, identifier
            want = self.header.streams[stream_id].encode()
            if ident != want:
                raise FormatError(
                    f"{self.source}: byte offset {self._offset + 16}: packet type {ident!r}, expected {want!r}"
                )
        if len(buf) < 8 + size:
            return None
        self.packets += 1
        return self._consume(8 + size)
