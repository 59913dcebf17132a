"""The refit policy: a small resubmission keeps the current risk models, a large change refits them.

A small warehouse holds exactly the tables the ``risk_models`` asset reads
(staged cases, case outcomes, current submissions and grades), built from a
synthetic collaborative; a "resubmission" rewrites one or more site-periods.
See docs/decisions/risk-model-refit.md.
"""

import dataclasses

import duckdb
import pandas as pd
import pytest

from orchestration.riskmodels.refresh import refresh_models
from orchestration.riskmodels.store import FINGERPRINTS, current_fingerprints
from orchestration.synth import generate_collaborative
from support import demo_registry

pytestmark = pytest.mark.filterwarnings("ignore:fit_logistic:RuntimeWarning")


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    registry = demo_registry()
    out = tmp_path_factory.mktemp("synth")
    generate_collaborative(registry, out, cases=4000, sites=10, periods=4, seed=3, defects=False)
    return pd.read_parquet(out / "truth" / "cases.parquet")


def with_policy(registry, **settings):
    return dataclasses.replace(registry, policy=registry.policy.model_copy(update=settings))


class Warehouse:
    """The asset's inputs in an in-memory DuckDB; ``resubmit`` replaces site-periods."""

    def __init__(self, registry, truth, site_fingerprints=True):
        self.registry = registry
        self.site_fingerprints = site_fingerprints   # the case outcomes carry each site's input fingerprint
        self.cases = truth.copy()
        self.submission = {key: 1 for key in self.site_periods().index}
        self.con = duckdb.connect()
        self.con.execute("create schema staging; create schema intermediate; create schema intake; "
                         "create schema quality")
        self.load()

    def site_periods(self) -> pd.Series:
        """Counted cases of the mortality measure per (site_id, period), smallest first."""
        counted = self.cases[self.cases["denominator_mortality_30d"]]
        return counted.groupby(["site_id", "period"]).size().sort_values(kind="stable")

    def load(self):
        factors = list(dict.fromkeys(f for m in self.registry.measures for f in m.risk_factors))
        staged = self.cases[["site_id", "case_id", "period", *factors]]
        outcomes = pd.concat([
            pd.DataFrame({"site_id": self.cases["site_id"], "case_id": self.cases["case_id"],
                          "period": self.cases["period"], "measure_id": m.id,
                          "is_event": self.cases[f"y_{m.id}"].astype(bool),
                          "is_counted": self.cases[f"denominator_{m.id}"].astype(bool)})
            for m in self.registry.measures], ignore_index=True)
        submissions = pd.DataFrame([{"site_id": s, "period": p, "submission_id": f"{s}-{p}-v{v}"}
                                    for (s, p), v in self.submission.items()])
        if self.site_fingerprints:     # as dbt's case outcomes: a hash of the site's submissions
            inputs = submissions.sort_values("period").groupby("site_id")["submission_id"].agg(",".join)
            outcomes["site_fingerprint"] = outcomes["site_id"].map(inputs.map(lambda text: str(hash(text))))
        grades = submissions[["site_id", "period"]].assign(status="green")
        for name, frame in [("staging.stg_registry__cases", staged), ("intermediate.int_case_outcomes", outcomes),
                            ("intake.current_submission_periods", submissions),
                            ("quality.site_period_status", grades)]:
            self.con.register("_frame", frame)
            self.con.execute(f"create or replace table {name} as select * from _frame")
            self.con.unregister("_frame")

    def resubmit(self, site_periods):
        """A new file for each site-period: every case's age goes up by a year (a corrected date of birth)."""
        for site_id, period in site_periods:
            rows = (self.cases["site_id"] == site_id) & (self.cases["period"] == period)
            self.cases.loc[rows, "age_years"] += 1
            self.submission[(site_id, period)] += 1
        self.load()

    def refresh(self, registry=None, code=""):
        return refresh_models(self.con, registry or self.registry, code=code)

    def fingerprints(self, code="") -> pd.DataFrame:
        """The current case fingerprints per measure and site-period, as the refit decision reads them."""
        current_fingerprints(self.con, self.registry, code=code)
        return self.con.execute(f"select measure_id, site_id, period, cases, fingerprint::varchar as fingerprint "
                                f"from {FINGERPRINTS} order by all").df()

    def current(self) -> dict[str, str]:
        return dict(self.con.execute("select measure_id, model_version from models.model_versions "
                                     "where is_current").fetchall())

    def version_count(self) -> int:
        return self.con.execute("select count(*) from models.model_versions").fetchone()[0]

    def share(self, site_periods) -> float:
        sizes = self.site_periods()
        return sum(sizes[key] for key in site_periods) / sizes.sum()


