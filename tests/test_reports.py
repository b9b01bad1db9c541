"""The CSV export: no cell a spreadsheet would run as a formula, whatever separator it uses."""

from __future__ import annotations

import csv
import io
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humandesk.server.reports import CSV_COLUMNS, _cell, calls_to_csv

FORMULA = re.compile(r"^[ \"]*[=+\-@]")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        # At the start of the cell.
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+49 30 1234567", "'+49 30 1234567"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ('@SUM(1+1)*cmd|" /C calc"!A0', '\'@SUM(1+1)*cmd|" /C calc"!A0'),
        (
            '=HYPERLINK("http://evil.example","click")',
            '\'=HYPERLINK("http://evil.example","click")',
        ),
        ("  =1+1", "'  =1+1"),
        ('"=1+1', "'\"=1+1"),
        ("\t=1+1", "'\t'=1+1"),
        ("\r=1+1", "'\r'=1+1"),
        ("\n=1+1", "'\n'=1+1"),
        ("\tplain", "'\tplain"),
        # Behind a separator, where a spreadsheet of that locale starts a new cell.
        ("x;=cmd|' /C calc'!A0", "x;'=cmd|' /C calc'!A0"),
        ("x,=cmd|' /C calc'!A0", "x,'=cmd|' /C calc'!A0"),
        ("x\t=cmd|' /C calc'!A0", "x\t'=cmd|' /C calc'!A0"),
        ("x\r\n@SUM(A1)", "x\r\n'@SUM(A1)"),
        ("x; -1+1;+1;ok", "x;' -1+1;'+1;ok"),
        # NUL, anywhere.
        ("\0=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("Gr\0ace", "Grace"),
        ("x;\0=1", "x;'=1"),
        # Left alone.
        ("Grace Hopper", "Grace Hopper"),
        ("a-b, c+d; e@f", "a-b, c+d; e@f"),
        ("1,5", "1,5"),
        ("grace@example.com", "grace@example.com"),
        ("", ""),
        (None, ""),
        (4, "4"),
    ],
)
def test_cells(value: object, cell: str) -> None:
    assert _cell(value) == cell


def naive_cells(text: str, separator: str) -> list[str]:
    """The cells a reader that splits lines at ``separator`` without honouring quotes sees."""
    return [part for line in re.split(r"\r\n|\r|\n", text) for part in line.split(separator)]


@given(st.text(st.sampled_from('=+-@,;\t\r\n\0 "x1')))
def test_no_part_of_a_cell_starts_a_formula_for_any_separator(text: str) -> None:
    cell = _cell(text)
    assert "\0" not in cell
    for separator in (",", ";", "\t"):
        for part in naive_cells(cell, separator):
            assert not FORMULA.match(part), (text, cell, part)


@given(st.lists(st.text(st.sampled_from('=+-@,;\t\r\n\0 "x1')), min_size=1, max_size=3))
def test_the_file_read_with_any_separator_holds_no_formula(values: list[str]) -> None:
    record = {
        "id": "1",
        "visitor_name": values[0],
        "topic": values[-1],
        "notes": "".join(values),
    }
    text = calls_to_csv([record])
    # Read as CSV (quotes honoured): every cell is one of ours, neutralised.
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(CSV_COLUMNS) and len(rows) == 2
    assert all(not FORMULA.match(cell) for cell in rows[1])
    assert rows[1][CSV_COLUMNS.index("visitor_name")] == _cell(values[0])
    # Read by a naive splitter, with any separator, quotes or not.
    for separator in (",", ";", "\t"):
        for part in naive_cells(text, separator):
            assert not FORMULA.match(part.lstrip('"')), (values, part)


def test_every_cell_is_quoted() -> None:
    text = calls_to_csv([{"id": "7", "visitor_name": "x;y", "priority": 0}])
    header, row = text.splitlines()
    assert header.startswith('"id","queue",') and row.startswith('"7","",')
    assert '"x;y"' in row
