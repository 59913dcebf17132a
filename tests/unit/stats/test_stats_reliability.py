"""Random-intercept shrinkage against independently fitted random-intercept models."""

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats
from scipy.special import expit, logit, roots_hermite

from orchestration.stats import (
    fit_random_intercept,
    marginal_log_likelihood,
    reliability,
    reliability_table,
)


def simulated_sites(n_sites=30, sigma=0.4, seed=8):
    rng = np.random.default_rng(seed)
    n = rng.integers(25, 700, n_sites)
    pbar = rng.uniform(0.04, 0.12, n_sites)
    u = rng.normal(0, sigma, n_sites)
    observed = rng.binomial(n, expit(logit(pbar) + u))
    return pd.DataFrame({"site": [f"S{j:02d}" for j in range(n_sites)], "O": observed, "E": n * pbar, "n": n})


def test_reliability_formula_hand_example():
    # var_between 0.04, var_within 16, n 100: R = 0.04 / (0.04 + 16/100) = 0.04 / 0.20 = 0.2
    assert reliability(0.04, 16.0, 100) == pytest.approx(0.2)
    # n 400: 0.04 / (0.04 + 0.04) = 0.5; no between-site variance: 0
    np.testing.assert_allclose(reliability(0.04, 16.0, np.array([400, 1600])), [0.5, 0.8])
    assert reliability(0.0, 16.0, 50) == 0.0


def test_table_reliability_is_between_variance_over_between_plus_within_over_n():
    table = reliability_table(simulated_sites(), "site", "O", "E", "n")
    var_b, mu = table.attrs["between_var"], table.attrs["mu"]
    pi0 = expit(logit(table["expected"] / table["n"]) + mu)
    want = var_b / (var_b + (1 / (pi0 * (1 - pi0))) / table["n"])
    np.testing.assert_allclose(table["reliability"], want, rtol=1e-12)
    overall = table["observed"].sum() / table["n"].sum()
    np.testing.assert_allclose(
        table["reliability_adjusted_rate"],
        table["reliability"] * table["oe"] * overall + (1 - table["reliability"]) * overall,
        rtol=1e-12,
    )


def test_marginal_likelihood_matches_direct_numerical_integration():
    sites = simulated_sites(n_sites=8)
    o, e, n = sites["O"].to_numpy(), sites["E"].to_numpy(), sites["n"].to_numpy()
    for mu, sigma in ((0.0, 0.4), (0.2, 0.1), (-0.1, 1.0)):
        total = 0.0
        for oj, ej, nj in zip(o, e, n):
            a = logit(ej / nj) + mu
            integrand = lambda u: stats.binom.pmf(oj, nj, expit(a + u)) * stats.norm.pdf(u, 0, sigma)  # noqa: E731
            total += np.log(integrate.quad(integrand, -10 * sigma, 10 * sigma, points=[0.0], limit=200)[0])
        assert marginal_log_likelihood(mu, sigma, o, e, n) == pytest.approx(total, abs=1e-7)


def brute_force_group_level_fit(o, e, n):
    """Independent fit: dense fixed grid (no adaptation) + L-BFGS-B on (mu, log sigma)."""
    grid = np.linspace(-6, 6, 8001)
    a0 = logit(e / n)

    def negative(theta):
        mu, log_sigma = theta
        sigma = np.exp(log_sigma)
        # shift the likelihood grid by mu: evaluate at a0 + mu + u
        lik = stats.binom.logpmf(o[:, None], n[:, None], expit(a0[:, None] + mu + grid[None, :]))
        dens = np.exp(lik + stats.norm.logpdf(grid, 0, sigma)[None, :])
        return -np.sum(np.log(np.trapezoid(dens, grid, axis=1)))

    best = optimize.minimize(negative, [0.0, np.log(0.2)], method="L-BFGS-B")
    mu, sigma = best.x[0], np.exp(best.x[1])
    lik = stats.binom.logpmf(o[:, None], n[:, None], expit(a0[:, None] + mu + grid[None, :]))
    post = np.exp(lik + stats.norm.logpdf(grid, 0, sigma)[None, :])
    post /= np.trapezoid(post, grid, axis=1)[:, None]
    effect = np.trapezoid(post * grid[None, :], grid, axis=1)
    shrunken = np.trapezoid(post * expit(a0[:, None] + mu + grid[None, :]), grid, axis=1) / (e / n)
    cdf = integrate.cumulative_trapezoid(post, grid, axis=1, initial=0)
    return mu, sigma, effect, shrunken, cdf, grid


def test_between_site_sd_and_shrunken_effects_agree_with_a_brute_force_marginal_likelihood_fit():
    sites = simulated_sites()
    o, e, n = (sites[c].to_numpy(dtype=float) for c in ("O", "E", "n"))
    mu, sigma, effect, shrunken, cdf, grid = brute_force_group_level_fit(o, e, n)
    table = reliability_table(sites, "site", "O", "E", "n")
    assert table.attrs["between_sd"] == pytest.approx(sigma, abs=2e-3)
    assert table.attrs["mu"] == pytest.approx(mu, abs=2e-3)
    np.testing.assert_allclose(table["site_effect"], effect, atol=3e-3)
    np.testing.assert_allclose(table["shrunken_oe"], shrunken, rtol=3e-3)
    # the interval limits are the 2.5% and 97.5% posterior quantiles
    a = logit(e / n) + mu
    u_lower = logit(table["shrunken_oe_lower_95"].to_numpy() * e / n) - a
    at_lower = np.array([np.interp(u, grid, cdf[j]) for j, u in enumerate(u_lower)])
    np.testing.assert_allclose(at_lower, 0.025, atol=2e-3)


