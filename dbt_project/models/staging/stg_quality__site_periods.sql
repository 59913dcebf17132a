with grades as (
    select * from {{ source('quality', 'site_period_status') }}
)

select
    site_id,
    period,
    cases,
    completeness,
    blocking_findings,
    blocking_checks_failed,
    warning_findings,
    warning_checks_failed,
    status as quality_status,
    status <> 'red' as is_included
from grades
