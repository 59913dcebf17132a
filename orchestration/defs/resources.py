"""The resources every asset shares: where data lives and which registry runs.

Paths come from the environment (``CQI_DATA_DIR``, ``CQI_WAREHOUSE``,
``CQI_REGISTRY``), read when a run starts, never at import: the dbt profile
reads the same variables, so Dagster and dbt always open the same warehouse.
"""


import warnings
from contextlib import contextmanager
from functools import cached_property

import dagster as dg

from ..registry import Registry, load_registry
from ..settings import Paths, paths, pseudonym_secret, registry_dir
from ..warehouse import connect, ensure_schema


class CqiResource(dg.ConfigurableResource):
    """The deployment: its folders, its registry and its warehouse connection."""

    @cached_property
    def paths(self) -> Paths:
        return paths().ensure()

    @cached_property
    def registry(self) -> Registry:
        return load_registry(registry_dir())

    @property
    def secret(self) -> bytes:
        secret, is_demo = pseudonym_secret()
        if is_demo:
            warnings.warn("CQI_PSEUDONYM_SECRET is not set: using the demo secret. "
                          "Set a long random secret before loading real data.", stacklevel=2)
        return secret

    @contextmanager
    def warehouse(self, read_only: bool = False):
        with connect(self.paths.warehouse, read_only=read_only) as con:
            if not read_only:
                ensure_schema(con, self.registry)
            yield con
