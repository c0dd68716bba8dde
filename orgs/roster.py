"""Reading an uploaded roster (email, name). Reads only: nothing is written until the manager confirms."""

from __future__ import annotations

import csv
import io
import unicodedata
from dataclasses import dataclass

from flask_babel import format_decimal, format_number, ngettext
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer

from accounts.services import normalize_email
from core.errors import DomainError
from orgs.services import EMAIL_RE

MAX_ROWS = 2000
MAX_BYTES = 1024 * 1024  # 2,000 lines of a long address and name fit in about half of this
MAX_SHOWN_PROBLEMS = 200
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RosterRow:
    line: int
    email: str
    name: str


class RosterError(DomainError):
    """The whole roster is refused; ``problems`` lists each bad line with its number."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message, field="file")
        self.problems = problems or []


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text)


def parse(data: bytes) -> list[RosterRow]:
    """Every row of the roster, or RosterError naming each problem and its line. Writes nothing."""
    if len(data) > MAX_BYTES:
        raise RosterError(
            _(
                "The file is %(size)s MB; a roster may be at most 1 MB (%(rows)s lines of email and name fit in "
                "far less).",
                size=format_decimal(round(len(data) / 1024 / 1024, 1), "0.0"),
                rows=format_number(MAX_ROWS),
            )
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise RosterError(
            _(
                "The file is not UTF-8 text (byte %(byte)d cannot be read). In your spreadsheet choose "
                "“Save as → CSV UTF-8” and upload it again.",
                byte=error.start + 1,
            )
        ) from None
    if "\x00" in text:
        raise RosterError(_("The file looks like a spreadsheet or other binary file, not CSV text. Save it as CSV."))
    try:
        records = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text, newline="")), start=1)]
    except csv.Error as error:
        raise RosterError(_("The CSV could not be read (%(error)s).", error=error)) from None
    records = [(n, r) for n, r in records if any(cell.strip() for cell in r)]
    if records and records[0][1][0].strip().lower() in ("email", "e-mail", "email address"):
        records = records[1:]
    if not records:
        raise RosterError(_("The roster is empty. Put one person per line: email, name."))
    if len(records) > MAX_ROWS:
        raise RosterError(
            _(
                "The roster has %(count)s people; the limit is %(limit)s. Split it into smaller files.",
                count=format_number(len(records)),
                limit=format_number(MAX_ROWS),
            )
        )
    rows: list[RosterRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for line, record in records:
        cells = [c.strip() for c in record]
        if len(cells) > 2:
            problems.append(
                _("Line %(line)d: expected 2 columns (email, name), found %(found)d.", line=line, found=len(cells))
            )
            continue
        email = normalize_email(cells[0])
        name = " ".join(cells[1].split()) if len(cells) > 1 else ""
        bad = next((c for c in (cells[0], name) if c.startswith(FORMULA_PREFIXES)), None)
        if bad is not None:
            problems.append(
                _(
                    "Line %(line)d: “%(text)s” starts with “%(char)s”, which a spreadsheet would run as a formula; "
                    "remove it.",
                    line=line,
                    text=bad[:40],
                    char=bad[0],
                )
            )
            continue
        if not EMAIL_RE.match(email):
            problems.append(_("Line %(line)d: “%(text)s” is not an email address.", line=line, text=cells[0][:80]))
            continue
        if len(name) > 120 or _has_control(name):
            problems.append(
                _("Line %(line)d: the name is longer than 120 characters or has control characters.", line=line)
            )
            continue
        if email in seen:
            problems.append(
                _("Line %(line)d: %(email)s is already on line %(first)d.", line=line, email=email, first=seen[email])
            )
            continue
        seen[email] = line
        rows.append(RosterRow(line, email, name))
    if problems:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        if len(problems) > MAX_SHOWN_PROBLEMS:
            shown.append(_("… and %(count)s more problems.", count=format_number(len(problems) - MAX_SHOWN_PROBLEMS)))
        raise RosterError(
            ngettext(
                "%(count)s line of the roster cannot be used. Nothing was saved. Fix it and upload the file again.",
                "%(count)s lines of the roster cannot be used. Nothing was saved. Fix them and upload the file again.",
                len(problems),
                count=format_number(len(problems)),
            ),
            shown,
        )
    return rows


def _serializer(secret_key: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="roster-confirmation")


def to_token(rows: list[RosterRow], *, cohort_id: int, secret_key: str) -> str:
    """The checked roster, signed for the confirmation form (a hidden field keeps no line breaks reliably)."""
    return _serializer(secret_key).dumps({"c": cohort_id, "r": [[r.email, r.name] for r in rows]})


def from_token(token: str, *, cohort_id: int, secret_key: str) -> list[RosterRow]:
    """The roster the manager saw, checked again. Raises RosterError for a tampered or foreign token."""
    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature:
        raise RosterError(_("The confirmation was changed or is incomplete. Upload the roster again.")) from None
    if not isinstance(data, dict) or data.get("c") != cohort_id or not isinstance(data.get("r"), list):
        raise RosterError(_("This confirmation belongs to another cohort. Upload the roster again."))
    out = io.StringIO()
    csv.writer(out).writerows([[str(cell) for cell in row][:2] for row in data["r"] if isinstance(row, list)])
    return parse(out.getvalue().encode())