def small_and_large(warehouse, threshold=0.05):
    """Site-periods whose cases are under the threshold (the smallest one) and over it (the largest ones)."""
    sizes = warehouse.site_periods()
    small = [sizes.index[0]]
    large, total = [], 0
    for key, n in sizes[::-1].items():
        large.append(key)
        total += n
        if total / sizes.sum() > 2 * threshold:
            break
    assert warehouse.share(small) < threshold < warehouse.share(large)
    return small, large


@pytest.fixture
def warehouse(truth):
    registry = with_policy(demo_registry(), risk_model_refit_min_change=0.05)
    warehouse = Warehouse(registry, truth)
    first = warehouse.refresh()
    assert len(first.fitted) == len(registry.measures)
    assert all(d.refit and d.reason == "first fit" for d in first.decisions.values())
    return warehouse


def test_a_resubmission_changing_a_small_share_of_cases_keeps_the_current_versions(warehouse):
    before, count = warehouse.current(), warehouse.version_count()
    small, _ = small_and_large(warehouse)
    warehouse.resubmit(small)
    refresh = warehouse.refresh()
    assert refresh.fitted == []
    assert warehouse.current() == before
    assert warehouse.version_count() == count
    assert sorted(refresh.kept) == sorted(before.values())
    decision = refresh.decisions["mortality_30d"]
    changed = warehouse.site_periods()[small[0]]
    assert decision.changed_cases == changed
    assert decision.reason.startswith(f"kept {before['mortality_30d']}: {changed:,} of ")
    assert decision.reason.endswith("< 5%)")


def test_a_change_above_the_threshold_refits(warehouse):
    before = warehouse.current()
    _, large = small_and_large(warehouse)
    warehouse.resubmit(large)
    refresh = warehouse.refresh()
    assert len(refresh.fitted) == len(warehouse.registry.measures)
    after = warehouse.current()
    assert set(after.values()).isdisjoint(before.values())
    assert refresh.decisions["mortality_30d"].reason.startswith("refitted: ")


def test_small_changes_add_up_until_they_cross_the_threshold(warehouse):
    """Changes are counted against the data the kept version was fitted on, not the previous run."""
    before = warehouse.current()
    sizes = warehouse.site_periods()
    changed = []
    for key in sizes.index:
        if warehouse.share(changed + [key]) >= 0.05:
            break
        changed.append(key)
        warehouse.resubmit([key])
        assert warehouse.refresh().fitted == [] and warehouse.current() == before
    warehouse.resubmit([key])
    assert warehouse.refresh().decisions["mortality_30d"].refit
    assert warehouse.current()["mortality_30d"] != before["mortality_30d"]


def test_a_new_registry_version_refits_even_when_nothing_changed(warehouse):
    before = warehouse.current()
    registry = dataclasses.replace(warehouse.registry, version=warehouse.registry.version + "-b")
    refresh = warehouse.refresh(registry)
    assert len(refresh.fitted) == len(registry.measures)
    assert refresh.decisions["mortality_30d"].reason.startswith("registry version changed")
    current = warehouse.con.execute("select distinct registry_version from models.model_versions "
                                    "where is_current").fetchall()
    assert current == [(registry.version,)]
    assert set(warehouse.current().values()).isdisjoint(before.values())


def test_a_new_reporting_window_refits(warehouse):
    registry = warehouse.registry
    shorter = dataclasses.replace(registry, calendar=registry.calendar.model_copy(
        update={"last_period": registry.periods[-2].period}))
    refresh = warehouse.refresh(shorter)
    assert len(refresh.fitted) == len(registry.measures)
    assert refresh.decisions["mortality_30d"].reason.startswith("reporting window changed")


