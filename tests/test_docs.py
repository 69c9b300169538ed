"""The README renders as intended: a new user copies its commands and reads its prose."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _fenced(lines: list[str]) -> list[bool]:
    """Per line: is it inside (or a fence of) a code block?"""
    inside, out = False, []
    for line in lines:
        fence = line.startswith("```")
        out.append(inside or fence)
        if fence:
            inside = not inside
    return out


def test_readme_code_fences_pair_up_and_prose_stays_prose():
    lines = README.read_text().splitlines()
    assert sum(line.startswith("```") for line in lines) % 2 == 0
    fenced = _fenced(lines)
    for i, line in enumerate(lines):
        if line.startswith(("For a robotics loop", "Datasets:", "Events are one structured array")):
            assert not fenced[i], f"README line {i + 1} is inside a code block: {line[:40]!r}"


def test_readme_setup_has_two_commands_and_names_evtrack_shared():
    text = README.read_text()
    setup = re.search(r"^## Set-up\n(.*?)^## ", text, re.S | re.M).group(1)
    blocks = re.findall(r"^```bash\n(.*?)^```", setup, re.S | re.M)
    assert [len(b.strip().splitlines()) for b in blocks] == [1, 1]
    assert "EVTRACK_SHARED" in setup
