"""Reliability adjustment: shrink small sites' results toward the collaborative.

A site with 30 cases and 2 deaths looks terrible by chance. Following Dimick,
Staiger & Birkmeyer (Health Serv Res 2010;45:1614) the site's result is
shrunk toward the collaborative average in proportion to how unreliable it
is, using the empirical-Bayes estimate of a hierarchical logistic model with
a random site intercept.

**Model** (group level; needs only O_j, E_j, n_j per site j)::

    O_j ~ Binomial(n_j, pi_j)
    logit(pi_j) = logit(pbar_j) + mu + u_j,      u_j ~ N(0, sigma^2)
    pbar_j = E_j / n_j   (the site's expected rate from the risk model)

This is the random-intercept logistic model with the risk model's
prediction as offset, with one approximation: within a site every case is
given the site's average predicted risk pbar_j. The exact case-level model
has offsets logit(p_i); the two coincide when case mix within a site is
homogeneous. When it is not, sum p_i (1 - p_i) < n pbar (1 - pbar), so the
homogeneous version understates how much O_j responds to u_j and shrinks
site effects too much (by about the ratio of the two, e.g. 10% for widely
varying risks): an error toward the collaborative average, which can
hide a true outlier but never creates one. To remove that
bias pass ``variance`` V_j = sum of p_i (1 - p_i) over the site's cases
(cheap to compute alongside E_j): the site's binomial is then replaced by
the *effective binomial* with q_j = 1 - V_j / E_j and m_j = E_j / q_j,
which has the same mean (m q = E) and the same variance and sensitivity to
u_j at u_j = 0 (m q (1 - q) = V) as the case-level Poisson-binomial; the
tests show it reproduces the case-level fit. ``mu`` absorbs any
collaborative-wide drift from the risk model (about 0 when the model was
fitted on the same pooled data).

**Estimation**: (mu, sigma) by maximum marginal likelihood; each site's
integral over u_j by adaptive Gauss-Hermite quadrature (Pinheiro & Bates,
J Comput Graph Stat 1995;4:12; Q = 30 nodes centred at the mode of the
site's integrand and scaled by its curvature); maximised by Nelder-Mead over
(mu, s) with sigma = |s| (the likelihood depends on sigma^2 only, so this is
smooth and allows sigma = 0). Maximum likelihood, not REML: the variance is
slightly underestimated when there are few sites.

**Empirical-Bayes site estimates** at the estimates of (mu, sigma): the
posterior of u_j given O_j is computed on a fine grid (2,001 points over
+/- 12 posterior SDs about the mode; trapezoid rule). Reported:

* ``site_effect``: posterior mean of u_j (log-odds), ``site_effect_sd``;
* ``shrunken_oe``: posterior mean of expit(logit pbar_j + mu + u_j) / pbar_j,
  i.e. the site's predicted rate with its own effect over its expected rate
  (the NSQIP/CMS "predicted over expected", shrunk toward the collaborative);
* ``shrunken_oe_lower_<label>`` / ``_upper_<label>``: equal-tailed posterior
  interval (the transform is monotone in u_j, so these are its quantiles).
  Empirical Bayes: the uncertainty of (mu, sigma) is not propagated, so with
  few sites the interval is somewhat too narrow; with sigma estimated as 0
  every site is shrunk fully and the interval has zero width.

**Reliability** (Dimick 2010)::

    R_j = sigma^2 / (sigma^2 + v_j),   v_j = 1 / (n_j pi0_j (1 - pi0_j))

with pi0_j = expit(logit pbar_j + mu) (with ``variance``: q_j for pbar_j and
m_j for n_j): the between-site (signal) variance
over signal plus the within-site (noise) variance of a site's log-odds. It
is the domain's var_between / (var_between + var_within / n_j) with
var_within = 1 / (pi0 (1 - pi0)) on the log-odds scale, and by the delta
method the same number on the rate scale (signal (pi0(1-pi0))^2 sigma^2,
noise pi0(1-pi0)/n_j). The **reliability-adjusted rate** is Dimick's linear
form ``R_j x risk-adjusted rate + (1 - R_j) x overall rate``, where the
risk-adjusted rate is (O_j/E_j) x overall rate and overall rate = sum O /
sum n; it approximates ``shrunken_oe x overall rate``. A reliability of 0.4
is usually called acceptable, 0.7 high.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import expit, gammaln, logit, logsumexp

from .intervals import level_label

_GRID = np.linspace(-12.0, 12.0, 2001)


def reliability(between_var, within_var, n):
    """R = var_between / (var_between + var_within / n) (Dimick et al. 2010).

    Vectorised. 0 when var_between is 0; NaN when n <= 0.
    """
    vb = np.asarray(between_var, dtype=float)
    vw = np.asarray(within_var, dtype=float)
    nn = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(nn > 0, vb / (vb + vw / nn), np.nan)
        r = np.where((nn > 0) & (vb == 0), 0.0, r)
    return r[()]


def _log_kernel(o, m, a):
    """o a - m log(1 + e^a): the binomial log-likelihood in a = logit(pi) without its constant."""
    return o * a - m * np.logaddexp(0.0, a)


def _log_choose(o, n):
    return gammaln(n + 1) - gammaln(o + 1) - gammaln(n - o + 1)


def _effective(observed, expected, n, variance=None):
    """Arrays (o, e, n, m, q): the effective binomial size m and rate q of each site.

    Without ``variance``: m = n, q = E/n. With V = sum p_i (1 - p_i):
    q = 1 - V/E, m = E/q, so that m q = E and m q (1 - q) = V (V is capped
    at its homogeneous maximum E (1 - E/n)).
    """
    o, e, nn = (np.asarray(x, dtype=float) for x in (observed, expected, n))
    if np.any(nn <= 0) or np.any(o < 0) or np.any(o > nn) or np.any(e <= 0) or np.any(e >= nn):
        raise ValueError("need n > 0, 0 <= observed <= n and 0 < expected < n for every site")
    if variance is None:
        return o, e, nn, nn, e / nn
    v = np.asarray(variance, dtype=float)
    if np.any(v <= 0):
        raise ValueError("variance (sum of p(1 - p)) must be positive")
    v = np.minimum(v, e * (1 - e / nn))
    q = 1 - v / e
    return o, e, nn, e / q, q


def _modes(a, o, n, sigma2, iterations=100):
    """Mode and curvature SD of u -> o (a+u) - n log(1 + e^(a+u)) + log N(u; 0, sigma2), per site."""
    u = np.zeros_like(a)
    for _ in range(iterations):
        pi = expit(a + u)
        grad = o - n * pi - u / sigma2
        hess = n * pi * (1 - pi) + 1.0 / sigma2
        step = np.clip(grad / hess, -2.0, 2.0)
        u = u + step
        if np.max(np.abs(step)) < 1e-12:
            break
    pi = expit(a + u)
    return u, 1.0 / np.sqrt(n * pi * (1 - pi) + 1.0 / sigma2)


_LOG_SQRT_2PI = np.log(np.sqrt(2 * np.pi))


def _log_density(u, a, o, m, sigma):
    # log N(u; 0, sigma^2) written out as scipy.stats.norm.logpdf computes it
    # (the optimiser calls this thousands of times; scipy's checks dominated)
    z = u / sigma
    return _log_kernel(o, m, a + u) + (-z**2 / 2.0 - _LOG_SQRT_2PI - np.log(sigma))


@cache
def _hermgauss(points: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights, computed once per order (the optimiser asks thousands of times)."""
    return np.polynomial.hermite.hermgauss(points)


