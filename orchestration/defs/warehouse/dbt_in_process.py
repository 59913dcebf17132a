"""Run dbt inside the Dagster step's process instead of a new Python process.

Why: dagster-dbt starts ``dbt`` as a subprocess for every invocation. Each
one paid for a Python interpreter, dbt's imports, its adapter, and (for the
mart models, which are dbt Python models) the statistics imports the step
process had already made: about 3 s of every dbt invocation, twice a cycle,
whatever the size of the change (benchmarks/README.md: overheads). dbt-core
supports programmatic invocation (``dbtRunner``), which fires the same
structured events the CLI prints as JSON lines.

How: dagster-dbt's ``DbtCliInvocation.run`` builds the command, the
environment and the working folder, then calls ``subprocess.Popen``.
Inside ``dbt_in_this_process()`` that ``Popen`` is replaced by
``InProcessDbt``, which runs ``dbtRunner.invoke`` on a thread with that
environment and folder and hands dagster-dbt each event as the JSON line
the CLI would have printed (levels info and above, as the CLI's stdout
logger). Everything dagster-dbt does with the lines (materialisations, test
results as asset checks, error messages) is unchanged.

Limits: one dbt invocation at a time per process (dbt keeps global state;
the pipeline runs its two dbt steps one after the other anyway); on
termination the running DuckDB query is interrupted, not the thread.
``CQI_DBT_SUBPROCESS=1`` goes back to a dbt process per invocation.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal as signals
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence

import orjson

_LOCK = threading.Lock()          # dbt's flags, adapters and event manager are process-global
_END = object()
_FORWARDED_LEVELS = {"info", "warn", "error"}   # what the CLI prints at its default log level


def in_process_enabled() -> bool:
    return os.environ.get("CQI_DBT_SUBPROCESS", "").strip().lower() not in {"1", "true", "yes"}


class _Lines:
    """The stand-in for ``Popen.stdout``: the JSON lines of the events, as bytes, until dbt ends."""

    def __init__(self):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.closed = False

    def put(self, line: bytes) -> None:
        self._queue.put(line)

    def end(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[bytes]:
        while not self.closed:
            line = self._queue.get()
            if line is _END:
                break
            yield line

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True
        return False


def _event_line(msg) -> bytes:
    from dbt_common.events.functions import msg_to_dict

    return orjson.dumps(msg_to_dict(msg), default=str) + b"\n"


def _error_line(exc: BaseException) -> bytes:
    """dbt's own MainEncounteredError event for an exception the invocation ended with."""
    from dbt.events.types import MainEncounteredError
    from dbt_common.events.base_types import msg_from_base_event

    return _event_line(msg_from_base_event(MainEncounteredError(exc=str(exc))))


class InProcessDbt:
    """Enough of ``subprocess.Popen`` for dagster-dbt: ``args``, ``stdout``, ``wait``, ``returncode``, ``send_signal``."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd, **_ignored):
        self.args = list(args)
        self.stdout = _Lines()
        self.returncode: int | None = None
        self._env, self._cwd = dict(env), os.fspath(cwd)
        self._thread = threading.Thread(target=self._invoke, name="dbt", daemon=True)
        self._thread.start()

    def _forward(self, msg) -> None:
        if msg.info.level in _FORWARDED_LEVELS:
            self.stdout.put(_event_line(msg))

    def _invoke(self) -> None:
        try:
            skip_manifest = _no_manifest_json() if _command(self.args) in _RUNS else contextlib.nullcontext()
            with _LOCK, _environment(self._env, self._cwd), skip_manifest, _quick_behavior_flag_source():
                from dbt.cli.main import dbtRunner

                try:
                    result = dbtRunner(callbacks=[self._forward]).invoke(self.args[1:])
                finally:
                    _close_warehouse()
            if result.exception is not None:
                self.stdout.put(_error_line(result.exception))
            # The CLI's exit codes: 0 success, 1 a node failed, 2 dbt itself failed.
            self.returncode = 0 if result.success else (2 if result.exception is not None else 1)
        except BaseException as exc:   # never leave dagster-dbt waiting on a dead thread
            self.stdout.put(_error_line(exc))
            self.returncode = 2
        finally:
            self.stdout.end()

    def wait(self, timeout: float | None = None) -> int | None:
        self._thread.join(timeout)
        return self.returncode

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig) -> None:
        """Termination: interrupt dbt's running DuckDB query (a thread cannot be killed)."""
        if sig not in (signals.SIGINT, signals.SIGTERM):
            return
        with contextlib.suppress(Exception):
            from dbt.adapters.duckdb.connections import DuckDBConnectionManager

            environment = DuckDBConnectionManager._ENV
            if environment is not None and getattr(environment, "conn", None) is not None:
                environment.conn.interrupt()

    terminate = send_signal


