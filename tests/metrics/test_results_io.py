"""Box and flag text files: every separator the datasets use, and clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from evtrack.errors import FormatError
from evtrack.metrics import read_boxes, read_flags, write_boxes


@pytest.mark.parametrize("sep", [",", "\t", " ", ", "])
def test_read_boxes_separators(tmp_path, sep):
    p = tmp_path / "gt.txt"
    p.write_text(f"1{sep}2.5{sep}3{sep}4\n5{sep}6{sep}7{sep}8\n\n")
    np.testing.assert_array_equal(read_boxes(p), [[1, 2.5, 3, 4], [5, 6, 7, 8]])


def test_read_boxes_reports_the_bad_line(tmp_path):
    p = tmp_path / "gt.txt"
    p.write_text("1,2,3,4\n1,2,3\n")
    with pytest.raises(FormatError, match=r"gt.txt: line 2: found 3 fields"):
        read_boxes(p)
    p.write_text("1,2,3,4\n\n1,2,3,4\n")
    with pytest.raises(FormatError, match="line 2"):
        read_boxes(p)
    p.write_text("1,2,3,x\n")
    with pytest.raises(FormatError, match="line 1: '1,2,3,x' is not 4 numbers"):
        read_boxes(p)


def test_write_boxes_round_trip_tab_separated(tmp_path):
    boxes = np.array([[1.0, 2.25, 30.5, 40.0], [-3.0, 0.0, 1e-5, 12345.6789]])
    p = tmp_path / "sub" / "seq.txt"
    write_boxes(p, boxes)
    assert p.read_text().splitlines()[0] == "1\t2.25\t30.5\t40"
    np.testing.assert_allclose(read_boxes(p), boxes, atol=1e-4)
    assert [f.name for f in p.parent.iterdir()] == ["seq.txt"]  # no temp file left


def test_read_flags(tmp_path):
    p = tmp_path / "absent.txt"
    p.write_text("0\n1\n0\n")
    np.testing.assert_array_equal(read_flags(p), [False, True, False])
    p.write_text("0\n2\n")
    with pytest.raises(FormatError, match="line 2: found '2', expected a 0/1 flag"):
        read_flags(p)
