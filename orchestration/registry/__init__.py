"""Loading and validating a registry definition (dictionary, measures, sites, calendar)."""

from .calendar import period_bounds, period_of
from .loader import Registry, RegistryError, WarehouseColumn, load_registry
from .model import Measure, Variable

__all__ = ["Registry", "RegistryError", "WarehouseColumn", "load_registry", "Measure", "Variable",
           "period_bounds", "period_of"]