def marginal_log_likelihood(mu, sigma, observed, expected, n, variance=None, quad_points: int = 30) -> float:
    """log L(mu, sigma) = sum_j log integral Binom(O_j | n_j, expit(logit pbar_j + mu + u)) N(u; 0, sigma^2) du.

    Adaptive Gauss-Hermite quadrature with ``quad_points`` nodes; sigma = 0
    gives the plain binomial log-likelihood. With ``variance`` the effective
    binomial (m_j, q_j) replaces (n_j, pbar_j) and the binomial constant
    stays log C(n_j, O_j).
    """
    o, _, nn, m, q = _effective(observed, expected, n, variance)
    a = logit(q) + mu
    const = _log_choose(o, nn)
    sigma = abs(float(sigma))
    if sigma < 1e-8:
        return float(np.sum(const + _log_kernel(o, m, a)))
    x, w = _hermgauss(quad_points)
    mode, sd = _modes(a, o, m, sigma**2)
    nodes = mode[:, None] + np.sqrt(2.0) * sd[:, None] * x[None, :]
    logf = _log_density(nodes, a[:, None], o[:, None], m[:, None], sigma)
    per_site = np.log(np.sqrt(2.0) * sd) + logsumexp(logf + x[None, :] ** 2, b=w[None, :], axis=1)
    return float(np.sum(const + per_site))


