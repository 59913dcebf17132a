-- Each counted case's expected probability of each measure's event, scored
-- from the current stored coefficients alone:
-- logit(p) = intercept + sum(beta * value, missing values imputed with the
-- stored median) + sum(beta of missing indicators) + beta of the case's level
-- group for each code list (0 for the reference and for unseen levels).
--
-- Scored wide: the linear coefficients are first laid out as one row per
-- measure (each risk factor's beta, imputed value and missing-indicator beta),
-- each code list's level betas are joined on the case's level, then each
-- case's terms are added in one expression (no case x factor long table).
-- The columns come from the risk factors of the current models (read from the
-- coefficient table at run time: a factor's value is read only when it has a
-- numeric or missing-indicator coefficient, its level only when it has level
-- coefficients), the numbers from the table at query time:
-- no coefficient is written into SQL. Adding terms in a fixed order also makes
-- two builds agree to the last bit.
--
-- Incremental by site (macros/site_fingerprints.sql): only sites whose case
-- outcomes or current model versions changed are scored again.
{{ config(materialized='incremental', incremental_strategy='append', on_schema_change='fail',
          pre_hook="{{ delete_changed_sites(this, scored_site_fingerprints()) }}",
          post_hook="{{ record_site_fingerprints() }}") }}
{%- set factors = risk_factor_columns() %}

{%- set sites = site_changes(this, scored_site_fingerprints()).build %}

with to_build as (
    {{ sites_to_build(scored_site_fingerprints(), sites) }}
),

outcomes as (
    select * from {{ ref('int_case_outcomes') }}
    where is_counted and {{ site_in(sites) }}
),

cases as (
    select
        site_id,
        case_id,
        operation_date
        {%- for factor in factors.numeric %},
        try_cast("{{ factor }}" as double) as "{{ factor }}__number"
        {%- endfor %}
        {%- for factor in factors.level %},
        coalesce(cast("{{ factor }}" as varchar), '(missing)') as "{{ factor }}__level"
        {%- endfor %}
    from {{ ref('stg_registry__cases') }}
    where {{ site_in(sites) }}
),

versions as (
    select model_version, measure_id from {{ source('models', 'model_versions') }}
    where is_current
),

coefficients as (
    select coefficients.*
    from {{ source('models', 'coefficients') }} as coefficients
    inner join versions using (model_version, measure_id)
),

level_betas as (
    select measure_id, variable, estimate, unnest(from_json(levels, '["VARCHAR"]')) as level_key
    from coefficients
    where kind in ('level', 'reference')
),

weights as (
    select
        measure_id,
        coalesce(sum(estimate) filter (where kind = 'intercept'), 0) as intercept
        {%- for factor in factors.numeric %},
        coalesce(sum(estimate) filter (where variable = '{{ factor }}' and kind in ('numeric', 'boolean')), 0)
            as "{{ factor }}__beta",
        coalesce(max(impute_value) filter (where variable = '{{ factor }}' and kind in ('numeric', 'boolean')), 0)
            as "{{ factor }}__impute",
        coalesce(sum(estimate) filter (where variable = '{{ factor }}' and kind = 'missing_indicator'), 0)
            as "{{ factor }}__missing_beta"
        {%- endfor %}
    from coefficients
    group by measure_id
),

scored as (
    select
        outcomes.site_id,
        outcomes.case_id,
        outcomes.period,
        cases.operation_date,
        outcomes.measure_id,
        versions.model_version,
        outcomes.is_event,
        weights.intercept
        {%- for factor in factors.numeric %}
            + weights."{{ factor }}__beta" * coalesce(cases."{{ factor }}__number", weights."{{ factor }}__impute")
            + weights."{{ factor }}__missing_beta" * cast(cases."{{ factor }}__number" is null as double)
        {%- endfor %}
        {%- for factor in factors.level %}
            + coalesce("{{ factor }}__level_beta".estimate, 0)
        {%- endfor %}
            as linear_predictor
    from outcomes
    inner join versions using (measure_id)
    inner join weights using (measure_id)
    inner join cases using (site_id, case_id)
    {%- for factor in factors.level %}
    left join level_betas as "{{ factor }}__level_beta"
        on "{{ factor }}__level_beta".measure_id = outcomes.measure_id
        and "{{ factor }}__level_beta".variable = '{{ factor }}'
        and "{{ factor }}__level_beta".level_key = cases."{{ factor }}__level"
    {%- endfor %}
)

select
    site_id,
    case_id,
    period,
    operation_date,
    measure_id,
    model_version,
    is_event,
    linear_predictor,
    1 / (1 + exp(-linear_predictor)) as expected_probability,
    to_build.site_fingerprint
from scored
inner join to_build using (site_id)
