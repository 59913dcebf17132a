"""The one Dagster ``Definitions`` of cqi-warehouse."""

from __future__ import annotations

import dagster as dg

from .defs.intake.assets import registry_definition, site_submissions
from .defs.models.assets import risk_models
from .defs.models.checks import risk_models_meet_quality_floors
from .defs.intake.sensors import landing_sensor
from .defs.jobs import cycle_job, publication_job
from .defs.publish.assets import publication
from .defs.publish.checks import (
    no_direct_identifier_published,
    no_small_count_published,
    packages_reveal_no_other_site,
)
from .defs.publish.schedules import publication_schedule
from .defs.quality.assets import data_quality
from .defs.quality.checks import enough_sites_pass_quality
from .defs.resources import CqiResource
from .defs.warehouse.dbt_assets import dbt_resource, mart_models, warehouse_models
from .defs.warehouse.unit_tests import UNIT_TEST_CHECKS
from .registry import load_registry
from .settings import registry_dir

defs = dg.Definitions(
    assets=[registry_definition, site_submissions, data_quality, warehouse_models, risk_models, mart_models,
            publication],
    asset_checks=[enough_sites_pass_quality, risk_models_meet_quality_floors, packages_reveal_no_other_site,
                  no_direct_identifier_published, no_small_count_published, *UNIT_TEST_CHECKS],
    jobs=[cycle_job, publication_job],
    sensors=[landing_sensor],
    schedules=[publication_schedule(load_registry(registry_dir()).calendar.publication_cron)],
    resources={"cqi": CqiResource(), "dbt": dbt_resource()},
    executor=dg.in_process_executor,
)
