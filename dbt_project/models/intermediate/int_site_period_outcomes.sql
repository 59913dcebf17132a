-- Observed and expected events per site, period and measure: the input of
-- the site results. Red site-periods stay, marked not included.
with outcomes as (
    select * from {{ ref('int_case_outcomes') }}
),

risk as (
    select * from {{ ref('fct_case_risk') }}
),

sites as (
    select site_id, blinded_code from {{ ref('stg_registry__sites') }}
),

observed as (
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
),

expected as (
    select
        site_id,
        period,
        measure_id,
        -- rounded: parallel sums differ in their last bits from run to run, and
        -- the site results must be the same numbers every time
        round(sum(expected_probability), 9) as expected,
        round(sum(expected_probability * (1 - expected_probability)), 9) as variance
    from risk
    group by site_id, period, measure_id
)

select
    observed.site_id,
    sites.blinded_code,
    observed.period,
    observed.measure_id,
    observed.quality_status,
    observed.is_included,
    observed.cases,
    observed.observed,
    coalesce(expected.expected, 0) as expected,
    coalesce(expected.variance, 0) as variance
from observed
left join expected using (site_id, period, measure_id)
left join sites using (site_id)
