"""iniVation cameras through dv-processing: discovery with a clear error, and capture.

Capture runs dv's camera reader in a child process (the same one that reads TCP streams, see
:class:`~evtrack.live.network.NetworkEventSource`), so a stuck USB read cannot freeze the tracker.
"""

from __future__ import annotations

from dataclasses import dataclass

from evtrack.errors import UserError


@dataclass(frozen=True)
class CameraInfo:
    serial: str
    model: str


def discover_cameras() -> list[CameraInfo]:
    """Cameras dv-processing can open now (``dv.io.camera.discover()``; ``discoverDevices`` on
    versions that name it so)."""
    import dv_processing as dv

    find = getattr(dv.io, "discoverDevices", None) or dv.io.camera.discover
    found = []
    for d in find():
        serial = getattr(d, "serialNumber", None) or str(d)
        model = str(getattr(d, "cameraModel", "")).rsplit(".", 1)[-1]
        found.append(CameraInfo(str(serial), model))
    return found


def select_camera(serial: str | None, found: list[CameraInfo] | None = None) -> CameraInfo:
    """The camera to open: the one with ``serial``, or the only/first one; UserError otherwise."""
    found = discover_cameras() if found is None else found
    listing = ", ".join(f"{c.model} {c.serial}" for c in found) or "none"
    if not found:
        raise UserError(
            "no iniVation camera found: dv_processing camera discovery listed none "
            "(check the USB cable and udev rules, or use --source tcp://HOST:PORT / evtrack serve RECORDING)"
        )
    if serial is None:
        return found[0]
    for c in found:
        if c.serial == serial:
            return c
    raise UserError(f"camera {serial!r} not found; cameras found: {listing}")


def open_camera_source(serial: str | None, **kwargs):
    """A :class:`~evtrack.live.network.NetworkEventSource` reading the selected camera."""
    from evtrack.live.network import NetworkEventSource

    cam = select_camera(serial)
    return NetworkEventSource(kind="camera", serial=cam.serial, **kwargs)
