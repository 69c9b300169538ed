"""Structural check of the LZ4 frames inside AEDAT4 packets, before dv-processing decodes them.

Why: dv-processing 2.0.4 calls ``LZ4F_decompress`` in a loop that does not stop on a decoding
error, so random bytes inside a packet's compressed data make ``getNextEventBatch`` spin forever
while holding the GIL (no watchdog thread can interrupt it). LZ4 blocks fail to decode only in a
few ways: a literal run or match that runs past the block or past the block's maximum output, a
match offset of 0 or one reaching before the decoded history, a block larger than the frame's
maximum, or a missing end mark. :func:`lz4_frame_error` walks a frame's sequences with exactly
those checks (reading, never writing: cheaper than decoding), so a packet that would send dv into
its loop is reported as a FormatError with the packet's file offset instead.

AEDAT4 layout used here: ``#!AER-DAT4.0\\r\\n``, an int32 header size, the IOHeader (a flatbuffer
whose info XML lists each stream id with its output name and compression), then packets of
``int32 stream id, int32 byte size, payload``; the file's data table follows the last packet.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numba
import numpy as np

from evtrack.errors import FormatError

_MAGIC = b"#!AER-DAT4.0\r\n"
LZ4_FRAME_MAGIC = 0x184D2204
_BLOCK_MAX = {4: 1 << 16, 5: 1 << 18, 6: 1 << 20, 7: 1 << 22}
_HISTORY = 1 << 16  # LZ4's window: matches reach at most 64 KiB back
# below this much compressed data per thread, starting threads costs more than it saves (a 1 MB
# recording: 1.1 ms on one thread, slower on two)
_MIN_BYTES_PER_THREAD = 1 << 21

# error codes of lz4_frame_error (0 = fine) and what they mean
_ERRORS = {
    1: "frame shorter than its header",
    2: "bad LZ4 frame magic number",
    3: "unsupported LZ4 frame version or reserved flag bits set",
    4: "unknown LZ4 block maximum size",
    5: "block size exceeds the frame's block maximum",
    6: "block runs past the end of the packet",
    7: "literal run past the end of its block",
    8: "literal run past the block's maximum output",
    9: "match offset missing at the end of a block",
    10: "match offset 0 or before the start of the decoded data",
    11: "match past the block's maximum output",
    12: "no end mark before the end of the packet",
}


@numba.njit(cache=True, nogil=True, inline="always")
def _extended_length(buf: np.ndarray, ip: int, iend: int, n: int) -> tuple[int, int]:
    """LZ4's length extension: add the bytes at ``ip`` while they are 255. ``(length, new ip)``;
    length -1 when the block ends before the last byte of the run."""
    while True:
        if ip >= iend:
            return -1, ip
        b = buf[ip]
        ip += 1
        n += b
        if b != 255:
            return n, ip


@numba.njit(cache=True, nogil=True)
def _frame_error(buf: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """``(code, byte offset)`` of the first structural error in the LZ4 frame ``buf[start:end]``."""
    if end - start < 7:
        return 1, start
    magic = buf[start] | (buf[start + 1] << 8) | (buf[start + 2] << 16) | (np.int64(buf[start + 3]) << 24)
    if magic != LZ4_FRAME_MAGIC:
        return 2, start
    flg = buf[start + 4]
    bd = buf[start + 5]
    if (flg >> 6) != 1 or (flg & 0x02) or (bd & 0x8F):
        return 3, start + 4
    size_code = (bd >> 4) & 0x7
    if size_code < 4:
        return 4, start + 5
    block_max = np.int64(1) << (8 + 2 * size_code)
    independent = (flg >> 5) & 1
    block_sum = (flg >> 4) & 1
    content_size = (flg >> 3) & 1
    content_sum = (flg >> 2) & 1
    dict_id = flg & 1
    pos = start + 6 + 8 * content_size + 4 * dict_id + 1  # + header checksum byte
    history = np.int64(0)
    while True:
        if pos + 4 > end:
            return 12, pos
        word = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (np.int64(buf[pos + 3]) << 24)
        pos += 4
        if word == 0:  # end mark
            if pos + 4 * content_sum > end:
                return 12, pos
            return 0, pos
        raw = (word >> 31) & 1
        size = word & 0x7FFFFFFF
        if size > block_max:
            return 5, pos - 4
        if pos + size + 4 * block_sum > end:
            return 6, pos - 4
        if raw:
            produced = size
        else:
            ip = pos
            iend = pos + size
            op = np.int64(0)
            while True:
                token = buf[ip]
                ip += 1
                lit = np.int64(token >> 4)
                if lit == 15:
                    lit, ip = _extended_length(buf, ip, iend, lit)
                    if lit < 0:
                        return 7, ip
                if ip + lit > iend:
                    return 7, ip
                if op + lit > block_max:
                    return 8, ip
                ip += lit
                op += lit
                if ip == iend:
                    break  # the last sequence of a block holds literals only
                if ip + 2 > iend:
                    return 9, ip
                offset = buf[ip] | (np.int64(buf[ip + 1]) << 8)
                ip += 2
                reach = op if independent else op + history
                if offset == 0 or offset > reach:
                    return 10, ip - 2
                ml = np.int64(token & 15)
                if ml == 15:
                    ml, ip = _extended_length(buf, ip, iend, ml)
                    if ml < 0:
                        return 11, ip
                ml += 4
                if op + ml > block_max:
                    return 11, ip
                op += ml
                if ip >= iend:
                    return 9, ip  # a match must be followed by a literal-only last sequence
            produced = op
        history = min(history + produced, _HISTORY)
        pos += size + 4 * block_sum


def lz4_frame_error(payload: np.ndarray) -> tuple[int, int, str]:
    """``(code, offset in payload, message)`` of an LZ4 frame; code 0 means structurally sound."""
    buf = np.ascontiguousarray(payload, dtype=np.uint8)
    code, at = _frame_error(buf, 0, len(buf))
    return int(code), int(at), _ERRORS.get(int(code), "ok")


def aedat4_streams(path: str | Path) -> tuple[int, dict[int, tuple[str, str]]]:
    """``(offset of the first packet, {stream id: (output name, compression)})`` from the header."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(_MAGIC) + 4)
        if len(head) < len(_MAGIC) + 4 or not head.startswith(_MAGIC):
            raise FormatError(f"{path}: cannot open as AEDAT4 (no {_MAGIC!r} signature at offset 0); "
                              "the file is truncated or corrupt")
        size = int.from_bytes(head[len(_MAGIC):], "little", signed=True)
        if size <= 0:
            raise FormatError(f"{path}: cannot open as AEDAT4 (header size {size} at offset {len(_MAGIC)}, expected > 0); "
                              "the file is truncated or corrupt")
        header = f.read(size)
    if len(header) < size:
        raise FormatError(f"{path}: cannot open as AEDAT4 (header of {size} bytes cut off after {len(header)} "
                          "bytes); the file is truncated or corrupt")
    text = header.decode("utf-8", "replace")
    streams = {}
    for m in re.finditer(r'<node name="(\d+)" path="[^"]*/outInfo/\d+/">(.*?)<node name="info"', text, re.S):
        body = m.group(2)
        name = re.search(r'key="originalOutputName" type="string">([^<]*)<', body)
        comp = re.search(r'key="compression" type="string">([^<]*)<', body)
        streams[int(m.group(1))] = (name.group(1) if name else "", comp.group(1) if comp else "")
    return len(_MAGIC) + 4 + size, streams