@dataclass(frozen=True)
class RandomInterceptFit:
    """Fitted group-level random-intercept logistic model (see the module docstring)."""

    mu: float
    sigma: float
    log_likelihood: float
    converged: bool
    n_sites: int

    @property
    def between_var(self) -> float:
        return self.sigma**2


def fit_random_intercept(observed, expected, n, variance=None, *, quad_points: int = 30) -> RandomInterceptFit:
    """Maximum marginal likelihood estimates of (mu, sigma).

    Model, quadrature and optimiser are described in the module docstring.
    Needs 0 <= O_j <= n_j and 0 < E_j < n_j for every site; ``variance``
    (optional) is V_j = sum of p_i (1 - p_i) over the site's cases.
    """
    o, e, nn, _, _ = _effective(observed, expected, n, variance)

    def objective(theta):
        return -marginal_log_likelihood(theta[0], theta[1], o, e, nn, variance, quad_points)

    start = np.array([np.log(o.sum() / e.sum()) if o.sum() > 0 else 0.0, 0.3])
    result = optimize.minimize(
        objective, start, method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-11, "maxiter": 4000, "maxfev": 8000},
    )
    mu, s = result.x
    return RandomInterceptFit(
        mu=float(mu),
        sigma=float(abs(s)),
        log_likelihood=float(-result.fun),
        converged=bool(result.success),
        n_sites=int(o.size),
    )


def fit_key(observed, expected, n, variance=None, *, quad_points: int = 30) -> str:
    """A digest of everything :func:`fit_random_intercept` reads: the same key, the same fit to the last bit."""
    digest = hashlib.sha256(f"random-intercept/{quad_points}/{variance is None}".encode())
    for values in (observed, expected, n) + (() if variance is None else (variance,)):
        digest.update(np.ascontiguousarray(values, dtype=np.float64).tobytes())
        digest.update(b"|")
    return digest.hexdigest()


def site_posteriors(
    fit: RandomInterceptFit, observed, expected, n, variance=None, *, level: float = 0.95
) -> pd.DataFrame:
    """Empirical-Bayes posterior of each site's effect under a fitted model.

    Columns: ``site_effect`` (posterior mean of u_j), ``site_effect_sd``,
    ``shrunken_oe`` (posterior mean of expit(logit q_j + mu + u_j)/q_j, with
    q_j = pbar_j unless ``variance`` is given), ``shrunken_oe_lower``,
    ``shrunken_oe_upper`` (equal-tailed posterior interval at ``level``).
    Grid integration as in the module docstring.
    """
    o, _, _, nn, pbar = _effective(observed, expected, n, variance)
    a = logit(pbar) + fit.mu
    tail = (1 - level) / 2
    if fit.sigma < 1e-8:
        oe = expit(a) / pbar
        return pd.DataFrame(
            {"site_effect": 0.0, "site_effect_sd": 0.0, "shrunken_oe": oe,
             "shrunken_oe_lower": oe, "shrunken_oe_upper": oe}
        )
    mode, sd = _modes(a, o, nn, fit.sigma**2)
    u = mode[:, None] + sd[:, None] * _GRID[None, :]
    logf = _log_density(u, a[:, None], o[:, None], nn[:, None], fit.sigma)
    f = np.exp(logf - logf.max(axis=1, keepdims=True))
    du = sd[:, None] * np.diff(_GRID)[None, :]
    # trapezoid: cumulative mass, normalised
    pieces = 0.5 * (f[:, 1:] + f[:, :-1]) * du
    cdf = np.concatenate([np.zeros((len(o), 1)), np.cumsum(pieces, axis=1)], axis=1)
    total = cdf[:, -1:]
    cdf = cdf / total

    def post_mean(g):
        return np.sum(0.5 * (g[:, 1:] * f[:, 1:] + g[:, :-1] * f[:, :-1]) * du, axis=1) / total[:, 0]

    mean_u = post_mean(u)
    var_u = post_mean((u - mean_u[:, None]) ** 2)
    theta = expit(a[:, None] + u) / pbar[:, None]
    lower_u = np.array([np.interp(tail, cdf[j], u[j]) for j in range(len(o))])
    upper_u = np.array([np.interp(1 - tail, cdf[j], u[j]) for j in range(len(o))])
    return pd.DataFrame(
        {
            "site_effect": mean_u,
            "site_effect_sd": np.sqrt(var_u),
            "shrunken_oe": post_mean(theta),
            "shrunken_oe_lower": expit(a + lower_u) / pbar,
            "shrunken_oe_upper": expit(a + upper_u) / pbar,
        }
    )


