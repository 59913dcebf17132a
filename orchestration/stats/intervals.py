"""Exact intervals for counts, proportions and observed/expected ratios.

Why exact: a site's O/E is published with its interval, and small sites have
small counts, where normal approximations under-cover and can go below zero.
A too-narrow interval is a false accusation against a hospital; the exact
(Garwood, Clopper-Pearson) intervals guarantee at least nominal coverage.

Every function is vectorised: scalars or arrays in, arrays of the same shape
out (0-d arrays become Python floats via ``np.asarray(...)[()]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats


def _alpha(level: float) -> float:
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must be between 0 and 1 (got {level!r})")
    return 1.0 - float(level)


def level_label(level: float) -> str:
    """Column suffix for a confidence level: 0.95 -> "95", 0.998 -> "998".

    The level in percent with the decimal point removed, so that
    ``oe_lower_95`` and ``oe_lower_998`` name the 95% and 99.8% limits.
    """
    text = f"{float(level) * 100:.6f}".rstrip("0").rstrip(".")
    return text.replace(".", "")


def poisson_interval(observed, level: float = 0.95):
    """Exact (Garwood) interval for the mean of a Poisson count.

    Formula::

        lower = chi2.ppf(a/2, 2*O) / 2          (0 when O = 0)
        upper = chi2.ppf(1 - a/2, 2*(O + 1)) / 2

    with a = 1 - level. Reference: Garwood F., Biometrika 1936;28:437; the
    same limits as Ulm K., Am J Epidemiol 1990;131:373.

    Returns ``(lower, upper)`` arrays shaped like ``observed``.
    """
    a = _alpha(level)
    o = np.asarray(observed, dtype=float)
    if np.any(o < 0):
        raise ValueError("observed counts must be non-negative")
    with np.errstate(invalid="ignore"):
        lower = np.where(o > 0, stats.chi2.ppf(a / 2, 2 * np.maximum(o, 1e-300)) / 2, 0.0)
        upper = stats.chi2.ppf(1 - a / 2, 2 * (o + 1)) / 2
    lower = np.where(np.isnan(o), np.nan, lower)
    return lower[()], upper[()]


def oe_interval(observed, expected, level: float = 0.95):
    """Exact interval for an observed/expected ratio, O treated as Poisson(E x ratio).

    Formula (DOMAIN.md, "Risk adjustment")::

        lower = chi2.ppf(a/2, 2*O) / (2*E)          (0 when O = 0)
        upper = chi2.ppf(1 - a/2, 2*(O + 1)) / (2*E)

    E is taken as fixed (the sum of the model's predicted probabilities);
    the variance of E is ignored, as in the standard indirect-standardisation
    interval (Breslow & Day, Statistical Methods in Cancer Research II, 1987,
    ch. 2). ``expected <= 0`` gives NaN limits.
    """
    e = np.asarray(expected, dtype=float)
    lower, upper = poisson_interval(observed, level)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = np.where(e > 0, np.asarray(lower) / e, np.nan)
        upper = np.where(e > 0, np.asarray(upper) / e, np.nan)
    return lower[()], upper[()]


def clopper_pearson_interval(successes, trials, level: float = 0.95):
    """Exact (Clopper-Pearson) interval for a binomial proportion x/n.

    Formula::

        lower = beta.ppf(a/2, x, n - x + 1)        (0 when x = 0)
        upper = beta.ppf(1 - a/2, x + 1, n - x)    (1 when x = n)

    Reference: Clopper C.J., Pearson E.S., Biometrika 1934;26:404. ``trials``
    of 0 gives NaN limits.
    """
    a = _alpha(level)
    x = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    x, n = np.broadcast_arrays(x, n)
    if np.any(x < 0) or np.any(x > n):
        raise ValueError("need 0 <= successes <= trials")
    valid = n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        lower = np.where(x > 0, stats.beta.ppf(a / 2, np.maximum(x, 1e-300), n - x + 1), 0.0)
        upper = np.where(x < n, stats.beta.ppf(1 - a / 2, x + 1, np.maximum(n - x, 1e-300)), 1.0)
    lower = np.where(valid, lower, np.nan)
    upper = np.where(valid, upper, np.nan)
    return lower[()], upper[()]


def oe_table(observed, expected, levels: Sequence[float] = (0.95, 0.998)) -> pd.DataFrame:
    """O/E with exact Poisson limits at each level, one row per input element.

    Columns: ``observed``, ``expected``, ``oe`` (O/E; NaN when E <= 0) and for
    each level ``oe_lower_<label>``, ``oe_upper_<label>`` where the label is
    :func:`level_label` (``oe_lower_95``, ``oe_upper_998``, ...). The index is
    that of ``observed`` when it is a Series, else a RangeIndex.
    """
    index = observed.index if isinstance(observed, pd.Series) else None
    o = np.asarray(observed, dtype=float).ravel()
    e = np.asarray(expected, dtype=float).ravel()
    if o.shape != e.shape:
        raise ValueError("observed and expected must have the same length")
    with np.errstate(divide="ignore", invalid="ignore"):
        oe = np.where(e > 0, o / e, np.nan)
    table = pd.DataFrame({"observed": o, "expected": e, "oe": oe}, index=index)
    for level in levels:
        lower, upper = oe_interval(o, e, level)
        label = level_label(level)
        table[f"oe_lower_{label}"] = np.atleast_1d(lower)
        table[f"oe_upper_{label}"] = np.atleast_1d(upper)
    return table