@numba.njit(cache=True, nogil=True)
def _walk_frames(buf: np.ndarray, pos: int, checked: np.ndarray, out: np.ndarray) -> int:
    """Walk the packet headers from ``pos``; the LZ4 frames to check, in file order, are the payloads
    of streams with ``checked[id]``, then the data table (stream id -1) when what follows the last
    packet is an LZ4 frame. Returns their count; fills rows ``start, end, stream id`` of ``out`` when
    it has room (call once with an empty ``out`` to count)."""
    n = len(buf)
    fill = len(out) > 0
    k = 0
    while pos + 8 <= n:
        sid = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16) | (np.int64(buf[pos + 3]) << 24)
        size = buf[pos + 4] | (buf[pos + 5] << 8) | (buf[pos + 6] << 16) | (np.int64(buf[pos + 7]) << 24)
        if size <= 0 or size >= (1 << 31) or pos + 8 + size > n or sid < 0 or sid >= len(checked):
            break  # the data table (or a broken packet header, which dv reports itself)
        if checked[sid]:
            if fill:
                out[k, 0], out[k, 1], out[k, 2] = pos + 8, pos + 8 + size, sid
            k += 1
        pos += 8 + size
    if pos + 4 <= n and buf[pos] == 0x04 and buf[pos + 1] == 0x22 and buf[pos + 2] == 0x4D and buf[pos + 3] == 0x18:
        if fill:
            out[k, 0], out[k, 1], out[k, 2] = pos, n, -1
        k += 1
    return k


