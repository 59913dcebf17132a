"""Privacy and isolation checks that run after every publication (blocking).

The publication asset already refuses to release a folder that fails them;
these checks re-read what was released, so a published folder that was
changed afterwards, or a check that was weakened, shows up red in Dagster
and stops everything downstream of the publication. The three checks share
one scan of the folder when they run in the same process
(``released_problems``), and each reports its own kind of problem.
"""

from pathlib import Path

import dagster as dg

from ...publish.publication import privacy_memory, released_problems
from ..resources import CqiResource
from .assets import publication

CROSS_SITE, IDENTIFIER, SMALL_COUNT = 0, 1, 2


def _released(context: dg.AssetCheckExecutionContext) -> Path:
    """The folder the publication asset released in its latest materialisation."""
    event = context.instance.get_latest_materialization_event(publication.key)
    return Path(event.asset_materialization.metadata["release"].value)


def _result(problems: list[str], what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=not problems, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"problems": len(problems)},
                               description="; ".join(problems[:10]) if problems else f"no {what}")


def _problems(context: dg.AssetCheckExecutionContext, cqi: CqiResource, kind: int) -> list[str]:
    return released_problems(_released(context), cqi.registry, cqi.paths.warehouse, privacy_memory(cqi.paths))[kind]


@dg.asset_check(asset=publication, blocking=True, description="No site package names another site or holds its cases.")
def packages_reveal_no_other_site(context: dg.AssetCheckExecutionContext, cqi: CqiResource) -> dg.AssetCheckResult:
    return _result(_problems(context, cqi, CROSS_SITE), "package reveals another site")


@dg.asset_check(asset=publication, blocking=True, description="No direct identifier appears in any published file.")
def no_direct_identifier_published(context: dg.AssetCheckExecutionContext, cqi: CqiResource) -> dg.AssetCheckResult:
    return _result(_problems(context, cqi, IDENTIFIER), "direct identifier published")


@dg.asset_check(asset=publication, blocking=True, description="No published count from 1 to the small-cell threshold.")
def no_small_count_published(context: dg.AssetCheckExecutionContext, cqi: CqiResource) -> dg.AssetCheckResult:
    return _result(_problems(context, cqi, SMALL_COUNT), "small count published")
