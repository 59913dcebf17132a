"""Logistic risk models: design matrix, fit, stored coefficients, scoring.

The risk model predicts each case's probability of the event from its risk
factors (DOMAIN.md, "Risk adjustment"). Three decisions are made here and
must stay stable between fitting and scoring, so they are stored with the
coefficients rather than re-derived:

* **Encoding of predictors** (:func:`design_matrix`)

  - ``numeric``: one linear term named after the column.
  - ``boolean``: one 0/1 term named after the column.
  - ``categorical`` (nominal) and ``ordinal``: one 0/1 dummy per level other
    than the reference, named ``variable[level]`` (``asa_class[3]``). The
    default reference is the most frequent level (after collapsing), which
    gives the most precise contrasts; a spec may name another.

* **Sparse-level collapsing.** A level is *sparse* when it has fewer than
  ``min_level_cases`` cases (default 50) or, when the outcome is given, fewer
  than ``min_level_events`` (default 5) events *or* non-events (either one
  makes the level's coefficient unstable and, at zero, inestimable:
  quasi-complete separation). Sparse levels are merged until none is left:

  - ordinal variables: the sparsest level (fewest cases; first on a tie) is
    merged into its *adjacent* level, choosing the neighbour with fewer cases
    (the lower one on a tie), so that merged groups stay clinically
    contiguous (ASA 4 and 5 become ``asa_class[4+5]``) and no sparse level is
    swallowed by a large one when a small neighbour exists. Repeat.
  - nominal variables, and the "(missing)" level of ordinals (it has no
    place in the order): a sparse level is merged into the reference level,
    i.e. its risk is not estimated separately (Harrell, Regression Modeling
    Strategies, 2nd ed. 2015, sec. 4.7: pool infrequent categories rather
    than estimate unstable contrasts).

  A merged group is labelled by its levels joined with ``+``. The map from
  every original level to its group is stored. A level declared in the spec
  (``levels``) but absent from the training data is mapped too: for an
  ordinal, to the group of its nearest present level in the declared order
  (the lower on a tie: an unseen ASA 5 scores as ASA 4); for a nominal
  variable, to the reference.

* **Missing predictors** (never drop a case). For numeric and boolean
  predictors: the value is imputed with the training median (for a boolean,
  the majority value; 0.5 on an exact tie) and a 0/1 missing indicator term
  ``variable__missing`` is added, so the model estimates the risk of
  "not measured" separately (NSQIP's labs are missing not at random: an
  albumin is drawn when the patient is sick). The indicator follows the
  sparse rule above: with fewer than ``min_level_cases`` missing cases (or
  fewer than ``min_level_events`` events/non-events among them) no indicator
  is estimated and the missing values are simply imputed with the median.
  For categorical predictors a missing value is the level ``(missing)``,
  subject to the same collapsing rule. At scoring time a missing value of a
  variable with no indicator is imputed with the stored median, and a level
  not seen in training counts as the reference (``unknown="reference"``) or
  raises (``unknown="error"``).

* **Fit** (:func:`fit_logistic`): maximum likelihood by Newton-Raphson
  (equivalently IRLS) with step halving, in numpy, so the pipeline does not
  depend on statsmodels at run time. If the plain maximum likelihood does not
  exist or cannot be computed (the iterations do not converge, as under
  complete or quasi-complete separation, or the information matrix is
  singular, as with collinear terms), the model is refitted with a tiny ridge
  penalty ``ridge/2 * sum(beta_k^2)`` on every non-intercept coefficient
  (default ``ridge = 1e-3``): diverging coefficients become large but finite,
  predicted probabilities approach the limiting maximum-likelihood values,
  and well-identified coefficients move by a relative O(ridge / information)
  (about 1e-6 for a registry-sized model). The fit is then marked
  ``separation=True`` with the ``penalty`` used, and a warning is issued; its
  standard errors for separated terms are meaningless. Reference: Le Cessie S.,
  van Houwelingen J.C., Appl Stat 1992;41:191 (ridge logistic regression);
  Albert A., Anderson J.A., Biometrika 1984;71:1 (separation).

* **Storage** (:func:`coefficients_frame`, :func:`score`): one long table with
  a row per term (estimate, std_error) plus the encoding metadata needed to
  score (imputation values, level maps as JSON, reference rows with estimate
  0). :func:`score` uses that table alone.
"""

