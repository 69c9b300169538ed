"""Live tracking: dv-processing network streams and cameras, a replay server, StreamTracker.

- :mod:`evtrack.live.stream_tracker`: windows a packet stream and tracks it with bounded latency;
- :mod:`evtrack.live.network`: dv NetworkWriter/NetworkReader wrappers (end-of-stream handshake,
  reconnect with back-off, a reader process that a hostile stream cannot hang);
- :mod:`evtrack.live.replay`: publishes a recording at real time (``evtrack serve``);
- :mod:`evtrack.live.camera`: iniVation camera discovery and capture;
- :mod:`evtrack.live.outputs`: JSON lines, a dv BoundingBox stream, an overlay window or video.
"""

__all__ = ["StreamConfig", "StreamResult", "StreamTracker"]


def __getattr__(name: str):
    # Lazy, so that the dv reader process (evtrack.live.reader_process) starts without importing
    # the tracker side and evtrack.io.
    if name in __all__:
        from evtrack.live import stream_tracker

        return getattr(stream_tracker, name)
    raise AttributeError(f"module 'evtrack.live' has no attribute {name!r}")