def test_group_level_fit_with_case_mix_variance_agrees_with_the_case_level_hierarchical_logistic_model():
    # Cases with heterogeneous risk inside each site; exact case-level random-intercept model
    # logit P(y_i) = logit(p_i) + mu + u_site fitted by Gauss-Hermite quadrature (scipy) and Nelder-Mead.
    rng = np.random.default_rng(21)
    n_sites, sigma_true = 40, 0.45
    sizes = rng.integers(40, 500, n_sites)
    site = np.repeat(np.arange(n_sites), sizes)
    p = expit(rng.normal(-3.0, 1.0, site.size) + rng.normal(0, 0.3, n_sites)[site])  # case mix differs
    u_true = rng.normal(0, sigma_true, n_sites)
    y = (rng.random(site.size) < expit(logit(p) + u_true[site])).astype(float)

    x, w = roots_hermite(40)

    def site_log_lik(mu, sigma):
        u = np.sqrt(2) * sigma * x
        eta = logit(p)[:, None] + mu + u[None, :]
        case = y[:, None] * eta - np.logaddexp(0, eta)
        per_site = np.zeros((n_sites, x.size))
        np.add.at(per_site, site, case)
        return per_site

    def negative(theta):
        per_site = site_log_lik(theta[0], abs(theta[1]))
        m = per_site.max(axis=1, keepdims=True)
        return -np.sum(m[:, 0] + np.log((np.exp(per_site - m) * w).sum(axis=1) / np.sqrt(np.pi)))

    best = optimize.minimize(negative, [0.0, 0.3], method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-9})
    mu_case, sigma_case = best.x[0], abs(best.x[1])
    per_site = site_log_lik(mu_case, sigma_case)
    weights = np.exp(per_site - per_site.max(axis=1, keepdims=True)) * w
    effect_case = (weights * np.sqrt(2) * sigma_case * x).sum(axis=1) / weights.sum(axis=1)

    groups = pd.DataFrame(
        {"site": np.arange(n_sites), "O": np.bincount(site, y), "E": np.bincount(site, p), "n": sizes,
         "V": np.bincount(site, p * (1 - p))}
    )
    table = reliability_table(groups, "site", "O", "E", "n", variance="V")
    assert table.attrs["between_sd"] == pytest.approx(sigma_case, abs=0.02)
    assert table.attrs["mu"] == pytest.approx(mu_case, abs=0.02)
    np.testing.assert_allclose(table["site_effect"], effect_case, atol=0.02)
    assert np.corrcoef(table["site_effect"], effect_case)[0, 1] > 0.999

    # Without V (homogeneous case mix assumed) effects are shrunk more, never less: conservative.
    homogeneous = reliability_table(groups, "site", "O", "E", "n")
    assert np.all(np.abs(homogeneous["site_effect"]) <= np.abs(effect_case) + 0.01)
    assert np.corrcoef(homogeneous["site_effect"], effect_case)[0, 1] > 0.99


def test_small_sites_are_shrunk_more_toward_the_collaborative_than_large_sites():
    sites = pd.DataFrame(
        {"site": ["small", "large", "a", "b", "c", "d", "e", "f"],
         "O": [6, 60, 10, 30, 22, 8, 45, 15], "n": [30, 1000, 300, 400, 350, 250, 500, 200]}
    )
    sites["E"] = sites["n"] * 0.05
    table = reliability_table(sites, "site", "O", "E", "n").set_index("group")
    assert table.loc["small", "reliability"] < table.loc["large", "reliability"]
    for name in ("small", "large"):
        row = table.loc[name]
        centre = table.attrs["overall_rate"] / 0.05
        assert abs(row["shrunken_oe"] - centre) < abs(row["oe"] - centre)
        assert row["shrunken_oe_lower_95"] < row["shrunken_oe"] < row["shrunken_oe_upper_95"]


def test_fit_random_intercept_recovers_the_simulated_between_site_sd():
    estimates = [
        fit_random_intercept(*(s[c] for c in ("O", "E", "n"))).sigma
        for s in (simulated_sites(n_sites=80, sigma=0.35, seed=k) for k in range(4))
    ]
    assert np.mean(estimates) == pytest.approx(0.35, abs=0.07)


def test_no_between_site_variation_gives_zero_reliability_and_full_shrinkage():
    sites = pd.DataFrame({"site": list("ABCD"), "O": [10, 10, 10, 10], "E": [10.0] * 4, "n": [200] * 4})
    table = reliability_table(sites, "site", "O", "E", "n")
    assert table.attrs["between_sd"] < 1e-3
    assert (table["reliability"] < 1e-5).all()
    np.testing.assert_allclose(table["shrunken_oe"], 1.0, atol=1e-4)