def test_threshold_zero_refits_whenever_anything_changed(warehouse):
    registry = with_policy(warehouse.registry, risk_model_refit_min_change=0.0)
    unchanged = warehouse.refresh(registry)
    assert unchanged.fitted == [], "nothing changed: nothing to refit whatever the threshold"
    before = warehouse.current()
    small, _ = small_and_large(warehouse)
    warehouse.resubmit(small)
    refresh = warehouse.refresh(registry)
    assert len(refresh.fitted) == len(registry.measures)
    assert set(warehouse.current().values()).isdisjoint(before.values())


def test_the_same_file_sent_again_keeps_the_versions(warehouse):
    """A new submission id with the same cases changes the data version, not what the models were fitted on."""
    before = warehouse.current()
    key = warehouse.site_periods().index[-1]
    warehouse.submission[key] += 1
    warehouse.load()
    refresh = warehouse.refresh()
    assert refresh.fitted == [] and warehouse.current() == before
    assert refresh.decisions["mortality_30d"].reason.endswith("no counted case changed")


def test_models_are_fitted_under_duckdbs_fitting_memory_limit_and_the_limit_is_restored(truth, monkeypatch):
    """The fit holds the design matrix in Python beside DuckDB: DuckDB gets the smaller fitting limit then."""
    from orchestration.riskmodels import refresh

    monkeypatch.setenv("CQI_DUCKDB_FITTING_MEMORY_LIMIT", "300MB")
    monkeypatch.setenv("CQI_DUCKDB_MEMORY_LIMIT", "2GB")
    warehouse = Warehouse(demo_registry(), truth)
    warehouse.con.execute("set memory_limit = '2GB'")   # as connect() opens it
    limit = lambda: warehouse.con.execute("select current_setting('memory_limit')").fetchone()[0]  # noqa: E731
    seen, read = [], refresh.counted_cases
    monkeypatch.setattr(refresh, "counted_cases", lambda con, *a, **k: seen.append(limit()) or read(con, *a, **k))
    before = limit()
    assert len(warehouse.refresh().fitted) == len(demo_registry().measures)
    assert seen == ["286.1 MiB"] * len(demo_registry().measures)
    assert limit() == before == "1.8 GiB"       # 2 GB


def test_case_fingerprints_kept_per_site_equal_a_scan_of_every_case(warehouse, truth):
    small, large = small_and_large(warehouse)
    for change in (small, large[:2]):
        warehouse.resubmit(change)
        kept = warehouse.fingerprints()
        scanned = Warehouse(warehouse.registry, warehouse.cases, site_fingerprints=False).fingerprints()
        assert len(kept) == len(scanned) > 0
        pd.testing.assert_frame_equal(kept, scanned)
    # a site whose outcome rows carry two fingerprints (a build cut short) is read, not stored
    site = small[0][0]
    warehouse.con.execute("update intermediate.int_case_outcomes set site_fingerprint = 'other' "
                          "where site_id = ? and period = ?", [site, small[0][1]])
    pd.testing.assert_frame_equal(warehouse.fingerprints(), scanned)
    stored = {s for (s,) in warehouse.con.execute("select site_id from models.fingerprinted_sites").fetchall()}
    assert site not in stored and len(stored) == warehouse.cases["site_id"].nunique() - 1


