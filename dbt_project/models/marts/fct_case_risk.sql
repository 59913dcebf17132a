-- Each counted case's expected probability of each measure's event, scored
-- from the current stored coefficients alone:
-- logit(p) = intercept + sum(beta * value, missing values imputed with the
-- stored median) + sum(beta of missing indicators) + beta of the case's level
-- group for each code list (0 for the reference and for unseen levels).
with outcomes as (
    select * from {{ ref('int_case_outcomes') }}
    where is_counted
),

cases as (
    select site_id, case_id, operation_date from {{ ref('stg_registry__cases') }}
),

factor_values as (
    select * from {{ ref('int_case_risk_factor_values') }}
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

level_map as (
    select measure_id, variable, estimate, unnest(from_json(levels, '["VARCHAR"]')) as level_key
    from coefficients
    where kind in ('level', 'reference')
),

categorical_variables as (
    select distinct measure_id, variable from level_map
),

contributions as (
    select outcomes.site_id, outcomes.case_id, outcomes.measure_id, coefficients.estimate as contribution
    from outcomes
    inner join coefficients on coefficients.measure_id = outcomes.measure_id and coefficients.kind = 'intercept'

    union all

    select outcomes.site_id, outcomes.case_id, outcomes.measure_id,
        coefficients.estimate * coalesce(factor_values.numeric_value, coefficients.impute_value)
    from outcomes
    inner join coefficients
        on coefficients.measure_id = outcomes.measure_id and coefficients.kind in ('numeric', 'boolean')
    inner join factor_values
        on factor_values.site_id = outcomes.site_id and factor_values.case_id = outcomes.case_id
        and factor_values.variable = coefficients.variable

    union all

    select outcomes.site_id, outcomes.case_id, outcomes.measure_id,
        coefficients.estimate * cast(factor_values.numeric_value is null as double)
    from outcomes
    inner join coefficients
        on coefficients.measure_id = outcomes.measure_id and coefficients.kind = 'missing_indicator'
    inner join factor_values
        on factor_values.site_id = outcomes.site_id and factor_values.case_id = outcomes.case_id
        and factor_values.variable = coefficients.variable

    union all

    select outcomes.site_id, outcomes.case_id, outcomes.measure_id, coalesce(level_map.estimate, 0)
    from outcomes
    inner join categorical_variables on categorical_variables.measure_id = outcomes.measure_id
    inner join factor_values
        on factor_values.site_id = outcomes.site_id and factor_values.case_id = outcomes.case_id
        and factor_values.variable = categorical_variables.variable
    left join level_map
        on level_map.measure_id = outcomes.measure_id and level_map.variable = factor_values.variable
        and level_map.level_key = factor_values.level_key
),

scored as (
    -- Summed in fixed point (units of 1e-12, exact integer addition): DuckDB adds
    -- a case's terms in no fixed order, and a floating-point sum then differs in
    -- the last bits between builds; integers add up the same in any order. An
    -- ordered sum would too, but cannot spill and ran out of memory at 1M cases.
    select site_id, case_id, measure_id,
        cast(sum(cast(round(contribution * 1e12) as hugeint)) as double) / 1e12 as linear_predictor
    from contributions
    group by site_id, case_id, measure_id
)

select
    outcomes.site_id,
    outcomes.case_id,
    outcomes.period,
    cases.operation_date,
    outcomes.measure_id,
    versions.model_version,
    outcomes.is_event,
    scored.linear_predictor,
    1 / (1 + exp(-scored.linear_predictor)) as expected_probability
from outcomes
inner join scored using (site_id, case_id, measure_id)
inner join versions using (measure_id)
inner join cases using (site_id, case_id)
