-- The current version of every case: rows of the latest accepted submission
-- of their site and period. A case number repeated within a site-period
-- keeps its last row (the duplicate itself is a data-quality query).
-- A site's rows depend only on its current submissions: their fingerprints
-- let the data tests skip the sites they passed (macros/site_tested.sql).
{{ config(post_hook="{{ record_site_fingerprints(site_input_fingerprints(model_inputs_checksum())) }}") }}

with cases as (
    select * from {{ source('raw', 'cases') }}
),

current_submissions as (
    select * from {{ source('intake', 'current_submission_periods') }}
),

current_rows as (
    select cases.*
    from cases
    inner join current_submissions
        on cases.submission_id = current_submissions.submission_id
        and cases.period = current_submissions.period
),

deduplicated as (
    select *
    from current_rows
    qualify row_number() over (partition by site_id, case_id order by period desc, row_number desc) = 1
)

select * from deduplicated
