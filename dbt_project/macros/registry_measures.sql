{#- The registry's measures as rows (measure_id, event_sql, denominator_sql,
    exclusion_sql), read from the warehouse at run time so that no measure is
    written into a model. At parse time there is no warehouse to read: one
    placeholder measure keeps the compiled SQL valid. Unit tests pass their
    own measures as the variable cqi_measures. -#}
{% macro registry_measures() %}
    {%- if var('cqi_measures', none) is not none -%}
        {{ return(var('cqi_measures')) }}
    {%- elif execute -%}
        {%- set result = run_query(
            "select measure_id, event_sql, denominator_sql, exclusion_sql from "
            ~ source('registry', 'measures') ~ " order by measure_id") -%}
        {{ return(result.rows) }}
    {%- else -%}
        {{ return([('placeholder', 'false', 'true', 'cast(null as varchar)')]) }}
    {%- endif -%}
{% endmacro %}
