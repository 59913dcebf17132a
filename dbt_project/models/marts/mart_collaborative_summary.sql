-- The collaborative per period and measure: who is in, the overall rate,
-- the model that produced the expected counts, and how many sites stand out.
with results as (
    select * from {{ ref('mart_site_results') }}
),

models as (
    select * from {{ source('models', 'model_versions') }}
    where is_current
)

select
    results.period,
    results.measure_id,
    any_value(results.measure_label) as measure_label,
    count(*) as sites_submitting,
    count(*) filter (where results.is_included) as sites_included,
    count(*) filter (where not results.is_included) as sites_not_included,
    count(*) filter (where results.outlier_status in ('high', 'low', 'as_expected')) as sites_ranked,
    sum(results.cases) as cases,
    sum(results.observed) as observed,
    sum(results.expected) as expected,
    sum(results.observed) / nullif(sum(results.cases), 0) as overall_rate,
    count(*) filter (where results.outlier_status = 'high') as high_outliers,
    count(*) filter (where results.outlier_status = 'low') as low_outliers,
    count(*) filter (where results.is_positive_deviant) as positive_deviants,
    any_value(results.funnel_phi) as funnel_phi,
    any_value(results.funnel_tau2) as funnel_tau2,
    any_value(models.model_version) as model_version,
    any_value(models.c_statistic) as c_statistic
from results
left join models on models.measure_id = results.measure_id
group by results.period, results.measure_id
