"""One scenario, start to finish: overheads, full cycle, floor, incremental cycle, incremental floor.

Every measured piece runs as a child process (``worker.py``) sampled from
here; stage times come from the Dagster run's step events, so they are the
times the production run itself recorded. Only generation and copying files
into landing are left untimed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

from .sampler import TreeSampler
from .scenarios import (Scenario, environment, floor_files, fresh_data_folder, generate, prepare_registry,
                        resubmissions)
from .work import STAGES, stage_of

FLOOR_COUNTERPART = {"intake": "read_cast", "quality": "checks", "dbt_build": "observed_expected"}


def measured(command: list[str], env: dict, out: Path | None = None, cwd: Path = PROJECT_ROOT) -> dict:
    """Run ``command`` as a child, sample its tree's memory, return its JSON (if any) and the samples."""
    spawned = time.time()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreeSampler(child.pid).start()
    stdout, stderr = child.communicate()
    exited = time.time()
    sampler.stop()
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:5])} failed ({child.returncode}):\n{stderr.decode()[-4000:]}")
    data = json.loads(out.read_text()) if out else {}
    return {"spawned": spawned, "exited": exited, "sampler": sampler, **data}


def worker(mode: str, env: dict, work: Path, label: str, *extra: str) -> dict:
    """Measure one piece in a child process, after writing out what the previous pieces left in the page
    cache (``os.sync``): the full cycle's gigabytes of warehouse writes otherwise drained to disk during
    the incremental cycle measured after it."""
    out = work / "measurements" / f"{label}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    os.sync()
    return measured([sys.executable, "-m", "benchmarks.harness.worker", mode, "--out", str(out), *extra], env, out)


def summarise_cycle(raw: dict) -> dict:
    """Wall time and peak memory of the cycle, of each stage and each step."""
    sampler: TreeSampler = raw["sampler"]
    steps, stages = {}, {s: {"wall_s": 0.0, "peak_rss_mib": 0.0, "steps": []} for s in STAGES}
    for key, window in sorted(raw["steps"].items(), key=lambda kv: kv[1].get("start", 0)):
        if "start" not in window or "end" not in window:
            continue
        seconds = window["end"] - window["start"]
        peak = sampler.peak_mib(window["start"], window["end"])
        steps[key] = {"wall_s": round(seconds, 3), "peak_rss_mib": peak,
                      "step_process_at_peak_mib": sampler.root_at_peak_mib(window["start"], window["end"]),
                      "status": window.get("status")}
        stage = stages.setdefault(stage_of(key), {"wall_s": 0.0, "peak_rss_mib": 0.0, "steps": []})
        stage["wall_s"] += seconds
        stage["peak_rss_mib"] = max(stage["peak_rss_mib"], peak)
        stage["steps"].append(key)
    for stage in stages.values():
        stage["wall_s"] = round(stage["wall_s"], 3)
    cycle_s = raw["run_returned"] - raw["run_called"]
    in_steps = sum(s["wall_s"] for s in steps.values())
    run = raw["run"]
    split = {"before_run_s": round(run["start"] - raw["run_called"], 3),
             "between_steps_s": round(run["end"] - run["start"] - in_steps, 3),
             "after_run_s": round(raw["run_returned"] - run["end"], 3)} if {"start", "end"} <= set(run) else {}
    return {
        "success": raw["success"], "run_id": raw["run_id"], "failed_steps": raw["failed_steps"],
        "failed_checks": raw["failed_checks"], "receptions": raw["receptions"],
        "cycle_s": round(cycle_s, 3),
        "process_s": round(raw["exited"] - raw["spawned"], 3),
        "start_and_imports_s": round(raw["imported"] - raw["spawned"], 3),
        "orchestration_in_run_s": round(cycle_s - in_steps, 3), "orchestration_split": split,
        "peak_rss_mib": sampler.peak_mib(raw["run_called"], raw["run_returned"]),
        "peak_main_process_mib": raw["peak_self_mib"],
        "stages": stages, "steps": steps, "work": raw["work"], "profile": raw.get("profile", {}),
    }


def summarise_floor(raw: dict) -> dict:
    parts = {k: round(v, 3) for k, v in raw["parts_s"].items()}
    return {"wall_s": round(sum(parts.values()), 3), "parts_s": parts, "sizes": raw["sizes"], "files": raw["files"],
            "process_s": round(raw["exited"] - raw["spawned"], 3),
            "peak_rss_mib": raw["sampler"].peak_mib(raw["imported"], raw["finished"])}


def overheads(env: dict, work: Path, repeats: int = 3) -> dict:
    """Fixed costs: interpreter start + imports (median of ``repeats``), dbt parse, an empty Dagster run."""
    imports = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import orchestration.definitions, orchestration.cycle"],
                       env=env, cwd=PROJECT_ROOT, check=True, capture_output=True)
        imports.append(time.perf_counter() - started)
    target = work / "dbt_parse_target"
    shutil.rmtree(target, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / "dbt"), "parse", "--quiet", "--no-partial-parse",
                    "--target-path", str(target)], env=env, cwd=DBT_PROJECT_DIR, check=True, capture_output=True)
    dbt_parse = time.perf_counter() - started
    noop = worker("noop", env, work, "noop")
    launch = noop["finished"] - noop["imported"]
    return {"python_start_imports_s": round(statistics.median(imports), 3), "dbt_parse_s": round(dbt_parse, 3),
            "dagster_noop_run_s": round(launch, 3), "dagster_noop_process_s": round(noop["exited"] - noop["spawned"], 3)}


def export_coefficients(warehouse: Path, target: Path) -> None:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("select c.* from models.coefficients c join models.model_versions v using (model_version) "
                    "where v.is_current").df().to_parquet(target)


