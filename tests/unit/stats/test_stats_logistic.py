"""Logistic risk model: fit vs statsmodels, encoding rules, stored-table scoring."""

import io
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from orchestration.stats import coefficients_frame, design_matrix, fit_logistic, score

SPEC = {
    "age_years": "numeric",
    "sex": "categorical",
    "asa_class": {"kind": "ordinal", "levels": ["1", "2", "3", "4", "5"]},
    "emergency": "boolean",
    "albumin": "numeric",
    "procedure_group": "categorical",
}


def simulated_cases(n=4000, seed=11):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age_years": rng.normal(62, 14, n).round(),
            "sex": rng.choice(["F", "M"], n),
            "asa_class": rng.choice([1, 2, 3, 4, 5], n, p=[0.08, 0.42, 0.35, 0.13, 0.02]),
            "emergency": rng.random(n) < 0.15,
            "albumin": np.where(rng.random(n) < 0.25, np.nan, rng.normal(3.9, 0.5, n).round(1)),
            "procedure_group": rng.choice(["colectomy", "hernia", "cholecystectomy", "hepatectomy"], n,
                                          p=[0.3, 0.35, 0.33, 0.02]),
        }
    )
    eta = (
        -3.2 + 0.03 * (df.age_years - 62) + 0.6 * (df.asa_class - 2) + 0.9 * df.emergency
        - 0.7 * np.nan_to_num(df.albumin - 3.9) + 0.4 * df.albumin.isna() + 0.5 * (df.procedure_group == "colectomy")
    )
    df["died"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return df


def test_coefficients_and_standard_errors_match_statsmodels_logit():
    df = simulated_cases()
    X, _ = design_matrix(df, SPEC, outcome="died")
    fit = fit_logistic(X, df["died"])
    reference = sm.Logit(df["died"].to_numpy(), X).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    assert fit.converged and not fit.separation
    np.testing.assert_allclose(fit.coefficients[X.columns], reference.params[X.columns], rtol=1e-5)
    np.testing.assert_allclose(fit.std_errors[X.columns], reference.bse[X.columns], rtol=1e-5)
    np.testing.assert_allclose(fit.covariance.loc[X.columns, X.columns], reference.cov_params(), rtol=1e-5, atol=1e-12)
    assert fit.log_likelihood == pytest.approx(reference.llf, rel=1e-9)


def test_offset_fit_matches_statsmodels_glm_with_offset():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000)
    offset = rng.normal(-2, 0.8, size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(-(offset + 0.3 + 0.5 * x)))).astype(float)
    fit = fit_logistic(pd.DataFrame({"x": x}), y, offset=offset)
    glm = sm.GLM(y, sm.add_constant(x), family=sm.families.Binomial(), offset=offset).fit(tol=1e-12)
    np.testing.assert_allclose(fit.coefficients.to_numpy(), glm.params, rtol=1e-6)
    np.testing.assert_allclose(fit.std_errors.to_numpy(), glm.bse, rtol=1e-6)


def test_scoring_from_the_stored_long_table_alone_reproduces_fitted_probabilities():
    df = simulated_cases()
    X, encoding = design_matrix(df, SPEC, outcome="died")
    fit = fit_logistic(X, df["died"])
    table = coefficients_frame(fit, encoding)
    # Store and reload through CSV: nothing but the table reaches score().
    stored = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    p = score(df.drop(columns="died"), stored)
    np.testing.assert_allclose(p.to_numpy(), fit.predict(X), rtol=1e-10, atol=1e-14)
    assert p.index.equals(df.index)


def test_stored_table_lists_reference_rows_collapsed_levels_and_imputation_values():
    df = simulated_cases()
    X, encoding = design_matrix(df, SPEC, outcome="died")
    table = coefficients_frame(fit_logistic(X, df["died"]), encoding).set_index("term")
    assert table.loc["intercept", "kind"] == "intercept"
    assert table.loc["albumin", "impute_value"] == pytest.approx(df["albumin"].median())
    assert table.loc["albumin__missing", "kind"] == "missing_indicator"
    # hepatectomy (2% of cases) is sparse and nominal: it joins the reference level.
    reference = table[(table["variable"] == "procedure_group") & (table["kind"] == "reference")]
    assert len(reference) == 1 and reference["estimate"].iloc[0] == 0.0
    assert "hepatectomy" in json.loads(reference["levels"].iloc[0])
    assert "procedure_group[hepatectomy]" not in table.index


