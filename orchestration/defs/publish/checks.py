"""Privacy and isolation checks that run after every publication (blocking).

The publication asset already refuses to release a folder that fails them;
these checks re-read what was released, so a published folder that was
changed afterwards, or a check that was weakened, shows up red in Dagster
and stops everything downstream of the publication.
"""

from pathlib import Path

import dagster as dg

from ...publish.inputs import PublicationInputs
from ...publish.privacy import cross_site_leaks, identifier_leaks, small_count_leaks
from ...publish.release import INPUTS
from ..resources import CqiResource
from .assets import publication


def _released(context: dg.AssetCheckExecutionContext) -> Path:
    """The folder the publication asset released in its latest materialisation."""
    event = context.instance.get_latest_materialization_event(publication.key)
    return Path(event.asset_materialization.metadata["release"].value)


def _result(problems: list[str], what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"problems": len(problems)},
                               description="; ".join(problems[:10]) if problems else f"no {what}")


@dg.asset_check(asset=publication, blocking=True, description="No site package names another site or holds its cases.")
def packages_reveal_no_other_site(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    folder = _released(context)
    inputs = PublicationInputs.load(folder / INPUTS)
    return _result(cross_site_leaks(folder, inputs.sites, inputs.cases[["site_id", "case_id"]].drop_duplicates()),
                   "package reveals another site")


@dg.asset_check(asset=publication, blocking=True, description="No direct identifier appears in any published file.")
def no_direct_identifier_published(context: dg.AssetCheckExecutionContext, cqi: CqiResource) -> dg.AssetCheckResult:
    folder = _released(context)
    with cqi.warehouse(read_only=True) as con:
        keys = {r[0] for r in con.execute("select distinct patient_key from raw.cases "
                                          "where patient_key is not null").fetchall()}
    return _result(identifier_leaks(folder, cqi.registry, keys), "direct identifier published")


@dg.asset_check(asset=publication, blocking=True, description="No published count from 1 to the small-cell threshold.")
def no_small_count_published(context: dg.AssetCheckExecutionContext, cqi: CqiResource) -> dg.AssetCheckResult:
    folder = _released(context)
    return _result(small_count_leaks(folder, cqi.registry.policy.small_cell_threshold), "small count published")
