"""Reporting periods: names, date spans, deadlines and data-lock dates."""

from __future__ import annotations

from datetime import date, timedelta

from .model import PERIOD_PATTERN, Calendar, PeriodSpan


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def period_bounds(period: str) -> tuple[date, date]:
    """First and last day of a period named like ``2025Q3`` or ``2025M07``."""
    match = PERIOD_PATTERN.match(period)
    if not match:
        raise ValueError(f"period {period!r} must look like 2025Q1 or 2025M01")
    year = int(match.group(1))
    if match.group(2).startswith("Q"):
        first_month, length = (int(match.group(2)[1]) - 1) * 3 + 1, 3
    else:
        first_month, length = int(match.group(2)[1:]), 1
    start = date(year, first_month, 1)
    next_year, next_month = _add_months(year, first_month, length)
    return start, date(next_year, next_month, 1) - timedelta(days=1)


def period_of(day: date, period_length: str) -> str:
    if period_length == "quarter":
        return f"{day.year}Q{(day.month - 1) // 3 + 1}"
    return f"{day.year}M{day.month:02d}"


def periods(calendar: Calendar) -> list[PeriodSpan]:
    """Every reporting period of the calendar, in order."""
    spans: list[PeriodSpan] = []
    start, _ = period_bounds(calendar.first_period)
    while True:
        name = period_of(start, calendar.period_length)
        if name > calendar.last_period:
            return spans
        first, last = period_bounds(name)
        spans.append(PeriodSpan(
            period=name, start=first, end=last,
            deadline=last + timedelta(days=calendar.submission_deadline_days),
            data_lock=last + timedelta(days=calendar.data_lock_days),
        ))
        start = last + timedelta(days=1)
