"""Where live results go: JSON lines, a dv BoundingBox stream, an overlay window or a video file.

Every output has ``write(result, events)`` (``events``: the window's events, for drawing) and
``close()``; :func:`emit_status` writes connection changes as JSON status lines.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from evtrack.errors import UserError
from evtrack.io.atomic import commit, discard, temp_path_for
from evtrack.live.stream_tracker import StreamResult


class JsonLinesOutput:
    """One JSON object per line: ``{"type": "box", ...}`` results and ``{"type": "status", ...}``.

    A file is written under a temporary name and renamed on :meth:`close`, so a crash never
    leaves a half-written file; stdout is flushed per line for pipes.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self._final = Path(path) if path not in (None, "-") else None
        self._tmp = temp_path_for(self._final) if self._final is not None else None
        self._fh: TextIO = open(self._tmp, "w") if self._tmp is not None else sys.stdout  # noqa: SIM115

    def write_obj(self, obj: dict) -> None:
        self._fh.write(json.dumps(obj) + "\n")
        self._fh.flush()

    def write(self, result: StreamResult, events: np.ndarray | None = None) -> None:
        self.write_obj(result.to_dict())

    def close(self, ok: bool = True) -> None:
        if self._tmp is None:
            return
        self._fh.close()
        if ok:
            commit(self._tmp, self._final)
        else:
            discard(self._tmp)
        self._tmp = None


class BoxStreamOutput:
    """Publishes each box as a dv ``BoundingBoxPacket`` on a TCP port (DV tools can display it)."""

    def __init__(self, port: int, host: str = "127.0.0.1", sensor_size: tuple[int, int] | None = None) -> None:
        import dv_processing as dv

        self._dv = dv
        stream = dv.io.Stream(0, "boxes", "evtrack", "BBOX")
        if sensor_size is not None:
            stream.setResolution((int(sensor_size[1]), int(sensor_size[0])))
        try:
            self._writer = dv.io.NetworkWriter(host, int(port), stream)
        except RuntimeError as exc:
            raise UserError(f"--boxes-port: cannot serve on {host}:{port}: {str(exc).split(' [')[0]}") from None

    def write(self, result: StreamResult, events: np.ndarray | None = None) -> None:
        x, y, w, h = result.box
        box = self._dv.BoundingBox(int(result.t1_us), x, y, x + w, y + h, float(result.score), "target")
        self._writer.writeBoundingBox(self._dv.BoundingBoxPacket(self._dv.BoundingBoxPacket.BoundingBoxVector([box])))

    def close(self, ok: bool = True) -> None:
        from evtrack.live.network import release_writer

        if getattr(self, "_writer", None) is not None:
            writer, self._writer = self._writer, None
            release_writer(writer, wait_s=1.0)


def render_overlay(events: np.ndarray, sensor_size: tuple[int, int], result: StreamResult) -> np.ndarray:
    """A BGR image of the window in the tracker's overlay style (``tracker.overlay``), with score and latency."""
    import cv2

    from evtrack.tracker.overlay import PRED_COLOUR, draw_box, event_image

    img = event_image(events, sensor_size)
    draw_box(img, result.box, PRED_COLOUR)
    cv2.putText(img, f"{result.score:.2f} {result.latency_ms:.1f}ms", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                PRED_COLOUR, 1)
    return img


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class OverlayWindow:
    """Live OpenCV window (needs a display); closing it or pressing q sets ``quit``."""

    def __init__(self, sensor_size: tuple[int, int], title: str = "evtrack live") -> None:
        if not display_available():
            raise UserError("--show needs a display (DISPLAY is not set); use --video out.mp4 instead")
        self.sensor_size = sensor_size
        self.title = title
        self.quit = False

    def write(self, result: StreamResult, events: np.ndarray) -> None:
        import cv2

        cv2.imshow(self.title, render_overlay(events, self.sensor_size, result))
        if cv2.waitKey(1) & 0xFF == ord("q"):
            self.quit = True

    def close(self, ok: bool = True) -> None:
        import cv2

        cv2.destroyAllWindows()


class VideoOutput:
    """Overlay frames into a video file (mp4v), written to a temporary name and renamed at the end."""

    def __init__(self, path: str | Path, sensor_size: tuple[int, int], fps: float) -> None:
        import cv2

        self._final = Path(path)
        self._tmp = temp_path_for(self._final)
        self.sensor_size = sensor_size
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self._final.suffix.lower() in (".mp4", ".m4v") else "MJPG"))
        self._vw = cv2.VideoWriter(str(self._tmp), fourcc, float(fps), (sensor_size[1], sensor_size[0]))
        if not self._vw.isOpened():
            discard(self._tmp)
            raise UserError(f"{path}: OpenCV cannot write this video format; use .mp4 or .avi")
        self.frames = 0

    def write(self, result: StreamResult, events: np.ndarray) -> None:
        self._vw.write(render_overlay(events, self.sensor_size, result))
        self.frames += 1

    def close(self, ok: bool = True) -> None:
        if self._tmp is None:
            return
        self._vw.release()
        if ok and self.frames:
            commit(self._tmp, self._final)
        else:
            discard(self._tmp)
        self._tmp = None
