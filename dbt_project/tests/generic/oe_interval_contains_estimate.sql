{#- Fails for every included row whose O/E lies outside its own intervals,
    or whose 99.8% interval does not contain its 95% interval. -#}
{% test oe_interval_contains_estimate(model) %}
select *
from {{ model }}
where is_included and cases > 0 and (
    oe < oe_lower_95 or oe > oe_upper_95
    or oe_lower_998 > oe_lower_95 or oe_upper_998 < oe_upper_95
)
{% endtest %}
