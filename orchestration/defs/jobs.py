"""Jobs: the whole cycle (intake to publication)."""


import dagster as dg

CYCLE_JOB_NAME = "cqi_cycle"

cycle_job = dg.define_asset_job(
    CYCLE_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Receive submissions, check quality, build the marts and publish feedback.",
)
