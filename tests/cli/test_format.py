"""Output helpers: columnize, k = v, relative and ISO times, byte sizes, -json/-t selection."""

import pytest

from yurt.cli.format import (FormatError, columnize, format_kv, format_list, format_output, format_time_string,
                             format_unix_nano, ibytes, limit, pretty_time_diff, to_json)


def test_columnize_pads_all_but_last_column():
    assert columnize(["a|bb|c", "ddd|e|ffff"]) == "a    bb  c\nddd  e   ffff"


def test_format_list_fills_blank_cells():
    assert format_list(["ID|Class", "x| "]) == "ID  Class\nx   <none>"


def test_format_kv():
    assert format_kv(["ID|abc", "Longer Key|"]) == "ID         = abc\nLonger Key = <none>"


@pytest.mark.parametrize("ago, expected", [
    (0, "0s ago"), (0.4, "0s ago"), (5, "5s ago"), (65, "1m5s ago"), (3600, "1h ago"), (3725, "1h2m ago"),
    (90061, "1d1h ago"), (86400 * 45, "1mo15d ago"), (86400 * 400, "1y1mo ago"), (-30, "30s from now"),
])
def test_pretty_time_diff(ago, expected):
    now = 1_700_000_000.0
    assert pretty_time_diff(now - ago, now) == expected


def test_pretty_time_diff_zero_is_empty():
    assert pretty_time_diff(0, 1_700_000_000.0) == ""


def test_iso_times(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    assert format_unix_nano(1_700_000_000 * 10**9) == "2023-11-14T22:13:20Z"
    assert format_unix_nano(0) == ""
    assert format_time_string("2023-11-14T22:08:25.123456789Z") == "2023-11-14T22:08:25Z"
    assert format_time_string("0001-01-01T00:00:00Z", "N/A") == "N/A"
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    assert format_unix_nano(1_700_000_000 * 10**9) == "2023-11-14T23:13:20+01:00"
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.mark.parametrize("size, text", [(5, "5 B"), (300 * 2**20, "300 MiB"), (int(1.5 * 2**30), "1.5 GiB"),
                                        (8000 * 2**20, "7.8 GiB"), (10 * 2**30, "10 GiB")])
def test_ibytes(size, text):
    assert ibytes(size) == text


def test_limit():
    assert limit("abcdefghij", 8) == "abcdefgh"
    assert limit("abc", 8) == "abc"


def test_json_uses_four_spaces_and_keeps_key_order():
    assert to_json({"b": 1, "a": [1]}) == '{\n    "b": 1,\n    "a": [\n        1\n    ]\n}'


def test_format_output_rules():
    with pytest.raises(FormatError, match="Both json and template formatting are not allowed"):
        format_output(True, "{{.}}", {})
    assert format_output(False, "{{.A}}", {"A": 1}) == "1"
    with pytest.raises(FormatError, match="Error formatting the data"):
        format_output(False, "{{.A | nosuch}}", {"A": 1})
