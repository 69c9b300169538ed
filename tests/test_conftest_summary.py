"""Without the real recordings the run must say so at its end, not pass quietly with less tested."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py")


def test_skipped_real_data_tests_are_named_in_one_closing_line(pytester, monkeypatch):
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makepyfile(test_real="""
        def test_reads_a_recording(shared_data):
            assert shared_data.is_dir()

        def test_synthetic():
            pass
    """)
    missing = pytester.path / "no_shared_here"
    monkeypatch.setenv("EVTRACK_SHARED", str(missing))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=1)
    lines = [ln for ln in result.outlines if ln.startswith("real-data tests:")]
    assert lines == [f"real-data tests: 1 skipped, sample recordings not found at {missing / 'data'}; "
                     "set EVTRACK_SHARED to the folder that holds data/events (see README, Set-up)"]

    monkeypatch.setenv("EVTRACK_SHARED", str(pytester.path))
    (pytester.path / "data").mkdir()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert not [ln for ln in result.outlines if ln.startswith("real-data tests:")]
