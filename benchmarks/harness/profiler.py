"""A low-overhead statistical profiler of the cycle's main thread, and dbt's own node timings.

Why sampling: cProfile slows Python-heavy stages (worklists, fitting) by a
factor that would distort the figures the same run reports. Ten stack samples
a second cost nothing measurable, and each sample is attributed to the
Dagster step whose window holds it, so the profile is per stage. dbt runs on
a thread of the step's process (orchestration/defs/warehouse/dbt_in_process.py):
its samples are kept apart, by the outermost dbt calls they are in, so that
the time around dbt's own run (loading, parsing, writing artifacts) shows;
``run_results.json`` gives every model's and test's time.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR, PROJECT_ROOT

PROJECT = str(PROJECT_ROOT / "orchestration")


def _dbt_calls(frame, depth: int = 7) -> str:
    """The outermost ``depth`` calls of a dbt thread's stack made in dbt's own packages (dbt, dbt_common,
    adapters) below its command-line wrappers, and the innermost call (which may be outside them); empty
    for a thread outside dbt."""
    calls, leaf = [], None
    while frame is not None:
        path = Path(frame.f_code.co_filename)
        where = f"{path.parent.name}/{path.name}:{frame.f_code.co_name}"
        leaf = leaf or where
        if ("site-packages" in path.parts and path.parts[path.parts.index("site-packages") + 1].startswith("dbt")
                and path.parent.name != "cli"):
            calls.append(where)
        frame = frame.f_back
    return " > ".join([*reversed(calls[-depth:]), f"[{leaf}]"]) if calls else ""


class StackSampler:
    """Samples the stack of the thread that created it every ``interval`` seconds."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.target = interval, threading.get_ident()
        self.samples: list[tuple[float, str, str]] = []
        self.dbt_samples: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            frame = sys._current_frames().get(self.target)
            leaf, project = None, None
            while frame is not None:
                code = frame.f_code
                path = Path(code.co_filename)
                where = f"{path.parent.name}/{path.name}:{code.co_name}"
                leaf = leaf or where
                if project is None and code.co_filename.startswith(PROJECT):
                    project = f"{Path(code.co_filename).relative_to(PROJECT_ROOT)}:{code.co_name}:{frame.f_lineno}"
                frame = frame.f_back
            now = time.time()
            self.samples.append((now, project or "(outside orchestration)", leaf or "?"))
            for ident, other in sys._current_frames().items():   # dbt's own thread and its node threads
                if ident not in (self.target, threading.get_ident()) and (calls := _dbt_calls(other)):
                    self.dbt_samples.append((now, calls))

    def __enter__(self) -> "StackSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def by_step(self, steps: dict, top: int = 6) -> dict:
        """Per step: the project lines (and the call they were in) that held the most samples, in seconds."""
        out = {}
        for key, window in steps.items():
            if "start" not in window or "end" not in window:
                continue
            inside = Counter((p, leaf) for t, p, leaf in self.samples if window["start"] <= t <= window["end"])
            out[key] = [{"where": p, "in": leaf, "s": round(n * self.interval, 1)} for (p, leaf), n in inside.most_common(top)]
        return out

    def dbt_by_step(self, steps: dict, top: int = 8) -> dict:
        """Per step running dbt: the outermost dbt calls that held the most samples of dbt's threads, in seconds
    (the thread running the invocation waits while a node thread works: both are counted)."""
        out = {}
        for key, window in steps.items():
            inside = Counter(calls for t, calls in self.dbt_samples
                             if window.get("start", float("inf")) <= t <= window.get("end", 0))
            if inside:
                out[key] = [{"in": calls, "s": round(n * self.interval, 1)} for calls, n in inside.most_common(top)]
        return out


def dbt_profile(run_id: str, top: int = 5) -> dict:
    """Per dbt step of the run: models' and tests' time, node counts and the slowest nodes."""
    out = {}
    for results in sorted((DBT_PROJECT_DIR / "target").glob(f"*-{run_id[:7]}-*/run_results.json")):
        step = results.parent.name.split("-")[0]
        data = json.loads(results.read_text())
        nodes = [(r["unique_id"], float(r.get("execution_time") or 0)) for r in data.get("results", [])]
        models = [(n, s) for n, s in nodes if n.startswith("model.")]
        tests = [(n, s) for n, s in nodes if n.startswith("test.")]
        out[step] = {"elapsed_s": round(float(data.get("elapsed_time") or 0), 2),
                     "models": len(models), "models_s": round(sum(s for _, s in models), 2),
                     "tests": len(tests), "tests_s": round(sum(s for _, s in tests), 2),
                     "slowest": [{"node": n.split(".", 2)[-1], "s": round(s, 2)}
                                 for n, s in sorted(nodes, key=lambda x: -x[1])[:top]]}
    return out
