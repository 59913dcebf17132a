"""The truth folder: what the pipeline should find, for tests to compare with.

The pipeline never reads it. It records the true coefficients (one row per
term of each measure's full risk model, zeros included, so a fitted model can
be compared term by term), the true site effects and designations, every
planted defect and file problem, each case's true values and probabilities,
and a manifest of how the collaborative was made.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ..registry import Registry
from .defects import DEFECT_COLUMNS
from .roster import ROSTER_COLUMNS
from .scenario import Scenario, reference_level
from .simulate import Simulation
from .submissions import Written
from .tables import truth_table
from .writers import write_bytes, write_csv_rows

FILE_PROBLEM_COLUMNS = ["file", "site_id", "period", "kind", "expected_outcome", "note"]
NOTES = [
    "p_<measure> is the true probability including the site effect; y_<measure> the realised event.",
    "effect_<measure> is the true site effect (logit shift) added for that case's site and period.",
    "A measure with model logit_given:<parent> is a subset of the parent's events: "
    "p = p_parent * expit(its coefficients + its site effect).",
    "Flags of a measure realised with zero_when_died_in_hospital are 0 for deaths in hospital "
    "(those cases are outside that measure's denominator).",
    "cases.parquet holds true values; missing_<var> is true where the submission left the value blank.",
    "denominator_<measure> is true where the case is eligible and not excluded (on its true values).",
]


def design_terms(registry: Registry, measure_id: str) -> list[str]:
    """Every term of a measure's full risk model (code variables: one per non-reference level)."""
    terms = []
    for factor in registry.measure(measure_id).risk_factors:
        variable = next((v for v in registry.variables if v.name == factor), None)
        if variable is not None and variable.codes:
            reference = reference_level(registry, factor)
            terms += [f"{factor}[{level}]" for level in variable.codes if level != reference]
        else:
            terms.append(factor)
    return terms


def model_of(scenario: Scenario, measure: str) -> str:
    given = scenario.outcomes[measure].get("given")
    return f"logit_given:{given}" if given else "logit"


def coefficient_rows(registry: Registry, scenario: Scenario) -> list[dict]:
    rows = []
    for measure in scenario.outcome_order():
        spec, model = scenario.outcomes[measure], model_of(scenario, measure)
        terms = spec.get("terms") or {}
        rows.append({"measure": measure, "term": "intercept", "value": float(spec.get("intercept", 0.0)),
                     "model": model})
        rows += [{"measure": measure, "term": t, "value": float(terms.get(t, 0.0)), "model": model}
                 for t in design_terms(registry, measure)]
    return rows


def write_roster(path: Path, roster) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ROSTER_COLUMNS)
    for site in roster:
        writer.writerow([site.site_id, site.display_name, site.region, site.peer_group, site.active_from or "",
                         site.active_to or ""])
    return write_bytes(path, buffer.getvalue().encode("utf-8"))


def _cases(registry: Registry, scenario: Scenario, sim: Simulation, spans, written: Written) -> pa.Table:
    f = scenario.field
    extra = {sim.age_field: pa.array(sim.frame[sim.age_field].astype("int64"))}
    for measure, result in sim.outcomes.items():
        extra[f"effect_{measure}"] = pa.array(result["effect"])
        extra[f"p_{measure}"] = pa.array(result["p"])
        extra[f"y_{measure}"] = pa.array(result["y"])
    for name, blank in sim.frame.blank.items():
        extra[f"missing_{name}"] = pa.array(blank)
    leading = {f("site_id"): sim.text[f("site_id")],
               "period": pa.array([p.period for p in spans]).take(pa.array(sim.period)),
               f("case_id"): sim.text[f("case_id")], "file": written.file_of_case}
    return _with_denominators(registry, truth_table(sim.frame, registry, sim.text, extra, leading))


def _with_denominators(registry: Registry, table: pa.Table) -> pa.Table:
    """Add ``denominator_<measure>``: the case is eligible and not excluded, on its true values.

    Lets a test compare a pipeline's per-site case counts with the truth
    without re-implementing each measure's exclusions."""
    con = duckdb.connect()
    con.register("cases", table)
    for measure in registry.measures:
        excluded = " or ".join(f"coalesce(({e}), false)" for e in measure.exclusions.values()) or "false"
        sql = f"select coalesce(({measure.denominator}), false) and not ({excluded}) from cases"
        try:
            result = con.execute(sql).arrow()
        except duckdb.Error:
            continue   # the expression needs a warehouse-only column
        values = (result.read_all() if hasattr(result, "read_all") else result).column(0)
        table = table.append_column(f"denominator_{measure.id}", values.cast(pa.bool_()))
    con.close()
    return table


def write_truth(registry: Registry, scenario: Scenario, sim: Simulation, roster, spans, written: Written,
                out_dir: Path, arguments: dict, counts: dict) -> list[Path]:
    truth = out_dir / "truth"
    effects = sim.effects
    site_effect_rows = [{"site_id": s.site_id, "period": p.period, "measure": m,
                         "effect": round(float(effects.effect[i, j, k]), 6), "designation": effects.of(i, m)}
                        for i, s in enumerate(roster) for j, p in enumerate(spans)
                        for k, m in enumerate(effects.measures)]
    paths = [
        write_csv_rows(truth / "coefficients.csv", ["measure", "term", "value", "model"],
                       coefficient_rows(registry, scenario)),
        write_csv_rows(truth / "site_effects.csv", ["site_id", "period", "measure", "effect", "designation"],
                       site_effect_rows),
        write_csv_rows(truth / "defects.csv", DEFECT_COLUMNS, written.defect_rows),
        write_csv_rows(truth / "file_problems.csv", FILE_PROBLEM_COLUMNS, written.problem_rows),
    ]
    pq.write_table(_cases(registry, scenario, sim, spans, written), truth / "cases.parquet")
    paths.append(truth / "cases.parquet")
    manifest = {
        "registry": {"id": registry.id, "version": registry.version},
        "seed": arguments["seed"],
        "arguments": arguments,
        "counts": counts,
        "periods": [p.period for p in spans],
        "designations": sorted(({"site_id": roster[s].site_id, "measure": m, "designation": d}
                                for (s, m), d in effects.designation.items()),
                               key=lambda r: (r["site_id"], r["measure"])),
        "resubmissions": [{"file": path.relative_to(out_dir).as_posix(), "replaces": sub.relative().as_posix(),
                           "site_id": sub.site_id, "period": sub.period} for sub, path in written.resubmitted],
        "outcome_scheme": {m: {"model": model_of(scenario, m),
                               "realise": (scenario.outcomes[m].get("realise") or {}).get("kind")}
                           for m in scenario.outcome_order()},
        "notes": NOTES,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    paths.append(write_bytes(truth / "manifest.json", text.encode("utf-8")))
    return paths
