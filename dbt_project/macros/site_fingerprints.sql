{#- Incremental by site. A case-level model's rows of one site depend only on
    that site's inputs, so each row carries its site's fingerprint (a hash of
    those inputs plus ``extra``: e.g. the measures' definitions or the current
    model versions, so a change there rebuilds every site). On an incremental
    build ``delete_changed_sites`` (a pre-hook) removes the rows of every site
    whose fingerprint moved, and the model selects only those sites and new
    ones (``site_changes``): a site that did not change is neither read nor
    written. A full build (first run, --full-refresh) does all sites. -#}

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

{#- The sites whose rows an incremental build must delete (``stale``: built
    from other inputs, or gone) and build (``build``: new or stale), from
    ``fingerprints`` (a select of site_id, site_fingerprint) and the
    fingerprints the model's rows carry. Each is a list of sites, or none
    (every site) on a full build or when the table predates fingerprints.

    Worked out when the model is compiled, so the model and its hooks read
    the listed sites by name: DuckDB skips other sites' row groups for
    ``site_id in ('S033')``, but reads every row for ``site_id in (select
    ...)``, and the case view's window runs over every case first (0.3 s to
    1.3 s per model at M, instead of 0.03 s). -#}
{% macro site_changes(relation, fingerprints) %}
    {%- if not execute or not is_incremental()
          or 'site_fingerprint' not in (adapter.get_columns_in_relation(relation) | map(attribute='name') | list) -%}
        {{- return({'stale': none, 'build': none}) -}}
    {%- endif -%}
    {%- set query -%}
        with built as (
            select site_id, min(site_fingerprint) as lowest, max(site_fingerprint) as highest
            from {{ relation }}
            group by site_id
        ),

        now as (
            {{ fingerprints }}
        ),

        compared as (
            select
                coalesce(built.site_id, now.site_id) as site_id,
                built.site_id is not null as is_built,
                now.site_id is not null as is_current,
                is_built and (not is_current or built.lowest is distinct from now.site_fingerprint
                              or built.highest is distinct from now.site_fingerprint) as is_stale
            from built
            full join now on built.site_id = now.site_id
            where coalesce(built.site_id, now.site_id) is not null
        )

        select site_id, is_stale, is_current and (is_stale or not is_built) as is_to_build
        from compared
        where is_stale or (is_current and not is_built)
        order by site_id
    {%- endset -%}
    {%- set rows = run_query(query).rows -%}
    {{- return({'stale': rows | selectattr('is_stale') | map(attribute='site_id') | list,
                'build': rows | selectattr('is_to_build') | map(attribute='site_id') | list}) -}}
{% endmacro %}

{#- ``column in (...)`` of the listed sites, ``false`` for none, ``true`` for every site (none). Site ids
    are plain roster ids (letters, digits, ``_`` and ``-``: SITE_ID in orchestration/intake/receive.py). -#}
{% macro site_in(sites, column='site_id') -%}
    {%- if sites is none -%}true
    {%- elif sites -%}{{ column }} in ('{{ sites | join("', '") }}')
    {%- else -%}false
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook: delete the rows of stale sites and rows without a site. A
    table built before fingerprints existed gets the column and is emptied
    (every site rebuilt). -#}
{% macro delete_changed_sites(relation, fingerprints) %}
    {%- if is_incremental() and 'site_fingerprint' not in (adapter.get_columns_in_relation(relation)
                                                             | map(attribute='name') | list) %}
    alter table {{ relation }} add column site_fingerprint varchar;
    delete from {{ relation }}
    {%- elif is_incremental() %}
    delete from {{ relation }} where site_id is null or {{ site_in(site_changes(relation, fingerprints).stale) }}
    {%- endif %}
{% endmacro %}

{#- The listed sites of ``fingerprints`` (every site when none), with their fingerprints. -#}
{% macro sites_to_build(fingerprints, sites) %}
    select now.site_id, now.site_fingerprint
    from ({{ fingerprints }}) as now
    where {{ site_in(sites, 'now.site_id') }}
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
