-- One row per case and measure: is the case in the measure's denominator,
-- why not (the first exclusion that applies), and is it an event. The
-- expressions come from the registry's measures, not from this file.
-- Incremental by site (macros/site_fingerprints.sql): only sites whose
-- submissions, grades or measures changed are read and rewritten.
-- depends_on: {{ source('registry', 'measures') }}
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_changed_sites(this, case_outcome_fingerprints()) }}",
          post_hook="{{ record_site_fingerprints() }}") }}
{%- set measures = registry_measures() %}

{%- set sites = site_changes(this, case_outcome_fingerprints()).build %}

with to_build as (
    {{ sites_to_build(case_outcome_fingerprints(), sites) }}
),

cases as (
    select * from {{ ref('stg_registry__cases') }}
    where {{ site_in(sites) }}
),

site_periods as (
    select site_id, period, quality_status, is_included from {{ ref('stg_quality__site_periods') }}
),

{% for measure in measures %}
measure_{{ loop.index }} as (
    select
        site_id,
        case_id,
        period,
        '{{ measure[0] }}' as measure_id,
        coalesce(cast(({{ measure[2] }}) as boolean), false) as is_eligible,
        cast(({{ measure[1] }}) as boolean) as event_value,
        {{ measure[3] }} as named_exclusion
    from cases
),
{% endfor %}

unioned as (
    {% for measure in measures %}
    select * from measure_{{ loop.index }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

classified as (
    select
        unioned.site_id,
        unioned.case_id,
        unioned.period,
        unioned.measure_id,
        case
            when not unioned.is_eligible then 'not_eligible'
            when unioned.named_exclusion is not null then unioned.named_exclusion
            when unioned.event_value is null then 'outcome_missing'
        end as exclusion_reason,
        coalesce(unioned.event_value, false) as is_event,
        coalesce(site_periods.is_included, false) as is_site_period_included,
        coalesce(site_periods.quality_status, 'ungraded') as quality_status
    from unioned
    left join site_periods
        on unioned.site_id = site_periods.site_id
        and unioned.period = site_periods.period
)

select
    classified.*,
    classified.exclusion_reason is null and classified.is_site_period_included as is_counted,
    to_build.site_fingerprint
from classified
inner join to_build using (site_id)
