"""The publication schedule, from the registry's calendar."""


import dagster as dg

from ..jobs import publication_job


def publication_schedule(cron: str) -> dg.ScheduleDefinition:
    return dg.ScheduleDefinition(
        name="publication_schedule", job=publication_job, cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Publish feedback per the registry's calendar; the quality gate applies as in manual runs.",
    )