def floor_agreement(warehouse: Path, floor_results: Path) -> dict:
    """How closely the floor's observed/expected match the pipeline's (included site-periods)."""
    floor = pd.read_parquet(floor_results)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not con.execute("select count(*) from information_schema.tables where table_schema = 'intermediate' "
                           "and table_name = 'int_site_period_outcomes'").fetchone()[0]:
            return {"pipeline_rows": 0, "floor_rows": len(floor), "matched_rows": 0, "identical_rows": 0}
        mart = con.execute("select site_id, period, measure_id, cases, observed, expected "
                           "from intermediate.int_site_period_outcomes where is_included").df()
    both = mart.merge(floor, on=["site_id", "period", "measure_id"], suffixes=("", "_floor"))
    same = ((both["cases"] == both["cases_floor"]) & (both["observed"] == both["observed_floor"])
            & ((both["expected"] - both["expected_floor"]).abs() < 1e-6))
    return {"pipeline_rows": len(mart), "floor_rows": len(floor), "matched_rows": len(both),
            "identical_rows": int(same.sum())}


def ratios(figures: dict, floor: dict) -> dict:
    total = floor["wall_s"] or float("nan")
    out = {"cycle": round(figures["cycle_s"] / total, 2),
           "stages": {s: round(v["wall_s"] / total, 2) for s, v in figures["stages"].items()}}
    out["stage_to_counterpart"] = {s: round(figures["stages"][s]["wall_s"] / floor["parts_s"][part], 2)
                                   for s, part in FLOOR_COUNTERPART.items() if floor["parts_s"].get(part)}
    return out


def machine() -> dict:
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return {"cores": os.cpu_count(), "memory_gib": round(memory / 2**20, 1), "cpu": model,
            "python": platform.python_version(), "duckdb": duckdb.__version__}


def code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure_floors(env: dict, work: Path) -> tuple[dict, dict]:
    """The full floor and the one-file floor, from the file lists and coefficients the run left in ``work``."""
    coefficients = ["--coefficients", str(work / "coefficients.parquet")]
    full = summarise_floor(worker("floor", env, work, "floor_full", "--files", str(work / "floor_files.json"),
                                  *coefficients))
    one = summarise_floor(worker("floor", env, work, "floor_incremental", "--files",
                                 str(work / "floor_incremental_files.json"), *coefficients))
    return full, one


def refloor(result: dict, work: Path) -> dict:
    """Re-measure only the floors of a finished run (its cycles are not run again) and redo the ratios."""
    scenario = Scenario(result["scenario"], result["sites"], result["periods"], result["cases"])
    registry = prepare_registry(work, scenario)
    env = environment(work, work / "source", registry)
    full, one = measure_floors(env, work)
    result["floor"].update(full=full, incremental=one)
    result["full"]["ratio_to_floor"] = ratios(result["full"], full)
    result["incremental"]["ratio_to_floor"] = ratios(result["incremental"], one)
    result["incremental"]["ratio_to_full_floor"] = round(result["incremental"]["cycle_s"] / full["wall_s"], 2)
    result["floor_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return result


def run_scenario(scenario: Scenario, work: Path, log=print) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    registry = prepare_registry(work, scenario)
    log(f"[{scenario.name}] generating {scenario.cases} cases, {scenario.sites} sites, {scenario.periods} quarters "
        f"(untimed, cached in {work / 'source'})")
    source = generate(work, scenario, registry)
    env = environment(work, source, registry)
    data = fresh_data_folder(work, source)
    log(f"[{scenario.name}] overheads")
    fixed = overheads(env, work, repeats=1 if scenario.name == "smoke" else 3)
    log(f"[{scenario.name}] full cycle")
    full = summarise_cycle(worker("cycle", env, work, "full_cycle"))
    warehouse = data / "warehouse.duckdb"
    export_coefficients(warehouse, work / "coefficients.parquet")
    files = floor_files(source)
    (work / "floor_files.json").write_text(json.dumps(files))
    log(f"[{scenario.name}] floor ({len(files)} files)")
    floor_full = summarise_floor(worker("floor", env, work, "floor_full", "--files", str(work / "floor_files.json"),
                                        "--coefficients", str(work / "coefficients.parquet")))
    agreement = floor_agreement(warehouse, work / "measurements" / "floor_full.parquet")
    resent = resubmissions(source)
    for path in resent:
        target = data / "landing" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    log(f"[{scenario.name}] incremental cycle ({len(resent)} resubmitted file(s))")
    incremental = summarise_cycle(worker("cycle", env, work, "incremental_cycle"))
    (work / "floor_incremental_files.json").write_text(json.dumps([str(p) for p in resent]))
    floor_incremental = summarise_floor(worker("floor", env, work, "floor_incremental", "--files",
                                               str(work / "floor_incremental_files.json"),
                                               "--coefficients", str(work / "coefficients.parquet")))
    manifest = source / "truth" / "manifest.json"
    generated = json.loads(manifest.read_text()).get("counts", {}) if manifest.is_file() else {}
    return {
        "scenario": scenario.name, "sites": scenario.sites, "periods": scenario.periods, "cases": scenario.cases,
        "landing_files": sum(1 for p in (source / "landing").rglob("*") if p.is_file()),
        "resubmitted_files": [p.relative_to(source).as_posix() for p in resent],
        "generated": generated,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "code_version": code_version(),
        "machine": machine(), "overhead": fixed,
        "full": {**full, "ratio_to_floor": ratios(full, floor_full)},
        "incremental": {**incremental, "ratio_to_floor": ratios(incremental, floor_incremental),
                        "ratio_to_full_floor": round(incremental["cycle_s"] / floor_full["wall_s"], 2)},
        "floor": {"full": floor_full, "incremental": floor_incremental, "agreement_with_pipeline": agreement},
    }
