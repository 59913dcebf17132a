"""SQL that casts a submission's text cells to the dictionary's types.

Built from the data dictionary, run in DuckDB over the whole file at once. A
cell that cannot be cast becomes NULL in the typed row and a cell finding
(rule ``conformance.type``) on that row, never an error. Direct identifiers
are replaced here, before anything is stored: a keyed HMAC-SHA256 computed in
SQL, or an age in whole years at a reference date.
"""

from __future__ import annotations

import hashlib

from ..registry import Registry, Variable

TRUE_WORDS = ("1", "y", "yes", "true", "t")
FALSE_WORDS = ("0", "n", "no", "false", "f")
TYPE_WORDS = {"integer": "a whole number", "number": "a number", "boolean": "1 or 0 (yes or no)",
              "date": "a date (YYYY-MM-DD)"}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(_quote(w) for w in words)


def source_expression(column: str | None) -> str:
    return f"nullif(trim({column}), '')" if column else "cast(null as varchar)"


def cast_expression(variable: Variable, src: str) -> str:
    """The typed value of ``src``, or NULL when it cannot be cast."""
    if variable.type in ("string", "code"):
        return src
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


def typed_columns(registry: Registry, columns: dict[str, str], secret: bytes) -> dict[str, str]:
    """Warehouse column name -> SQL over the text table (``columns``: variable -> c<i>)."""
    typed: dict[str, str] = {}
    for variable in registry.variables:
        src = source_expression(columns.get(variable.name))
        value = cast_expression(variable, src)
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


def cast_findings_sql(registry: Registry, columns: dict[str, str], table: str) -> str:
    """One row per cell that has text but no typed value."""
    parts = []
    for variable in registry.variables:
        column = columns.get(variable.name)
        if column is None or variable.type in ("string", "code"):
            continue
        src = source_expression(column)
        message = f"is not {TYPE_WORDS[variable.type]}"
        parts.append(
            f"select row_number, {_quote(variable.name)} as field, {src} as value, "
            f"{_quote(message)} as problem from {table} "
            f"where {src} is not null and {cast_expression(variable, src)} is null"
        )
    return " union all ".join(parts) if parts else \
        "select cast(null as bigint) as row_number, '' as field, '' as value, '' as problem where false"
