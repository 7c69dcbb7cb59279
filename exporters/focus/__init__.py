"""The FOCUS 1.2 export of LLM and GPU spend (docs/focus.md): columns, rows and file writers."""

from .columns import COLUMN_NAMES, COLUMNS, CUSTOM_COLUMNS, FOCUS_COLUMNS, FOCUS_VERSION
from .rows import ExportContext, FocusAccumulator, hour_of, money

__all__ = [
    "COLUMNS",
    "COLUMN_NAMES",
    "CUSTOM_COLUMNS",
    "FOCUS_COLUMNS",
    "FOCUS_VERSION",
    "ExportContext",
    "FocusAccumulator",
    "hour_of",
    "money",
]
