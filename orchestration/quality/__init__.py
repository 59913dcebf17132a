"""Data quality: rules from the dictionary, findings, site-period grades."""

from .findings import compute_findings
from .rules import Rule, rules_for

__all__ = ["compute_findings", "Rule", "rules_for"]
