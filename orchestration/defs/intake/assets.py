"""Intake assets: the registry definition and the site submissions."""


import dagster as dg

from ...intake import landed_files, receive_file
from ...intake.landing import unknown_site_folders
from ...warehouse.registry_tables import write_registry_tables
from ..resources import CqiResource

REGISTRY_KEYS = [dg.AssetKey(["registry", name]) for name in ("measures", "sites", "variables")]
INTAKE_KEYS = [dg.AssetKey(["raw", "cases"]), dg.AssetKey(["intake", "submissions"]),
               dg.AssetKey(["intake", "current_submission_periods"])]


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
    pool="duckdb_writer",
)
def site_submissions(context: dg.AssetExecutionContext, cqi: CqiResource):
    """Receive every file waiting in the landing zone: archive, load, receipt."""
    registry, folders = cqi.registry, cqi.paths
    strangers = unknown_site_folders(folders.landing, registry.site_ids())
    if strangers:
        context.log.warning(f"landing folders that are not roster sites were left alone: {strangers}")
    statuses: dict[str, int] = {}
    with cqi.warehouse() as con:
        for landed in landed_files(folders.landing, registry.site_ids()):
            receipt = receive_file(con, registry, folders, landed.path, landed.site_id, cqi.secret)
            landed.path.unlink(missing_ok=True)  # the archive holds the bytes now
            statuses[receipt.status] = statuses.get(receipt.status, 0) + 1
            context.log.info(f"{landed.site_id}/{landed.path.name}: {receipt.status}"
                             + (f" ({receipt.reason})" if receipt.reason else ""))
        rows = con.execute("select count(*) from raw.cases").fetchone()[0]
        current = con.execute("select count(*) from intake.current_submission_periods").fetchone()[0]
    yield dg.MaterializeResult(asset_key=INTAKE_KEYS[0], metadata={"rows": rows})
    yield dg.MaterializeResult(asset_key=INTAKE_KEYS[1], metadata={f"files_{k}": v for k, v in statuses.items()})
    yield dg.MaterializeResult(asset_key=INTAKE_KEYS[2], metadata={"site_periods": current})
