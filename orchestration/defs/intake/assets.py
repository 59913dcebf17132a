"""Intake assets: the registry definition and the site submissions."""


import dagster as dg

from ...intake.receive import archive_reception, load_archived_files
from ...intake.receptions import read_manifest
from ...warehouse.registry_tables import write_registry_tables
from ..resources import CqiResource
from .partitions import submissions_partitions

REGISTRY_KEYS = [dg.AssetKey(["registry", name]) for name in ("measures", "sites", "variables")]
INTAKE_KEYS = [dg.AssetKey(["raw", "cases"]), dg.AssetKey(["intake", "submissions"]),
               dg.AssetKey(["intake", "current_submission_periods"])]
LISTED_FILES = 50   # files named one by one in the run's log (rejected or duplicate)


def run_log(receipts: list, listed: int = LISTED_FILES) -> list[tuple[str, str]]:
    """What the run's log says about the files received: one line of counts, and a line for each file
    that was not loaded as sent (rejected, or a duplicate), up to ``listed`` of them.

    Why not a line per file: Dagster stores each log line as an event (about 1 ms each here); a line
    per accepted file cost 0.8 s of a full M intake (640 files) and would cost seconds at national
    scale, for lines that only said "accepted". Every file's receipt says the rest.
    """
    counts: dict[str, int] = {}
    for receipt in receipts:
        counts[receipt.status] = counts.get(receipt.status, 0) + 1
    lines = [("info", f"{len(receipts)} file(s) received: "
              + ", ".join(f"{n} {status.replace('_', ' ')}" for status, n in sorted(counts.items())))]
    unloaded = [r for r in receipts if r.status in ("rejected", "duplicate")]
    for receipt in unloaded[:listed]:
        lines.append(("warning" if receipt.status == "rejected" else "info",
                      f"{receipt.site_id}/{receipt.original_name}: {receipt.status} ({receipt.reason})"))
    if len(unloaded) > listed:
        lines.append(("warning", f"and {len(unloaded) - listed} more file(s) rejected or duplicated: "
                                 "see each site's receipts"))
    return lines


@dg.multi_asset(
    specs=[dg.AssetSpec(key, group_name="intake", description=f"Registry definition table {key.path[-1]}.")
           for key in REGISTRY_KEYS],
    pool="duckdb_writer",
)
def registry_definition(context: dg.AssetExecutionContext, cqi: CqiResource):
    """Write the registry's measures, sites and dictionary into the warehouse."""
    with cqi.warehouse() as con:
        counts = write_registry_tables(con, cqi.registry, cqi.secret)
    for key in REGISTRY_KEYS:
        yield dg.MaterializeResult(asset_key=key, metadata={"rows": counts[key.path[-1]],
                                                            "registry_version": cqi.registry.version})


@dg.multi_asset(
    specs=[
        dg.AssetSpec(INTAKE_KEYS[0], group_name="intake", deps=REGISTRY_KEYS,
                     description="Every loaded row of every submission, typed and pseudonymised, with lineage."),
        dg.AssetSpec(INTAKE_KEYS[1], group_name="intake", deps=REGISTRY_KEYS,
                     description="The submission ledger: one row per distinct file, with status and receipt."),
        dg.AssetSpec(INTAKE_KEYS[2], group_name="intake", deps=REGISTRY_KEYS,
                     description="The latest accepted submission of each site and period."),
    ],
    partitions_def=submissions_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="duckdb_writer",
)
def site_submissions(context: dg.AssetExecutionContext, cqi: CqiResource):
    """Receive the run's receptions: archive every file first, then load them together, with a receipt each."""
    registry, folders = cqi.registry, cqi.paths
    statuses: dict[str, int] = {}
    archived = []
    for key in context.partition_keys:
        reception = read_manifest(folders.receptions, key)
        try:
            archived.append(archive_reception(folders, reception))
        except (OSError, ValueError) as exc:  # a file refused or gone: the other sites go on
            context.log.error(f"{reception.site_id}/{reception.original_name}: not received: {exc}")
            statuses["not_received"] = statuses.get("not_received", 0) + 1
    with cqi.warehouse() as con:
        receipts = load_archived_files(con, registry, folders, archived, cqi.secret)
        for receipt in receipts:
            statuses[receipt.status] = statuses.get(receipt.status, 0) + 1
        for level, message in run_log(receipts):
            getattr(context.log, level)(message)
        rows = con.execute("select count(*) from raw.cases").fetchone()[0]
        current = con.execute("select count(*) from intake.current_submission_periods").fetchone()[0]
    yield dg.MaterializeResult(asset_key=INTAKE_KEYS[0], metadata={"rows": rows})
    yield dg.MaterializeResult(asset_key=INTAKE_KEYS[1], metadata={f"files_{k}": v for k, v in statuses.items()})
    yield dg.MaterializeResult(asset_key=INTAKE_KEYS[2], metadata={"site_periods": current})
