-- Observed and expected events per site, period and measure: the input of
-- the site results. Red site-periods stay, marked not included.
-- Incremental by site (macros/site_fingerprints.sql): only the sites whose
-- case outcomes or current model versions changed are summed again.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_changed_sites(this, scored_site_fingerprints()) }}",
          post_hook="{{ record_site_fingerprints() }}") }}

{%- set sites = site_changes(this, scored_site_fingerprints()).build %}

with to_build as (
    {{ sites_to_build(scored_site_fingerprints(), sites) }}
),

outcomes as (
    select * from {{ ref('int_case_outcomes') }}
    where {{ site_in(sites) }}
),

risk as (
    select * from {{ ref('fct_case_risk') }}
    where {{ site_in(sites) }}
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
        -- summed in fixed point (units of 1e-15, exact integer addition): a
        -- floating-point sum depends on the order parallel threads add in, and
        -- the site results must be the same numbers every time
        round(cast(sum(cast(round(expected_probability * 1e15) as hugeint)) as double) / 1e15, 9) as expected,
        round(cast(sum(cast(round(expected_probability * (1 - expected_probability) * 1e15) as hugeint)) as double)
            / 1e15, 9) as variance
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
    coalesce(expected.variance, 0) as variance,
    to_build.site_fingerprint
from observed
left join expected using (site_id, period, measure_id)
left join sites using (site_id)
inner join to_build using (site_id)
