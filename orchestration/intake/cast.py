"""SQL that casts a submission's text cells to the dictionary's types.

Built from the data dictionary, run in DuckDB over the whole file at once. A
cell that cannot be cast becomes NULL in the typed row and a cell finding
(rule ``conformance.type``) on that row, never an error. Direct identifiers
are replaced here, before anything is stored: a keyed HMAC-SHA256 computed in
SQL, or an age in whole years at a reference date.

Numbers are written with a decimal point and no thousands separators. A
decimal comma ("3,5") is accepted only in a semicolon-delimited file, the
form European spreadsheets save (``decimal_comma``); anywhere else a comma in
a number is a finding whose message says to use a decimal point, since
"1,234" could be either. NaN and infinity are never stored: they are
findings. Dates are ISO (YYYY-MM-DD, or YYYY/MM/DD, with or without a time);
15/03/2025 is a finding because day-month and month-day cannot be told apart,
and so is an Excel day number that lost its date format, and an impossible
date such as 2025-02-30.
"""

from __future__ import annotations

import hashlib

import duckdb

from ..registry import Registry, Variable

TRUE_WORDS = ("1", "y", "yes", "true", "t")
FALSE_WORDS = ("0", "n", "no", "false", "f")
TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "1 or 0 (yes or no)",
              "date": "a date (YYYY-MM-DD)"}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(_quote(w) for w in words)


MAX_FINDING_VALUE = 200   # characters of a cell quoted in a finding
NOT_FINITE = ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity")


# Blanks trimmed from every cell: a cell of only spaces, tabs, line breaks or
# no-break spaces is empty. trim(x, chars) is three times slower than the
# first/last character tests that guard it, and runs on every cell; ends_with
# compares bytes, where right(x, 1) would count characters.
BLANK_CODES = (9, 10, 13, 32, 160)
BLANKS = "' \t\n\r\u00a0'"


def trimmed(column: str) -> str:
    codes = ", ".join(str(code) for code in BLANK_CODES)
    last = " or ".join(f"ends_with({column}, chr({code}))" for code in BLANK_CODES)
    return f"(case when ascii({column}) in ({codes}) or {last} then trim({column}, {BLANKS}) else {column} end)"


def clean_cell(column: str) -> str:
    """A text cell with blanks trimmed, NULL when empty: computed once per cell, when a file is staged.

    The casts below read the clean cells: each refers to its cell several
    times, and the typed projection runs without the optimizer (no common
    subexpressions), so trimming there would repeat for every reference.
    """
    return f"nullif({trimmed(column)}, '')"


def source_expression(column: str | None) -> str:
    """A clean cell (``clean_cell``): trimmed, NULL when empty."""
    return column if column else "cast(null as varchar)"


def decimal_point(src: str) -> str:
    """``src`` with a decimal comma (``3,5``, no other comma or point) written as a point."""
    return f"(case when regexp_full_match({src}, '[+-]?[0-9]+,[0-9]+') then replace({src}, ',', '.') else {src} end)"


def cast_expression(variable: Variable, src: str, decimal_comma: bool = False) -> str:
    """The typed value of ``src``, or NULL when it cannot be cast."""
    if variable.type in ("string", "code"):
        return src
    if decimal_comma and variable.type in ("number", "integer"):
        src = decimal_point(src)
    if variable.type == "number":
        return f"(case when isfinite(try_cast({src} as double)) then try_cast({src} as double) end)"
    if variable.type == "integer":
        as_double = f"try_cast({src} as double)"
        return f"(case when isfinite({as_double}) and {as_double} = round({as_double}) then cast({as_double} as bigint) end)"
    if variable.type == "boolean":
        return (f"(case when lower({src}) in ({_words(TRUE_WORDS)}) then true "
                f"when lower({src}) in ({_words(FALSE_WORDS)}) then false end)")
    if variable.type == "date":
        return f"coalesce(try_cast({src} as date), cast(try_cast({src} as timestamp) as date))"
    raise ValueError(f"unknown type {variable.type}")


def hmac_parts(secret: bytes) -> tuple[bytes, bytes]:
    """The inner and outer padded keys of HMAC-SHA256 (RFC 2104)."""
    key = hashlib.sha256(secret).digest() if len(secret) > 64 else secret
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_expression(src: str, secret: bytes) -> str:
    inner, outer = hmac_parts(secret)
    inner_hex, outer_hex = inner.hex(), outer.hex()
    return (f"(case when {src} is not null then sha256(unhex('{outer_hex}') || "
            f"unhex(sha256(unhex('{inner_hex}') || encode({src})))) end)")


