"""dv-processing network streams that cannot hang or crash the tracker.

Writer side, :class:`EventPublisher`: a dv ``NetworkWriter`` on an event stream plus the
end-of-stream handshake of :mod:`evtrack.live.protocol` (marker packet, then wait for the
clients to leave).

Reader side, :class:`NetworkEventSource`. dv's ``NetworkReader`` holds the Python GIL while it
waits inside C++: a silent or garbage server freezes the whole process, an absurd packet size
makes it wait forever, a bad stream id segfaults it and a negative size aborts it (all tried on
dv-processing 2.0.4). So the reader is layered:

1. a *guard* thread in this process owns the TCP connection to the server and forwards only
   whole packets that pass :class:`~evtrack.live.protocol.FrameChecker` (clear FormatError
   otherwise), to a loopback socket of its own;
2. dv's ``NetworkReader`` runs in a child process connected to the guard and sends canonical
   event packets back over a pipe, with heartbeats;
3. this process watches: no heartbeat for ``stall_timeout_s`` or a dead child means the reader is
   killed and the connection counts as dropped. Dropped connections are retried with
   exponential back-off; the consumer (the StreamTracker) keeps running meanwhile.
"""

from __future__ import annotations

import collections
import json
import multiprocessing as mp
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from evtrack.errors import FormatError, UserError
from evtrack.io.events import EVENT_DTYPE
from evtrack.live.protocol import FrameChecker, eos_marker, split_eos, to_dv_store
from evtrack.live.reader_process import reader_main


class StreamLost(ConnectionError):
    """The stream stopped without an end-of-stream marker (retried by NetworkEventSource)."""


def parse_tcp_url(url: str) -> tuple[str, int]:
    """``tcp://HOST:PORT`` (or ``HOST:PORT``) -> (host, port)."""
    rest = url[len("tcp://"):] if url.startswith("tcp://") else url
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UserError(f"source {url!r}: expected tcp://HOST:PORT with a port in 1..65535")
    return host.strip("[]"), int(port)


# ---------------------------------------------------------------------------------------- writer
# dv-processing 2.0.4: destroying a NetworkWriter while it still counts a connected client
# deadlocks inside C++ with the GIL held (the whole process freezes, forever; not even a signal
# handler or pytest-timeout can run). So a writer is only destroyed once its client count is 0;
# otherwise it is *parked*: kept here with one extra, never released reference, so its destructor
# never runs, not even at interpreter shutdown (the process then exits normally, the OS closes the
# sockets). The CLI additionally leaves with os._exit() (exit_if_writers_leaked).
_LEAKED_WRITERS: list = []


def _park(writer) -> None:
    import ctypes

    ctypes.pythonapi.Py_IncRef(ctypes.py_object(writer))  # never decremented: no destructor, ever
    _LEAKED_WRITERS.append(writer)


def release_writer(writer, wait_s: float = 2.0) -> bool:
    """Destroy a dv NetworkWriter safely: True if destroyed, False if parked (clients stayed)."""
    end = time.monotonic() + wait_s
    while writer.getClientCount() > 0 and time.monotonic() < end:
        time.sleep(0.01)
    if writer.getClientCount() > 0:
        _park(writer)
        return False
    del writer
    return True


def exit_if_writers_leaked(code: int) -> None:
    """End the process without destructors when a writer could not be destroyed safely."""
    if _LEAKED_WRITERS:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    """True when a TCP server listens on ``port`` (on any local address under Linux), checked without
    connecting where possible.

    On Linux this reads ``/proc/net/tcp{,6}`` so the check does not count as a client of the
    server (a connect-and-close probe would); elsewhere it falls back to a connect probe.
    """
    tables = [f for f in ("/proc/net/tcp", "/proc/net/tcp6") if os.path.exists(f)]
    if not tables:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return True
        except OSError:
            return False
    want = f"{port:04X}"
    for table in tables:
        with open(table) as fh:
            next(fh, None)
            for line in fh:
                fields = line.split()
                if len(fields) > 3 and fields[3] == "0A" and fields[1].rsplit(":", 1)[-1] == want:
                    return True
    return False