from __future__ import annotations

import ctypes
import functools
import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.linalg.blas import dsyrk
from scipy.special import expit

INTERCEPT = "intercept"
MISSING_LEVEL = "(missing)"
MISSING_SUFFIX = "__missing"
KINDS = ("numeric", "boolean", "categorical", "ordinal")

__all__ = [
    "LogisticFit",
    "Encoding",
    "VariableEncoding",
    "fit_logistic",
    "design_matrix",
    "coefficients_frame",
    "score",
    "linear_predictor",
]


# --------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticFit:
    """Result of :func:`fit_logistic`.

    ``coefficients`` and ``std_errors`` are Series indexed by term;
    ``covariance`` is the inverse of the (penalised) observed information
    at the estimate. ``converged`` says the Newton iterations met the
    tolerance; ``separation`` says the ridge fallback was used, with
    ``penalty`` the ridge constant (0.0 for a plain maximum-likelihood fit).
    ``log_likelihood`` is the unpenalised Bernoulli log-likelihood.
    """

    coefficients: pd.Series
    std_errors: pd.Series
    covariance: pd.DataFrame
    converged: bool
    iterations: int
    log_likelihood: float
    penalty: float
    separation: bool
    n_obs: int
    n_events: int

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.coefficients.index)

    def linear_predictor(self, X, offset=None) -> np.ndarray:
        """eta = offset + X beta for a design matrix with the fit's columns.

        The ``intercept`` column is added when ``X`` lacks it.
        """
        frame = _as_frame(X)
        if INTERCEPT in self.terms and INTERCEPT not in frame.columns:
            frame = frame.assign(**{INTERCEPT: 1.0})
        if list(frame.columns) == list(self.terms):
            Xm = frame.to_numpy(dtype=float)   # the fit's own design: no column selection, no copy
        else:
            Xm = frame[list(self.terms)].to_numpy(dtype=float)
        eta = Xm @ self.coefficients.to_numpy()
        return eta if offset is None else eta + np.asarray(offset, dtype=float)

    def predict(self, X, offset=None) -> np.ndarray:
        """Predicted probabilities expit(eta)."""
        return expit(self.linear_predictor(X, offset))


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])])


def _loglik(eta: np.ndarray, y: np.ndarray) -> float:
    # sum y*eta - log(1 + e^eta), stable for large |eta|
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)))


_BLOCK_ROWS = 32768


