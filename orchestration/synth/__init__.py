"""Synthetic collaboratives with known answers, for testing the whole pipeline.

``generate_collaborative(registry, out_dir, ...)`` writes a roster, the first
round of site submissions (with planted row defects and whole-file problems),
a corrected resubmission, and a ``truth/`` folder holding the true
coefficients, site effects, defects and every case's true values. The
registry's ``synth.yaml`` supplies the scenario; the code is registry-agnostic.
"""

from .generator import SynthResult, generate_collaborative
from .truth import design_terms
from .scenario import Scenario, ScenarioError, load_scenario

__all__ = ["generate_collaborative", "SynthResult", "design_terms", "Scenario", "ScenarioError", "load_scenario"]
