{#- Fails once for every null cell among ``columns``; each failing row names its column.

    One test per model instead of one ``not_null`` per column: dbt's cost per
    test node (compiling, the query of the sites already passed, the run
    result and Dagster's check evaluation) was 25 to 55 ms whatever the test
    read, 41 of the 58 data tests of an incremental cycle were ``not_null``,
    and the columns are read in one pass (docs/decisions/cycle-fixed-costs.md,
    stop 21). -#}
{% test not_null_columns(model, columns) %}
select null_column
from (
    select unnest([
        {%- for column in columns %}
        case when {{ column }} is null then '{{ column }}' end{{ ',' if not loop.last }}
        {%- endfor %}
    ]) as null_column
    from {{ model }}
    where {% for column in columns %}{{ column }} is null{{ ' or ' if not loop.last }}{% endfor %}
)
where null_column is not null
{% endtest %}
