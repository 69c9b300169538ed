"""The child process that runs dv-processing's reader (TCP or camera) for NetworkEventSource.

Kept apart and light on purpose: a fresh reader process is spawned for every connection attempt,
so this module imports only numpy and dv_processing (not evtrack.io, which pulls in numba and
costs seconds under load). The canonical event dtype comes from the parent as an argument.

Every message to the parent is tagged bytes: ``R`` ready (dv imported), ``C`` connected (JSON
resolution and camera name), ``E`` one dv packet of events (a little-endian float64 ``time.monotonic()``
stamp of when dv handed it over, then raw canonical records, may be none), ``H`` heartbeat, ``Q`` stream
closed by the sender, ``X`` error (JSON message). The stamp lets the parent measure the hand-off
(monotonic time is one clock for all processes of the machine).
"""

from __future__ import annotations

import json
import struct
import time

from evtrack.io.aedat4 import from_dv_events


def reader_main(conn, kind: str, host: str, port: int, serial: str | None, heartbeat_s: float) -> None:
    """Runs dv's reader (network or camera) in a child process; every message is tagged bytes."""

    def send(tag: bytes, payload: bytes) -> None:
        conn.send_bytes(tag + payload)

    def send_json(tag: bytes, obj) -> None:
        send(tag, json.dumps(obj).encode())

    try:
        import dv_processing as dv

        send(b"R", b"")  # imported: the parent may connect upstream now
        if kind == "camera":
            reader = dv.io.camera.open(serial) if serial else dv.io.camera.open()
        else:
            reader = dv.io.NetworkReader(host, port)
        if not reader.isEventStreamAvailable():
            send_json(b"X", {"message": "the stream has no event stream"})
            return
        w, h = reader.getEventResolution()
        send_json(b"C", {"width": int(w), "height": int(h), "camera": reader.getCameraName()})
        last = time.monotonic()
        while True:
            if conn.poll():
                if conn.recv_bytes() == b"stop":
                    break
            batch = reader.getNextEventBatch()
            now = time.monotonic()
            if batch is not None:  # one message per dv packet, even empty: the guard counts them
                records = from_dv_events(batch.numpy()).tobytes() if batch.size() else b""
                send(b"E", struct.pack("<d", now) + records)
                last = now
                continue
            if not reader.isRunning():
                send_json(b"Q", {"message": "stream closed by the sender"})
                break
            if now - last > heartbeat_s:
                send(b"H", b"")
                last = now
            time.sleep(0.0005)
    except (BrokenPipeError, EOFError):
        return
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        try:
            send_json(b"X", {"message": f"{type(exc).__name__}: {str(exc).split(' [')[0]}"})
        except (BrokenPipeError, OSError):
            pass
