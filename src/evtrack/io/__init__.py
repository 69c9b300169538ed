"""Event-camera file I/O: one bounded-memory reader interface for every format, and writers.

>>> from evtrack.io import open_events
>>> with open_events("recording.aedat4") as reader:
...     for window in reader.windows(20_000):   # 20 ms windows
...         process(window.events)
"""

from evtrack.io.aedat4 import write_aedat4
from evtrack.io.detect import FORMATS, open_events, sniff_format
from evtrack.io.events import EVENT_DTYPE, as_events, empty_events, make_events
from evtrack.io.hdf5 import HDF5EventWriter, write_hdf5
from evtrack.io.reader import EventReader, EventRepairWarning, RecordingInfo, Window

__all__ = [
    "EVENT_DTYPE",
    "FORMATS",
    "EventReader",
    "EventRepairWarning",
    "HDF5EventWriter",
    "RecordingInfo",
    "Window",
    "as_events",
    "empty_events",
    "make_events",
    "open_events",
    "sniff_format",
    "write_aedat4",
    "write_hdf5",
]
