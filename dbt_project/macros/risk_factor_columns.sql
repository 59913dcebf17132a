{#- The risk-factor columns the current models use, read from the stored
    coefficients at run time (no model is written into SQL). At parse time
    there is no warehouse: one placeholder column keeps the SQL valid. -#}
{% macro risk_factor_columns() %}
    {%- if var('cqi_risk_factors', none) is not none -%}
        {{ return(var('cqi_risk_factors')) }}
    {%- elif execute -%}
        {%- set result = run_query(
            "select distinct c.variable from " ~ source('models', 'coefficients') ~ " c join "
            ~ source('models', 'model_versions') ~ " v using (model_version) "
            ~ "where v.is_current and c.variable is not null order by 1") -%}
        {{ return(result.columns[0].values() | list) }}
    {%- else -%}
        {{ return(['case_id']) }}
    {%- endif -%}
{% endmacro %}
