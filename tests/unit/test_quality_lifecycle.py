"""A data query's life: open, resolved by resubmission, overridden, reopened; every step kept."""

from datetime import datetime, timedelta

import pytest

from orchestration.intake import receive_file
from orchestration.quality.overrides import new_request, overrides_folder, write_request
from orchestration.quality.queries import query_id
from orchestration.quality.run import run_quality
from orchestration.settings import Paths
from support import SECRET, demo_registry, site_file, warehouse

ASA = query_id("S01", "S01-00001", "asa_class", "conformance.code.asa_class")
T0 = datetime(2026, 1, 5, 9, 0)


@pytest.fixture
def registry():
    return demo_registry()


@pytest.fixture
def folders(tmp_path):
    return Paths(tmp_path / "data").ensure()


class Cycle:
    """Send files and run the quality stage, one day apart."""

    def __init__(self, folders, registry):
        self.folders, self.registry, self.day = folders, registry, 0

    def send(self, name, cases=10, **rows):
        path = site_file(self.registry, self.folders.landing, "S01", cases=cases, name=name, **rows)
        with warehouse(self.folders, self.registry) as con:
            receive_file(con, self.registry, self.folders, path, "S01", SECRET)
        return self.run()

    def run(self):
        self.day += 1
        with warehouse(self.folders, self.registry) as con:
            run_quality(con, self.registry, self.folders, now=T0 + timedelta(days=self.day))
            self.query = con.execute("select status, observed, times_reopened, override_author from quality.queries "
                                     "where query_id = ?", [ASA]).fetchone()
            self.events = con.execute("select event, from_status, to_status, event_at, note from quality.query_events "
                                      "where query_id = ? order by event_at, event", [ASA]).fetchall()
            self.grade = con.execute("select status from quality.site_period_status").fetchone()[0]
        return self

    def override(self, observed, reason="value confirmed correct", author="Dr Reviewer"):
        write_request(overrides_folder(self.folders.data_dir), new_request(ASA, observed, reason, author, "S01"))


@pytest.fixture
def cycle(folders, registry):
    return Cycle(folders, registry)


def test_a_query_opens_and_is_resolved_when_a_later_submission_passes_the_rule(cycle):
    cycle.send("S01_2025Q1.csv", row0={"asa_class": "7"})
    assert cycle.query[:2] == ("open", "7")
    cycle.run()   # the same data again: still open, no new event
    assert [e[0] for e in cycle.events] == ["opened"]
    cycle.send("S01_2025Q1_v2.csv")
    assert cycle.query[0] == "resolved"
    assert [(e[0], e[1], e[2]) for e in cycle.events] == [("opened", None, "open"), ("resolved", "open", "resolved")]
    assert cycle.events[1][4] == "the current data pass the rule"
    assert cycle.events[0][3] < cycle.events[1][3]


def test_a_resolved_query_reopens_when_the_problem_recurs_and_keeps_its_id(cycle):
    cycle.send("S01_2025Q1.csv", row0={"asa_class": "7"})
    cycle.send("S01_2025Q1_v2.csv")
    cycle.send("S01_2025Q1_v3.csv", row0={"asa_class": "8"})
    assert cycle.query[:3] == ("reopened", "8", 1)
    assert [e[0] for e in cycle.events] == ["opened", "resolved", "reopened"]


def test_an_overridden_query_stops_firing_for_the_same_value_and_does_not_make_the_period_red(cycle):
    bad = {f"row{i}": {"asa_class": "7"} for i in range(1)}
    cycle.send("S01_2025Q1.csv", cases=20, **bad)
    assert cycle.grade == "red"       # 1 of 20 rows is above the 2% threshold
    cycle.override("7")
    cycle.run()
    assert cycle.query == ("overridden", "7", 0, "Dr Reviewer")
    assert [e[0] for e in cycle.events] == ["opened", "overridden"]
    assert "value confirmed correct" in cycle.events[1][4]
    assert cycle.grade != "red"
    assert list((overrides_folder(cycle.folders.data_dir) / "applied").glob("*.json"))
    cycle.send("S01_2025Q1_v2.csv", cases=20, **bad)   # same value again
    assert cycle.query[0] == "overridden" and len(cycle.events) == 2


def test_an_override_of_one_value_does_not_suppress_a_different_value(cycle):
    cycle.send("S01_2025Q1.csv", cases=20, row0={"asa_class": "7"})
    cycle.override("7")
    cycle.run()
    cycle.send("S01_2025Q1_v2.csv", cases=20, row0={"asa_class": "9"})
    assert cycle.query[:2] == ("reopened", "9")
    assert [e[0] for e in cycle.events] == ["opened", "overridden", "reopened"]
    assert cycle.grade == "red"


def test_an_override_request_for_an_unknown_query_is_refused_with_its_reason(cycle):
    cycle.send("S01_2025Q1.csv")
    folder = overrides_folder(cycle.folders.data_dir)
    write_request(folder, new_request("Q-0000000000000000", "7", "typo", "Dr Reviewer"))
    cycle.run()
    refused = list((folder / "refused").glob("*.json"))
    assert len(refused) == 1 and "no query Q-0000000000000000" in refused[0].read_text()
