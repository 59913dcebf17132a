"""Neutralising formula injection in every CSV and XLSX cell the project writes.

Sites choose the text of their cells and file names, and some of it comes
back out in worklists, feedback packages and exports. A spreadsheet opens a
cell whose text starts with ``=``, ``+``, ``-`` or ``@`` (and, in some
programs, a tab or carriage return first) as a formula: ``=cmd|'/c calc'!A1``
can run a program on the reader's computer, ``=HYPERLINK(...)`` can send data
away (CSV injection, OWASP). So before a table is written to CSV or XLSX, each
such *text* cell gets a leading apostrophe (``'=cmd|...``): every spreadsheet
then shows it as the text it is, and a reader can still see the original value.

What is neutralised, and what is not:

- only text: numbers, dates, booleans and missing values are left as they
  are, so ``-1.5`` stays a number and sorts as one;
- a text cell that is a plain number literal (``-1.5``, ``+3``, ``-2e-3``) is
  left alone too: a spreadsheet reads it as that number, never as a formula;
  ``-2+3`` or ``+SUM(1)`` are not plain literals and are neutralised;
- the triggers are ``= + - @``, tab, carriage return and line feed, and their
  full-width forms (``＝ ＋ － ＠``), which some localised spreadsheets accept
  as formula starts;
- column headers are text cells too and are neutralised the same way.

Use ``neutralise_frame(df)`` before ``to_csv``/``to_excel``, ``neutralise`` or
``neutralise_row`` with ``csv.writer`` or ``xlsxwriter``, and
``neutralise_sql(expr)`` in a DuckDB ``COPY ... TO`` query. To read a value
back (an override request quoting a worklist cell), ``restore`` undoes it.
Writers that use xlsxwriter should also pass ``strings_to_formulas: False``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
NUMBER_LITERAL = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER = re.compile(NUMBER_LITERAL)
_TRIGGER_CLASS = "[" + re.escape("".join(TRIGGERS)) + "]"
_STARTS_WITH_TRIGGER = "^" + _TRIGGER_CLASS
PREFIX = "'"


def is_dangerous(value: object) -> bool:
    """Whether a spreadsheet could open ``value`` as a formula."""
    return isinstance(value, str) and value.startswith(TRIGGERS) and not _NUMBER.fullmatch(value)


def neutralise(value):
    """``value`` with a leading apostrophe if it is text a spreadsheet would run; else unchanged."""
    return PREFIX + value if is_dangerous(value) else value


def neutralise_row(values: Iterable) -> list:
    """Each cell of a row neutralised, for ``csv.writer.writerow`` or a worksheet row."""
    return [neutralise(v) for v in values]


def restore(value):
    """Undo ``neutralise``: the original text of a cell read back from a file the project wrote."""
    if isinstance(value, str) and value.startswith(PREFIX) and is_dangerous(value[1:]):
        return value[1:]
    return value


def _neutralise_series(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    elif not (series.dtype == object or pd.api.types.is_string_dtype(series.dtype)):
        return series  # numbers, dates, booleans: never formulas
    if series.dtype == object and not series.map(lambda v: isinstance(v, str)).any():
        return series  # an object column of numbers only (pandas refuses .str on it)
    text = series.str  # vectorised; non-text cells of an object column give NA
    dangerous = text.match(_STARTS_WITH_TRIGGER, na=False) & ~text.fullmatch(NUMBER_LITERAL, na=False)
    dangerous = dangerous.fillna(False).astype(bool)
    if not dangerous.any():
        return series
    out = series.copy()
    out[dangerous] = PREFIX + series[dangerous].astype(str)
    return out


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` safe to write to CSV or XLSX: text cells and headers neutralised."""
    out = frame.copy()
    for position in range(out.shape[1]):
        out.isetitem(position, _neutralise_series(out.iloc[:, position]))
    if isinstance(out.columns, pd.MultiIndex):
        out.columns = pd.MultiIndex.from_tuples([tuple(neutralise(x) for x in c) for c in out.columns])
    else:
        out.columns = [neutralise(c) for c in out.columns]
    return out


SQL_TRIGGER_PATTERN = r"^[=+\-@\t\r\n\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}]"


def neutralise_sql(expression: str) -> str:
    """DuckDB SQL for ``expression`` (a VARCHAR) neutralised, for ``COPY (select ...) TO 'x.csv'``."""
    return (f"(case when regexp_matches({expression}, '{SQL_TRIGGER_PATTERN}') "
            f"and not regexp_full_match({expression}, '{NUMBER_LITERAL}') "
            f"then chr(39) || {expression} else {expression} end)")


__all__ = ["TRIGGERS", "is_dangerous", "neutralise", "neutralise_frame", "neutralise_row", "neutralise_sql", "restore"]