def period_expression(date_sql: str, period_length: str) -> str:
    if period_length == "quarter":
        return f"(cast(year({date_sql}) as varchar) || 'Q' || cast(quarter({date_sql}) as varchar))"
    return f"strftime({date_sql}, '%YM%m')"


def typed_columns(registry: Registry, columns: dict[str, str], secret: bytes,
                  decimal_comma: bool = False) -> dict[str, str]:
    """Warehouse column name -> SQL over the text table (``columns``: variable -> c<i>)."""
    typed: dict[str, str] = {}
    for variable in registry.variables:
        src = source_expression(columns.get(variable.name))
        value = cast_expression(variable, src, decimal_comma)
        pseudo = variable.pseudonymise
        if pseudo is None:
            typed[variable.name] = value
        elif pseudo.method == "hmac":
            typed[pseudo.output] = hmac_expression(src, secret)
        else:
            reference = registry.variable(pseudo.reference)
            ref_value = cast_expression(reference, source_expression(columns.get(reference.name)))
            typed[pseudo.output] = f"cast(date_sub('year', {value}, {ref_value}) as integer)"
    return typed


def problem_expression(variable: Variable, src: str) -> str:
    """Why ``src`` could not be cast, in the words an abstractor can act on."""
    plain = _quote(f"is not {TYPE_WORDS[variable.type]}")
    if variable.type in ("number", "integer"):
        whole = (f"when isfinite(try_cast({src} as double)) then 'is not a whole number' "
                 if variable.type == "integer" else "")
        return (f"(case when lower({src}) in ({_words(NOT_FINITE)}) or isinf(try_cast({src} as double)) "
                f"or isnan(try_cast({src} as double)) "
                "then 'is not a finite number: NaN and infinity are not values (leave the cell empty when unknown)' "
                f"when {src} like '%,%' then 'is not a number: write numbers with a decimal point and without "
                "thousands separators (1234.5, not 1,234.5 or 1234,5)' "
                f"{whole}else {plain} end)")
    if variable.type == "date":
        return (f"(case when regexp_full_match({src}, '[0-9]{{4}}[-/][0-9]{{1,2}}[-/][0-9]{{1,2}}') "
                "then 'is not a real calendar date (check the day and month)' "
                f"when regexp_full_match({src}, '[0-9]{{1,2}}[-/.][0-9]{{1,2}}[-/.][0-9]{{2,4}}') "
                "then 'is not a date in the form YYYY-MM-DD: day-month and month-day orders cannot be told apart' "
                f"when regexp_full_match({src}, '[0-9]{{5}}([.][0-9]+)?') "
                "then 'looks like an Excel day number, not a date: format the column as a date or write YYYY-MM-DD' "
                f"else {plain} end)")
    return plain


def cast_findings_sql(registry: Registry, columns: dict[str, str], table: str, decimal_comma: bool = False,
                      keys: str = "row_number", where: str = "true") -> str:
    """One row per cell that has text but no typed value (its text shortened to MAX_FINDING_VALUE).

    ``keys`` are the columns that identify a row; ``where`` restricts the rows checked.
    """
    parts = []
    for variable in registry.variables:
        column = columns.get(variable.name)
        if column is None or variable.type in ("string", "code"):
            continue
        src = source_expression(column)
        parts.append(
            f"select {keys}, {_quote(variable.name)} as field, left({src}, {MAX_FINDING_VALUE}) as value, "
            f"{problem_expression(variable, src)} as problem from {table} "
            f"where {where} and {src} is not null and {cast_expression(variable, src, decimal_comma)} is null"
        )
    if parts:
        return " union all ".join(parts)
    nothing = ", ".join(f"cast(null as bigint) as {key.strip()}" for key in keys.split(","))
    return f"select {nothing}, '' as field, '' as value, '' as problem where false"


def run_projection(con: duckdb.DuckDBPyConnection, sql: str, parameters: list | None = None) -> None:
    """Run a pure projection (a cast, a cleaning of cells) without DuckDB's optimizer.

    The optimizer gains nothing on these wide projections but spends seconds
    (tens of seconds on 53 guarded CASE expressions) before running them.
    """
    con.execute("pragma disable_optimizer")
    try:
        con.execute(sql, parameters)
    finally:
        con.execute("pragma enable_optimizer")