@functools.cache
def _openblas_thread_setters() -> tuple:
    """``openblas_set_num_threads_local`` of every OpenBLAS loaded in this process (numpy's, scipy's).

    Found through /proc/self/maps (Linux); empty elsewhere or on older
    OpenBLAS builds, and then nothing is changed.
    """
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]})
    except OSError:
        return ()
    setters = []
    for path in paths:
        try:
            setter = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.argtypes, setter.restype = [ctypes.c_int], ctypes.c_int
        setters.append(setter)
    return tuple(setters)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run BLAS on the calling thread alone while fitting.

    The products of a fit are small per call (k x k from blocks of rows), so
    a second BLAS thread gains little, and on a busy machine (the pipeline
    shares its cores with DuckDB and other jobs) OpenBLAS threads waiting for
    each other made one information matrix take seconds instead of 0.1 s.
    The setting is per thread and restored on exit.
    """
    setters = _openblas_thread_setters()
    previous = [setter(1) for setter in setters]
    try:
        yield
    finally:
        for setter, count in zip(setters, previous):
            setter(count)


def _information(Xm: np.ndarray, w: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """X'WX + diag(penalty), W = diag(w), accumulated over blocks of rows.

    Each block is scaled by sqrt(w) and added as a symmetric rank-k update
    (BLAS ``dsyrk``), so no n x k temporary is made per iteration and only
    one triangle is computed.
    """
    n, k = Xm.shape
    root = np.sqrt(w)
    upper = np.zeros((k, k), order="F")
    for start in range(0, n, _BLOCK_ROWS):
        stop = min(n, start + _BLOCK_ROWS)
        scaled = Xm[start:stop] * root[start:stop, None]
        upper = dsyrk(1.0, scaled, beta=1.0, c=upper, trans=1, lower=0, overwrite_c=1)
    return np.triu(upper) + np.triu(upper, 1).T + np.diag(penalty)


def _newton(Xm, y, offset, penalty, beta, max_iter, tol):
    """Penalised Newton-Raphson with step halving. Returns (beta, H, converged, iters).

    Converged when the full Newton step is below ``tol`` in every
    coefficient: the step is taken and the information already computed at
    the previous point is returned (it differs from the one at the estimate
    by O(tol)), so the last iteration costs no second information matrix.
    """
    eta = offset + Xm @ beta
    objective = _loglik(eta, y) - 0.5 * np.sum(penalty * beta**2)
    H = None
    for iteration in range(1, max_iter + 1):
        p = expit(eta)
        grad = Xm.T @ (y - p) - penalty * beta
        H = _information(Xm, p * (1.0 - p), penalty)
        if not np.all(np.isfinite(H)) or np.linalg.cond(H) > 1e13:
            return beta, H, False, iteration
        step = np.linalg.solve(H, grad)
        if np.max(np.abs(step)) < tol:
            return beta + step, H, True, iteration
        t = 1.0
        while True:
            candidate = beta + t * step
            cand_eta = offset + Xm @ candidate
            cand_obj = _loglik(cand_eta, y) - 0.5 * np.sum(penalty * candidate**2)
            if cand_obj >= objective - 1e-9 * (1.0 + abs(objective)) or t < 1e-8:
                break
            t /= 2.0
        beta, eta, objective = candidate, cand_eta, cand_obj
        if np.max(np.abs(t * step)) < tol:
            p = expit(eta)
            return beta, _information(Xm, p * (1.0 - p), penalty), True, iteration
    return beta, H, False, max_iter


def fit_logistic(
    X,
    y,
    *,
    offset=None,
    intercept: bool = True,
    max_iter: int = 100,
    tol: float = 1e-9,
    ridge: float = 1e-3,
) -> LogisticFit:
    """Fit logit P(y=1) = offset + X beta by maximum likelihood.

    Model: y_i ~ Bernoulli(p_i), logit(p_i) = offset_i + x_i' beta. Newton
    step beta <- beta + (X'WX)^-1 X'(y - p), W = diag(p(1-p)), halved until
    the log-likelihood does not decrease; converged when every
    |step| < ``tol``. Standard errors are sqrt(diag((X'WX)^-1)) at the
    estimate (McCullagh & Nelder, Generalized Linear Models, 2nd ed., 1989,
    ch. 4). This is the same estimator as statsmodels ``Logit``.

    ``intercept=True`` prepends a column named ``intercept`` unless ``X``
    already has one. If the plain fit fails (non-convergence: separation;
    singular information: collinearity), the model is refitted with a ridge
    penalty ``ridge/2 * sum(beta_k^2)`` on the non-intercept coefficients and
    flagged ``separation=True`` (see the module docstring).
    """
    frame = _as_frame(X)
    names = [str(c) for c in frame.columns]
    # The design is used as given (a frame with one float block is a view,
    # not a copy); only a missing intercept column costs a copy.
    Xm = frame.to_numpy(dtype=float)
    if intercept and INTERCEPT not in frame.columns:
        with_intercept = np.empty((Xm.shape[0], Xm.shape[1] + 1), order="F")
        with_intercept[:, 0] = 1.0
        with_intercept[:, 1:] = Xm
        Xm, names = with_intercept, [INTERCEPT] + names
    yv = np.asarray(y, dtype=float).ravel()
    if yv.shape[0] != Xm.shape[0]:
        raise ValueError("X and y have different numbers of rows")
    if not np.all((yv == 0.0) | (yv == 1.0)):
        raise ValueError("y must be 0/1 with no missing values")
    if not np.isfinite(Xm).all():
        raise ValueError("X has missing or infinite values; encode with design_matrix first")
    off = np.zeros_like(yv) if offset is None else np.asarray(offset, dtype=float).ravel()
    k = Xm.shape[1]

    beta0 = np.zeros(k)
    if INTERCEPT in names and 0 < yv.mean() < 1 and offset is None:
        beta0[names.index(INTERCEPT)] = np.log(yv.mean() / (1 - yv.mean()))
    no_penalty = np.zeros(k)
    with _one_blas_thread():
        beta, H, converged, iterations = _newton(Xm, yv, off, no_penalty, beta0, max_iter, tol)
    penalty_used = 0.0
    separation = False
    if not converged:
        separation = True
        penalty_used = float(ridge)
        penalty = np.full(k, penalty_used)
        if INTERCEPT in names:
            penalty[names.index(INTERCEPT)] = 0.0
        with _one_blas_thread():
            beta, H, converged, more = _newton(Xm, yv, off, penalty, np.zeros(k), max_iter, tol)
        iterations += more
        warnings.warn(
            "fit_logistic: maximum likelihood did not converge (separation or collinear "
            f"terms); refitted with ridge penalty {penalty_used:g}",
            RuntimeWarning,
            stacklevel=2,
        )
    try:
        cov = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        cov = np.full((k, k), np.nan)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    eta = off + Xm @ beta
    return LogisticFit(
        coefficients=pd.Series(beta, index=names, name="estimate"),
        std_errors=pd.Series(se, index=names, name="std_error"),
        covariance=pd.DataFrame(cov, index=names, columns=names),
        converged=bool(converged),
        iterations=int(iterations),
        log_likelihood=_loglik(eta, yv),
        penalty=penalty_used,
        separation=separation,
        n_obs=int(yv.size),
        n_events=int(yv.sum()),
    )


# --------------------------------------------------------------------------
# Value conversion shared by design_matrix and score
# --------------------------------------------------------------------------

_TRUE = {"1", "true", "t", "y", "yes"}
_FALSE = {"0", "false", "f", "n", "no"}


def _is_missing(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _bool_value(v) -> float:
    if _is_missing(v):
        return np.nan
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        if float(v) in (0.0, 1.0):
            return float(v)
    elif isinstance(v, str):
        text = v.strip().lower()
        if text in _TRUE:
            return 1.0
        if text in _FALSE:
            return 0.0
    raise ValueError(f"not a boolean value: {v!r}")


def _values(series: pd.Series, kind: str) -> np.ndarray:
    """Numeric view of a numeric or boolean column, NaN for missing.

    Booleans are converted per distinct value (``pd.factorize``), not per
    row: a million cases have only a handful of distinct spellings.
    """
    if kind == "boolean":
        if series.dtype == np.bool_:
            return series.to_numpy(dtype=float)
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        mapped = np.array([_bool_value(v) for v in uniques] + [np.nan], dtype=float)
        return mapped[codes]
    return pd.to_numeric(series, errors="raise").to_numpy(dtype=float, na_value=np.nan)


def _level_key(v) -> str:
    """Stable text key of a category: 3, 3.0 and "3" are all "3"."""
    if _is_missing(v):
        return MISSING_LEVEL
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _level_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Level keys of a column as ``(codes, keys)``: row i has level ``keys[codes[i]]``.

    Keys are computed per distinct value (``pd.factorize``), never per row,
    and values with the same key (3, 3.0 and "3") share a code. ``keys``
    holds only the levels present, in order of first appearance, with
    ``(missing)`` when any value is missing.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    raw = [_level_key(v) for v in uniques]
    if (codes < 0).any():
        raw.append(MISSING_LEVEL)   # code -1 indexes this last entry below
    position: dict[str, int] = {}
    lookup = np.array([position.setdefault(k, len(position)) for k in raw], dtype=np.intp)
    return (lookup[codes] if len(lookup) else codes.astype(np.intp)), list(position)


def _level_keys(series: pd.Series) -> np.ndarray:
    """Level key of every row (an object array); see :func:`_level_codes`."""
    codes, keys = _level_codes(series)
    return np.array(keys + [MISSING_LEVEL], dtype=object)[codes]


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableEncoding:
    """How one source column becomes terms.

    ``impute_value``/``missing_indicator`` apply to numeric and boolean
    variables; ``level_map`` (original level key -> group label),
    ``reference`` and ``groups`` (non-reference group labels, in term order)
    to categorical and ordinal ones.
    """

    variable: str
    kind: str
    impute_value: float | None = None
    missing_indicator: bool = False
    level_map: dict[str, str] = field(default_factory=dict)
    reference: str | None = None
    groups: tuple[str, ...] = ()

    @property
    def terms(self) -> list[str]:
        if self.kind in ("numeric", "boolean"):
            out = [self.variable]
            if self.missing_indicator:
                out.append(self.variable + MISSING_SUFFIX)
            return out
        return [f"{self.variable}[{g}]" for g in self.groups]

    def group_levels(self, group: str) -> list[str]:
        """Original level keys that map to a group label."""
        return [k for k, g in self.level_map.items() if g == group]


@dataclass(frozen=True)
class Encoding:
    """The stored encoding of a design: apply it to new cases with :meth:`transform`."""

    variables: tuple[VariableEncoding, ...]
    intercept: bool = True

    @property
    def terms(self) -> list[str]:
        out = [INTERCEPT] if self.intercept else []
        for v in self.variables:
            out.extend(v.terms)
        return out

    @property
    def collapsed(self) -> dict[str, dict[str, str]]:
        """For each categorical variable, the original levels that were merged: level -> group."""
        return {
            v.variable: {k: g for k, g in v.level_map.items() if k != g}
            for v in self.variables
            if v.kind in ("categorical", "ordinal")
        }

    def transform(self, df: pd.DataFrame, *, unknown: str = "reference") -> pd.DataFrame:
        """Design matrix of ``df`` under this encoding (no re-estimation of anything).

        The frame holds one float64 column-major block (written in place, one
        column at a time), so :func:`fit_logistic` uses it without a copy.
        """
        terms = self.terms
        out = np.empty((len(df), len(terms)), order="F")
        j = 0
        if self.intercept:
            out[:, 0] = 1.0
            j = 1
        for v in self.variables:
            if v.kind in ("numeric", "boolean"):
                x = _values(df[v.variable], v.kind)
                miss = np.isnan(x)
                np.copyto(out[:, j], x)
                out[miss, j] = v.impute_value
                j += 1
                if v.missing_indicator:
                    out[:, j] = miss
                    j += 1
            else:
                codes, keys = _level_codes(df[v.variable])
                unseen = sorted(set(keys) - set(v.level_map))
                if unseen and unknown == "error":
                    raise ValueError(f"{v.variable}: levels not seen in training: {unseen}")
                # level key -> index of its group among v.groups (-1: the reference, or unseen)
                group_index = {g: i for i, g in enumerate(v.groups)}
                lookup = np.array([group_index.get(v.level_map.get(k, v.reference), -1) for k in keys],
                                  dtype=np.intp)
                row_group = lookup[codes] if len(lookup) else codes
                for i in range(len(v.groups)):
                    np.equal(row_group, i, out=out[:, j])
                    j += 1
        return pd.DataFrame(out, columns=terms, index=df.index, copy=False)


def _normalise_spec(df: pd.DataFrame, spec) -> list[tuple[str, dict]]:
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        items = [(name, "auto") for name in spec]
    else:
        raise TypeError("spec must map column -> kind (or options), or list columns")
    out = []
    for name, options in items:
        opts = {"kind": options} if isinstance(options, str) else dict(options)
        kind = opts.get("kind", "auto")
        if kind == "auto":
            s = df[name]
            if pd.api.types.is_bool_dtype(s):
                kind = "boolean"
            elif pd.api.types.is_numeric_dtype(s):
                kind = "numeric"
            else:
                kind = "categorical"
        if kind not in KINDS:
            raise ValueError(f"{name}: kind must be one of {KINDS} (got {kind!r})")
        opts["kind"] = kind
        out.append((name, opts))
    return out


def _sparse(cases: int, events: int | None, min_cases: int, min_events: int) -> bool:
    if cases < min_cases:
        return True
    return events is not None and min(events, cases - events) < min_events


def _natural_order(keys: list[str]) -> list[str]:
    try:
        return sorted(keys, key=float)
    except ValueError:
        return sorted(keys)


def _collapse_levels(name, opts, codes, keys, y, min_cases, min_events) -> VariableEncoding:
    present = list(keys)
    counts = np.bincount(codes, minlength=len(keys))
    cases = {k: int(counts[i]) for i, k in enumerate(keys)}
    if y is not None:
        sums = np.bincount(codes, weights=y, minlength=len(keys))
        events = {k: int(round(sums[i])) for i, k in enumerate(keys)}
    else:
        events = None
    kind = opts["kind"]

    def count(group):
        c = sum(cases.get(k, 0) for k in group)
        e = None if events is None else sum(events.get(k, 0) for k in group)
        return c, e

    def is_sparse(group):
        c, e = count(group)
        return _sparse(c, e, min_cases, min_events)

    declared = [_level_key(level) for level in opts.get("levels", [])]
    groups: list[list[str]]
    if kind == "ordinal":
        ordered = [k for k in declared if k in cases] if declared else []
        ordered += _natural_order([k for k in present if k not in ordered and k != MISSING_LEVEL])
        groups = [[k] for k in ordered]
        while len(groups) > 1:
            sparse = [i for i, g in enumerate(groups) if is_sparse(g)]
            if not sparse:
                break
            i = min(sparse, key=lambda j: (count(groups[j])[0], j))
            neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(groups)]
            j = min(neighbours, key=lambda m: (count(groups[m])[0], m))
            lo, hi = min(i, j), max(i, j)
            groups[lo : hi + 1] = [groups[lo] + groups[hi]]
    else:
        groups = [[k] for k in sorted(k for k in present if k != MISSING_LEVEL)]
    all_groups = groups + ([[MISSING_LEVEL]] if MISSING_LEVEL in cases else [])
    # Reference: the group holding the declared reference level, else the
    # largest non-missing group (first in order on a tie).
    ref_level = opts.get("reference")
    if ref_level is not None:
        ref_key = _level_key(ref_level)
        matches = [g for g in all_groups if ref_key in g]
        if not matches:
            raise ValueError(f"{name}: reference level {ref_level!r} not in the data")
        ref_group = matches[0]
    else:
        candidates = [g for g in all_groups if g != [MISSING_LEVEL]] or all_groups
        ref_group = max(candidates, key=lambda g: (count(g)[0], -candidates.index(g)))

    # Nominal levels (and an ordinal's missing level) that are sparse join the
    # reference; the reference keeps its own label.
    label = "+".join
    ref_label = label(ref_group)
    ref_levels = list(ref_group)
    kept = []
    for g in all_groups:
        if g is ref_group:
            continue
        if (kind != "ordinal" or g == [MISSING_LEVEL]) and is_sparse(g):
            ref_levels += g
            continue
        kept.append(g)
    level_map = {k: ref_label for k in ref_levels}
    for g in kept:
        for k in g:
            level_map[k] = label(g)
    # Declared levels absent from the data: an ordinal level scores as the
    # group of its nearest present level in the declared order (the lower one
    # on a tie); a nominal level scores as the reference.
    present_order = [i for i, k in enumerate(declared) if k in level_map]
    for i, k in enumerate(declared):
        if k in level_map:
            continue
        if kind == "ordinal" and present_order:
            nearest = min(present_order, key=lambda m: (abs(m - i), m))
            level_map[k] = level_map[declared[nearest]]
        else:
            level_map[k] = ref_label
    return VariableEncoding(
        variable=name,
        kind=kind,
        level_map=level_map,
        reference=ref_label,
        groups=tuple(label(g) for g in kept),
    )


def design_matrix(
    df: pd.DataFrame,
    spec,
    *,
    outcome=None,
    min_level_cases: int = 50,
    min_level_events: int = 5,
    intercept: bool = True,
) -> tuple[pd.DataFrame, Encoding]:
    """Encode a case frame as a design matrix; return ``(X, encoding)``.

    ``spec`` maps each predictor column to its kind, ``"numeric"``,
    ``"boolean"``, ``"categorical"``, ``"ordinal"`` or ``"auto"`` (from the
    dtype), or to a dict ``{"kind": ..., "levels": [...order...],
    "reference": level}``; a plain list of columns means ``"auto"`` for each.
    ``outcome`` (a column name of ``df`` or an array of 0/1) lets the
    collapsing rule count events; without it only case counts are used.

    Rules (sparse-level collapsing, missing indicator plus median
    imputation, reference levels) are in the module docstring. No case is
    ever dropped: ``X`` has one row per row of ``df``, same index. Apply the
    returned :class:`Encoding` to new cases with ``encoding.transform(df)``.
    """
    y = None
    if outcome is not None:
        y = np.asarray(df[outcome] if isinstance(outcome, str) else outcome, dtype=float)
        if y.shape[0] != len(df):
            raise ValueError("outcome has a different length from df")
    variables = []
    for name, opts in _normalise_spec(df, spec):
        kind = opts["kind"]
        if kind in ("numeric", "boolean"):
            x = _values(df[name], kind)
            miss = np.isnan(x)
            if miss.all():
                raise ValueError(f"{name}: missing for every case; cannot impute")
            median = float(np.median(x[~miss]))
            n_miss = int(miss.sum())
            e_miss = None if y is None else int(y[miss].sum())
            indicator = n_miss > 0 and not _sparse(n_miss, e_miss, min_level_cases, min_level_events)
            variables.append(VariableEncoding(name, kind, impute_value=median, missing_indicator=indicator))
        else:
            codes, keys = _level_codes(df[name])
            variables.append(_collapse_levels(name, opts, codes, keys, y, min_level_cases, min_level_events))
    encoding = Encoding(tuple(variables), intercept=intercept)
    return encoding.transform(df), encoding


# --------------------------------------------------------------------------
# Storage and scoring
# --------------------------------------------------------------------------

COEFFICIENT_COLUMNS = ["term", "estimate", "std_error", "variable", "kind", "level", "levels", "impute_value"]


def coefficients_frame(fit: LogisticFit, encoding: Encoding) -> pd.DataFrame:
    """Long table of a fitted model that :func:`score` can use with no other state.

    One row per term, columns:

    - ``term``: ``intercept``, ``age_years``, ``albumin__missing``,
      ``asa_class[3]``, ...
    - ``estimate``, ``std_error``: from the fit (log-odds scale).
    - ``variable``: source column (empty for the intercept).
    - ``kind``: ``intercept`` | ``numeric`` | ``boolean`` |
      ``missing_indicator`` | ``level`` | ``reference``. A ``reference`` row
      per categorical variable has estimate 0 and records the reference
      level, so a stored model shows what every contrast is against.
    - ``level``: group label of ``level``/``reference`` rows.
    - ``levels``: JSON list of the original level keys mapped to that group
      (collapsed levels appear here).
    - ``impute_value``: the median imputed for missing values of a numeric or
      boolean variable.
    """
    rows = []
    coef, se = fit.coefficients, fit.std_errors

    def add(term, variable, kind, level=None, levels=None, impute=np.nan, estimate=None, std_error=None):
        rows.append(
            {
                "term": term,
                "estimate": float(coef[term]) if estimate is None else estimate,
                "std_error": float(se[term]) if std_error is None else std_error,
                "variable": variable,
                "kind": kind,
                "level": level,
                "levels": None if levels is None else json.dumps(levels),
                "impute_value": impute,
            }
        )

    if encoding.intercept:
        add(INTERCEPT, None, "intercept")
    for v in encoding.variables:
        if v.kind in ("numeric", "boolean"):
            add(v.variable, v.variable, v.kind, impute=v.impute_value)
            if v.missing_indicator:
                add(v.variable + MISSING_SUFFIX, v.variable, "missing_indicator")
        else:
            add(
                f"{v.variable}[{v.reference}]", v.variable, "reference", level=v.reference,
                levels=v.group_levels(v.reference), estimate=0.0, std_error=np.nan,
            )
            for g in v.groups:
                add(f"{v.variable}[{g}]", v.variable, "level", level=g, levels=v.group_levels(g))
    missing_terms = set(fit.terms) - {r["term"] for r in rows}
    if missing_terms:
        raise ValueError(f"fit has terms the encoding does not describe: {sorted(missing_terms)}")
    return pd.DataFrame(rows, columns=COEFFICIENT_COLUMNS)


def linear_predictor(df: pd.DataFrame, coefficients: pd.DataFrame, *, unknown: str = "reference") -> pd.Series:
    """Log-odds eta_i for each case of ``df`` from a stored coefficient table alone.

    eta = intercept + sum over numeric/boolean terms of beta * (value, or the
    stored impute_value when missing) + beta_missing * [value missing] +
    the estimate of the group that each categorical value maps to (0 for the
    reference, and for unseen levels when ``unknown="reference"``).
    """
    table = coefficients
    eta = np.zeros(len(df))
    for row in table.itertuples(index=False):
        if row.kind == "intercept":
            eta = eta + row.estimate
        elif row.kind in ("numeric", "boolean"):
            x = _values(df[row.variable], row.kind)
            eta = eta + row.estimate * np.where(np.isnan(x), row.impute_value, x)
        elif row.kind == "missing_indicator":
            kind = table.loc[table["term"] == row.variable, "kind"].iloc[0]
            x = _values(df[row.variable], kind)
            eta = eta + row.estimate * np.isnan(x)
    for variable, rows in table[table["kind"].isin(["level", "reference"])].groupby("variable", sort=False):
        mapping = {}
        for row in rows.itertuples(index=False):
            for key in json.loads(row.levels):
                mapping[key] = float(row.estimate)
        codes, keys = _level_codes(df[variable])
        unseen = sorted(set(keys) - set(mapping))
        if unseen and unknown == "error":
            raise ValueError(f"{variable}: levels not in the stored model: {unseen}")
        if keys:
            eta = eta + np.array([mapping.get(k, 0.0) for k in keys], dtype=float)[codes]
    return pd.Series(eta, index=df.index, name="eta")


def score(df: pd.DataFrame, coefficients: pd.DataFrame, *, unknown: str = "reference") -> pd.Series:
    """Predicted probability p_i = expit(eta_i) per case, from the stored table alone.

    See :func:`linear_predictor` for eta. The Series has ``df``'s index and
    is named ``p``.
    """
    eta = linear_predictor(df, coefficients, unknown=unknown)
    return pd.Series(expit(eta.to_numpy()), index=df.index, name="p")
