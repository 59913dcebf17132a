"""Reliability fits read back from the last build are the fits a new build computes, and only stale ones are redone."""

import json
import sys

import numpy as np
import pandas as pd
import pytest

from orchestration.riskmodels.results import site_results
from orchestration.riskmodels.stored_fits import FILE_NAME, StoredFits
from support import demo_registry

MEASURES = pd.DataFrame({"measure_id": ["m", "k"], "label": ["Mortality", "Morbidity"],
                         "direction": ["lower_is_better", "lower_is_better"]})


def site_periods(seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for measure in ("m", "k"):
        for period in ("2025Q1", "2025Q2", "2025Q3"):
            for i in range(25):
                cases = int(rng.integers(40, 400))
                expected = cases * rng.uniform(0.03, 0.12)
                rows.append({"site_id": f"S{i:02d}", "blinded_code": f"P-{i:02d}", "period": period,
                             "measure_id": measure, "quality_status": "green", "is_included": True, "cases": cases,
                             "observed": int(rng.poisson(expected * np.exp(rng.normal(0, 0.3)))),
                             "expected": expected, "variance": expected * (1 - expected / cases) * 0.9})
    frame = pd.DataFrame(rows)
    frame["observed"] = np.minimum(frame["observed"], frame["cases"])
    return frame


@pytest.fixture
def policy():
    return demo_registry().policy


@pytest.fixture
def count_fits(monkeypatch):
    calls = []
    reliability = sys.modules["orchestration.stats.reliability"]
    real = reliability.fit_random_intercept

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reliability, "fit_random_intercept", counted)
    return calls


def test_results_from_stored_fits_equal_fresh_results_to_the_last_bit(tmp_path, policy, count_fits):
    frame = site_periods()
    fresh, _ = site_results(frame, MEASURES, policy)
    assert len(count_fits) == 6
    first = StoredFits(tmp_path / FILE_NAME)
    pd.testing.assert_frame_equal(site_results(frame, MEASURES, policy, fits=first)[0], fresh, check_exact=True)
    first.save()
    count_fits.clear()
    again = StoredFits(tmp_path / FILE_NAME)
    pd.testing.assert_frame_equal(site_results(frame, MEASURES, policy, fits=again)[0], fresh, check_exact=True)
    assert count_fits == [] and again.reused == 6


def test_a_resubmitted_site_period_refits_only_its_own_groups(tmp_path, policy, count_fits):
    frame = site_periods()
    stored = StoredFits(tmp_path / FILE_NAME)
    site_results(frame, MEASURES, policy, fits=stored)
    stored.save()
    changed = frame.copy()
    row = (changed["site_id"] == "S07") & (changed["period"] == "2025Q2")
    changed.loc[row, "observed"] += 1               # one site's quarter, both measures
    count_fits.clear()
    again = StoredFits(tmp_path / FILE_NAME)
    results, _ = site_results(changed, MEASURES, policy, fits=again)
    assert len(count_fits) == 2 and again.reused == 4
    pd.testing.assert_frame_equal(results, site_results(changed, MEASURES, policy)[0], check_exact=True)
    again.save()
    assert len(json.loads((tmp_path / FILE_NAME).read_text())["fits"]) == 6, "only the entries the build used"


def test_fits_stored_by_other_fitting_code_or_a_damaged_file_are_not_used(tmp_path, policy, count_fits):
    frame = site_periods()
    stored = StoredFits(tmp_path / FILE_NAME)
    site_results(frame, MEASURES, policy, fits=stored)
    stored.save()
    data = json.loads((tmp_path / FILE_NAME).read_text())
    data["code"] = "an older reliability.py"
    (tmp_path / FILE_NAME).write_text(json.dumps(data))
    count_fits.clear()
    site_results(frame, MEASURES, policy, fits=StoredFits(tmp_path / FILE_NAME))
    assert len(count_fits) == 6
    (tmp_path / FILE_NAME).write_text('{"code": ')
    count_fits.clear()
    site_results(frame, MEASURES, policy, fits=StoredFits(tmp_path / FILE_NAME))
    assert len(count_fits) == 6


def test_the_store_sits_beside_the_warehouse_file(tmp_path):
    import duckdb

    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        assert StoredFits.beside_warehouse(con).path == tmp_path / ".cache" / FILE_NAME
