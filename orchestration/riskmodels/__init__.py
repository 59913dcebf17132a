"""Risk models per outcome measure: specification, fitting, versioned storage."""

from .fit import FittedModel, fit_measure
from .spec import design_spec

__all__ = ["FittedModel", "fit_measure", "design_spec"]