def reliability_table(
    groups_df: pd.DataFrame,
    group: str,
    observed: str,
    expected: str,
    n: str,
    *,
    variance: str | None = None,
    level: float = 0.95,
    quad_points: int = 30,
    fits: MutableMapping[str, RandomInterceptFit] | None = None,
) -> pd.DataFrame:
    """Reliability and reliability-adjusted (shrunken) results per site.

    Fits :func:`fit_random_intercept` to the sites with n > 0 and returns one
    row per input row. ``variance`` optionally names a column holding
    V_j = sum of p_i (1 - p_i) over the site's cases (see the module
    docstring: it removes the over-shrinkage of the homogeneous case-mix
    approximation). Columns: ``group``, ``n``, ``observed``, ``expected``,
    ``oe``, ``observed_rate`` (O/n), ``expected_rate`` (E/n),
    ``risk_adjusted_rate`` ((O/E) x overall rate), ``reliability``,
    ``reliability_adjusted_rate`` (R x risk-adjusted + (1 - R) x overall),
    ``site_effect``, ``site_effect_sd``, ``shrunken_oe``,
    ``shrunken_oe_lower_<label>``, ``shrunken_oe_upper_<label>`` and
    ``shrunken_rate`` (shrunken O/E x overall rate). Sites with n = 0 get
    missing values. ``.attrs``: ``between_sd``, ``between_var``, ``mu``,
    ``overall_rate``, ``log_likelihood``, ``converged``, ``method``.
    Formulas and decisions: module docstring. ``fits``: fits already made,
    by :func:`fit_key` (the maximisation is most of the time; a group whose
    sites' numbers did not change need not be fitted again); a new fit is
    added to it.
    """
    o = groups_df[observed].to_numpy(dtype=float)
    e = groups_df[expected].to_numpy(dtype=float)
    nn = groups_df[n].to_numpy(dtype=float)
    ok = nn > 0
    v = None if variance is None else groups_df[variance].to_numpy(dtype=float)[ok]
    key = None if fits is None else fit_key(o[ok], e[ok], nn[ok], v, quad_points=quad_points)
    fit = fits.get(key) if fits is not None else None
    if fit is None:
        fit = fit_random_intercept(o[ok], e[ok], nn[ok], v, quad_points=quad_points)
        if fits is not None:
            fits[key] = fit
    _, _, _, m, q = _effective(o[ok], e[ok], nn[ok], v)
    overall = float(o[ok].sum() / nn[ok].sum())
    label = level_label(level)

    out = pd.DataFrame(
        {"group": groups_df[group].to_numpy(), "n": nn, "observed": o, "expected": e}, index=groups_df.index
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["oe"] = np.where(e > 0, o / e, np.nan)
        out["observed_rate"] = np.where(ok, o / nn, np.nan)
        out["expected_rate"] = np.where(ok, e / nn, np.nan)
    out["risk_adjusted_rate"] = out["oe"] * overall
    rel = np.full(len(out), np.nan)
    pi0 = expit(logit(q) + fit.mu)
    rel[ok] = reliability(fit.between_var, 1.0 / (pi0 * (1 - pi0)), m)
    out["reliability"] = rel
    out["reliability_adjusted_rate"] = rel * out["risk_adjusted_rate"] + (1 - rel) * overall
    post = site_posteriors(fit, o[ok], e[ok], nn[ok], v, level=level)
    for column in ("site_effect", "site_effect_sd", "shrunken_oe"):
        out[column] = np.nan
        out.loc[ok, column] = post[column].to_numpy()
    out[f"shrunken_oe_lower_{label}"] = np.nan
    out[f"shrunken_oe_upper_{label}"] = np.nan
    out.loc[ok, f"shrunken_oe_lower_{label}"] = post["shrunken_oe_lower"].to_numpy()
    out.loc[ok, f"shrunken_oe_upper_{label}"] = post["shrunken_oe_upper"].to_numpy()
    out["shrunken_rate"] = out["shrunken_oe"] * overall
    out.attrs.update(
        between_sd=fit.sigma,
        between_var=fit.between_var,
        mu=fit.mu,
        overall_rate=overall,
        log_likelihood=fit.log_likelihood,
        converged=fit.converged,
        method="group-level random-intercept logistic (offset logit E/n), ML by adaptive Gauss-Hermite; EB posterior",
    )
    return out
