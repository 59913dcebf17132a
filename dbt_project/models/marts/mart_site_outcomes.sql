-- Observed outcomes per site, period and measure. Site-periods graded red by
-- data quality stay listed, with no numbers, as "data not included".
with outcomes as (
    select * from {{ ref('int_case_outcomes') }}
),

sites as (
    select site_id, blinded_code from {{ ref('stg_registry__sites') }}
),

aggregated as (
    select
        site_id,
        period,
        measure_id,
        any_value(quality_status) as quality_status,
        bool_or(is_site_period_included) as is_included,
        count(*) filter (where is_counted) as cases,
        count(*) filter (where is_counted and is_event) as observed
    from outcomes
    group by site_id, period, measure_id
)

select
    aggregated.site_id,
    sites.blinded_code,
    aggregated.period,
    aggregated.measure_id,
    aggregated.quality_status,
    aggregated.is_included,
    case when aggregated.is_included then aggregated.cases end as cases,
    case when aggregated.is_included then aggregated.observed end as observed,
    case when aggregated.is_included and aggregated.cases > 0
        then aggregated.observed / aggregated.cases end as observed_rate
from aggregated
left join sites on aggregated.site_id = sites.site_id
