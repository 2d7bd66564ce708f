"""Reports for papers: tables (Markdown) from a results frame."""

from .tables import invalidation_table, markdown_report, summarise

__all__ = ["invalidation_table", "markdown_report", "summarise"]
