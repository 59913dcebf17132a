{#- Incremental by site. A case-level model's rows of one site depend only on
    that site's inputs, so each row carries its site's fingerprint (a hash of
    those inputs plus ``extra``: e.g. the measures' definitions or the current
    model versions, so a change there rebuilds every site). On an incremental
    build ``delete_changed_sites`` (a pre-hook) removes the rows of every site
    whose fingerprint moved, and the model selects only sites without rows:
    a site that did not change is neither read nor written. A full build
    (first run, --full-refresh) does all sites. -#}

{#- One row per site with the fingerprint of its current submission and
    quality grade for each period and its blinded code. -#}
{% macro site_input_fingerprints(extra) %}
    select
        site_id,
        md5({{ extra }} || '|' || coalesce(any_value(sites.blinded_code), '-') || '|' || string_agg(
            period || '=' || coalesce(submission_id, '-') || '/' || coalesce(quality_status, '-')
            || '/' || coalesce(cast(is_included as varchar), '-'),
            ',' order by period)) as site_fingerprint
    from {{ source('intake', 'current_submission_periods') }}
    full join {{ ref('stg_quality__site_periods') }} using (site_id, period)
    left join {{ ref('stg_registry__sites') }} as sites using (site_id)
    group by site_id
{% endmacro %}

{#- Pre-hook: delete the rows of sites whose fingerprint differs from
    ``fingerprints`` (a select of site_id, site_fingerprint), and of sites gone.
    A table built before fingerprints existed gets the column and is emptied
    (every site rebuilt). -#}
{% macro delete_changed_sites(relation, fingerprints) %}
    {%- if is_incremental() and 'site_fingerprint' not in (adapter.get_columns_in_relation(relation)
                                                             | map(attribute='name') | list) %}
    alter table {{ relation }} add column site_fingerprint varchar;
    delete from {{ relation }}
    {%- elif is_incremental() %}
    delete from {{ relation }} as built
    where not exists (
        select 1 from ({{ fingerprints }}) as now
        where now.site_id = built.site_id and now.site_fingerprint = built.site_fingerprint
    )
    {%- endif %}
{% endmacro %}

{#- The sites of ``fingerprints`` that have no rows in the model (all of them on a full build). -#}
{% macro sites_to_build(relation, fingerprints) %}
    select now.site_id, now.site_fingerprint
    from ({{ fingerprints }}) as now
    {%- if is_incremental() %}
    where not exists (select 1 from {{ relation }} as built where built.site_id = now.site_id)
    {%- endif %}
{% endmacro %}

{#- What every site's rows also depend on: this model's own SQL (an edited
    model rebuilds every site) and ``inputs`` (text: definitions it reads). -#}
{% macro model_inputs_checksum(inputs='') %}
    {{- return("'" ~ local_md5(model.checksum.checksum ~ '|' ~ inputs) ~ "'") -}}
{% endmacro %}

{#- Fingerprints of int_case_outcomes: site inputs, the measures, the model's SQL. -#}
{% macro case_outcome_fingerprints() %}
    {%- set measures_text %}{% for measure in registry_measures() %}{{ measure | join('|') }};{% endfor %}{% endset -%}
    {{ site_input_fingerprints(model_inputs_checksum(measures_text)) }}
{% endmacro %}

{#- Fingerprints of the models built on scored cases (fct_case_risk,
    int_site_period_outcomes): the site's case outcomes, the current model
    versions, the model's SQL. -#}
{% macro scored_site_fingerprints() %}
    select
        site_id,
        md5(coalesce(any_value(site_fingerprint), '-') || '|' || {{ model_inputs_checksum() }} || '|' || (
            select coalesce(string_agg(measure_id || '=' || model_version, ',' order by measure_id), '-')
            from {{ source('models', 'model_versions') }} where is_current
        )) as site_fingerprint
    from {{ ref('int_case_outcomes') }}
    group by site_id
{% endmacro %}
