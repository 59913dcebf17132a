"""The quality stage is incremental by site and gives what a full run gives.

A small collaborative (6 sites, 2 quarters, defects on) is received and
checked once. Then one change is made (a site resubmits a quarter; the
coordinating centre overrides one query), the warehouse and data folder are
copied twice, and one copy runs the incremental quality stage, the other a
full one (``full=True``) at the same time: every quality table and every
worklist must be the same (``queries.last_seen_at`` excepted: it is when a
run last checked the site, and the incremental run did not check unchanged
sites). The incremental run reads only the changed site and leaves the other
sites' worklist files alone.
"""

import dataclasses
import shutil
from datetime import datetime, timedelta

import openpyxl
import pandas as pd
import pytest

from orchestration.intake import receive_file
from orchestration.quality.overrides import new_request, overrides_folder, write_request
from orchestration.quality.run import run_quality
from orchestration.settings import Paths
from orchestration.synth import generate_collaborative
from support import SECRET, demo_registry, warehouse

T0 = datetime(2026, 2, 2, 8, 0)
T1 = T0 + timedelta(days=1)
IGNORED = {"queries": {"last_seen_at"}}
TABLES = ["findings", "site_period_status", "site_period_profile", "queries", "query_events", "scorecards",
          "overrides"]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """The collaborative received and checked once (a full run): registry, source folder, data folder."""
    registry = demo_registry()
    root = tmp_path_factory.mktemp("incremental")
    generate_collaborative(registry, root / "source", cases=1500, sites=6, periods=2, seed=23)
    folders = Paths(root / "base" / "data").ensure()
    with warehouse(folders, registry) as con:
        for path in sorted((root / "source" / "landing").rglob("*.csv")):
            receive_file(con, registry, folders, path, path.parent.name, SECRET)
        first = run_quality(con, registry, folders, now=T0)
    assert first.full
    return registry, root, folders


def _copy(folders: Paths, target) -> Paths:
    shutil.copytree(folders.data_dir, target / "data")
    return Paths(target / "data").ensure()


def _stamps(folders: Paths) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folders.worklists)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in folders.worklists.rglob("*") if p.is_file()}


def _tables(folders: Paths, registry) -> dict[str, list[tuple]]:
    with warehouse(folders, registry) as con:
        tables = {}
        for table in TABLES:
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_schema = 'quality' "
                "and table_name = ? order by ordinal_position", [table]).fetchall()]
            kept = ", ".join(f'"{c}"' for c in columns if c not in IGNORED.get(table, set()))
            tables[table] = con.execute(f"select {kept} from quality.{table} order by all").fetchall()
    return tables


def _worklists(folders: Paths, registry) -> dict[str, object]:
    files = {}
    for site in registry.sites:
        folder = folders.worklists / site.site_id
        files[f"{site.site_id}/csv"] = (folder / "queries.csv").read_bytes()
        files[f"{site.site_id}/html"] = (folder / "queries.html").read_bytes()
        book = openpyxl.load_workbook(folder / "queries.xlsx")   # the zip holds its creation time
        files[f"{site.site_id}/xlsx"] = [[list(r) for r in sheet.iter_rows(values_only=True)] for sheet in book]
    return files


def _incremental_and_full(changed: Paths, registry, tmp_path):
    """Run the incremental stage on one copy and a full run on another; compare; return the incremental run."""
    incremental, full = _copy(changed, tmp_path / "incremental"), _copy(changed, tmp_path / "full")
    before = _stamps(incremental)
    contents_before = _worklists(incremental, registry)
    with warehouse(incremental, registry) as con:
        run = run_quality(con, registry, incremental, now=T1)
    with warehouse(full, registry) as con:
        reference = run_quality(con, registry, full, now=T1, full=True)
    assert not run.full and reference.full
    got, expected = _tables(incremental, registry), _tables(full, registry)
    for table in TABLES:
        assert got[table] == expected[table], table
    assert _worklists(incremental, registry) == _worklists(full, registry)
    assert (run.findings, run.grades, run.events, run.open_queries) == \
           (reference.findings, reference.grades, reference.events, reference.open_queries)
    after, contents_after = _stamps(incremental), _worklists(incremental, registry)
    rewritten = {name.split("/")[0] for name in after if after[name] != before.get(name)}
    content_changed = {name.split("/")[0] for name in contents_after if contents_after[name] != contents_before[name]}
    return run, rewritten, content_changed


