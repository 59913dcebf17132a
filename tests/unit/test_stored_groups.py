"""Group results read back from the last build are the results a new build computes; only changed groups are redone."""

import sys

import pandas as pd
import pytest

from orchestration.riskmodels import stored_groups
from orchestration.riskmodels.results import funnel_curves, site_results
from orchestration.riskmodels.stored_groups import FOLDER_NAME, StoredGroups
from support import demo_registry
from test_stored_fits import MEASURES, site_periods

GROUPS = 6   # 2 measures x 3 periods


@pytest.fixture
def policy():
    return demo_registry().policy


@pytest.fixture
def computed(monkeypatch):
    """The (measure, period) groups computed, as (measure_id, period)."""
    calls = []
    results = sys.modules["orchestration.riskmodels.results"]
    real = results._one_group

    def counted(group, *args, **kwargs):
        calls.append((group["measure_id"].iloc[0], group["period"].iloc[0]))
        return real(group, *args, **kwargs)

    monkeypatch.setattr(results, "_one_group", counted)
    return calls


def _assert_same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal to the last bit, with the same dtypes and the same Python type of every value."""
    pd.testing.assert_frame_equal(left, right, check_exact=True)
    for column in left.columns:
        assert [type(v) for v in left[column]] == [type(v) for v in right[column]], column


def _with_a_group_without_included_sites(frame: pd.DataFrame) -> pd.DataFrame:
    """A third measure whose only period has no included site: no curve, no statistics."""
    extra = frame[(frame["measure_id"] == "m") & (frame["period"] == "2025Q1")].assign(measure_id="x",
                                                                                        is_included=False)
    return pd.concat([frame, extra], ignore_index=True)


MEASURES_X = pd.concat([MEASURES, pd.DataFrame({"measure_id": ["x"], "label": ["Other"],
                                                "direction": ["higher_is_better"]})], ignore_index=True)


def test_results_read_back_equal_fresh_results_to_the_last_bit(tmp_path, policy, computed):
    frame = _with_a_group_without_included_sites(site_periods())
    fresh, fresh_curves = site_results(frame, MEASURES_X, policy)
    first = StoredGroups(tmp_path / FOLDER_NAME)
    results, curves = site_results(frame, MEASURES_X, policy, groups=first)
    first.save()
    computed.clear()
    again = StoredGroups(tmp_path / FOLDER_NAME)
    read_back, read_back_curves = site_results(frame, MEASURES_X, policy, groups=again)
    assert computed == [] and again.reused == GROUPS + 1
    for result in (results, read_back):
        _assert_same(result, fresh)
    for curve in (curves, read_back_curves, funnel_curves(frame, MEASURES_X, policy, groups=again)):
        _assert_same(curve, fresh_curves)
    assert not fresh.query("measure_id == 'x'").empty and fresh_curves.query("measure_id == 'x'").empty


def test_a_resubmitted_site_period_recomputes_only_its_own_groups(tmp_path, policy, computed):
    frame = site_periods()
    stored = StoredGroups(tmp_path / FOLDER_NAME)
    site_results(frame, MEASURES, policy, groups=stored)
    stored.save()
    changed = frame.copy()
    row = (changed["site_id"] == "S07") & (changed["period"] == "2025Q2")
    changed.loc[row, "observed"] += 1               # one site's quarter, both measures
    computed.clear()
    again = StoredGroups(tmp_path / FOLDER_NAME)
    results, curves = site_results(changed, MEASURES, policy, groups=again)
    assert sorted(computed) == [("k", "2025Q2"), ("m", "2025Q2")] and again.reused == GROUPS - 2
    fresh, fresh_curves = site_results(changed, MEASURES, policy)
    _assert_same(results, fresh)
    _assert_same(curves, fresh_curves)
    again.save()
    assert len(StoredGroups(tmp_path / FOLDER_NAME)._stored) == GROUPS, "only the groups the build used"


def test_only_what_the_results_read_keys_a_group_and_damaged_files_compute_every_group(tmp_path, policy, computed, monkeypatch):
    frame = site_periods()
    stored = StoredGroups(tmp_path / FOLDER_NAME)
    site_results(frame, MEASURES, policy, groups=stored)
    stored.save()

    def run(run_policy=policy, run_frame=frame) -> int:
        computed.clear()
        site_results(run_frame, MEASURES, run_policy, groups=StoredGroups(tmp_path / FOLDER_NAME))
        return len(computed)

    assert run() == 0
    assert run(run_frame=frame.assign(site_fingerprint="another build")) == 0, "a column the results do not read"
    assert run(policy.model_copy(update={"min_cases": policy.min_cases + 1})) == GROUPS
    digest = stored_groups.code_digest
    monkeypatch.setattr(stored_groups, "code_digest", lambda: "an older results.py")
    assert run() == GROUPS
    monkeypatch.setattr(stored_groups, "code_digest", digest)
    assert run() == 0
    (tmp_path / FOLDER_NAME / "curves.parquet").unlink()      # written by another build, or lost
    assert run() == GROUPS
    (tmp_path / FOLDER_NAME / "curves.parquet").write_bytes(b"PAR1 not parquet")
    assert run() == GROUPS


def test_the_store_sits_beside_the_warehouse_file(tmp_path):
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert StoredGroups.beside_warehouse(con).folder == tmp_path / ".cache" / FOLDER_NAME


def test_keys_hashed_over_the_whole_frame_are_each_groups_own_key(policy):
    """``group_keys`` hashes each column once; a group's key is still the digest of its own rows alone."""
    from orchestration.riskmodels.results import GROUPS as BY, _prepared

    frame = _prepared(_with_a_group_without_included_sites(site_periods()), MEASURES_X)
    keys = stored_groups.group_keys(frame, BY, policy)
    each = {values: stored_groups.group_key(group, policy) for values, group in frame.groupby(BY, sort=True)}
    assert keys == each and len(set(keys.values())) == GROUPS + 1
    changed = stored_groups.group_keys(frame.assign(observed=frame["observed"] + (frame["period"] == "2025Q2")),
                                       BY, policy)
    assert {values for values in keys if changed[values] != keys[values]} == {("k", "2025Q2"), ("m", "2025Q2")}
