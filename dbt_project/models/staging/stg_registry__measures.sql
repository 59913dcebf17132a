with measures as (
    select * from {{ source('registry', 'measures') }}
)

select
    measure_id,
    label,
    direction,
    follow_up_days,
    event_sql,
    denominator_sql,
    exclusion_sql
from measures
