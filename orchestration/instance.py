"""The project-local Dagster instance.

``DAGSTER_HOME`` points at ``$CQI_DATA_DIR/dagster_home``; the repository's
``dagster.yaml`` is copied there so that the instance configuration is
versioned with the code and the run history lives with the data.
"""

from __future__ import annotations

import os
import shutil

from .settings import PROJECT_ROOT, paths


def prepare_dagster_home() -> str:
    home = paths().dagster_home
    home.mkdir(parents=True, exist_ok=True)
    source = PROJECT_ROOT / "dagster.yaml"
    target = home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    os.environ["DAGSTER_HOME"] = str(home)
    return str(home)
