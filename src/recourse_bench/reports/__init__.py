"""Reports: tables, figures and paired tests from a results frame, aggregated once."""

from .data import ReportData, summarise
from .tables import invalidation_table, markdown_report

__all__ = ["ReportData", "invalidation_table", "markdown_report", "summarise"]
