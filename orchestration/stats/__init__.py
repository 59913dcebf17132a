"""Statistics for comparative performance feedback: a pure library.

No I/O, no pipeline state: numpy arrays and pandas DataFrames in, numbers
and DataFrames out, so analysts can use exactly what the pipeline uses.
Each function's docstring gives its formula and reference; each module's
docstring gives the method and the decisions taken.

* :mod:`.intervals`: exact Poisson (O/E) and Clopper-Pearson intervals.
* :mod:`.logistic`: design matrix (collapsing, missing indicators), IRLS
  fit, stored coefficient table, scoring.
* :mod:`.model_quality`: c-statistic, calibration, Hosmer-Lemeshow, Brier.
* :mod:`.reliability`: random-intercept empirical-Bayes shrinkage, reliability.
* :mod:`.funnel`: funnel-plot limits, exact and overdispersion-adjusted.
* :mod:`.spc`: p-chart, risk-adjusted CUSUM, VLAD.
* :mod:`.deviance`: the positive-deviance rule.
"""

from .deviance import positive_deviants
from .funnel import (
    Z_95,
    Z_998,
    control_limits,
    estimate_overdispersion,
    exact_limits,
    funnel_curve,
    funnel_curve_for,
    funnel_table,
    standard_error,
    trim_z,
    z_for_level,
)
from .intervals import clopper_pearson_interval, level_label, oe_interval, oe_table, poisson_interval
from .logistic import (
    Encoding,
    LogisticFit,
    VariableEncoding,
    coefficients_frame,
    design_matrix,
    fit_logistic,
    linear_predictor,
    score,
)
from .model_quality import (
    HosmerLemeshow,
    brier_score,
    c_statistic,
    calibration_intercept,
    calibration_slope,
    hosmer_lemeshow,
    model_quality,
)
from .reliability import (
    RandomInterceptFit,
    fit_random_intercept,
    marginal_log_likelihood,
    reliability,
    reliability_table,
    site_posteriors,
)
from .spc import cusum_weights, p_chart, risk_adjusted_cusum, vlad

__all__ = [
    "Encoding",
    "HosmerLemeshow",
    "LogisticFit",
    "RandomInterceptFit",
    "VariableEncoding",
    "Z_95",
    "Z_998",
    "brier_score",
    "c_statistic",
    "calibration_intercept",
    "calibration_slope",
    "clopper_pearson_interval",
    "coefficients_frame",
    "control_limits",
    "cusum_weights",
    "design_matrix",
    "estimate_overdispersion",
    "exact_limits",
    "fit_logistic",
    "fit_random_intercept",
    "funnel_curve",
    "funnel_curve_for",
    "funnel_table",
    "hosmer_lemeshow",
    "level_label",
    "linear_predictor",
    "marginal_log_likelihood",
    "model_quality",
    "oe_interval",
    "oe_table",
    "p_chart",
    "poisson_interval",
    "positive_deviants",
    "reliability",
    "reliability_table",
    "risk_adjusted_cusum",
    "score",
    "site_posteriors",
    "standard_error",
    "trim_z",
    "vlad",
    "z_for_level",
]
