"""Bulk verification: read a CSV (or pasted list) of certificate IDs with optional names, check every line
in one query, and give the results back as formula-safe CSV rows. Reads only; raises BulkError."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import format_number, gettext
from sqlalchemy import select

from core.errors import DomainError
from core.extensions import db
from credentials.ids import format_public_id, normalize_public_id
from credentials.labels import suspension_text
from credentials.models import Certificate

MAX_BULK_ROWS = 5000


@dataclass
class BulkRow:
    line: int
    raw_id: str
    given_name: str | None
    status: str  # valid / expired / revoked / not_found / invalid
    certificate: Certificate | None = None
    name_matches: bool | None = None
    message: str = ""
    # the other lines listing the same certificate (the first DUPLICATE_LINES_SHOWN of them)
    duplicate_lines: list[int] = field(default_factory=list)


class BulkError(DomainError):
    pass


def _name_key(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).casefold()
    return " ".join("".join(ch for ch in folded if not unicodedata.combining(ch)).replace(".", " ").split())


def parse_bulk_csv(data: bytes) -> list[tuple[int, str, str | None]]:
    """Read (line, id, optional name) rows from an uploaded CSV. Raises BulkError with a clear message."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkError(gettext("The file is not UTF-8 text. Save it as “CSV UTF-8” and upload it again.")) from None
    if "\x00" in text:
        raise BulkError(gettext("The file looks like a spreadsheet or other binary file, not CSV text."))
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, str, str | None]] = []
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not cell.strip() for cell in record):
                continue
            if len(record) > 2:
                raise BulkError(
                    gettext(
                        "Line %(line)s: expected 1 or 2 columns (certificate ID, name), found %(found)s.",
                        line=line,
                        found=len(record),
                    )
                )
            first = record[0].strip()
            if (
                line == 1
                and normalize_public_id(first) is None
                and first.lower().replace("_", " ") in {"certificate id", "id", "certificate", "certificate number"}
            ):
                continue  # a header row
            rows.append((line, first, record[1].strip() if len(record) > 1 and record[1].strip() else None))
            if len(rows) > MAX_BULK_ROWS:
                raise BulkError(
                    gettext(
                        "The file has more than %(rows)s rows. Split it and upload each part.",
                        rows=format_number(MAX_BULK_ROWS),
                    )
                )
    except csv.Error as error:
        raise BulkError(
            gettext("Line %(line)s: the CSV could not be read (%(error)s).", line=reader.line_num, error=error)
        ) from None
    if not rows:
        raise BulkError(
            gettext("The file has no certificate IDs. Put one ID per line, optionally followed by the name.")
        )
    return rows


def bulk_verify(rows: list[tuple[int, str, str | None]], *, now: datetime) -> list[BulkRow]:
    """Check every row in one query; flag malformed IDs and name mismatches per line."""
    ids = {normalize_public_id(raw) for _, raw, _ in rows} - {None}
    found = (
        {c.public_id: c for c in db.session.scalars(select(Certificate).where(Certificate.public_id.in_(ids)))}
        if ids
        else {}
    )
    results = []
    for line, raw, name in rows:
        public_id = normalize_public_id(raw)
        if public_id is None:
            results.append(
                BulkRow(
                    line, raw[:64], name, "invalid", message=gettext("Not a certificate ID (28 letters and digits).")
                )
            )
            continue
        certificate = found.get(public_id)
        if certificate is None:
            results.append(
                BulkRow(
                    line, format_public_id(public_id), name, "not_found", message=gettext("No certificate has this ID.")
                )
            )
            continue
        status = certificate.status_at(now).value
        row = BulkRow(line, format_public_id(public_id), name, status, certificate)
        if status == "suspended":
            row.message = suspension_text(certificate, now) or ""
        if name is not None:
            row.name_matches = _name_key(name) == _name_key(certificate.holder_name)
            if not row.name_matches:
                row.message = gettext("The name given does not match the name on the certificate.")
        results.append(row)
    _flag_duplicates(results)
    return results


# a row names at most this many of the lines that list the same certificate: one ID pasted 5,000 times would
# otherwise give every row all 5,000 line numbers (a 100 MB page, and seconds of CPU, for one upload)
DUPLICATE_LINES_SHOWN = 20


def _flag_duplicates(results: list[BulkRow]) -> None:
    """Mark every row whose certificate ID is listed more than once (however it was typed)."""
    lines: dict[str, list[int]] = {}
    for row in results:
        if row.status != "invalid":
            lines.setdefault(row.raw_id, []).append(row.line)
    notes: dict[str, str] = {}  # one note per repeated ID, shared by its rows
    for row in results:
        same = lines.get(row.raw_id, [])
        if len(same) > 1:
            shown = same[: DUPLICATE_LINES_SHOWN + 1]  # enough to leave out this row's own line and still fill
            row.duplicate_lines = [line for line in shown if line != row.line][:DUPLICATE_LINES_SHOWN]
            if row.raw_id not in notes:
                listed = ", ".join(map(str, same[:DUPLICATE_LINES_SHOWN]))
                if len(same) > DUPLICATE_LINES_SHOWN:
                    listed += ", …"
                notes[row.raw_id] = gettext("Listed %(times)s times (lines %(lines)s).", times=len(same), lines=listed)
            row.message = f"{row.message} {notes[row.raw_id]}".strip()


def bulk_input(form, limit: int) -> bytes | None:
    """The bulk list from the uploaded file, else from the pasted text; the text field is filled from the file so
    the page shows the input with the results. None when neither was given."""
    upload = form.file.data
    if upload is not None and getattr(upload, "filename", ""):
        data = upload.read(limit + 1)
        try:
            form.ids.data = data.decode("utf-8-sig")[:400_000]
        except UnicodeDecodeError:
            form.ids.data = ""
        return data
    if form.ids.data and form.ids.data.strip():
        return form.ids.data.encode("utf-8")
    return None


def bulk_table(results: list[BulkRow]) -> tuple[list[str], list[tuple]]:
    """The checked rows as a CSV header and rows, for ``core.csv.csv_response`` (which makes cells
    formula-safe). Raises nothing."""
    header = [
        "line",
        "certificate_id",
        "status",
        "holder_name",
        "course",
        "issued",
        "expires",
        "name_given",
        "name_matches",
        "message",
    ]
    rows = []
    for r in results:
        c = r.certificate
        rows.append(
            (
                r.line,
                r.raw_id,
                r.status,
                c.holder_name if c else "",
                c.course_title if c else "",
                c.issued_at.date().isoformat() if c else "",
                c.expires_at.date().isoformat() if c and c.expires_at else "",
                r.given_name or "",
                "" if r.name_matches is None else ("yes" if r.name_matches else "NO"),
                r.message,
            )
        )
    return header, rows