def _close_warehouse() -> None:
    """Close the DuckDB database dbt-duckdb keeps for the process.

    A dbt process released the warehouse file by exiting. In this process
    dbt-duckdb's environment would keep the database open, with dbt's
    settings: the step's next connection (other settings) would be refused,
    and another process could not write the file.
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


_RUNS = {"build", "run", "test", "seed", "snapshot"}     # commands whose point is not the manifest


def _command(args: Sequence[str]) -> str | None:
    """dbt's command in ``dbt [global flags] COMMAND ...`` (dagster-dbt puts no global flag before it)."""
    return next((a for a in args[1:] if not a.startswith("-")), None)


@contextlib.contextmanager
def _no_manifest_json():
    """The invocation's ``manifest.json`` is not written; ``run_results.json`` still is.

    dbt serialises its whole manifest (0.8 MB of JSON) into each invocation's target folder twice,
    after parsing and at the end: 0.3 s each, 1.2 s of every cycle. Nothing reads those copies:
    Dagster reads the project's manifest (``dbt parse``: dbt_project/target/manifest.json), the
    benchmarks and tests each invocation's ``run_results.json``. What writing it also did to the
    manifest in memory (its parent, child and group maps) is still done. ``dbt parse`` (whose
    product is the manifest) and other commands still write it.
    """
    import dbt.parser.manifest as parsing
    import dbt.task.runnable as runnable

    def maps_only(manifest, *args, **kwargs):
        manifest.build_parent_and_child_maps()
        manifest.build_group_map()

    saved = parsing.write_manifest, runnable.write_manifest
    parsing.write_manifest = runnable.write_manifest = maps_only
    try:
        yield
    finally:
        parsing.write_manifest, runnable.write_manifest = saved


def _calling_module() -> str:
    """``BehaviorFlagRendered._default_source`` without ``inspect.stack()``: the first module up the
    stack other than dbt_common's behavior_flags."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != "dbt_common.behavior_flags":
            return name
        frame = frame.f_back
    return "Unknown"


@contextlib.contextmanager
def _quick_behavior_flag_source():
    """dbt names the module behind each adapter behaviour flag with ``inspect.stack()``, which reads
    the source of every frame on the stack: 30 ms per flag from a Dagster step, 0.3 s of every
    invocation. The module is the same read off the frames' globals."""
    from dbt_common.behavior_flags import BehaviorFlagRendered

    saved = BehaviorFlagRendered.__dict__["_default_source"]
    BehaviorFlagRendered._default_source = staticmethod(_calling_module)
    try:
        yield
    finally:
        BehaviorFlagRendered._default_source = saved


@contextlib.contextmanager
def _environment(env: Mapping[str, str], cwd: str):
    """The subprocess's environment and working folder, for the invocation only.

    dbt reads its settings from the environment (dagster-dbt passes the
    target and log paths, the profiles folder, the JSON log format that way).
    Its stdout logger is switched off: the events reach dagster-dbt through
    the callback, and the step's own log must not repeat them.
    """
    wanted = {**env, "DBT_LOG_LEVEL": "none"}
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for name in set(saved_env) - set(wanted):
        del os.environ[name]
    os.environ.update({k: v for k, v in wanted.items() if saved_env.get(k) != v})
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        for name in set(os.environ) - set(saved_env):
            del os.environ[name]
        os.environ.update({k: v for k, v in saved_env.items() if os.environ.get(k) != v})


class _SubprocessModule:
    """``subprocess`` as dagster-dbt's invocation module sees it, with ``Popen`` running dbt in this process."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return InProcessDbt if name == "Popen" else getattr(self._real, name)


@contextlib.contextmanager
def dbt_in_this_process():
    """Within this block, dagster-dbt's dbt invocations run in this process (unless ``CQI_DBT_SUBPROCESS``)."""
    from dagster_dbt.core import dbt_cli_invocation

    if not in_process_enabled():
        yield
        return
    real = dbt_cli_invocation.subprocess
    dbt_cli_invocation.subprocess = _SubprocessModule(real)
    try:
        yield
    finally:
        dbt_cli_invocation.subprocess = real
