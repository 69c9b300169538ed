import pytest

from evtrack.errors import UserError
from evtrack.pruning.schedule import (
    DEFAULT_SCALE,
    OFFICIAL_TOKEN_FRACTIONS,
    default_schedule,
    official_schedule,
    parse_keep,
)


def test_dense_and_single_value():
    assert parse_keep(None, 3) == [1.0, 1.0, 1.0]
    assert parse_keep("1.0", 3) == [1.0, 1.0, 1.0]
    assert parse_keep("dense", 2) == [1.0, 1.0]
    assert parse_keep("0.5", 3) == [0.5, 0.5, 0.5]
    assert parse_keep(0.7, 2) == [0.7, 0.7]


def test_per_block_list():
    assert parse_keep("0.9, 0.8,0.7", 3) == [0.9, 0.8, 0.7]
    assert parse_keep([0.9, 0.5], 2) == [0.9, 0.5]


def test_official_on_eight_blocks_and_default_scales_it():
    assert parse_keep("official", 8) == pytest.approx(list(OFFICIAL_TOKEN_FRACTIONS))
    assert parse_keep("default", 8) == pytest.approx([DEFAULT_SCALE * f for f in OFFICIAL_TOKEN_FRACTIONS])
    # Official: about 55-57% of tokens kept overall for any depth, default ~0.92 of that (about 52%);
    # both non-increasing with depth.
    for n in (1, 3, 4, 6, 8, 12):
        s, o = default_schedule(n), official_schedule(n)
        assert len(s) == len(o) == n
        assert 0.54 <= sum(o) / n <= 0.61
        assert 0.49 <= sum(s) / n <= 0.56
        assert s == pytest.approx([DEFAULT_SCALE * v for v in o], abs=1e-6)
        assert all(a >= b for a, b in zip(s, s[1:], strict=False))
    assert default_schedule(4) == pytest.approx([0.667, 0.5888, 0.4531, 0.3887])


@pytest.mark.parametrize(
    "text, match",
    [("0.9,abc", "item 1 is 'abc'"), ("officia", "'default', 'official' or 'dense'"), ("1.5", r"item 0 is 1.5"), ("0", "item 0 is 0.0"), ("0.9,0.8", "found 2 ratios")],
)
def test_errors_name_the_item(text, match):
    with pytest.raises(UserError, match=match):
        parse_keep(text, 3)
