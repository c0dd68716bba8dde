"""CSV downloads that a spreadsheet opens without running anything: every cell goes through csv_safe."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from flask import Response

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")  # OWASP ASVS 1.2.10


def csv_safe(value: object) -> str:
    """Neutralise spreadsheet formula injection in exported cells (also behind leading spaces, which some
    spreadsheets skip before evaluating)."""
    text = "" if value is None else str(value)
    return "'" + text if text.lstrip(" ").startswith(FORMULA_PREFIXES) else text


def csv_text(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """The header and rows as CSV text, every cell (header included) made formula-safe. Raises nothing."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([csv_safe(v) for v in header])
    writer.writerows([csv_safe(v) for v in row] for row in rows)
    return out.getvalue()


def csv_response(filename: str, header: Iterable[object], rows: Iterable[Iterable[object]]) -> Response:
    """A ``text/csv`` attachment named ``filename`` (a name we build, never user input)."""
    response = Response(csv_text(header, rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
