"""The privacy checks find every planted leak in every kind of published file, and nothing else.

The checks are fast (word sets, each distinct line scanned once); these tests
hold them to the plain definitions: a name is found exactly where the regular
expression ``(?<![A-Za-z0-9])NAME(?![A-Za-z0-9])`` finds it, a case number
where it is one of the file's tokens, a count from 1 to the threshold in a
``cases`` or ``observed`` column of a package table.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration.publish.inputs import CaseFile
from orchestration.publish.privacy import (
    HashedStrings,
    Name,
    _words,
    cross_site_leaks,
    identifier_leaks,
    privacy_problems,
    privacy_problems_by_kind,
    small_count_leaks,
)
from orchestration.publish.writers import write_csv, write_text, write_xlsx
from support import demo_registry

SITES = pd.DataFrame({"site_id": ["S01", "S02", "S03"],
                      "display_name": ["Lakeshore Hospital", "St. Mary's (North)", "General 3"],
                      "blinded_code": ["P-AAA", "P-BBB", "P-CCC"]})
CASES = pd.DataFrame({"site_id": ["S01", "S01", "S02", "S03"],
                      "case_id": ["K-1001", "K-1002", "K-2001", "SHARED-9"]})


@pytest.mark.parametrize("seed", range(6))
def test_a_name_is_found_exactly_where_the_whole_word_expression_finds_it(seed):
    rng = random.Random(seed)
    alphabet = ["S0", "1", "S01", "0", " ", "-", "_", ".", "'", "(", ")", "é", "\t", "\n", "a", "St", "Mary", "s"]
    names = ["S01", "S010", "St. Mary's (North)", "Mary", "0", "(", "a a", "é", "S0 1"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        words = _words(text.encode("utf-8"))
        for raw in names:
            expected = bool(re.search(r"(?<![A-Za-z0-9])" + re.escape(raw) + r"(?![A-Za-z0-9])", text))
            assert Name(raw, raw).occurs(text, words) == expected, (raw, text)


def _package(folder, site, **files):
    for name, content in files.items():
        path = folder / "sites" / site / name
        if isinstance(content, pd.DataFrame):
            (write_xlsx({"table": content}, path) if name.endswith(".xlsx") else write_csv(content, path))
        else:
            write_text(content, path)


@pytest.fixture
def clean(tmp_path):
    table = pd.DataFrame({"site": ["P-AAA (you)", "P-BBB", "P-CCC"], "cases": [120, 0, 45], "observed": ["<=10", 0, 12]})
    for site, code in zip(SITES["site_id"], SITES["blinded_code"]):
        name = SITES.set_index("site_id").loc[site, "display_name"]
        _package(tmp_path, site, **{"comparison.csv": table, "package.xlsx": table,
                                    "report.html": f"<h1>{name} ({site}, {code})</h1><p>S010 S0101</p>",
                                    "events.csv": pd.DataFrame({"case_id": CASES.loc[CASES.site_id == site, "case_id"]})})
    write_text("site,name\nS01,Lakeshore Hospital\n", tmp_path / "coordinating_centre" / "overview.csv")
    return tmp_path


def test_a_clean_publication_passes_every_check(clean):
    assert privacy_problems(clean, demo_registry(), SITES, CASES, {"a" * 64}) == []


@pytest.mark.parametrize("file, content, expected", [
    ("report.html", "<p>Compare with St. Mary's (North)</p>", "sites/S01/report.html reveals the name of site S02"),
    ("notes.csv", "note\nsee S03\n", "sites/S01/notes.csv reveals site S03"),
    ("extra.xlsx", pd.DataFrame({"peer": ["General 3"]}), "sites/S01/extra.xlsx reveals the name of site S03"),
    ("cases.xlsx", pd.DataFrame({"case": ["K-2001"]}), "sites/S01/cases.xlsx holds another site's cases"),
    ("report.html", "<td>SHARED-9</td>", "sites/S01/report.html holds another site's cases"),
])
def test_another_sites_name_code_or_case_is_found_in_any_kind_of_file(clean, file, content, expected):
    _package(clean, "S01", **{file: content})
    problems = cross_site_leaks(clean, SITES, CASES)
    assert len(problems) == 1 and problems[0].startswith(expected), problems


def test_the_sites_own_name_and_cases_and_longer_words_are_not_leaks(clean):
    _package(clean, "S01", **{"more.csv": "x\nLakeshore Hospital K-1001 K-20011 K-2001x S030 XS02 General 30\n"})
    assert cross_site_leaks(clean, SITES, CASES) == []


def test_identifier_columns_and_patient_keys_are_found_in_every_published_file(clean):
    key = "ab" * 32
    _package(clean, "S02", **{"linked.xlsx": pd.DataFrame({"patient_name": ["x"]})})
    write_text(f"<p>{key}</p>", clean / "coordinating_centre" / "overview.html")
    write_text(f"<p>{'cd' * 32}</p>", clean / "coordinating_centre" / "other.html")   # not a patient key
    assert identifier_leaks(clean, demo_registry(), {key}) == [
        "coordinating_centre/overview.html holds pseudonymised patient keys",
        "sites/S02/linked.xlsx has identifier columns ['patient_name']"]


@pytest.mark.parametrize("value, flagged", [("5", True), ("1", True), ("10", True), ("10.0", True), ("0", False),
                                            ("11", False), ("<=10", False), ("suppressed", False)])
def test_a_count_from_1_to_the_threshold_in_a_package_table_is_found(clean, value, flagged):
    write_text(f"period,cases,observed\n2025Q1,{value},0\n", clean / "sites" / "S03" / "my_results.csv")
    problems = small_count_leaks(clean, 10)
    assert problems == (["sites/S03/my_results.csv publishes a cases count from 1 to 10"] if flagged else [])


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("bit_filter", [False, "set in bytes", "packed"])
def test_the_hashed_index_finds_exactly_the_strings_a_set_holds_with_their_owners(seed, bit_filter, monkeypatch):
    monkeypatch.setattr(HashedStrings, "FILTER_FROM", 1 if bit_filter else 10**9)
    if bit_filter == "packed":      # so many strings for the filter's size that it is built bit by bit, then packed
        monkeypatch.setattr(HashedStrings, "FILTER_BITS", 1 << 16)
    rng = random.Random(seed)
    pairs = pd.DataFrame({"site_id": [rng.choice(["S01", "S02", "S03"]) for _ in range(2000)],
                          "case_id": [f"K-{rng.randint(0, 3000)}" for _ in range(2000)]})
    owners = pairs.groupby("case_id")["site_id"].agg(frozenset).to_dict()
    tokens = {f"K-{rng.randint(0, 6000)}" for _ in range(3000)} | {"", "S01", "K-"}
    index = HashedStrings.of_pairs(pairs)
    assert (index.filter is not None) == bool(bit_filter)
    if bit_filter:       # the bits of the filter are those of the strings' hashes, however it was built
        slots = index.hashes & np.uint64(HashedStrings.FILTER_BITS - 1)
        bits = np.unpackbits(index.filter, bitorder="little")
        assert set(np.flatnonzero(bits).tolist()) == set(slots.astype(np.int64).tolist())
    found = index.found(tokens)
    assert found == {t: owners[t] for t in tokens if t in owners}
    assert set(HashedStrings.of(pairs["case_id"]).found(tokens)) == tokens & set(owners)


def test_the_checks_find_the_same_leaks_from_a_case_file_as_from_its_rows(clean, tmp_path_factory):
    _package(clean, "S01", **{"notes.csv": "case\nK-2001\nSHARED-9\nK-1001\n"})
    rows = CASES.assign(period="2025Q1", operation_date=pd.Timestamp("2025-01-02"), measure_id="m",
                        is_event=False, expected_probability=0.1)
    case_file = CaseFile.of_frame(rows, tmp_path_factory.mktemp("cases") / "cases")
    expected = cross_site_leaks(clean, SITES, CASES)
    assert len(expected) == 1 and "K-2001" in expected[0] and "SHARED-9" in expected[0]
    assert cross_site_leaks(clean, SITES, case_file) == expected


def _scanned(monkeypatch) -> list[str]:
    """The files the scanner reads from here on, by name."""
    from orchestration.publish.privacy import Scanner

    seen, scan = [], Scanner.file
    monkeypatch.setattr(Scanner, "file", lambda self, path, data: seen.append(path.name) or scan(self, path, data))
    return seen


def _problems(folder, cases=CASES, sites=SITES, memory=None, keys=frozenset({"ab" * 32})):
    return privacy_problems_by_kind(folder, demo_registry(), sites, cases, set(keys), workers=1, memory_dir=memory)


@pytest.mark.parametrize("file, content", [
    ("report.html", "<p>Compare with St. Mary's (North)</p>"),
    ("notes.csv", "note\nsee S03\n"),
    ("extra.xlsx", pd.DataFrame({"peer": ["General 3"]})),
    ("cases.xlsx", pd.DataFrame({"case": ["K-2001"]})),
    ("keys.html", f"<td>{'ab' * 32}</td>"),
    ("counts.csv", "site,cases\nx,3\n"),
    ("patient.csv", "patient_name\nx\n"),
])
def test_files_a_publication_shares_with_the_last_are_not_read_again_and_give_the_same_verdict(
        clean, tmp_path_factory, monkeypatch, file, content):
    memory = tmp_path_factory.mktemp("memory")
    assert _problems(clean, memory=memory) == ([], [], [])
    _package(clean, "S01", **{file: content})
    scanned = _scanned(monkeypatch)
    remembered = _problems(clean, memory=memory)
    assert scanned == [Path(file).name]                 # only the new file is read
    monkeypatch.undo()
    assert remembered == _problems(clean) and any(remembered)
    assert _problems(clean, memory=memory) == remembered    # and the second time nothing is read either


def test_an_unchanged_file_holding_a_case_number_another_site_now_uses_is_found(clean, tmp_path_factory):
    """A resubmission adds case numbers: a file the last publication passed can hold one of them."""
    memory = tmp_path_factory.mktemp("memory")
    assert _problems(clean, memory=memory) == ([], [], [])
    resubmitted = pd.concat([CASES, pd.DataFrame({"site_id": ["S02"], "case_id": ["K-1001"]})])
    expected = _problems(clean, resubmitted)
    assert expected == (["sites/S01/events.csv holds another site's cases (['K-1001'])"], [], [])
    assert _problems(clean, resubmitted, memory=memory) == expected


def test_kept_findings_of_other_names_another_threshold_or_a_damaged_memory_are_not_used(clean, tmp_path_factory,
                                                                                        monkeypatch):
    memory = tmp_path_factory.mktemp("memory")
    assert _problems(clean, memory=memory) == ([], [], [])
    renamed = SITES.assign(display_name=["Lakeshore Hospital", "St. Mary's (North)", "Hospital"])
    expected = _problems(clean, sites=renamed)
    assert "sites/S01/report.html reveals the name of site S03" in expected[0]
    assert _problems(clean, sites=renamed, memory=memory) == expected
    for part in memory.glob("part-*.npy"):
        part.write_bytes(b"damaged")
    scanned = _scanned(monkeypatch)
    assert _problems(clean, sites=renamed, memory=memory) == expected and len(scanned) == 13
    (memory / "index.json").write_text("{not json")
    assert _problems(clean, sites=renamed, memory=memory) == expected


def test_the_memory_keeps_the_contents_of_the_last_publication_only(clean, tmp_path_factory):
    import json

    memory = tmp_path_factory.mktemp("memory")
    _problems(clean, memory=memory)
    first = set(json.loads((memory / "index.json").read_text())["entries"])
    _package(clean, "S01", **{"report.html": "<p>rewritten</p>"})
    _problems(clean, memory=memory)
    second = json.loads((memory / "index.json").read_text())["entries"]
    assert len(first - set(second)) == 1 and len(set(second) - first) == 1
    assert {p.name for p in memory.glob("part-*.npy")} == {entry["part"] for entry in second.values()}


def _case_file(cases: pd.DataFrame, path: Path) -> CaseFile:
    return CaseFile.of_frame(cases.assign(period="2025Q1", operation_date=pd.Timestamp("2025-01-02"), measure_id="m",
                                          is_event=False, expected_probability=0.1), path)


def test_the_case_index_reads_only_sites_whose_cases_changed_and_finds_what_one_built_afresh_finds(
        clean, tmp_path_factory, monkeypatch):
    from orchestration.publish.privacy import _case_index

    folder, memory = tmp_path_factory.mktemp("cases"), tmp_path_factory.mktemp("memory")
    read, site_case_ids = [], CaseFile.site_case_ids
    monkeypatch.setattr(CaseFile, "site_case_ids", lambda self, site: read.append(site) or site_case_ids(self, site))
    tokens = ["K-1001", "K-1002", "K-2001", "SHARED-9", "K-9999", "S01", "k-1001"]

    def found(index):
        return index.found(tokens)

    first = _case_file(CASES, folder / "first")
    assert found(_case_index(first, memory)) == found(HashedStrings.of_pairs(CASES)) != {}
    assert sorted(read) == ["S01", "S02", "S03"]
    read.clear()
    assert found(_case_index(first, memory)) == found(HashedStrings.of_pairs(CASES)) and read == []

    resubmitted = pd.concat([CASES, pd.DataFrame({"site_id": ["S02"], "case_id": ["K-1001"]})])
    second = _case_file(resubmitted, folder / "second")
    index = _case_index(second, memory)
    assert read == ["S02"], "only the resubmitting site is read"
    assert found(index) == found(HashedStrings.of_pairs(resubmitted))
    assert found(index)["K-1001"] == frozenset({"S01", "S02"})
    assert len(list((memory / "cases").glob("*.npy"))) == 3, "the replaced entry of S02 is gone"

    read.clear()
    for kept in (memory / "cases").glob("*.npy"):
        kept.write_bytes(b"damaged")
    assert found(_case_index(second, memory)) == found(HashedStrings.of_pairs(resubmitted))
    assert sorted(read) == ["S01", "S02", "S03"], "a damaged entry is read again"
    # the checks over a publication give the same verdict with the kept index
    _package(clean, "S01", **{"notes.csv": "case\nK-2001\n"})
    assert _problems(clean, second, memory=memory) == _problems(clean, resubmitted) != ([], [], [])
