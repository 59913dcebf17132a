"""What the reliability tests share: the stage server client and the state they compare.

``consistency_problems`` is the list of promises that must hold after any
kill; ``intake_state``, ``marts`` and ``release_state`` are what a run that
recovered must have in common with an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.publish.inputs import CaseFile
from orchestration.publish.release import INPUTS, MANIFEST, file_checksums

HERE = Path(__file__).resolve().parent
SECRET = "reliability-secret"
# The code version recorded in manifests: fixed, so that a commit made while
# the tests run (or a dirty checkout) does not show up as a difference.
CODE_VERSION = "reliability-tests"
# Fields of a manifest that name the run or the time: the only ones allowed to differ.
RUN_FIELDS = {"run_id", "published_at"}


def environment(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "CQI_DATA_DIR": str(data_dir), "CQI_PSEUDONYM_SECRET": SECRET,
            "CQI_CODE_VERSION": CODE_VERSION}


class StageServer:
    """Client of ``stage_server.py``: one command at a time."""

    def __init__(self, scratch: Path):
        env = {**environment(scratch), "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, str(HERE / "stage_server.py")], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = self.process.stdout.readline()
        assert hello and json.loads(hello)["ready"], "the stage server did not start"

    def run(self, stage: str, data_dir: Path, trigger: str | None = None, delay: float | None = None,
            timeout: float = 600) -> dict:
        command = {"stage": stage, "data_dir": str(data_dir), "trigger": trigger, "delay": delay, "timeout": timeout}
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, "the stage server ended"
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def step_duration(answer: dict, *steps: str) -> float:
    """Seconds from the start of the first of ``steps`` to the end of the last."""
    return answer["steps"][steps[-1]][1] - answer["steps"][steps[0]][0]


# --- state compared between runs ------------------------------------------------------

def _frame(con, sql: str) -> pd.DataFrame:
    return con.execute(sql).df().reset_index(drop=True)


def marts(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every table of the marts schema, rows in a canonical order."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        names = [r[0] for r in con.execute("select table_name from information_schema.tables "
                                           "where table_schema = 'marts' order by 1").fetchall()]
        return {name: _frame(con, f'select * from marts."{name}" order by all') for name in names}


def intake_state(data_dir: Path) -> dict[str, object]:
    """What intake leaves behind, without arrival times and ledger sequence numbers."""
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        state: dict[str, object] = {
            "raw.cases": _frame(con, "select * from raw.cases order by all"),
            "intake.submissions": _frame(con, "select * exclude (sequence, received_at, receipt_path) "
                                              "from intake.submissions order by all"),
            "intake.cell_findings": _frame(con, "select * from intake.cell_findings order by all"),
            "intake.receptions": _frame(con, "select * exclude (received_at) from intake.receptions order by all"),
        }
    receipts = {}
    for path in sorted((data_dir / "receipts").rglob("*.json")):
        receipt = json.loads(path.read_text(encoding="utf-8"))
        receipt.pop("received_at", None)
        receipts[str(path.relative_to(data_dir))] = receipt
    state["receipts"] = receipts
    state["landing"] = sorted(str(p.relative_to(data_dir)) for p in (data_dir / "landing").rglob("*") if p.is_file())
    return state


def release_state(release: Path) -> dict[str, object]:
    """A released folder: checksums of its published files, its manifest, and its inputs snapshot as tables.

    The snapshot (``inputs/``, what ``cqi publish --verify`` rebuilds from) is
    compared as tables, with the floating-point margin ``FLOAT_TOLERANCE``.
    """
    manifest = json.loads((release / MANIFEST).read_text(encoding="utf-8"))
    published = {str(p.relative_to(release)): _sha(p) for p in sorted(release.rglob("*"))
                 if p.is_file() and p.name != MANIFEST and INPUTS not in p.relative_to(release).parts}
    inputs = {}
    for path in sorted((release / INPUTS).glob("*")):
        if path.is_dir():      # the scored cases, a file per site (their fingerprints may differ by rounding)
            inputs[path.name] = canonical(CaseFile(path).frame())
        else:
            inputs[path.name] = (canonical(pd.read_parquet(path)) if path.suffix == ".parquet"
                                 else pd.DataFrame({"text": [path.read_text(encoding="utf-8")]}))
    return {"files": published, "manifest": manifest, "inputs": inputs}


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in a canonical order (files need not keep one)."""
    keys = frame.astype(str)   # cells may hold lists, which do not sort
    return frame.loc[keys.sort_values(list(keys.columns), kind="stable").index].reset_index(drop=True)


def manifest_differences(a: dict, b: dict) -> set[str]:
    return {key for key in set(a) | set(b) if a.get(key) != b.get(key)}


# A margin for floating-point columns in the crash-convergence comparisons;
# two builds are equal to the last bit (test_the_marts_of_two_runs_are_equal_
# to_the_last_bit compares with no tolerance; see docs/reliability.md).
FLOAT_TOLERANCE = 1e-12


