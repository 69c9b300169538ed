"""Live tracking: dv-processing network streams and cameras, a replay server, StreamTracker.

- :mod:`evtrack.live.stream_tracker`: windows a packet stream and tracks it with bounded latency;
- :mod:`evtrack.live.network`: dv NetworkWriter/NetworkReader wrappers (end-of-stream handshake,
  reconnect with back-off, a reader process that a hostile stream cannot hang);
- :mod:`evtrack.live.replay`: publishes a recording at real time (``evtrack serve``);
- :mod:`evtrack.live.camera`: iniVation camera discovery and capture;
- :mod:`evtrack.live.outputs`: JSON lines, a dv BoundingBox stream, an overlay window or video.
"""

from evtrack.live.stream_tracker import StreamConfig, StreamResult, StreamTracker

__all__ = ["StreamConfig", "StreamResult", "StreamTracker"]
