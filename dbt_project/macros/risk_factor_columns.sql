{#- The risk-factor columns the current models use, read from the stored
    coefficients at run time (no model is written into SQL), in two lists:
    ``numeric``, the factors with a coefficient on their value or on their
    missing indicator (numbers and booleans), and ``level``, the factors
    with level coefficients (code lists). A factor in neither list would add
    only zeros to a case's linear predictor, so it is not read at all: the
    wide scoring query then casts and joins only what it uses (at state
    scale 12 of 19 factors have no level, 7 no numeric term).
    ``cqi_risk_factors`` (a unit test's override) gives the two lists. At
    parse time there is no warehouse: one placeholder column keeps the SQL
    valid. -#}
{% macro risk_factor_columns() %}
    {%- if var('cqi_risk_factors', none) is not none -%}
        {{ return(var('cqi_risk_factors')) }}
    {%- elif execute -%}
        {%- set result = run_query(
            "select c.variable, bool_or(c.kind in ('numeric', 'boolean', 'missing_indicator')), "
            ~ "bool_or(c.kind in ('level', 'reference')) from " ~ source('models', 'coefficients') ~ " c join "
            ~ source('models', 'model_versions') ~ " v using (model_version) "
            ~ "where v.is_current and c.variable is not null group by 1 order by 1") -%}
        {{ return({'numeric': result.rows | selectattr(1) | map(attribute=0) | list,
                   'level': result.rows | selectattr(2) | map(attribute=0) | list}) }}
    {%- else -%}
        {{ return({'numeric': ['case_id'], 'level': ['case_id']}) }}
    {%- endif -%}
{% endmacro %}