def wait_listening(port: int, host: str = "127.0.0.1", timeout_s: float = 20.0) -> None:
    """Block until a server listens on ``port`` (for scripts that start ``evtrack serve``)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if is_listening(port, host):
            return
        time.sleep(0.05)
    raise UserError(f"nothing listens on {host}:{port} after {timeout_s:g} s")


class EventPublisher:
    """A dv NetworkWriter for canonical events, with the end-of-stream handshake.

    Binds to ``host`` (127.0.0.1 unless the caller names another address).
    """

    def __init__(self, host: str, port: int, sensor_size: tuple[int, int], *, name: str = "evtrack") -> None:
        import dv_processing as dv

        h, w = sensor_size
        if w < 16:
            raise UserError(f"sensor width {w} < 16: too narrow for the end-of-stream marker")
        self.errors: list[str] = []
        stream = dv.io.Stream.EventStream(0, "events", name, (int(w), int(h)))
        try:
            self._writer = dv.io.NetworkWriter(host, int(port), stream, 10, self._on_error)
        except RuntimeError as exc:
            raise UserError(f"cannot serve on {host}:{port}: {str(exc).split(' [')[0]}") from None
        self.host, self.port = host, int(port)
        self.sent_events = 0
        self.last_t_us = 0
        self._closed = False

    def _on_error(self, code, message: str) -> None:  # dv's callback, from its I/O thread
        if "keep-alive" not in message:  # what dv reports when a client disconnects normally
            self.errors.append(f"{code}: {message}")

    @property
    def clients(self) -> int:
        return self._writer.getClientCount()

    @property
    def queued(self) -> int:
        return self._writer.getQueuedPacketCount()

    def wait_for_client(self, timeout_s: float | None = None, poll_s: float = 0.01, settle_s: float = 0.25) -> bool:
        """Wait until a client has stayed connected for ``settle_s``.

        A port probe (connect, then close at once) must not start an unthrottled stream that
        nobody receives, so a client only counts once it has stayed for ``settle_s``.
        """
        end = None if timeout_s is None else time.monotonic() + timeout_s
        since = None
        while True:
            now = time.monotonic()
            if self.clients > 0:
                since = now if since is None else since
                if now - since >= settle_s:
                    return True
            else:
                since = None
            if end is not None and now > end:
                return False
            time.sleep(poll_s)

    def publish(self, events: np.ndarray) -> None:
        # Known limit (dv-processing 2.0.4): writeEvents blocks inside C++ once a connected client
        # stops reading and the socket buffers are full; the tracker side never depends on this.
        if len(events) == 0:
            return
        self._writer.writeEvents(to_dv_store(events))
        self.sent_events += len(events)
        self.last_t_us = int(events["t"][-1])

    def finish(self, linger_s: float = 10.0) -> bool:
        """Send the EOS marker, wait until all clients left (True) or ``linger_s`` passed (False)."""
        if self._closed:
            return True
        self._writer.writeEvents(to_dv_store(eos_marker(self.last_t_us, self.sent_events)))
        end = time.monotonic() + linger_s
        drained = False
        while time.monotonic() < end:
            if self.clients == 0 and self.queued == 0:
                drained = True
                break
            time.sleep(0.01)
        self.close()
        return drained

    def close(self, wait_s: float = 2.0) -> None:
        if not self._closed:
            self._closed = True
            writer, self._writer = self._writer, None
            release_writer(writer, wait_s)

    def __enter__(self) -> EventPublisher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -------------------------------------------------------------------------------------- guard
class _Guard:
    """Relays upstream -> downstream, forwarding only validated whole packets.

    dv's NetworkReader queues at most 1000 packets and silently drops newer ones when its
    consumer lags (measured: 3000 packets sent in a burst, 1000 received), so the guard keeps at
    most ``max_inflight`` packets ahead of what the reader process has handed over; the rest
    waits in TCP buffers and the sender's queue (back-pressure instead of loss).
    """

    max_inflight = 256

    def __init__(self, listener: socket.socket, upstream: socket.socket, checker: FrameChecker, first: bytes) -> None:
        self.upstream = upstream
        self.checker = checker
        self.error: FormatError | None = None
        self.upstream_closed = threading.Event()
        self.listener = listener
        self.downstream: socket.socket | None = None
        self.forwarded = 0
        self.consumed = 0
        self._credit = threading.Condition()
        self._first = first
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dv-guard", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(30)
            self.downstream, _ = self.listener.accept()
            self.downstream.sendall(self._first)
            self.forwarded += self.checker.packets
            self.upstream.settimeout(0.2)
            while not self._stop.is_set():
                try:
                    data = self.upstream.recv(1 << 20)
                except TimeoutError:
                    continue
                if not data:
                    break
                for unit in self.checker.feed_units(data):
                    with self._credit:
                        while self.forwarded - self.consumed >= self.max_inflight and not self._stop.is_set():
                            self._credit.wait(0.1)
                    self.downstream.sendall(unit)
                    self.forwarded += 1
        except FormatError as exc:
            self.error = exc
        except OSError:
            pass
        finally:
            self.upstream_closed.set()

    def consumed_one(self) -> None:
        with self._credit:
            self.consumed += 1
            self._credit.notify()

    def close(self) -> None:
        self._stop.set()
        with self._credit:
            self._credit.notify_all()
        # shutdown() first: it wakes a thread blocked in accept()/recv()/sendall() on that socket
        # (close() alone does not on Linux), so the join below does not have to time out.
        for s in (self.upstream, self.downstream, self.listener):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass
        self._thread.join(timeout=2)

    def close_downstream(self) -> None:
        if self.downstream is not None:
            try:
                self.downstream.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ------------------------------------------------------------------------------------- source
@dataclass(frozen=True)
class SourceConfig:
    """Timeouts and retry policy of a live source."""

    connect_timeout_s: float = 5.0  # TCP connect + stream header + reader start
    stall_timeout_s: float = 5.0  # reader process silent (not even heartbeats) this long = hung
    idle_timeout_s: float | None = 10.0  # no events this long = connection treated as dropped
    max_retries: int | None = 5  # consecutive failed attempts before giving up (None = forever)
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 8.0
    heartbeat_s: float = 0.25
    drain_s: float = 0.3  # after the sender closes, wait this long with no data before disconnecting


@dataclass(frozen=True)
class SourceStatus:
    """A change of connection state, for logs and JSON status lines."""

    kind: str  # connecting, connected, dropped, warning, eos, closed
    message: str
    attempt: int = 0
    delay_s: float = 0.0

    def to_dict(self) -> dict:
        return {"type": "status", "status": self.kind, "message": self.message, "attempt": self.attempt,
                "delay_s": round(self.delay_s, 3), "wall_time": round(time.time(), 6)}


class _ReaderProcess:
    """One attempt: the dv reader child plus, for TCP, the guard in front of it."""

    def __init__(self, kind: str, host: str, port: int, serial: str | None, cfg: SourceConfig) -> None:
        ctx = mp.get_context("spawn")  # never fork a process that may hold torch threads
        self.conn, child_conn = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=reader_main,
                                args=(child_conn, kind, host, port, serial, cfg.heartbeat_s),
                                daemon=True, name="evtrack-dv-reader")
        self.proc.start()
        child_conn.close()

    def died(self, starting: bool = False) -> str:
        """Why the reader process ended, for the error message (waits briefly to reap it)."""
        self.proc.join(timeout=1.0)
        code = self.proc.exitcode
        if code is None:
            how = "closed its pipe"
        elif code < 0:
            import signal

            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        if starting:
            return f"dv reader process {how} while starting (dv-processing import failed?)"
        return f"dv reader process {how} (dv-processing could not decode the stream: corrupt or not a dv stream)"

    def stop(self) -> None:
        try:
            self.conn.send_bytes(b"stop")
        except OSError:
            pass
        self.proc.join(timeout=1.0)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=1.0)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(timeout=1.0)
        self.conn.close()


class NetworkEventSource:
    """Iterate over event packets from a dv TCP stream (``kind="tcp"``) or camera (``kind="camera"``).

    Reconnects after a dropped connection with exponential back-off, reporting each change to
    ``on_status``. Iteration ends after an end-of-stream marker (``eos_total`` = events the sender
    announced) or :meth:`close`; it raises FormatError / UserError once ``max_retries``
    consecutive attempts failed.
    """

    def __init__(self, host: str = "", port: int = 0, *, kind: str = "tcp", serial: str | None = None,
                 config: SourceConfig = SourceConfig(),
                 on_status: Callable[[SourceStatus], None] | None = None) -> None:
        if kind not in ("tcp", "camera"):
            raise UserError(f"source kind {kind!r}, expected 'tcp' or 'camera'")
        self.kind, self.host, self.port, self.serial = kind, host, int(port), serial
        self.config = config
        self.on_status = on_status
        self.name = f"tcp://{host}:{port}" if kind == "tcp" else f"camera {serial or '(first found)'}"
        self.sensor_size: tuple[int, int] | None = None  # (height, width), once connected
        self.camera_name: str | None = None
        self.received_events = 0  # over all connections
        self.session_events = 0  # over the current connection (what an EOS count is checked against)
        self.eos_total: int | None = None
        self.rejected_events = 0  # outside the announced sensor size (dropped)
        self.reconnects = 0
        # Reader hand-off: ms from dv handing a packet to the reader process to this process yielding it.
        self.handoff_ms: collections.deque[float] = collections.deque(maxlen=100_000)
        self.last_read_at: float | None = None  # time.monotonic() when dv handed over the last packet
        self._closed = threading.Event()
        self._connected = threading.Event()

    def _in_bounds(self, events: np.ndarray) -> np.ndarray:
        """Drop events outside the announced sensor (a hostile or corrupt sender), reported once."""
        if self.sensor_size is None or len(events) == 0:
            return events
        h, w = self.sensor_size
        ok = (events["x"] >= 0) & (events["x"] < w) & (events["y"] >= 0) & (events["y"] < h)
        if ok.all():
            return events
        bad = int(len(events) - ok.sum())
        if self.rejected_events == 0:
            i = int(np.argmin(ok))
            self._status("warning", f"{self.name}: event at x={events['x'][i]}, y={events['y'][i]} outside the "
                         f"{w}x{h} sensor the stream announced; such events are dropped and counted")
        self.rejected_events += bad
        return events[ok]

    def _status(self, kind: str, message: str, attempt: int = 0, delay_s: float = 0.0) -> None:
        if self.on_status is not None:
            self.on_status(SourceStatus(kind, message, attempt, delay_s))

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def close(self) -> None:
        self._closed.set()

    def __iter__(self) -> Iterator[np.ndarray]:
        cfg = self.config
        failures = 0
        while not self._closed.is_set():
            self._status("connecting", f"connecting to {self.name}", failures)
            got_data = False
            try:
                for packet in self._session():
                    got_data = True
                    yield packet
                if self.eos_total is not None or self._closed.is_set():
                    return
                raise StreamLost(f"{self.name}: stream ended without an end-of-stream marker")
            except (StreamLost, FormatError, OSError) as exc:
                err = exc
            failures = 1 if got_data else failures + 1
            if cfg.max_retries is not None and failures > cfg.max_retries:
                self._status("closed", f"giving up after {failures} failed attempts: {err}", failures)
                if isinstance(err, FormatError):
                    raise err
                raise UserError(f"{err} (gave up after {failures} attempts)") from None
            delay = min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** (failures - 1))
            self._status("dropped", str(err), failures, delay)
            self.reconnects += 1
            if self._closed.wait(delay):
                return

    # One connection attempt; yields packets, returns on EOS/close, raises on failure.
    def _session(self) -> Iterator[np.ndarray]:
        cfg = self.config
        guard = None
        if self.kind == "camera":
            reader = _ReaderProcess("camera", "", 0, self.serial, cfg)
        else:
            # Listen first and start the reader process (slow: it imports dv) while we connect.
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            reader = _ReaderProcess("tcp", "127.0.0.1", listener.getsockname()[1], None, cfg)
        try:
            if self.kind == "tcp":
                try:
                    self._wait_ready(reader)
                    guard = self._open_guard(listener)
                except BaseException:
                    listener.close()
                    raise
            yield from self._pump(reader, guard)
        finally:
            if guard is not None:
                guard.close()
            reader.stop()

    def _wait_ready(self, reader: _ReaderProcess) -> None:
        """Wait until the reader process has imported dv, so nothing piles up while it starts."""
        limit = self.config.connect_timeout_s + 10.0
        if not reader.conn.poll(limit):
            raise StreamLost(f"{self.name}: dv reader process did not start within {limit:g} s")
        try:
            msg = reader.conn.recv_bytes()
        except (EOFError, OSError):
            raise StreamLost(f"{self.name}: {reader.died(starting=True)}") from None
        if msg[:1] == b"X":
            raise StreamLost(f"{self.name}: {json.loads(msg[1:])['message']}")

    def _open_guard(self, listener: socket.socket) -> _Guard:
        cfg = self.config
        try:
            up = socket.create_connection((self.host, self.port), timeout=cfg.connect_timeout_s)
        except OSError as exc:
            raise StreamLost(f"{self.name}: cannot connect: {exc.strerror or exc}") from None
        checker = FrameChecker(self.name)
        first = b""
        end = time.monotonic() + cfg.connect_timeout_s
        try:
            while checker.header is None:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    raise StreamLost(
                        f"{self.name}: no dv stream header within {cfg.connect_timeout_s:g} s "
                        "(silent server, or not a dv NetworkWriter)"
                    )
                up.settimeout(remaining)
                try:
                    data = up.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    raise StreamLost(f"{self.name}: server closed the connection before sending a stream header")
                first += checker.feed(data)
        except BaseException:
            up.close()
            raise
        return _Guard(listener, up, checker, first)

    def _pump(self, reader: _ReaderProcess, guard: _Guard | None) -> Iterator[np.ndarray]:
        cfg = self.config
        self.session_events = 0
        start = time.monotonic()
        last_msg = last_data = start
        connected = False
        while not self._closed.is_set():
            if guard is not None and guard.error is not None:
                raise guard.error
            if not reader.conn.poll(0.05):
                now = time.monotonic()
                if not reader.proc.is_alive() and not reader.conn.poll():
                    raise StreamLost(f"{self.name}: {reader.died()}")
                if not connected and now - start > cfg.connect_timeout_s + 5.0:  # + process start-up
                    raise StreamLost(f"{self.name}: dv reader did not start within {cfg.connect_timeout_s + 5:g} s")
                if connected and now - last_msg > cfg.stall_timeout_s:
                    raise StreamLost(f"{self.name}: dv reader hung (silent for {cfg.stall_timeout_s:g} s); killed")
                if connected and cfg.idle_timeout_s is not None and now - last_data > cfg.idle_timeout_s:
                    raise StreamLost(f"{self.name}: no events for {cfg.idle_timeout_s:g} s")
                if guard is not None and guard.upstream_closed.is_set() and now - last_data > cfg.drain_s:
                    guard.close_downstream()  # sender gone and everything forwarded was read
                continue
            try:
                msg = reader.conn.recv_bytes()
            except (EOFError, OSError):
                raise StreamLost(f"{self.name}: {reader.died()}") from None
            last_msg = time.monotonic()
            tag, payload = msg[:1], msg[1:]
            if tag == b"E":
                last_data = last_msg
                if guard is not None:
                    guard.consumed_one()
                self.last_read_at = struct.unpack_from("<d", payload)[0]
                events = np.frombuffer(payload, dtype=EVENT_DTYPE, offset=8)
                events, total = split_eos(events)
                self.received_events += len(events)  # arrived (rejected_events of them then dropped)
                self.session_events += len(events)
                events = self._in_bounds(events)
                if len(events):
                    self.handoff_ms.append((time.monotonic() - self.last_read_at) * 1e3)
                    yield events
                if total is not None:
                    self.eos_total = total
                    lost = total - self.session_events
                    self._status("eos", f"end of stream: received {self.session_events} of {total} events sent"
                                 + (f" ({lost} missing)" if lost else "")
                                 + (f" on this connection; {self.received_events} in all" if self.reconnects else ""))
                    return
            elif tag in (b"R", b"H"):
                pass
            elif tag == b"C":
                info = json.loads(payload)
                self.sensor_size = (info["height"], info["width"])
                self.camera_name = info["camera"]
                connected = True
                self._connected.set()
                self._status("connected", f"connected to {self.name} ({info['camera']}, "
                             f"{info['width']}x{info['height']})")
            elif tag == b"Q":
                if guard is not None and guard.error is not None:
                    raise guard.error
                raise StreamLost(f"{self.name}: {json.loads(payload)['message']}")
            elif tag == b"X":
                if guard is not None and guard.error is not None:
                    raise guard.error
                message = json.loads(payload)["message"]
                if self.kind == "camera":
                    raise UserError(f"{self.name}: {message}")
                raise StreamLost(f"{self.name}: {message}")
