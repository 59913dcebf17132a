"""Fitting one measure's logistic risk model on the pooled cases of the window.

The fit uses every counted case of the window (no case is dropped for a
missing predictor). A measure with fewer events than the policy's minimum is
not risk-adjusted: its model is the intercept alone (every case's expected
probability is the collaborative rate), and the model version says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..registry import Measure, Registry
from ..stats import coefficients_frame, design_matrix, fit_logistic, model_quality
from .spec import design_spec


@dataclass(frozen=True)
class FittedModel:
    measure_id: str
    coefficients: pd.DataFrame      # long table: term, estimate, std_error, variable, kind, level, levels, impute_value
    quality: dict                   # cases, events, c_statistic, calibration..., brier_score
    risk_adjusted: bool


def fit_measure(cases: pd.DataFrame, registry: Registry, measure: Measure) -> FittedModel:
    """Fit ``measure`` on ``cases`` (one row per counted case: is_event plus its risk factors)."""
    y = cases["is_event"].astype(float).to_numpy()
    events = int(y.sum())
    risk_adjusted = events >= registry.policy.min_model_events and events < len(y)
    spec = design_spec(registry, measure) if risk_adjusted else {}
    X, encoding = design_matrix(cases, spec, outcome=y)
    fit = fit_logistic(X, y)
    coefficients = coefficients_frame(fit, encoding)
    p = np.asarray(fit.predict(X), dtype=float)   # equals score(cases, coefficients): tested
    quality = {"cases": int(len(y)), "events": events}
    if risk_adjusted:
        measured = model_quality(y, p)
        quality.update(c_statistic=measured["c_statistic"], calibration_intercept=measured["calibration_intercept"],
                       calibration_slope=measured["calibration_slope"], brier_score=measured["brier"],
                       hosmer_lemeshow_statistic=measured["hosmer_lemeshow_chi2"],
                       hosmer_lemeshow_p=measured["hosmer_lemeshow_p"])
    else:
        quality.update(c_statistic=np.nan, calibration_intercept=np.nan, calibration_slope=np.nan,
                       brier_score=float(np.mean((y - p) ** 2)) if len(y) else np.nan,
                       hosmer_lemeshow_statistic=np.nan, hosmer_lemeshow_p=np.nan)
    quality["separation"] = bool(fit.separation)
    return FittedModel(measure.id, coefficients, quality, risk_adjusted)
