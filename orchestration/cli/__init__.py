"""The ``cqi`` command line: what the coordinating centre, abstractors and analysts do.

Each module registers its commands on the shared app; importing them here
assembles the whole command line.
"""

from . import analysis, analyst, docs, intake, pipeline, publish, quality  # noqa: F401  (register commands)
from .app import app


def main() -> None:
    app()