def differing_tables(expected: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame],
                     tolerance: float = FLOAT_TOLERANCE) -> list[str]:
    problems = [f"{name}: missing" for name in expected if name not in got]
    problems += [f"{name}: unexpected" for name in got if name not in expected]
    for name in sorted(set(expected) & set(got)):
        try:
            pd.testing.assert_frame_equal(expected[name], got[name], check_exact=tolerance == 0,
                                          rtol=tolerance, atol=tolerance)
        except AssertionError as exc:
            problems.append(f"{name}: {str(exc).splitlines()[0:3]}")
    return problems


def differing_intake(expected: dict, got: dict) -> list[str]:
    problems = []
    for key in expected:
        if isinstance(expected[key], pd.DataFrame):
            problems += differing_tables({key: expected[key]}, {key: got[key]}, tolerance=0)
        elif expected[key] != got[key]:
            problems.append(f"{key} differs")
    return problems


# --- what must hold after any kill ----------------------------------------------------------

def publications(publish: Path) -> dict[str, Path]:
    """``latest`` and every ``<period>`` link, resolved."""
    if not publish.is_dir():
        return {}
    return {p.name: p.resolve() for p in publish.iterdir() if p.is_symlink()}


def release_checksums(publish: Path) -> dict[Path, dict[str, str]]:
    """Checksums of the files of every release folder (what an earlier run released)."""
    releases = publish / "releases"
    if not releases.is_dir():
        return {}
    return {folder: {str(p.relative_to(folder)): _sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}
            for folder in sorted(releases.glob("*/*")) if (folder / MANIFEST).is_file()}


def consistency_problems(data_dir: Path, released_before: dict[Path, dict[str, str]],
                         landed: dict[str, str] | None = None) -> list[str]:
    """Every broken promise after a kill (an empty list when all hold).

    - the warehouse opens;
    - no half-loaded submission: rows of ``raw.cases`` belong to submissions in
      the ledger, as many as the ledger says were loaded, and the receipt of a
      submission in the ledger is complete and agrees with it;
    - no half-written publication: ``latest`` and every ``<period>`` link point
      at a complete release (its manifest lists exactly the files present,
      with their checksums);
    - every release made before is untouched;
    - no file a site sent is lost: each is still in landing or in the archive.
    """
    problems: list[str] = []
    ledger: dict[str, tuple] = {}
    warehouse = data_dir / "warehouse.duckdb"
    if warehouse.exists():
        try:
            with duckdb.connect(str(warehouse), read_only=True) as con:
                tables = {r[0] for r in con.execute("select table_schema || '.' || table_name "
                                                    "from information_schema.tables").fetchall()}
                if {"raw.cases", "intake.submissions"} <= tables:
                    orphans = con.execute("select distinct submission_id from raw.cases where submission_id not in "
                                          "(select submission_id from intake.submissions)").fetchall()
                    problems += [f"rows of {s} in raw.cases without a ledger row" for (s,) in orphans]
                    counts = con.execute(
                        "select s.submission_id, s.status, s.rows_loaded, s.rows_received, s.rows_rejected, "
                        "count(c.submission_id) from intake.submissions s "
                        "left join raw.cases c using (submission_id) group by all").fetchall()
                    for submission, status, loaded, received, rejected, rows in counts:
                        if rows != loaded:
                            problems.append(f"{submission}: ledger says {loaded} rows loaded, raw.cases has {rows}")
                        if status != "rejected" and loaded + rejected != received:
                            problems.append(f"{submission}: {loaded} + {rejected} rows do not make {received}")
                    ledger = {r[0]: r for r in counts}
        except duckdb.Error as exc:
            return [f"the warehouse does not open: {exc}"]
        # A receipt may be written just before its submission commits: one without a ledger row is
        # what a kill in between leaves, and the re-run rewrites it (the convergence checks show it).
        for path in sorted((data_dir / "receipts").rglob("*.json")):
            submission = path.name.split(".")[0]
            if submission not in ledger or path.name.endswith(".duplicate.json"):
                continue
            try:
                receipt = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                problems.append(f"receipt {path.name} of a committed submission is not complete JSON")
                continue
            if ledger[submission][2] != receipt["rows_loaded"] or ledger[submission][1] != receipt["status"]:
                problems.append(f"receipt {path.name} disagrees with the ledger ({receipt['status']}, "
                                f"{receipt['rows_loaded']} rows; ledger {ledger[submission]})")
    publish = data_dir / "publish"
    for name, target in publications(publish).items():
        if not (target / MANIFEST).is_file():
            problems.append(f"publish/{name} -> {target} has no manifest")
            continue
        listed = json.loads((target / MANIFEST).read_text(encoding="utf-8"))["files"]
        if file_checksums(target) != listed:
            problems.append(f"publish/{name} -> {target} does not match its manifest")
    now = release_checksums(publish)
    for folder, checksums in released_before.items():
        if now.get(folder) != checksums:
            problems.append(f"the earlier release {folder} was changed or removed")
    if landed:
        archived = {p.name.split(".")[0] for p in (data_dir / "archive").rglob("*") if p.is_file()}
        in_landing = {_sha(p) for p in (data_dir / "landing").rglob("*") if p.is_file()}
        problems += [f"{name} is neither in landing nor in the archive" for name, digest in landed.items()
                     if digest not in archived | in_landing]
    return problems


def landed_files(data_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(data_dir)): _sha(p) for p in sorted((data_dir / "landing").rglob("*")) if p.is_file()}
