"""Feedback reports: the per-site HTML report and the coordinating-centre overview.

Pure rendering: DataFrames in (the shapes are those of the marts, see
``site_report``), one self-contained HTML string out. Writing the files and
deciding what is published belong to ``orchestration.publish``.
"""

from .overview import render_overview
from .site_report import PeerCharts, prepare_peer_charts, render_site_report

__all__ = ["PeerCharts", "prepare_peer_charts", "render_overview", "render_site_report"]