def test_only_sites_whose_inputs_changed_have_their_cases_read_again(warehouse):
    """A site's cases are read again when its input fingerprint or the code moves, not otherwise."""
    sites = sorted(warehouse.cases["site_id"].unique())
    untouched, resubmitted = sites[0], sites[1]
    before = warehouse.fingerprints().set_index(["measure_id", "site_id", "period"])
    warehouse.resubmit([(resubmitted, period) for period in sorted(warehouse.cases["period"].unique())])
    # the stored fingerprints of a site stand for its cases: change them behind the site fingerprint's back
    warehouse.con.execute("update staging.stg_registry__cases set age_years = age_years + 1 where site_id = ?",
                          [untouched])
    after = warehouse.fingerprints().set_index(["measure_id", "site_id", "period"])
    site = after.index.get_level_values("site_id")
    assert after[site == untouched].equals(before[before.index.get_level_values("site_id") == untouched])
    assert (after[site == resubmitted]["fingerprint"]
            != before[before.index.get_level_values("site_id") == resubmitted]["fingerprint"]).all()
    assert after[~site.isin([untouched, resubmitted])].equals(
        before[~before.index.get_level_values("site_id").isin([untouched, resubmitted])])
    # another dbt project (code) reads every site again, the altered one included
    rescanned = warehouse.fingerprints(code="edited").set_index(["measure_id", "site_id", "period"])
    aged = after.index.get_level_values("measure_id").isin(
        [m.id for m in warehouse.registry.measures if "age_years" in m.risk_factors])
    assert aged.any()
    altered = (site == untouched) & aged
    assert (rescanned[altered]["fingerprint"] != after[altered]["fingerprint"]).all()
    assert rescanned[~aged].equals(after[~aged])


def test_a_first_fit_fingerprints_the_cases_it_staged_and_finds_what_the_case_view_gives(truth, monkeypatch):
    """With no current model the cases are staged first and fingerprinted from that copy (one read of the
    case view, not two); the fingerprints are those the case view gives, so the next refresh keeps every
    model."""
    from orchestration.riskmodels import refresh as refresh_module

    warehouse = Warehouse(with_policy(demo_registry(), risk_model_refit_min_change=0.05), truth)
    read, real = [], refresh_module.current_fingerprints
    monkeypatch.setattr(refresh_module, "current_fingerprints",
                        lambda con, registry, cases, code: read.append(cases) or real(con, registry, cases=cases,
                                                                                       code=code))
    first = warehouse.refresh()
    assert read == [refresh_module.MODEL_CASES] and len(first.fitted) == len(warehouse.registry.measures)
    from_staged = warehouse.con.execute(f"select measure_id, site_id, period, cases, fingerprint::varchar as "
                                        f"fingerprint from {FINGERPRINTS} order by all").df()
    second = warehouse.refresh()
    assert read[1] == refresh_module.STAGED_CASES, "with current models only changed sites are read, from the view"
    assert second.fitted == [] and all(not d.refit for d in second.decisions.values())
    warehouse.con.execute("delete from models.fingerprinted_sites")    # recompute every site through the view
    pd.testing.assert_frame_equal(warehouse.fingerprints(), from_staged)


def test_measures_fitted_two_at_a_time_give_the_models_fitted_one_at_a_time(truth, monkeypatch):
    """Two fits at once (a state collaborative's measures) store the same coefficients and quality, to the
    last bit, as one at a time; the case-count setting decides, and a measure over it fits alone."""
    from orchestration.riskmodels import refresh as refresh_module

    monkeypatch.setattr(refresh_module.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    used, real = [], refresh_module.fit_measures
    monkeypatch.setattr(refresh_module, "fit_measures",
                        lambda *args: used.append(args[-1]) or real(*args))
    stored = {}
    for limit in (0, 10**9):
        monkeypatch.setenv("CQI_PARALLEL_FIT_MAX_CASES", str(limit))
        warehouse = Warehouse(demo_registry(), truth)
        refresh = warehouse.refresh()
        assert len(refresh.fitted) == len(warehouse.registry.measures) >= 2
        stored[limit] = (warehouse.con.execute("select * exclude (model_version) from models.coefficients "
                                               "order by all").df(), [m.quality for m in refresh.fitted])
    assert used == [1, 2]
    pd.testing.assert_frame_equal(stored[0][0], stored[10**9][0], check_exact=True)
    assert stored[0][1] == stored[10**9][1]

    largest = int(truth["denominator_mortality_30d"].sum())
    monkeypatch.setenv("CQI_PARALLEL_FIT_MAX_CASES", str(largest - 1))
    assert Warehouse(demo_registry(), truth).refresh().fitted and used[-1] == 1, "a measure over the limit"
