{#- Data tests of the site-incremental models (and of the case view they
    read) test only the sites they have not yet passed with those sites'
    current rows.

    An incremental build rewrites only the sites whose fingerprint moved
    (site_fingerprints.sql), yet each data test read the whole table: at M
    scale most of a resubmission's dbt test time went to re-testing 4 million
    rows that had not changed. A test whose verdict is a verdict on each
    site's rows on their own (``site_local_test``: row tests, and uniqueness
    over columns that include site_id) now reads only the sites it has not
    passed at their current fingerprint:

    - every site-incremental model, and stg_registry__cases, records after
      each build its sites' fingerprints (``record_site_fingerprints``, a
      post-hook);
    - at the end of a run, each such test that passed records those
      fingerprints as passed (``record_site_test_passes``, on-run-end);
    - ``get_where_subquery`` (dbt's hook for a test's model) leaves out the
      model's sites with a pass at their current fingerprint: the test reads
      every other row, those of a site without a recorded fingerprint or
      with no site included.

    A test that fails or warns records nothing: its sites stay untested and
    it keeps failing until they are fixed. Passes are kept under the code of
    the dbt project (CQI_DBT_CODE, set by the pipeline from the project's
    files and dbt's version): an edited test, macro or model, a full refresh,
    or a dbt run without CQI_DBT_CODE (an analyst's own ``dbt test``) tests
    every row. -#}

{#- The state tables (on-run-start). A full refresh forgets every pass. -#}
{% macro create_site_test_state() %}
    create schema if not exists dbt_state;
    create table if not exists dbt_state.site_fingerprints (
        model_id varchar, site_id varchar, site_fingerprint varchar);
    create table if not exists dbt_state.passed_site_tests (
        test_id varchar, project_code varchar, site_id varchar, site_fingerprint varchar);
    {%- if flags.FULL_REFRESH %}
    delete from dbt_state.passed_site_tests;
    {%- endif %}
{% endmacro %}

{#- Post-hook of a model whose rows of a site depend only on that site's
    inputs: the fingerprint of each of its sites. By default the fingerprints
    its rows carry (the site-incremental models); a view passes the query of
    its sites' fingerprints. -#}
{% macro record_site_fingerprints(fingerprints=none) %}
    delete from dbt_state.site_fingerprints where model_id = '{{ model.unique_id }}';
    insert into dbt_state.site_fingerprints
    {%- if fingerprints %}
    select '{{ model.unique_id }}', site_id, site_fingerprint from ({{ fingerprints }})
    {%- else %}
    select '{{ model.unique_id }}', site_id, any_value(site_fingerprint)
    from {{ this }}
    group by site_id
    {%- endif %}
{% endmacro %}

{%- macro project_code() -%}
    {{- return(env_var('CQI_DBT_CODE', '')) -}}
{%- endmacro %}

{#- The model a test reads when that model records its sites' fingerprints
    and the test's verdict is a verdict on each site's rows alone; none
    otherwise. -#}
{% macro site_local_test(test) %}
    {%- set attached = graph.get('nodes', {}).get(test.attached_node or '') if test.resource_type == 'test' else none -%}
    {#- graph nodes are dictionaries, their config keyed as in manifest.json -#}
    {%- set hooks = attached.config['post-hook'] | map(attribute='sql') | join(' ') if attached else '' -%}
    {%- if 'record_site_fingerprints' not in hooks or not test.test_metadata -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set name, kwargs = test.test_metadata.name, test.test_metadata.kwargs -%}
    {%- if name in ('not_null', 'not_null_columns', 'accepted_values', 'relationships')
          or (name == 'unique_combination' and 'site_id' in kwargs.get('columns', [])) -%}
        {{- return(attached) -}}
    {%- endif -%}
    {{- return(none) -}}
{% endmacro %}

{#- The sites of the model this test reads that it has passed at their
    current fingerprint (rows of any other site, or with no site, are read);
    none when no site is. -#}
{% macro passed_sites(relation) %}
    {%- if not execute or not project_code() or flags.FULL_REFRESH -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set attached = site_local_test(model) -%}
    {%- if not attached or relation.identifier | lower != attached.alias | lower -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set query -%}
        select fingerprints.site_id
        from dbt_state.site_fingerprints as fingerprints
        inner join dbt_state.passed_site_tests as passed
            on passed.site_id = fingerprints.site_id
            and passed.site_fingerprint = fingerprints.site_fingerprint
        where fingerprints.model_id = '{{ attached.unique_id }}'
            and passed.test_id = '{{ model.unique_id }}'
            and passed.project_code = '{{ project_code() }}'
        order by fingerprints.site_id
    {%- endset -%}
    {%- set sites = run_query(query).columns[0].values() | list -%}
    {{- return(sites if sites else none) -}}
{% endmacro %}

{#- dbt's own get_where_subquery (a test's ``where`` config), without the sites already passed. -#}
{% macro default__get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set passed = passed_sites(relation) -%}
    {%- if passed -%}
        {#- list_contains, not ``not in (...)``: DuckDB compares every row with each listed site in turn
            (0.8 s over the 4 million rows of int_case_outcomes at M, against 0.02 s) -#}
        {%- do conditions.append("(site_id is null or not list_contains(['" ~ passed | join("', '") ~ "'], site_id))") -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- On-run-end: each site-local test that passed has passed every site of its
    model at the site's current fingerprint. -#}
{% macro record_site_test_passes(results) %}
    {%- if not execute or not project_code() -%}
        {{- return('') -}}
    {%- endif -%}
    {%- set passed = [] -%}
    {%- for result in results if result.node.resource_type == 'test' and result.status == 'pass' -%}
        {%- set attached = site_local_test(result.node) -%}
        {%- if attached -%}
            {%- do passed.append("('" ~ result.node.unique_id ~ "', '" ~ attached.unique_id ~ "')") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if passed %}
    delete from dbt_state.passed_site_tests
    where test_id in (select test_id from (values {{ passed | join(', ') }}) as passed (test_id, model_id));
    insert into dbt_state.passed_site_tests
    select passed.test_id, '{{ project_code() }}', fingerprints.site_id, fingerprints.site_fingerprint
    from (values {{ passed | join(', ') }}) as passed (test_id, model_id)
    inner join dbt_state.site_fingerprints as fingerprints using (model_id);
    {%- endif %}
{% endmacro %}