def test_sparse_ordinal_level_merges_into_its_smaller_adjacent_level():
    # Case counts only (no outcome): ASA 5 has 10 cases (< 50) and only one neighbour (4).
    df = pd.DataFrame({"asa": ["1"] * 60 + ["2"] * 300 + ["3"] * 200 + ["4"] * 40 + ["5"] * 10})
    X, encoding = design_matrix(df, {"asa": "ordinal"})
    # 5 (10 cases) -> 4, giving 4+5 with 50 cases: no longer sparse. Reference = 2, the largest.
    assert list(X.columns) == ["intercept", "asa[1]", "asa[3]", "asa[4+5]"]
    assert encoding.collapsed["asa"] == {"4": "4+5", "5": "4+5"}
    assert X["asa[4+5]"].sum() == 50

    # A sparse middle level goes to the smaller of its two neighbours.
    status = ["independent"] * 500 + ["partial"] * 20 + ["total"] * 45
    X, encoding = design_matrix(
        pd.DataFrame({"fs": status}), {"fs": {"kind": "ordinal", "levels": ["independent", "partial", "total"]}}
    )
    assert list(X.columns) == ["intercept", "fs[partial+total]"]
    assert X["fs[partial+total]"].sum() == 65


def test_sparse_nominal_level_merges_into_the_reference_level():
    df = pd.DataFrame({"proc": ["a"] * 300 + ["b"] * 100 + ["c"] * 20})
    X, encoding = design_matrix(df, {"proc": "categorical"})
    assert list(X.columns) == ["intercept", "proc[b]"]
    assert encoding.variables[0].reference == "a"
    assert encoding.collapsed["proc"] == {"c": "a"}
    assert X["proc[b]"].sum() == 100


def test_level_with_too_few_events_or_non_events_is_sparse_only_when_the_outcome_is_given():
    df = pd.DataFrame({"proc": ["a"] * 300 + ["b"] * 100 + ["c"] * 100})
    y = np.zeros(500)
    y[:30] = 1  # a: 30 events
    y[300:302] = 1  # b: 2 events (< 5)
    y[400:497] = 1  # c: 97 events, 3 non-events (< 5)
    X_cases_only, _ = design_matrix(df, {"proc": "categorical"})
    assert list(X_cases_only.columns) == ["intercept", "proc[b]", "proc[c]"]
    X, encoding = design_matrix(df, {"proc": "categorical"}, outcome=y)
    assert list(X.columns) == ["intercept"]
    assert encoding.collapsed["proc"] == {"b": "a", "c": "a"}


def test_missing_numeric_gets_median_imputation_and_a_missing_indicator():
    values = np.arange(400, dtype=float)
    values[:60] = np.nan  # 60 missing >= 50: the indicator is estimated
    X, encoding = design_matrix(pd.DataFrame({"albumin": values}), {"albumin": "numeric"})
    median = np.median(np.arange(60, 400))  # 229.5
    assert list(X.columns) == ["intercept", "albumin", "albumin__missing"]
    assert (X["albumin"].iloc[:60] == median).all()
    assert X["albumin__missing"].tolist() == [1.0] * 60 + [0.0] * 340
    assert X["albumin"].iloc[60:].tolist() == list(np.arange(60, 400, dtype=float))


def test_rarely_missing_numeric_is_imputed_without_an_indicator():
    values = np.arange(400, dtype=float)
    values[:10] = np.nan  # 10 missing < 50: no indicator, median only
    X, encoding = design_matrix(pd.DataFrame({"albumin": values}), {"albumin": "numeric"})
    assert list(X.columns) == ["intercept", "albumin"]
    assert (X["albumin"].iloc[:10] == np.median(np.arange(10, 400))).all()
    assert encoding.variables[0].missing_indicator is False


def test_missing_category_is_a_level_subject_to_the_same_collapsing_rule():
    sex = np.array(["F"] * 200 + ["M"] * 180 + [None] * 60, dtype=object)
    X, _ = design_matrix(pd.DataFrame({"sex": sex}), {"sex": "categorical"})
    assert list(X.columns) == ["intercept", "sex[M]", "sex[(missing)]"]
    X, enc = design_matrix(pd.DataFrame({"sex": sex[:390]}), {"sex": "categorical"})  # 10 missing
    assert list(X.columns) == ["intercept", "sex[M]"]
    assert enc.collapsed["sex"] == {"(missing)": "F"}


