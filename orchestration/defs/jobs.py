"""Jobs: the whole cycle, and publication without intake."""

import dagster as dg

from .intake.assets import INTAKE_KEYS

CYCLE_JOB_NAME = "cqi_cycle"
PUBLICATION_JOB_NAME = "cqi_publication"

cycle_job = dg.define_asset_job(
    CYCLE_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Receive a range of receptions, check quality, build the marts and publish feedback.",
)

publication_job = dg.define_asset_job(
    PUBLICATION_JOB_NAME,
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*INTAKE_KEYS),
    description="Re-check quality, rebuild the marts and publish feedback from what has been received.",
)
