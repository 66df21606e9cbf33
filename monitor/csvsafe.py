"""Spreadsheet-safe CSV cells: text a post wrote must be shown by a spreadsheet, never run.

Excel, LibreOffice and Google Sheets run a cell that starts like a formula (``=HYPERLINK(...)``,
``+SUM(...)``, ``=cmd|' /C calc'!A0``, ``@...``, ``-...``); a leading tab or carriage return
hides such a start from a naive check. Such a cell gets a leading ``'``, which they show as text.
"""

from __future__ import annotations

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """``value``, with a leading ``'`` when a spreadsheet would read it as a formula."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value