def _resubmit(source, target_landing, site_id: str, period: str, pounds: bool = False):
    frame = pd.read_csv(source / "landing" / site_id / f"{site_id}_{period}.csv", dtype=str, keep_default_na=False)
    if pounds:   # every weight in pounds: the collaborative's mean weight moves, so do the other sites' comparisons
        weight = pd.to_numeric(frame["weight_kg"], errors="coerce")
        frame["weight_kg"] = (weight * 2.2046).round(1).astype(str).where(weight.notna(), frame["weight_kg"])
    frame.loc[frame.index[0], "asa_class"] = "9"            # a new problem
    frame.loc[frame.index[1:4], "weight_kg"] = "350"        # three more
    path = target_landing / site_id / f"{site_id}_{period}_v2.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def test_a_resubmitted_quarter_rechecks_one_site_and_gives_what_a_full_run_gives(checked, tmp_path):
    registry, root, folders = checked
    changed = _copy(folders, tmp_path / "changed")
    site, period = registry.sites[2].site_id, "2025Q2"
    with warehouse(changed, registry) as con:
        receipt = receive_file(con, registry, changed, _resubmit(root / "source", changed.landing, site, period),
                               site, SECRET)
        rows = con.execute("select count(*) from raw.cases c join intake.current_submission_periods s "
                           "using (submission_id, period) where s.site_id = ?", [site]).fetchone()[0]
    assert receipt.status.startswith("accepted")
    run, rewritten, content_changed = _incremental_and_full(changed, registry, tmp_path)
    assert (run.sites_checked, run.rows_checked) == (1, rows)
    assert run.sites_unchanged == len(registry.sites) - 1
    assert run.events.get("opened", 0) >= 2
    assert site in rewritten and rewritten <= {site} | content_changed
    assert run.worklist_sites_written == len(rewritten)
    assert len(registry.sites) - len(rewritten) >= 3          # the other sites' files were not touched


def test_a_change_that_moves_the_collaborative_figures_updates_the_peers_it_moves_and_only_those(checked, tmp_path):
    registry, root, folders = checked
    changed = _copy(folders, tmp_path / "changed")
    with warehouse(changed, registry) as con:
        site, period = con.execute("select site_id, period from raw.cases group by all order by count(*) desc, 1, 2 "
                                   "limit 1").fetchone()
        before = dict(con.execute("select site_id, string_agg(message, '|' order by query_id) from quality.findings "
                                  "where rule_id like 'plausibility.distribution.%' group by all").fetchall())
        receive_file(con, registry, changed, _resubmit(root / "source", changed.landing, site, period, pounds=True),
                     site, SECRET)
    run, rewritten, content_changed = _incremental_and_full(changed, registry, tmp_path)
    assert run.sites_checked == 1 and run.sites_updated > 1       # peers whose comparison findings moved
    assert site in rewritten and rewritten <= {site} | content_changed
    with warehouse(Paths(tmp_path / "incremental" / "data"), registry) as con:
        after = dict(con.execute("select site_id, string_agg(message, '|' order by query_id) from quality.findings "
                                 "where rule_id like 'plausibility.distribution.%' group by all").fetchall())
    moved = {s for s in set(before) | set(after) if before.get(s) != after.get(s)}
    assert moved - {site} and moved - {site} <= rewritten


def test_an_override_request_rechecks_only_its_site_and_gives_what_a_full_run_gives(checked, tmp_path):
    registry, root, folders = checked
    changed = _copy(folders, tmp_path / "changed")
    with warehouse(changed, registry) as con:
        query, site, observed = con.execute(
            "select query_id, site_id, observed from quality.queries where status = 'open' and case_id is not null "
            "and severity = 'blocking' order by site_id desc, query_id limit 1").fetchone()
    write_request(overrides_folder(changed.data_dir), new_request(query, observed, "confirmed", "Dr Audit", site))
    run, rewritten, content_changed = _incremental_and_full(changed, registry, tmp_path)
    assert run.overrides == {"applied": 1, "refused": 0}
    assert run.events == {"overridden": 1}
    assert run.sites_checked == 1 and rewritten == {site}


def test_nothing_changed_checks_no_site_and_writes_no_worklist(checked, tmp_path):
    registry, root, folders = checked
    changed = _copy(folders, tmp_path / "changed")
    before = _stamps(changed)
    with warehouse(changed, registry) as con:
        run = run_quality(con, registry, changed, now=T1)
    assert (run.full, run.sites_checked, run.rows_checked, run.events, run.worklists) == (False, 0, 0, {}, [])
    assert _stamps(changed) == before


def test_a_registry_or_rules_change_rechecks_every_site(checked, tmp_path):
    registry, root, folders = checked
    changed = _copy(folders, tmp_path / "changed")
    stricter = dataclasses.replace(registry, policy=registry.policy.model_copy(
        update={"missingness_threshold": registry.policy.missingness_threshold / 2}))
    with warehouse(changed, registry) as con:
        rows = con.execute("select count(*) from raw.cases c join intake.current_submission_periods s "
                           "using (submission_id, period)").fetchone()[0]
        run = run_quality(con, stricter, changed, now=T1)
        again = run_quality(con, stricter, changed, now=T1 + timedelta(days=1))
        new_version = run_quality(con, dataclasses.replace(stricter, version=stricter.version + ".1"), changed,
                                  now=T1 + timedelta(days=2))
    assert run.full and run.full_reason == "the registry or its rules changed"
    assert run.sites_checked == len(registry.sites) and run.rows_checked == rows
    assert run.worklist_sites_written == len(registry.sites)
    assert not again.full and again.sites_checked == 0
    assert new_version.full and new_version.sites_checked == len(registry.sites)


def test_a_full_run_can_be_asked_for_in_the_environment(checked, tmp_path, monkeypatch):
    registry, root, folders = checked
    changed = _copy(folders, tmp_path / "changed")
    monkeypatch.setenv("CQI_QUALITY_FULL", "1")
    with warehouse(changed, registry) as con:
        run = run_quality(con, registry, changed, now=T1)
    assert run.full and run.sites_checked == len(registry.sites) and run.events == {}