def _lz4_frames(buf: np.ndarray, pos: int, checked: np.ndarray) -> np.ndarray:
    """``[n, 3]`` rows ``start, end, stream id`` of the file's LZ4 frames (two header walks: memory
    stays proportional to the number of packets)."""
    out = np.empty((_walk_frames(buf, pos, checked, np.empty((0, 3), np.int64)), 3), np.int64)
    if len(out):
        _walk_frames(buf, pos, checked, out)
    return out


@numba.njit(cache=True, nogil=True)
def _first_frame_error(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, lo: int, hi: int) -> tuple[int, int, int]:
    """``(index, code, offset)`` of the first bad frame among ``lo .. hi-1``; index -1 when all pass."""
    for i in range(lo, hi):
        code, at = _frame_error(buf, starts[i], ends[i])
        if code:
            return i, code, at
    return -1, 0, 0


def default_threads() -> int:
    """CPU cores this process may use (the LZ4 check splits the file's frames over them)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _split(sizes: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Consecutive ranges of frames (byte ``sizes``) holding about equal byte counts."""
    upto = np.cumsum(sizes)
    cuts = np.searchsorted(upto, upto[-1] * np.arange(1, parts) / parts)
    bounds = np.unique(np.r_[0, cuts, len(sizes)])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=False) if b > a]


def check_aedat4_lz4(path: str | Path, threads: int | None = None) -> None:
    """Raise FormatError if any LZ4 frame of the file (packets of LZ4 streams, data table) would
    not decode. Reads the memory-mapped file; run before dv-processing touches it.

    The frames are independent, so ``threads`` (default: the cores this process may use) check
    consecutive ranges of them at once (the kernel releases the GIL), each range at least
    ``_MIN_BYTES_PER_THREAD``; the error reported is the first in file order either way.
    """
    path = Path(path)
    start, streams = aedat4_streams(path)
    ids = [i for i, (_, comp) in streams.items() if comp.upper().startswith("LZ4")]
    if not ids:
        return
    checked = np.zeros(max(ids) + 1, dtype=np.bool_)
    checked[ids] = True
    if path.stat().st_size <= start:
        return  # no packets: dv reports the file as truncated
    n_threads = default_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    buf = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        frames = _lz4_frames(buf, start, checked)
        if not len(frames):
            return
        starts, ends, sids = (np.ascontiguousarray(frames[:, j]) for j in range(3))
        sizes = ends - starts
        ranges = _split(sizes, max(1, min(n_threads, len(sizes), int(sizes.sum()) // _MIN_BYTES_PER_THREAD)))
        if len(ranges) == 1:
            found = [_first_frame_error(buf, starts, ends, *ranges[0])]
        else:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(len(ranges)) as pool:
                found = list(pool.map(lambda r, b=buf: _first_frame_error(b, starts, ends, *r), ranges))
    finally:
        del buf
    for i, code, at in found:  # ranges are in file order: the first hit is the file's first error
        if i >= 0:
            sid, where = int(sids[i]), int(starts[i]) - 8
            what = "the data table" if sid < 0 else f"the packet at byte offset {where} (stream {sid})"
            raise FormatError(
                f"{path}: {what} is corrupt: {_ERRORS[int(code)]} at byte offset {int(at)}; expected a valid "
                "LZ4 frame (dv-processing would loop forever decoding it)"
            )