def test_no_case_is_dropped_when_predictors_are_missing():
    df = simulated_cases(n=1500)
    df.loc[::7, "age_years"] = np.nan
    df.loc[::11, "sex"] = None
    df["emergency"] = df["emergency"].astype(object)
    df.loc[::13, "emergency"] = None
    X, encoding = design_matrix(df, SPEC, outcome="died")
    assert len(X) == len(df) and X.index.equals(df.index)
    assert np.isfinite(X.to_numpy()).all()
    fit = fit_logistic(X, df["died"])
    p = score(df, coefficients_frame(fit, encoding))
    assert p.notna().all() and len(p) == len(df)


def test_new_cases_are_encoded_with_the_stored_encoding_not_re_estimated():
    df = simulated_cases()
    X, encoding = design_matrix(df, SPEC, outcome="died")
    fit = fit_logistic(X, df["died"])
    table = coefficients_frame(fit, encoding)
    new = simulated_cases(n=300, seed=99)
    new["asa_class"] = 5  # every new case in a level that was merged in training
    new.loc[:9, "procedure_group"] = "never_seen"
    np.testing.assert_allclose(score(new, table), fit.predict(encoding.transform(new)), rtol=1e-12)
    with pytest.raises(ValueError, match="never_seen"):
        score(new, table, unknown="error")


def test_complete_separation_falls_back_to_a_tiny_ridge_with_a_warning():
    x = np.r_[np.linspace(-3, -0.1, 50), np.linspace(0.1, 3, 50)]
    y = (x > 0).astype(float)
    with pytest.warns(RuntimeWarning, match="ridge"):
        fit = fit_logistic(pd.DataFrame({"x": x}), y)
    assert fit.separation and fit.penalty == 1e-3 and fit.converged
    assert np.all(np.isfinite(fit.coefficients)) and fit.coefficients["x"] > 5
    p = fit.predict(pd.DataFrame({"x": x}))
    assert np.all(p[y == 1] > 0.5) and np.all(p[y == 0] < 0.5)
    assert p[-1] > 0.999999 and p[0] < 1e-6


def test_well_identified_fit_is_not_penalised():
    df = simulated_cases(n=2000)
    X, _ = design_matrix(df, SPEC, outcome="died")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = fit_logistic(X, df["died"])
    assert fit.penalty == 0.0 and not fit.separation


def test_quasi_separation_from_a_level_without_events_uses_the_ridge_and_predicts_near_zero():
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"proc": ["a"] * 400 + ["b"] * 300 + ["z"] * 30, "age": rng.normal(60, 10, 730)})
    y = np.r_[rng.random(400) < 0.2, rng.random(300) < 0.3, np.zeros(30, dtype=bool)].astype(float)
    # collapsing switched off, so level z (30 cases, 0 events) keeps its own dummy
    X, encoding = design_matrix(df, {"proc": "categorical", "age": "numeric"}, outcome=y,
                                min_level_cases=0, min_level_events=0)
    assert "proc[z]" in X.columns
    with pytest.warns(RuntimeWarning):
        fit = fit_logistic(X, y)
    assert fit.separation and fit.coefficients["proc[z]"] < -5
    assert fit.predict(X)[y == 0][-30:].max() < 0.01
    # the identified coefficients are essentially the maximum-likelihood ones on the other levels
    keep = df["proc"] != "z"
    plain = fit_logistic(X.loc[keep].drop(columns="proc[z]"), y[keep.to_numpy()])
    np.testing.assert_allclose(fit.coefficients[list(plain.terms)], plain.coefficients, rtol=1e-3, atol=1e-4)
    # with the default rule z (0 events < 5) joins the reference and no ridge is needed
    X_default, _ = design_matrix(df, {"proc": "categorical", "age": "numeric"}, outcome=y)
    assert "proc[z]" not in X_default.columns


def test_unseen_declared_ordinal_level_scores_as_its_nearest_present_level():
    df = pd.DataFrame({"asa": ["1"] * 100 + ["2"] * 200 + ["3"] * 150 + ["4"] * 80})
    _, encoding = design_matrix(df, {"asa": {"kind": "ordinal", "levels": [1, 2, 3, 4, 5]}})
    assert encoding.variables[0].level_map["5"] == "4"
