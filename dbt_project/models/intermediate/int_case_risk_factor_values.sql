-- One row per counted case and risk factor of the current models: the value
-- as a number (numbers and booleans; null when missing or not numeric) and as
-- a level key (code lists; '(missing)' when blank). Scoring joins these to
-- the stored coefficients, so the model lives in a table, not in SQL.
-- depends_on: {{ source('models', 'coefficients') }}
-- depends_on: {{ source('models', 'model_versions') }}
{%- set factors = risk_factor_columns() %}

with cases as (
    select * from {{ ref('stg_registry__cases') }}
),

long_values as (
    {% for factor in factors %}
    select
        site_id,
        case_id,
        '{{ factor }}' as variable,
        try_cast("{{ factor }}" as double) as numeric_value,
        coalesce(cast("{{ factor }}" as varchar), '(missing)') as level_key
    from cases
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select * from long_values
